#include "api/fleet_routes.h"

#include <charconv>

namespace vdswap {

namespace {

Json VmJson(const VmRecord& v) {
  return {{"name", v.name},
          {"host", v.host},
          {"template", v.template_name + ":" + std::to_string(v.version)},
          {"state", v.state},
          {"error", v.last_error}};
}

Result<TemplateShape> Shape(const Json& body) {
  TemplateShape shape;
  ASSIGN_OR_RETURN(std::string memory, BodyField<std::string>(body, "memory", ""));
  ASSIGN_OR_RETURN(int64_t cpus, BodyField<int64_t>(body, "cpus", 0));
  ASSIGN_OR_RETURN(std::string data, BodyField<std::string>(body, "data_size", ""));
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

Result<int64_t> RolloutId(const std::string& s) {
  int64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return InvalidArgument("rollout id '" + s + "' is not a number");
  }
  return id;
}

}  // namespace

void RegisterFleetRoutes(Router& router, HostRegistry& hosts, TemplateStore& templates,
                         VmService& vms, RolloutEngine& rollouts) {
  router.Add(Method::kPost, "/v1/hosts", [&hosts](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string name, BodyField<std::string>(r.body, "name", ""));
    ASSIGN_OR_RETURN(std::string uri, BodyField<std::string>(r.body, "uri", ""));
    ASSIGN_OR_RETURN(std::string pool, BodyField<std::string>(r.body, "pool", "vdswap"));
    return hosts.Add(name, uri, pool);
  });
  router.Add(Method::kGet, "/v1/hosts", [&hosts](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, hosts.List());
    return Json(list);
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
    return t.ToJson();
  });
  router.Add(Method::kPost, "/v1/templates/([^/]+)/versions",
             [&templates](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(std::string os, BodyField<std::string>(r.body, "os", ""));
               ASSIGN_OR_RETURN(std::string app, BodyField<std::string>(r.body, "app", ""));
               ASSIGN_OR_RETURN(TemplateShape shape, Shape(r.body));
               ASSIGN_OR_RETURN(Template t, templates.Update(r.params[0], os, app, shape));
               return t.ToJson();
             });
  router.Add(Method::kGet, "/v1/templates", [&templates](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, templates.List());
    Json out = Json::array();
    for (const auto& t : list) out.push_back(t.ToJson());
    return out;
  });
  router.Add(Method::kGet, "/v1/templates/([^/]+)",
             [&templates](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(Template t, templates.Get(r.params[0]));
               return t.ToJson();
             });

  router.Add(Method::kPost, "/v1/vms", [&vms](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(auto names, BodyField<std::vector<std::string>>(r.body, "names", {}));
    ASSIGN_OR_RETURN(std::string tmpl, BodyField<std::string>(r.body, "template", ""));
    ASSIGN_OR_RETURN(std::string host, BodyField<std::string>(r.body, "host", ""));
    if (tmpl.empty()) return InvalidArgument("vm create needs --template");
    return vms.Create(names, tmpl, host, r.progress);
  });
  router.Add(Method::kGet, "/v1/vms", [&vms](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, vms.List());
    Json out = Json::array();
    for (const auto& v : list) out.push_back(VmJson(v));
    return out;
  });
  router.Add(Method::kGet, "/v1/vms/([^/]+)",
             [&vms](const ApiRequest& r) -> Result<Json> { return vms.Inspect(r.params[0]); });
  router.Add(Method::kPost, "/v1/vms/([^/]+)/start", [&vms](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(vms.Start(r.params[0]));
    return Json{{"name", r.params[0]}, {"state", "running"}};
  });
  router.Add(Method::kPost, "/v1/vms/([^/]+)/stop", [&vms](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(vms.Stop(r.params[0]));
    return Json{{"name", r.params[0]}, {"state", "stopped"}};
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
    ASSIGN_OR_RETURN(int64_t id, rollouts.Start(to, vm_list));
    return Json{{"id", id}};
  });
  router.Add(Method::kGet, "/v1/rollouts",
             [&rollouts](const ApiRequest&) -> Result<Json> { return rollouts.List(); });
  router.Add(Method::kGet, "/v1/rollouts/([^/]+)",
             [&rollouts](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(int64_t id, RolloutId(r.params[0]));
               if (r.query.count("wait")) rollouts.Wait(id);
               return rollouts.Get(id);
             });
}

}  // namespace vdswap
