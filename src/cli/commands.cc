#include "cli/commands.h"

namespace vdswap {

void RegisterCommands(CLI::App& app, CliContext& ctx) {
  RegisterStatusCommands(app, ctx);
  RegisterImageCommands(app, ctx);
  RegisterFleetCommands(app, ctx);
}

}  // namespace vdswap
