#include "api/fleet_routes.h"

#include <charconv>

#include "api/json_views.h"

namespace vdswap {

namespace {

// How long a watch waits for a change before it looks again itself (a rollout that no
// engine thread runs, e.g. while the daemon resumes, changes without notifying).
constexpr auto kWatchRecheck = std::chrono::seconds(10);

// How much of a console log `vm console` shows by default, and at most.
constexpr uint64_t kConsoleBytes = uint64_t{64} << 10;
constexpr uint64_t kMaxConsoleBytes = uint64_t{4} << 20;

// VMs per page of GET /v1/vms by default, and at most: a page's reply stays around
// 100 KB to 1 MB however large the fleet.
constexpr int64_t kVmPage = 500;
constexpr int64_t kMaxVmPage = 5000;

Result<TemplateShape> Shape(const Json& body) {
  TemplateShape shape;
  ASSIGN_OR_RETURN(std::string memory, BodyField<std::string>(body, "memory", ""));
  ASSIGN_OR_RETURN(int64_t cpus, BodyField<int64_t>(body, "cpus", 0));
  // JSON would turn 1.5 into 1 and the shape would ignore -2: both are refused.
  if ((body.contains("cpus") && !body["cpus"].is_null() && !body["cpus"].is_number_integer()) ||
      cpus < 0) {
    return InvalidArgument("cpus must be a whole number from 1 to 256, got " + body["cpus"].dump());
  }
  ASSIGN_OR_RETURN(std::string data, BodyField<std::string>(body, "data_size", ""));
  ASSIGN_OR_RETURN(shape.networks, BodyField<std::vector<std::string>>(body, "networks", {}));
  if (!memory.empty()) {
    ASSIGN_OR_RETURN(int64_t bytes, ParseSize(memory));
    shape.memory_mib = bytes >> 20;
  }
  if (cpus > 0) shape.cpus = cpus;
  if (!data.empty()) {
    ASSIGN_OR_RETURN(int64_t bytes, ParseSize(data));
    shape.data_bytes = bytes;
  }
  return shape;
}

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

void RegisterFleetRoutes(Router& router, HostRegistry& hosts, HostImages& host_images,
                         TemplateStore& templates, VmService& vms, VmTable& vm_table,
                         RolloutEngine& rollouts) {
  router.Add(Method::kPost, "/v1/hosts", [&hosts](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string name, BodyField<std::string>(r.body, "name", ""));
    ASSIGN_OR_RETURN(std::string uri, BodyField<std::string>(r.body, "uri", ""));
    ASSIGN_OR_RETURN(std::string pool, BodyField<std::string>(r.body, "pool", "vdswap"));
    ASSIGN_OR_RETURN(HostInfo h, hosts.Add(name, uri, pool));
    return HostJson(h);
  });
  router.Add(Method::kGet, "/v1/hosts",
             [&hosts, &vm_table, &host_images](const ApiRequest&) -> Result<Json> {
               ASSIGN_OR_RETURN(auto list, hosts.List());
               ASSIGN_OR_RETURN(auto bad, host_images.BadCopies(""));
               Json out = Json::array();
               for (const auto& h : list) {
                 ASSIGN_OR_RETURN(int64_t vms, vm_table.CountOnHost(h.name));
                 std::vector<BadImageCopy> on_host;
                 for (const auto& [host, copy] : bad) {
                   if (host == h.name) on_host.push_back(copy);
                 }
                 out.push_back(HostJson(h, vms, on_host));
               }
               return out;
             });
  router.Add(Method::kDelete, "/v1/hosts/([^/]+)", [&hosts](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(hosts.Remove(r.params[0]));
    return Json{{"removed", r.params[0]}};
  });

