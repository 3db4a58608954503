#include <iostream>
#include <memory>

#include "cli/commands.h"

namespace vdswap {

namespace {

// The arguments of every `vm` subcommand (one of them runs per invocation).
struct VmArgs {
  std::vector<std::string> names;
  int count = 0;
  std::string prefix, tmpl, host, name;
  bool delete_data = false;
};

// `vm create`: the named VMs and/or PREFIX-1..PREFIX-N, in one request.
void CreateVms(CliContext& ctx, const VmArgs& va) {
  std::vector<std::string> names = va.names;
  if (va.count > 0) {
    if (va.prefix.empty()) return ctx.Fail(InvalidArgument("--count needs --prefix"));
    for (int i = 1; i <= va.count; ++i) names.push_back(va.prefix + "-" + std::to_string(i));
  }
  if (names.empty()) return ctx.Fail(InvalidArgument("give VM names or --count N --prefix P"));
  if (names.size() > kMaxVmsPerCreate) {
    return ctx.Fail(InvalidArgument("vm create takes at most " + std::to_string(kMaxVmsPerCreate) +
                                    " VMs per request, not " + std::to_string(names.size()) +
                                    " (run it again for more)"));
  }
  auto out = ctx.Call(Method::kPost, "/v1/vms",
                      Json{{"names", names}, {"template", va.tmpl}, {"host", va.host}}, true);
  if (!out.ok()) return;
  ctx.Print(*out, [&] {
    CliContext::PrintTable((*out)["vms"], {{"VM", "name"}, {"STATE", "state"}, {"ERROR", "error"}});
  });
  for (const auto& v : (*out)["vms"]) {
    if (v.value("state", "") != "running") ctx.exit_code = 1;
  }
}

// `vm ls`: the daemon replies a page at a time; the listing is every page, in name order.
void ListVms(CliContext& ctx) {
  Result<Json> out = Json::array();
  for (std::string after;;) {
    auto page = ctx.Call(Method::kGet, "/v1/vms?after=" + UrlSegment(after));
    if (!page.ok()) {
      out = page.status();
      break;
    }
    for (auto& v : (*page)["vms"]) out->push_back(std::move(v));
    const Json& next = (*page)["next"];
    if (!next.is_string()) break;
    after = next.get<std::string>();
  }
  if (out.ok()) {
    ctx.Print(*out, [&] {
      CliContext::PrintTable(*out, {{"NAME", "name"},
                                    {"HOST", "host"},
                                    {"TEMPLATE", "template"},
                                    {"STATE", "state"},
                                    {"ADDRESS", "address"},
                                    {"ERROR", "error"}});
    });
  }
}

void AddVmCreate(CLI::App& vm, CliContext& ctx, const std::shared_ptr<VmArgs>& va) {
  auto* vcreate = vm.add_subcommand(
      "create",
      "Create VMs as linked clones of a template (an OS overlay, the shared app disk and a\n"
      "data disk each), boot them and wait until their app is healthy. Runs in parallel.");
  vcreate->add_option("NAMES", va->names, "VM names");
  vcreate
      ->add_option("--count", va->count,
                   "Create N VMs named PREFIX-1..PREFIX-N (at most 1000 per request)")
      ->check(CLI::Range(0, static_cast<int>(kMaxVmsPerCreate)));
  vcreate->add_option("--prefix", va->prefix, "Name prefix for --count");
  vcreate->add_option("--template", va->tmpl, "NAME or NAME:VERSION")->required();
  vcreate->add_option("--host", va->host, "Host (default: the only host, or 'local')");
  vcreate->callback([&ctx, va] { CreateVms(ctx, *va); });
}

void AddVmConsole(CLI::App& vm, CliContext& ctx, const std::shared_ptr<VmArgs>& va) {
  auto* vconsole = vm.add_subcommand(
      "console",
      "Print the end of a VM's serial console log (kernel and init messages, the agent's\n"
      "log): where to look when a guest does not come up");
  vconsole->add_option("VM", va->name)->required();
  auto console_bytes = std::make_shared<uint64_t>(64 * 1024);
  vconsole->add_option("--bytes", *console_bytes, "How much of the end to show (default 64K)");
  vconsole->callback([&ctx, va, console_bytes] {
    auto out = ctx.Call(Method::kGet, "/v1/vms/" + UrlSegment(va->name) +
                                          "/console?bytes=" + std::to_string(*console_bytes));
    if (out.ok()) ctx.Print(*out, [&] { std::cout << out->value("console", ""); });
  });
}

}  // namespace

void RegisterVmCommands(CLI::App& app, CliContext& ctx) {
  auto* vm = app.add_subcommand("vm", "Linked-clone VMs of a template");
  vm->require_subcommand(1);
  auto va = std::make_shared<VmArgs>();
  AddVmCreate(*vm, ctx, va);
  vm->add_subcommand("ls", "List VMs")->callback([&ctx] { ListVms(ctx); });
  AddVmConsole(*vm, ctx, va);
  auto* vinspect = vm->add_subcommand(
      "inspect",
      "Show a VM with its live state: disks, NICs and addresses, boot id, app version and\n"
      "health");
  vinspect->add_option("VM", va->name)->required();
  vinspect->callback([&ctx, va] {
    auto out = ctx.Call(Method::kGet, "/v1/vms/" + UrlSegment(va->name));
    if (out.ok()) CliContext::PrintJson(*out);
  });
  for (const char* verb : {"start", "stop"}) {
    auto* sub = vm->add_subcommand(
        verb, std::string(verb == std::string("start") ? "Boot a VM and wait for its app"
                                                       : "Shut a VM down gracefully"));
    sub->add_option("VM", va->name)->required();
    sub->callback([&ctx, va, verb] {
      auto out = ctx.Call(Method::kPost, "/v1/vms/" + UrlSegment(va->name) + "/" + verb);
      if (out.ok()) ctx.Print(*out, [&] { std::cout << va->name << " " << verb << "ed\n"; });
    });
  }
  auto* vrm = vm->add_subcommand(
      "rm", "Delete a VM and its OS overlay; its data disk only with --delete-data");
  vrm->add_option("VM", va->name)->required();
  vrm->add_flag("--delete-data", va->delete_data, "Also delete the data disk (irreversible)");
  vrm->callback([&ctx, va] {
    auto out = ctx.Call(Method::kDelete, "/v1/vms/" + UrlSegment(va->name) +
                                             (va->delete_data ? "?delete_data=true" : ""));
    if (out.ok()) ctx.Print(*out, [&] { std::cout << va->name << " removed\n"; });
  });
}

}  // namespace vdswap
