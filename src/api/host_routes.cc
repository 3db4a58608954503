#include "api/host_routes.h"

#include "api/json_views.h"

namespace vdswap {

void RegisterHostRoutes(Router& router, HostRegistry& hosts, HostImages& host_images,
                        VmTable& vm_table) {
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
}

}  // namespace vdswap
