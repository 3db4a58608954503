#include "cli/commands.h"

namespace vdswap {

void RegisterCommands(CLI::App& app, CliContext& ctx) {
  RegisterStatusCommands(app, ctx);
  RegisterImageCommands(app, ctx);
  RegisterHostCommands(app, ctx);
  RegisterTemplateCommands(app, ctx);
  RegisterVmCommands(app, ctx);
  RegisterRolloutCommands(app, ctx);
}

}  // namespace vdswap
