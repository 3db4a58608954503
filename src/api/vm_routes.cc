#include "api/vm_routes.h"

#include <charconv>

#include "api/json_views.h"

namespace vdswap {

namespace {

// How much of a console log `vm console` shows by default, and at most.
constexpr uint64_t kConsoleBytes = uint64_t{64} << 10;
constexpr uint64_t kMaxConsoleBytes = uint64_t{4} << 20;

// VMs per page of GET /v1/vms by default, and at most: a page's reply stays around
// 100 KB to 1 MB however large the fleet.
constexpr int64_t kVmPage = 500;
constexpr int64_t kMaxVmPage = 5000;

// GET /v1/vms. With ?limit= (1-kMaxVmPage) and/or ?after=NAME: one page of VMs by name,
// {"vms": [...], "next": NAME|null}, "next" being the `after` of the next page (pages
// default to kVmPage VMs). Without either: every VM as one array, as before paging.
Result<Json> ListVms(VmService& vms, VmTable& vm_table, const ApiRequest& r) {
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
    if (ec != std::errc() || p != text.data() + text.size() || limit < 1 || limit > kMaxVmPage) {
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
}

// GET /v1/vms/{name}/console: the last ?bytes= (default kConsoleBytes) of its console log.
Result<Json> VmConsole(VmService& vms, const ApiRequest& r) {
  uint64_t bytes = kConsoleBytes;
  if (auto it = r.query.find("bytes"); it != r.query.end()) {
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), bytes);
    if (ec != std::errc() || p != it->second.data() + it->second.size() || bytes == 0 ||
        bytes > kMaxConsoleBytes) {
      return InvalidArgument("bytes must be 1-" + std::to_string(kMaxConsoleBytes));
    }
  }
  ASSIGN_OR_RETURN(std::string text, vms.Console(r.params[0], bytes));
  return Json{{"vm", r.params[0]}, {"console", text}};
}

}  // namespace

void RegisterVmRoutes(Router& router, VmService& vms, VmTable& vm_table) {
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
  router.Add(
      Method::kGet, "/v1/vms",
      [&vms, &vm_table](const ApiRequest& r) { return ListVms(vms, vm_table, r); }, Wait::kMay);
  router.Add(
      Method::kGet, "/v1/vms/([^/]+)/console",
      [&vms](const ApiRequest& r) { return VmConsole(vms, r); }, Wait::kMay);
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
}

}  // namespace vdswap
