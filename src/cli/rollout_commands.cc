#include <unistd.h>

#include <iostream>
#include <memory>

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

// The arguments of every `rollout` subcommand (one of them runs per invocation).
struct RolloutArgs {
  std::string to, vms, id;
  std::string batch, canary, canary_wait, min_ready, max_failures, on_failure, max_action,
      swap_order;
  int64_t max_per_host = 0;
  bool watch = false, with_vms = false;
};

// `rollout start`: the policy carries only the flags that were given.
void StartRollout(CliContext& ctx, const RolloutArgs& ra) {
  Json policy = Json::object();
  for (auto [key, value] : {std::pair<const char*, const std::string*>{"batch", &ra.batch},
                            {"canary", &ra.canary},
                            {"canary_wait", &ra.canary_wait},
                            {"min_ready", &ra.min_ready},
                            {"max_failures", &ra.max_failures},
                            {"on_failure", &ra.on_failure},
                            {"max_action", &ra.max_action},
                            {"swap_order", &ra.swap_order}}) {
    if (!value->empty()) policy[key] = *value;
  }
  if (ra.max_per_host != 0) policy["max_per_host"] = ra.max_per_host;
  auto out = ctx.Call(Method::kPost, "/v1/rollouts",
                      Json{{"to", ra.to}, {"vms", SplitCommas(ra.vms)}, {"policy", policy}});
  if (out.ok()) ctx.Print(*out, [&] { std::cout << "rollout " << (*out)["id"] << " started\n"; });
}

// Prints one change of a watched rollout: with -o json a summary line on stderr, on a
// terminal one line redrawn in place, else the whole rollout.
void PrintRolloutChange(const CliContext& ctx, bool tty, const Json& r) {
  if (ctx.json()) {
    int64_t done = 0, total = 0;
    const Json counts = r.value("counts", Json::object());
    for (const auto& [state, n] : counts.items()) {
      total += n.get<int64_t>();
      if (state == "done") done = n.get<int64_t>();
    }
    std::cerr << "  rollout " << r.value("id", 0) << ": " << r.value("state", "") << ", " << done
              << "/" << total << " done" << std::endl;
  } else if (tty) {
    // One line redrawn in place; the final rollout is printed below it.
    std::cout << "\r" << RolloutProgressLine(r) << "\x1b[K" << std::flush;
  } else {
    PrintRollout(r);
    std::cout << std::endl;
  }
}

// GETs `url` (a rollout with ?watch=1): the daemon streams the rollout at each change and
// answers when it ends. -o json prints one document (the final one); the changes go to
// stderr there.
Result<Json> WatchRollout(CliContext& ctx, const std::string& url) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  ProgressFn show = [&ctx, tty](const Json& r) { PrintRolloutChange(ctx, tty, r); };
  Result<Json> out = ctx.CallStreaming(Method::kGet, url, nullptr, show);
  if (!out.ok() && out.status().code() != Code::kNotFound &&
      out.status().code() != Code::kInvalidArgument) {
    // The stream broke (a daemon restart): follow the rollout once more.
    ctx.exit_code = 0;
    out = ctx.CallStreaming(Method::kGet, url, nullptr, show);
  }
  if (tty && !ctx.json()) std::cout << "\n";
  return out;
}

// `rollout status`: with --watch, exits 1 unless the rollout succeeded.
void ShowRolloutStatus(CliContext& ctx, const RolloutArgs& ra) {
  const std::string path = "/v1/rollouts/" + UrlSegment(ra.id);
  const std::string query = ra.with_vms ? "vms=1&" : "";
  Result<Json> out = Internal("not called");
  if (!ra.watch) {
    out = ctx.Call(Method::kGet, path + (ra.with_vms ? "?vms=1" : ""));
  } else {
    out = WatchRollout(ctx, path + "?" + query + "watch=1");
  }
  if (!out.ok()) return;
  ctx.Print(*out, [&] { PrintRollout(*out); });
  std::string state = out->value("state", "");
  if (ra.watch && state != "succeeded") ctx.exit_code = 1;
}

void AddRolloutStart(CLI::App& rollout, CliContext& ctx, const std::shared_ptr<RolloutArgs>& ra) {
  auto* rstart = rollout.add_subcommand(
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
  rstart->callback([&ctx, ra] { StartRollout(ctx, *ra); });
}

void AddRolloutStatus(CLI::App& rollout, CliContext& ctx, const std::shared_ptr<RolloutArgs>& ra) {
  auto* rstatus = rollout.add_subcommand(
      "status",
      "Show a rollout: state, policy, VM counts by state, VMs in flight, failures, ETA and\n"
      "downtime; --vms adds every VM");
  rstatus->add_option("ID", ra->id)->required();
  rstatus->add_flag("--vms", ra->with_vms,
                    "Add every VM: host, state, from, to, downtime and start/end times");
  rstatus->add_flag("--watch", ra->watch,
                    "Print the rollout at every change until it is no longer running");
  rstatus->callback([&ctx, ra] { ShowRolloutStatus(ctx, *ra); });
}

}  // namespace

void RegisterRolloutCommands(CLI::App& app, CliContext& ctx) {
  auto* rollout = app.add_subcommand(
      "rollout", "Move VMs to another template version: app disks hot-swapped, or OS swapped");
  rollout->require_subcommand(1);
  auto ra = std::make_shared<RolloutArgs>();
  AddRolloutStart(*rollout, ctx, ra);
  AddRolloutStatus(*rollout, ctx, ra);
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
