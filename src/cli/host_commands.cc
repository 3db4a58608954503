#include <iostream>
#include <memory>

#include "cli/commands.h"

namespace vdswap {

void RegisterHostCommands(CLI::App& app, CliContext& ctx) {
  auto* host = app.add_subcommand("host", "Register the libvirt hosts VMs run on");
  host->require_subcommand(1);
  struct HostArgs {
    std::string name, uri, pool = "vdswap";
  };
  auto ha = std::make_shared<HostArgs>();
  auto* add = host->add_subcommand(
      "add", "Register a host: checks the connection and creates its storage pool");
  add->add_option("NAME", ha->name, "Host name")->required();
  add->add_option("--uri", ha->uri, "libvirt URI, e.g. qemu:///system or qemu+ssh://h7/system")
      ->required();
  add->add_option("--pool", ha->pool, "Storage pool for vdswap's volumes")->capture_default_str();
  add->callback([&ctx, ha] {
    auto out = ctx.Call(Method::kPost, "/v1/hosts",
                        Json{{"name", ha->name}, {"uri", ha->uri}, {"pool", ha->pool}});
    if (out.ok()) ctx.Print(*out, [&] { std::cout << "host " << ha->name << " added\n"; });
  });
  host->add_subcommand("ls", "List hosts")->callback([&ctx] {
    auto out = ctx.Call(Method::kGet, "/v1/hosts");
    if (out.ok()) {
      ctx.Print(*out, [&] {
        CliContext::PrintTable(
            *out, {{"NAME", "name"}, {"URI", "uri"}, {"POOL", "pool"}, {"VMS", "vms"}});
      });
    }
  });
  auto* hrm = host->add_subcommand("rm", "Forget a host that has no VMs");
  hrm->add_option("NAME", ha->name)->required();
  hrm->callback([&ctx, ha] {
    auto out = ctx.Call(Method::kDelete, "/v1/hosts/" + UrlSegment(ha->name));
    if (out.ok()) ctx.Print(*out, [&] { std::cout << "host " << ha->name << " removed\n"; });
  });
}

}  // namespace vdswap