  router.Add(Method::kPost, "/v1/templates", [&templates](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string name, BodyField<std::string>(r.body, "name", ""));
    ASSIGN_OR_RETURN(std::string os, BodyField<std::string>(r.body, "os", ""));
    ASSIGN_OR_RETURN(std::string app, BodyField<std::string>(r.body, "app", ""));
    ASSIGN_OR_RETURN(TemplateShape shape, Shape(r.body));
    if (os.empty() || app.empty()) return InvalidArgument("a template needs --os and --app");
    ASSIGN_OR_RETURN(Template t, templates.Create(name, os, app, shape));
    return TemplateJson(t);
  });
  router.Add(Method::kPost, "/v1/templates/([^/]+)/versions",
             [&templates](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(std::string os, BodyField<std::string>(r.body, "os", ""));
               ASSIGN_OR_RETURN(std::string app, BodyField<std::string>(r.body, "app", ""));
               ASSIGN_OR_RETURN(TemplateShape shape, Shape(r.body));
               ASSIGN_OR_RETURN(Template t, templates.Update(r.params[0], os, app, shape));
               return TemplateJson(t);
             });
  router.Add(Method::kGet, "/v1/templates", [&templates](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, templates.List());
    Json out = Json::array();
    for (const auto& t : list) out.push_back(TemplateJson(t));
    return out;
  });
  router.Add(Method::kGet, "/v1/templates/([^/]+)",
             [&templates](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(Template t, templates.Get(r.params[0]));
               return TemplateJson(t);
             });

  router.Add(Method::kPost, "/v1/vms", [&vms](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(auto names, BodyField<std::vector<std::string>>(r.body, "names", {}));
    ASSIGN_OR_RETURN(std::string tmpl, BodyField<std::string>(r.body, "template", ""));
    ASSIGN_OR_RETURN(std::string host, BodyField<std::string>(r.body, "host", ""));
    if (tmpl.empty()) return InvalidArgument("vm create needs --template");
    if (names.size() > kMaxVmsPerCreate) {
      return InvalidArgument("vm create takes at most " + std::to_string(kMaxVmsPerCreate) +
                             " VMs per request, not " + std::to_string(names.size()));
    }
    ASSIGN_OR_RETURN(CreateResult created, vms.Create(names, tmpl, host, r.progress, r.cancelled));
    return CreateResultJson(created);
  });
  // `vm ls`, `vm console` and `vm inspect` ask hypervisors and guests.
  // With ?limit= (1-kMaxVmPage) and/or ?after=NAME: one page of VMs by name,
  // {"vms": [...], "next": NAME|null}, "next" being the `after` of the next page (pages
  // default to kVmPage VMs). Without either: every VM as one array, as before paging.
  router.Add(
      Method::kGet, "/v1/vms",
      [&vms, &vm_table](const ApiRequest& r) -> Result<Json> {
        auto limit_arg = r.query.find("limit");
        auto after = r.query.find("after");
        if (limit_arg == r.query.end() && after == r.query.end()) {
          ASSIGN_OR_RETURN(auto list, vms.List());
          Json out = Json::array();
          for (const auto& v : list) out.push_back(VmRowJson(v, vms.FirstAddress(v)));
          return out;
        }
        int64_t limit = kVmPage;
        if (limit_arg != r.query.end()) {
          const std::string& text = limit_arg->second;
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
          if (ec != std::errc() || p != text.data() + text.size() || limit < 1 ||
              limit > kMaxVmPage) {
            return InvalidArgument("limit must be 1-" + std::to_string(kMaxVmPage));
          }
        }
        // One more than the page shows whether there is a next page.
        ASSIGN_OR_RETURN(auto list,
                         vm_table.ListPage(after == r.query.end() ? "" : after->second, limit + 1));
        const bool more = static_cast<int64_t>(list.size()) > limit;
        if (more) list.pop_back();
        Json page = Json::array();
        for (const auto& v : list) page.push_back(VmRowJson(v, vms.FirstAddress(v)));
        return Json{{"vms", std::move(page)}, {"next", more ? Json(list.back().name) : Json()}};
      },
      Wait::kMay);
  router.Add(
      Method::kGet, "/v1/vms/([^/]+)/console",
      [&vms](const ApiRequest& r) -> Result<Json> {
        uint64_t bytes = kConsoleBytes;
        if (auto it = r.query.find("bytes"); it != r.query.end()) {
          auto [p, ec] =
              std::from_chars(it->second.data(), it->second.data() + it->second.size(), bytes);
          if (ec != std::errc() || p != it->second.data() + it->second.size() || bytes == 0 ||
              bytes > kMaxConsoleBytes) {
            return InvalidArgument("bytes must be 1-" + std::to_string(kMaxConsoleBytes));
          }
        }
        ASSIGN_OR_RETURN(std::string text, vms.Console(r.params[0], bytes));
        return Json{{"vm", r.params[0]}, {"console", text}};
      },
      Wait::kMay);
  router.Add(
      Method::kGet, "/v1/vms/([^/]+)",
      [&vms](const ApiRequest& r) -> Result<Json> {
        ASSIGN_OR_RETURN(VmInspection i, vms.Inspect(r.params[0]));
        return VmInspectionJson(i);
      },
      Wait::kMay);
  router.Add(Method::kPost, "/v1/vms/([^/]+)/start", [&vms](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(vms.Start(r.params[0]));
    return Json{{"name", r.params[0]}, {"state", VmStateName(VmState::kRunning)}};
  });
  router.Add(Method::kPost, "/v1/vms/([^/]+)/stop", [&vms](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(vms.Stop(r.params[0]));
    return Json{{"name", r.params[0]}, {"state", VmStateName(VmState::kStopped)}};
  });
  router.Add(Method::kDelete, "/v1/vms/([^/]+)", [&vms](const ApiRequest& r) -> Result<Json> {
    bool delete_data = r.query.count("delete_data") && r.query.at("delete_data") == "true";
    RETURN_IF_ERROR(vms.Remove(r.params[0], delete_data));
    return Json{{"removed", r.params[0]}, {"data_deleted", delete_data}};
  });

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
