#include <iostream>
#include <memory>

#include "cli/commands.h"

namespace vdswap {

void RegisterTemplateCommands(CLI::App& app, CliContext& ctx) {
  auto* tmpl = app.add_subcommand(
      "template", "Versioned (OS image, app image, shape) triples that VMs are made from");
  tmpl->require_subcommand(1);
  struct TemplateArgs {
    std::string name, os, app, memory, data_size;
    int cpus = 0;
    std::vector<std::string> networks;
  };
  auto ta = std::make_shared<TemplateArgs>();
  auto body = [ta] {
    return Json{{"name", ta->name},        {"os", ta->os},     {"app", ta->app},
                {"memory", ta->memory},    {"cpus", ta->cpus}, {"data_size", ta->data_size},
                {"networks", ta->networks}};
  };
  auto print_template = [&ctx](const Json& t) {
    ctx.Print(t, [&] { std::cout << "template " << t.value("ref", "") << "\n"; });
  };
  auto* create = tmpl->add_subcommand(
      "create", "Create NAME:1. The app's `requires` must match the OS image (else exit 4)");
  create->add_option("NAME", ta->name)->required();
  create->add_option("--os", ta->os, "OS image reference")->required();
  create->add_option("--app", ta->app, "App image reference")->required();
  create->add_option("--memory", ta->memory, "Memory, e.g. 256M (default 256M)");
  create->add_option("--cpus", ta->cpus, "vCPUs (default 1)")->check(CLI::Range(1, 256));
  create->add_option("--data-size", ta->data_size, "Data disk size, e.g. 1G (default 1G)");
  create->add_option("--network", ta->networks,
                     "libvirt network for a NIC (repeat for more NICs; \"none\" for no NIC).\n"
                     "Default: one NIC on \"default\". The network must exist and be active\n"
                     "on a VM's host when the VM is created. Each NIC keeps its MAC (and so\n"
                     "its DHCP address) for the VM's life, across OS swaps");
  create->callback([&ctx, body, print_template] {
    auto out = ctx.Call(Method::kPost, "/v1/templates", body());
    if (out.ok()) print_template(*out);
  });
  auto* update = tmpl->add_subcommand(
      "update", "Make NAME:V+1 from the newest version with a new OS and/or app image");
  update->add_option("NAME", ta->name)->required();
  update->add_option("--os", ta->os, "New OS image reference");
  update->add_option("--app", ta->app, "New app image reference");
  update->add_option("--memory", ta->memory, "New memory size");
  update->add_option("--cpus", ta->cpus, "New vCPU count")->check(CLI::Range(1, 256));
  update->callback([&ctx, ta, body, print_template] {
    auto out =
        ctx.Call(Method::kPost, "/v1/templates/" + UrlSegment(ta->name) + "/versions", body());
    if (out.ok()) print_template(*out);
  });
  tmpl->add_subcommand("ls", "List template versions")->callback([&ctx] {
    auto out = ctx.Call(Method::kGet, "/v1/templates");
    if (out.ok()) {
      ctx.Print(*out, [&] {
        CliContext::PrintTable(*out, {{"TEMPLATE", "ref"},
                                      {"OS", "os"},
                                      {"APP", "app"},
                                      {"MEMORY(MiB)", "memory_mib"},
                                      {"CPUS", "cpus"}});
      });
    }
  });
  auto* tinspect = tmpl->add_subcommand("inspect", "Show NAME (newest) or NAME:V");
  tinspect->add_option("REF", ta->name)->required();
  tinspect->callback([&ctx, ta] {
    auto out = ctx.Call(Method::kGet, "/v1/templates/" + UrlSegment(ta->name));
    if (out.ok()) CliContext::PrintJson(*out);
  });
}

}  // namespace vdswap
