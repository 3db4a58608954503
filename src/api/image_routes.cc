#include "api/image_routes.h"

#include "image/app_image_builder.h"
#include "image/os_image_importer.h"

namespace vdswap {

namespace {

// The body of POST /v1/images/import-os (docs/api.md).
Result<OsImportRequest> ImportRequestOf(const Json& body) {
  OsImportRequest req;
  ASSIGN_OR_RETURN(req.disk, BodyField<std::string>(body, "disk", ""));
  ASSIGN_OR_RETURN(req.kernel, BodyField<std::string>(body, "kernel", ""));
  ASSIGN_OR_RETURN(req.initrd, BodyField<std::string>(body, "initrd", ""));
  ASSIGN_OR_RETURN(req.cmdline, BodyField<std::string>(body, "cmdline", ""));
  ASSIGN_OR_RETURN(req.name, BodyField<std::string>(body, "name", ""));
  ASSIGN_OR_RETURN(req.version, BodyField<std::string>(body, "version", ""));
  ASSIGN_OR_RETURN(req.os_id, BodyField<std::string>(body, "os_id", ""));
  ASSIGN_OR_RETURN(req.os_version, BodyField<std::string>(body, "os_version", ""));
  ASSIGN_OR_RETURN(req.firmware, BodyField<std::string>(body, "firmware", "bios"));
  if (req.disk.empty()) return InvalidArgument("field 'disk' is required");
  return req;
}

}  // namespace

void RegisterImageRoutes(Router& router, ImageStore& images, CommandRunner& runner, Clock& clock) {
  const AppImageBuilder builder(images, runner, clock);
  const OsImageImporter importer(images, runner);
  router.Add(Method::kPost, "/v1/images/build", [builder](const ApiRequest& r) -> Result<Json> {
    AppBuildRequest req;
    ASSIGN_OR_RETURN(req.source, BodyField<std::string>(r.body, "source", ""));
    ASSIGN_OR_RETURN(req.name, BodyField<std::string>(r.body, "name", ""));
    if (req.source.empty()) return InvalidArgument("field 'source' is required");
    ASSIGN_OR_RETURN(ImageInfo info, builder.Build(req, r.progress));
    Json j = info.ToJson();
    // The build's headline fields, flat, as scripts expect them.
    j["files"] = info.meta.value("files", 0);
    return j;
  });
  router.Add(Method::kPost, "/v1/images/import-os",
             [importer](const ApiRequest& r) -> Result<Json> {
               ASSIGN_OR_RETURN(OsImportRequest req, ImportRequestOf(r.body));
               ASSIGN_OR_RETURN(ImageInfo info, importer.Import(req, r.progress));
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
