#include "api/image_routes.h"

namespace vdswap {

void RegisterImageRoutes(Router& router, ImageStore& images) {
  router.Add(Method::kPost, "/v1/images/build", [&images](const ApiRequest& r) -> Result<Json> {
    AppBuildRequest req;
    ASSIGN_OR_RETURN(req.source, BodyField<std::string>(r.body, "source", ""));
    ASSIGN_OR_RETURN(req.name, BodyField<std::string>(r.body, "name", ""));
    if (req.source.empty()) return InvalidArgument("field 'source' is required");
    ASSIGN_OR_RETURN(ImageInfo info, images.BuildApp(req, r.progress));
    Json j = info.ToJson();
    // The build's headline fields, flat, as scripts expect them.
    j["files"] = info.meta.value("files", 0);
    return j;
  });
  router.Add(Method::kPost, "/v1/images/import-os", [&images](const ApiRequest& r) -> Result<Json> {
    OsImportRequest req;
    ASSIGN_OR_RETURN(req.disk, BodyField<std::string>(r.body, "disk", ""));
    ASSIGN_OR_RETURN(req.kernel, BodyField<std::string>(r.body, "kernel", ""));
    ASSIGN_OR_RETURN(req.initrd, BodyField<std::string>(r.body, "initrd", ""));
    ASSIGN_OR_RETURN(req.cmdline, BodyField<std::string>(r.body, "cmdline", ""));
    ASSIGN_OR_RETURN(req.name, BodyField<std::string>(r.body, "name", ""));
    ASSIGN_OR_RETURN(req.version, BodyField<std::string>(r.body, "version", ""));
    ASSIGN_OR_RETURN(req.os_id, BodyField<std::string>(r.body, "os_id", ""));
    ASSIGN_OR_RETURN(req.os_version, BodyField<std::string>(r.body, "os_version", ""));
    ASSIGN_OR_RETURN(req.firmware, BodyField<std::string>(r.body, "firmware", "bios"));
    if (req.disk.empty()) return InvalidArgument("field 'disk' is required");
    ASSIGN_OR_RETURN(ImageInfo info, images.ImportOs(req, r.progress));
    return info.ToJson();
  });
  router.Add(Method::kGet, "/v1/images", [&images](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(auto list, images.List());
    Json out = Json::array();
    for (const auto& i : list) out.push_back(i.ToJson());
    return out;
  });
  router.Add(Method::kGet, "/v1/images/([^/]+)", [&images](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(ImageInfo info, images.Resolve(r.params[0]));
    return info.ToJson();
  });
  router.Add(Method::kDelete, "/v1/images/([^/]+)", [&images](const ApiRequest& r) -> Result<Json> {
    RETURN_IF_ERROR(images.Remove(r.params[0]));
    return Json{{"removed", r.params[0]}};
  });
  router.Add(Method::kPost, "/v1/images/gc", [&images](const ApiRequest& r) -> Result<Json> {
    ASSIGN_OR_RETURN(bool unused, BodyField<bool>(r.body, "unused", false));
    return images.Gc(unused);
  });
}

}  // namespace vdswap
