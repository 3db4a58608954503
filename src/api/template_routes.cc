#include "api/template_routes.h"

#include "api/json_views.h"

namespace vdswap {

namespace {

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

}  // namespace

void RegisterTemplateRoutes(Router& router, TemplateStore& templates) {
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
}

}  // namespace vdswap
