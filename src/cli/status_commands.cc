#include <iostream>

#include "cli/commands.h"
#include "core/version.h"

namespace vdswap {

void RegisterStatusCommands(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("status", "Show the daemon's version, configuration and inventory")
      ->callback([&ctx] {
        auto st = ctx.Call(Method::kGet, "/v1/status");
        if (!st.ok()) return;
        ctx.Print(*st, [&] {
          const Json& s = *st;
          std::cout << "vdswapd " << s.value("version", "?") << " (pid " << s.value("pid", 0)
                    << ", up " << s.value("uptime_s", 0) << " s)\n"
                    << "state dir   " << s.value("state_dir", "") << "\n"
                    << "hypervisor  " << s.value("hypervisor", "") << " ("
                    << s.value("default_uri", "") << ")\n";
          for (const auto& [kind, n] : s["counts"].items()) {
            std::cout << kind << std::string(12 - std::min<size_t>(kind.size(), 11), ' ') << n
                      << "\n";
          }
        });
      });
  app.add_subcommand("version", "Print the client's version")->callback([&ctx] {
    ctx.Print(Json{{"version", kVersion}}, [] { std::cout << "vdswap " << kVersion << "\n"; });
  });
}

}  // namespace vdswap
