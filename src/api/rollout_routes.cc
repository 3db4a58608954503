#include "api/rollout_routes.h"

#include <charconv>

#include "api/json_views.h"

namespace vdswap {

namespace {

// How long a watch waits for a change before it looks again itself (a rollout that no
// engine thread runs, e.g. while the daemon resumes, changes without notifying).
constexpr auto kWatchRecheck = std::chrono::seconds(10);

// Streams the rollout's view through the request's progress once now and once per change,
// until it is no longer running or the request is cancelled; returns its last view.
Result<Json> WatchRollout(RolloutEngine& rollouts, int64_t id, bool with_vms,
                          const ApiRequest& request) {
  Json last;
  for (;;) {
    if (request.Cancelled()) {
      return Unavailable("watch of rollout " + std::to_string(id) + " cancelled");
    }
    // Read the version before the rollout, so a change made in between wakes the wait.
    uint64_t seen = rollouts.Version(id);
    ASSIGN_OR_RETURN(Rollout r, rollouts.Get(id));
    Json view = RolloutJson(r, with_vms);
    // A paused rollout waits for an operator: the watch ends there too.
    if (r.state != RolloutState::kRunning && r.state != RolloutState::kRollingBack) return view;
    if (view != last) request.progress(view);
    last = std::move(view);
    if (rollouts.WaitForChange(id, seen, kWatchRecheck) == seen && rollouts.WaitsCancelled()) {
      return Unavailable("vdswapd is stopping; watch rollout " + std::to_string(id) + " again");
    }
  }
}

Result<int64_t> RolloutId(const std::string& s) {
  int64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return InvalidArgument("rollout id '" + s + "' is not a number");
  }
  return id;
}

}  // namespace

void RegisterRolloutRoutes(Router& router, RolloutEngine& rollouts) {
  router.Add(Method::kPost, "/v1/rollouts", [&rollouts](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string to, BodyField<std::string>(r.body, "to", ""));
    ASSIGN_OR_RETURN(auto vm_list, BodyField<std::vector<std::string>>(r.body, "vms", {}));
    if (to.empty()) return InvalidArgument("rollout start needs --to NAME:VERSION");
    ASSIGN_OR_RETURN(RolloutPolicy policy,
                     PolicyFromJson(r.body.is_object() ? r.body.value("policy", Json()) : Json()));
    ASSIGN_OR_RETURN(int64_t id, rollouts.Start(to, vm_list, policy));
    return Json{{"id", id}};
  });
  using Control = Status (RolloutEngine::*)(int64_t);
  for (const auto& entry : {std::pair<const char*, Control>{"pause", &RolloutEngine::Pause},
                            {"resume", &RolloutEngine::Resume},
                            {"abort", &RolloutEngine::Abort}}) {
    const char* verb = entry.first;
    const Control control = entry.second;
    router.Add(Method::kPost, std::string("/v1/rollouts/([^/]+)/") + verb,
               [&rollouts, control](const ApiRequest& r) -> Result<Json> {
                 ASSIGN_OR_RETURN(int64_t id, RolloutId(r.params[0]));
                 RETURN_IF_ERROR((rollouts.*control)(id));
                 ASSIGN_OR_RETURN(Rollout rollout, rollouts.Get(id));
                 return RolloutJson(rollout, /*with_vms=*/false);
               });
  }
  router.Add(Method::kPost, "/v1/rollouts/([^/]+)/undo",
             [&rollouts](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(int64_t id, RolloutId(r.params[0]));
               ASSIGN_OR_RETURN(int64_t undo, rollouts.Undo(id));
               return Json{{"id", undo}, {"undoes", id}};
             });
  router.Add(Method::kGet, "/v1/rollouts", [&rollouts](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, rollouts.List());
    Json out = Json::array();
    for (const auto& r : list) out.push_back(RolloutJson(r, /*with_vms=*/false));
    return out;
  });
  router.Add(Method::kGet, "/v1/rollouts/([^/]+)",
             [&rollouts](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(int64_t id, RolloutId(r.params[0]));
               const bool with_vms = r.query.count("vms") > 0;
               if (r.query.count("watch")) return WatchRollout(rollouts, id, with_vms, r);
               if (r.query.count("wait")) rollouts.Wait(id);
               ASSIGN_OR_RETURN(Rollout rollout, rollouts.Get(id));
               return RolloutJson(rollout, with_vms);
             });
}

}  // namespace vdswap
