#include <unistd.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/progress_bar.h"

namespace vdswap {

namespace {

void PrintRollout(const Json& r) {
  std::cout << "rollout " << r.value("id", 0) << " to " << r.value("to", "") << ": "
            << r.value("state", "") << "\n";
  if (!r.value("error", "").empty()) std::cout << "  " << r.value("error", "") << "\n";
  std::string counts;
  const Json by_state = r.value("counts", Json::object());
  for (const auto& [state, n] : by_state.items()) {
    counts += (counts.empty() ? "" : ", ") + std::to_string(n.get<int64_t>()) + " " + state;
  }
  if (!counts.empty()) std::cout << "  VMs: " << counts << "\n";
  const Json& in_flight = r.value("in_flight", Json::array());
  if (!in_flight.empty()) {
    std::cout << "  in flight:";
    for (const auto& vm : in_flight) std::cout << " " << vm.get<std::string>();
    std::cout << "\n";
  }
  for (const auto& f : r.value("failures", Json::array())) {
    std::cout << "  failed: " << f.value("vm", "") << " (" << f.value("state", "")
              << "): " << f.value("error", "") << "\n";
  }
  if (r.value("eta_ms", Json()).is_number()) {
    std::cout << "  ETA " << r["eta_ms"].get<int64_t>() / 1000 << " s\n";
  }
  if (r.contains("vms")) {
    CliContext::PrintTable(r["vms"], {{"VM", "vm"},
                                      {"HOST", "host"},
                                      {"STATE", "state"},
                                      {"FROM", "from"},
                                      {"TO", "to"},
                                      {"DOWNTIME(ms)", "downtime_ms"},
                                      {"ERROR", "error"}});
  }
  const Json& d = r.value("downtime_ms", Json::object());
  std::cout << "downtime p50 " << d.value("p50", 0) << " ms, p95 " << d.value("p95", 0)
            << " ms, max " << d.value("max", 0) << " ms\n";
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size() && !s.empty()) {
    size_t comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

void RegisterFleetCommands(CLI::App& app, CliContext& ctx) {
  // ---- hosts
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

  // ---- templates
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

  // ---- vms
  auto* vm = app.add_subcommand("vm", "Linked-clone VMs of a template");
  vm->require_subcommand(1);
  struct VmArgs {
    std::vector<std::string> names;
    int count = 0;
    std::string prefix, tmpl, host, name;
    bool delete_data = false;
  };
  auto va = std::make_shared<VmArgs>();
  auto* vcreate = vm->add_subcommand(
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
  vcreate->callback([&ctx, va] {
    std::vector<std::string> names = va->names;
    if (va->count > 0) {
      if (va->prefix.empty()) return ctx.Fail(InvalidArgument("--count needs --prefix"));
      for (int i = 1; i <= va->count; ++i) names.push_back(va->prefix + "-" + std::to_string(i));
    }
    if (names.empty()) return ctx.Fail(InvalidArgument("give VM names or --count N --prefix P"));
    if (names.size() > kMaxVmsPerCreate) {
      return ctx.Fail(InvalidArgument("vm create takes at most " +
                                      std::to_string(kMaxVmsPerCreate) + " VMs per request, not " +
                                      std::to_string(names.size()) + " (run it again for more)"));
    }
    auto out = ctx.Call(Method::kPost, "/v1/vms",
                        Json{{"names", names}, {"template", va->tmpl}, {"host", va->host}}, true);
    if (!out.ok()) return;
    ctx.Print(*out, [&] {
      CliContext::PrintTable((*out)["vms"],
                             {{"VM", "name"}, {"STATE", "state"}, {"ERROR", "error"}});
    });
    for (const auto& v : (*out)["vms"]) {
      if (v.value("state", "") != "running") ctx.exit_code = 1;
    }
  });
  vm->add_subcommand("ls", "List VMs")->callback([&ctx] {
    // The daemon replies a page at a time; the listing is every page, in name order.
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
  });
  auto* vconsole = vm->add_subcommand(
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

  // ---- rollouts
  auto* rollout = app.add_subcommand(
      "rollout", "Move VMs to another template version: app disks hot-swapped, or OS swapped");
  rollout->require_subcommand(1);
  struct RolloutArgs {
    std::string to, vms, id;
    std::string batch, canary, canary_wait, min_ready, max_failures, on_failure, max_action,
        swap_order;
    int64_t max_per_host = 0;
    bool watch = false, with_vms = false;
  };
  auto ra = std::make_shared<RolloutArgs>();
  auto* rstart = rollout->add_subcommand(
      "start",
      "Start a rollout. By default VMs move one at a time and the first failure pauses the\n"
      "rollout; the policy flags change that. Prints the rollout id; follow it with\n"
      "`rollout status ID --watch`.");
  rstart->add_option("--to", ra->to, "Target NAME:VERSION")->required();
  rstart->add_option("--vms", ra->vms, "VM,VM,... (default: every VM of the template)");
  rstart->add_option("--batch", ra->batch, "N or P%: most VMs in flight at once (default 1)");
  rstart->add_option("--max-per-host", ra->max_per_host,
                     "Most VMs in flight on one host (default 2)");
  rstart->add_option("--canary", ra->canary, "N or P%: the first VMs go alone (default 0)");
  rstart->add_option("--canary-wait", ra->canary_wait,
                     "After the canaries, continue after this wait (500ms, 30s, 5m); without it\n"
                     "the rollout pauses for `rollout resume`");
  rstart->add_option("--min-ready", ra->min_ready,
                     "A VM counts as done only after staying healthy this long (default 0s)");
  rstart->add_option("--max-failures", ra->max_failures,
                     "N or P%: failures tolerated over the whole rollout (default 0)");
  rstart->add_option("--on-failure", ra->on_failure,
                     "pause (default) or rollback: when the failure budget is exceeded, move\n"
                     "every VM this rollout moved back to its version");
  rstart->add_option("--max-action", ra->max_action,
                     "app: refuse a rollout that needs an OS swap (a reboot); os (default)");
  rstart->add_option("--swap-order", ra->swap_order,
                     "make-before-break (default) or break-before-make");
  rstart->callback([&ctx, ra] {
    Json policy = Json::object();
    for (auto [key, value] : {std::pair<const char*, const std::string*>{"batch", &ra->batch},
                              {"canary", &ra->canary},
                              {"canary_wait", &ra->canary_wait},
                              {"min_ready", &ra->min_ready},
                              {"max_failures", &ra->max_failures},
                              {"on_failure", &ra->on_failure},
                              {"max_action", &ra->max_action},
                              {"swap_order", &ra->swap_order}}) {
      if (!value->empty()) policy[key] = *value;
    }
    if (ra->max_per_host != 0) policy["max_per_host"] = ra->max_per_host;
    auto out = ctx.Call(Method::kPost, "/v1/rollouts",
                        Json{{"to", ra->to}, {"vms", SplitCommas(ra->vms)}, {"policy", policy}});
    if (out.ok()) ctx.Print(*out, [&] { std::cout << "rollout " << (*out)["id"] << " started\n"; });
  });
  auto* rstatus = rollout->add_subcommand(
      "status",
      "Show a rollout: state, policy, VM counts by state, VMs in flight, failures, ETA and\n"
      "downtime; --vms adds every VM");
  rstatus->add_option("ID", ra->id)->required();
  rstatus->add_flag("--vms", ra->with_vms,
                    "Add every VM: host, state, from, to, downtime and start/end times");
  rstatus->add_flag("--watch", ra->watch,
                    "Print the rollout at every change until it is no longer running");
  rstatus->callback([&ctx, ra] {
    const std::string path = "/v1/rollouts/" + UrlSegment(ra->id);
    const std::string query = ra->with_vms ? "vms=1&" : "";
    Result<Json> out = Internal("not called");
    if (!ra->watch) {
      out = ctx.Call(Method::kGet, path + (ra->with_vms ? "?vms=1" : ""));
    } else {
      // The daemon streams the rollout at each change and answers when it ends.
      // -o json prints one document (the final one); the changes go to stderr there.
      const bool tty = isatty(STDOUT_FILENO) == 1;
      ProgressFn show = [&ctx, tty](const Json& r) {
        if (ctx.json()) {
          int64_t done = 0, total = 0;
          const Json counts = r.value("counts", Json::object());
          for (const auto& [state, n] : counts.items()) {
            total += n.get<int64_t>();
            if (state == "done") done = n.get<int64_t>();
          }
          std::cerr << "  rollout " << r.value("id", 0) << ": " << r.value("state", "") << ", "
                    << done << "/" << total << " done" << std::endl;
        } else if (tty) {
          // One line redrawn in place; the final rollout is printed below it.
          std::cout << "\r" << RolloutProgressLine(r) << "\x1b[K" << std::flush;
        } else {
          PrintRollout(r);
          std::cout << std::endl;
        }
      };
      out = ctx.CallStreaming(Method::kGet, path + "?" + query + "watch=1", nullptr, show);
      if (!out.ok() && out.status().code() != Code::kNotFound &&
          out.status().code() != Code::kInvalidArgument) {
        // The stream broke (a daemon restart): follow the rollout once more.
        ctx.exit_code = 0;
        out = ctx.CallStreaming(Method::kGet, path + "?" + query + "watch=1", nullptr, show);
      }
      if (tty && !ctx.json()) std::cout << "\n";
    }
    if (!out.ok()) return;
    ctx.Print(*out, [&] { PrintRollout(*out); });
    std::string state = out->value("state", "");
    if (ra->watch && state != "succeeded") ctx.exit_code = 1;
  });
  for (const auto& entry : {std::pair<const char*, const char*>{
                                "pause", "Let in-flight swaps finish and start no more"},
                            {"resume", "Continue a paused rollout (also after its canaries)"},
                            {"abort", "Let in-flight swaps finish and end the rollout"}}) {
    const char* verb = entry.first;
    auto* sub = rollout->add_subcommand(verb, entry.second);
    sub->add_option("ID", ra->id)->required();
    sub->callback([&ctx, ra, verb] {
      auto out = ctx.Call(Method::kPost, "/v1/rollouts/" + UrlSegment(ra->id) + "/" + verb);
      if (out.ok()) ctx.Print(*out, [&] { PrintRollout(*out); });
    });
  }
  auto* rundo = rollout->add_subcommand(
      "undo", "Start a rollout moving every VM that rollout ID moved back to its version");
  rundo->add_option("ID", ra->id)->required();
  rundo->callback([&ctx, ra] {
    auto out = ctx.Call(Method::kPost, "/v1/rollouts/" + UrlSegment(ra->id) + "/undo");
    if (out.ok()) ctx.Print(*out, [&] { std::cout << "rollout " << (*out)["id"] << " started\n"; });
  });
  rollout->add_subcommand("ls", "List rollouts")->callback([&ctx] {
    auto out = ctx.Call(Method::kGet, "/v1/rollouts");
    if (out.ok()) {
      ctx.Print(*out, [&] {
        CliContext::PrintTable(
            *out, {{"ID", "id"}, {"TO", "to"}, {"STATE", "state"}, {"ERROR", "error"}});
      });
    }
  });
}

}  // namespace vdswap
