// vdswap: the command-line client of vdswapd.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "cli/cli_context.h"
#include "cli/commands.h"
#include "core/version.h"

int main(int argc, char** argv) {
  // A daemon that closes the connection early is an error to report, not a reason to die.
  signal(SIGPIPE, SIG_IGN);
  vdswap::CliContext ctx;
  CLI::App app{
      "vdswap: upgrade fleets of QEMU/KVM VMs by swapping virtual disks.\n"
      "Talks to vdswapd (start it with `vdswapd`). Exit codes: 0 ok, 1 failed, 2 invalid\n"
      "input, 3 not found, 4 conflict or failed precondition, 5 daemon unreachable,\n"
      "6 unauthorized (wrong or missing token)."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.add_option("--socket", ctx.socket,
                 "vdswapd unix socket (default $VDSWAP_SOCKET or /var/lib/vdswap/vdswapd.sock)");
  app.add_option("--url", ctx.url, "vdswapd TCP endpoint http://HOST:PORT (needs --token-file)");
  app.add_option("--token-file", ctx.token_file, "File holding the bearer token for --url");
  app.add_option("-o,--output", ctx.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  vdswap::RegisterCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  ctx.PrintErrorDocument();
  return ctx.exit_code;
}
