#include "api/status_routes.h"

#include <unistd.h>

#include "core/version.h"

namespace vdswap {

namespace {

constexpr const char* kCountedTables[] = {"hosts", "images", "templates", "vms", "rollouts"};

Result<Json> Counts(Db& db) {
  Json counts = Json::object();
  for (const char* table : kCountedTables) {
    ASSIGN_OR_RETURN(auto rows, db.Query(std::string("SELECT count(*) FROM ") + table));
    counts[table] = rows.at(0).Int(0);
  }
  return counts;
}

}  // namespace

void RegisterStatusRoutes(Router& router, Metrics& metrics, Db& db, const DaemonInfo& info) {
  router.Add(Method::kGet, "/v1/status", [&db, info](const ApiRequest&) -> Result<Json> {
    ASSIGN_OR_RETURN(Json counts, Counts(db));
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
  for (const char* table : {"vms", "rollouts"}) {
    metrics.AddGauge(std::string("vdswap_") + table + "_by_state",
                     std::string("The ") + table + " in each state.", [&db, table] {
                       std::vector<std::pair<std::string, double>> out;
                       auto rows = db.Query(std::string("SELECT state, count(*) FROM ") + table +
                                            " GROUP BY state ORDER BY state");
                       if (!rows.ok()) return out;
                       for (const auto& r : *rows) {
                         out.emplace_back(Label("state", r.Text(0)), static_cast<double>(r.Int(1)));
                       }
                       return out;
                     });
  }
  metrics.AddGauge("vdswap_objects", "Objects in the inventory, by kind.", [&db] {
    std::vector<std::pair<std::string, double>> out;
    auto counts = Counts(db);
    if (!counts.ok()) return out;
    for (const auto& [kind, n] : counts->items()) {
      out.emplace_back(Label("kind", kind), n.get<double>());
    }
    return out;
  });
}

}  // namespace vdswap
