#include "api/status_routes.h"

#include <unistd.h>

#include <map>

#include "core/version.h"

namespace vdswap {

namespace {

Result<Json> Counts(const Inventory& inv) {
  Json counts = Json::object();
  ASSIGN_OR_RETURN(counts["hosts"], inv.hosts.Count());
  ASSIGN_OR_RETURN(counts["images"], inv.images.Count());
  ASSIGN_OR_RETURN(counts["templates"], inv.templates.Count());
  ASSIGN_OR_RETURN(counts["vms"], inv.vms.Count());
  ASSIGN_OR_RETURN(counts["rollouts"], inv.rollouts.Count());
  return counts;
}

using StateCounts = Result<std::vector<std::pair<std::string, int64_t>>>;

Metrics::GaugeFn ByState(std::function<StateCounts()> count) {
  return [count = std::move(count)] {
    std::vector<std::pair<std::string, double>> out;
    auto rows = count();
    if (!rows.ok()) return out;
    for (const auto& [state, n] : *rows) {
      out.emplace_back(Label("state", state), static_cast<double>(n));
    }
    return out;
  };
}

}  // namespace

void RegisterStatusRoutes(Router& router, Metrics& metrics, Db& db, Inventory inv,
                          const DaemonInfo& info) {
  router.Add(Method::kGet, "/v1/status", [&db, inv, info](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(Json counts, Counts(inv));
    ASSIGN_OR_RETURN(int64_t schema, db.SchemaVersion());
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - info.started);
    return Json{{"version", kVersion},           {"pid", getpid()},
                {"uptime_s", uptime.count()},    {"state_dir", info.state_dir},
                {"hypervisor", info.hypervisor}, {"default_uri", info.default_uri},
                {"schema_version", schema},      {"counts", counts}};
  });
  metrics.AddGauge("vdswap_up", "1 while vdswapd serves requests.", [] {
    return std::vector<std::pair<std::string, double>>{{"", 1}};
  });
  metrics.AddGauge("vdswap_vms_by_state", "The vms in each state.",
                   ByState([&vms = inv.vms] { return vms.CountByState(); }));
  metrics.AddGauge("vdswap_rollouts_by_state", "The rollouts in each state.",
                   ByState([&rollouts = inv.rollouts] { return rollouts.CountByState(); }));
  metrics.AddGauge(
      "vdswap_bad_image_volumes",
      "Image volumes on a host found not to hold their image's bytes, kept because VMs use "
      "them (host ls: bad_image_volumes).",
      [&host_images = inv.host_images] {
        std::map<std::string, double> per_host;
        if (auto bad = host_images.BadCopies(""); bad.ok()) {
          for (const auto& [host, copy] : *bad) per_host[host] += 1;
        }
        std::vector<std::pair<std::string, double>> out;
        for (const auto& [host, n] : per_host) out.emplace_back(Label("host", host), n);
        return out;
      });
  metrics.AddGauge("vdswap_objects", "Objects in the inventory, by kind.", [inv] {
    std::vector<std::pair<std::string, double>> out;
    auto counts = Counts(inv);
    if (!counts.ok()) return out;
    for (const auto& [kind, n] : counts->items()) {
      out.emplace_back(Label("kind", kind), n.get<double>());
    }
    return out;
  });
}

}  // namespace vdswap
