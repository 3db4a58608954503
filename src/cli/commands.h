#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli_context.h"

namespace vdswap {

// Adds every subcommand to `app`; each runs against `ctx` when parsed.
void RegisterCommands(CLI::App& app, CliContext& ctx);

// One registration function per command group (cli/<group>_commands.cc).
void RegisterStatusCommands(CLI::App& app, CliContext& ctx);
void RegisterImageCommands(CLI::App& app, CliContext& ctx);
void RegisterHostCommands(CLI::App& app, CliContext& ctx);
void RegisterTemplateCommands(CLI::App& app, CliContext& ctx);
void RegisterVmCommands(CLI::App& app, CliContext& ctx);
void RegisterRolloutCommands(CLI::App& app, CliContext& ctx);

}  // namespace vdswap
