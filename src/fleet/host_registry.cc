#include "fleet/host_registry.h"

#include <chrono>

#include "core/clock.h"
#include "image/manifest.h"

namespace vdswap {

namespace {}  // namespace

Result<Json> HostRegistry::Add(const std::string& name, const std::string& uri,
                               const std::string& pool) {
  if (!IsValidName(name)) return InvalidArgument("host name '" + name + "' is not valid");
  if (!IsValidName(pool)) return InvalidArgument("pool name '" + pool + "' is not valid");
  if (uri.empty()) return InvalidArgument("host '" + name + "' needs --uri");
  ASSIGN_OR_RETURN(auto existing, db_.Query("SELECT 1 FROM hosts WHERE name = ?1", {name}));
  if (!existing.empty()) return AlreadyExists("host '" + name + "' exists");
  HostRef ref{name, uri, pool};
  ASSIGN_OR_RETURN(std::string path, hv_.EnsurePool(ref));
  RETURN_IF_ERROR(
      db_.Exec("INSERT INTO hosts (name, uri, pool, pool_path, created_at) VALUES "
               "(?1, ?2, ?3, ?4, ?5)",
               {name, uri, pool, path, UnixSeconds()}));
  return Json{{"name", name}, {"uri", uri}, {"pool", pool}, {"pool_path", path}};
}

Result<HostRef> HostRegistry::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT uri, pool FROM hosts WHERE name = ?1", {name}));
  if (rows.empty()) return NotFound("host '" + name + "' not found");
  return HostRef{name, rows[0].Text(0), rows[0].Text(1)};
}

Result<std::vector<Json>> HostRegistry::List() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT h.name, h.uri, h.pool, h.pool_path, "
                                        "(SELECT count(*) FROM vms v WHERE v.host = h.name) "
                                        "FROM hosts h ORDER BY h.name"));
  std::vector<Json> out;
  for (const auto& r : rows) {
    out.push_back({{"name", r.Text(0)},
                   {"uri", r.Text(1)},
                   {"pool", r.Text(2)},
                   {"pool_path", r.Text(3)},
                   {"vms", r.Int(4)}});
  }
  return out;
}

Status HostRegistry::Remove(const std::string& name) {
  RETURN_IF_ERROR(Get(name).status());
  ASSIGN_OR_RETURN(auto vms, db_.Query("SELECT count(*) FROM vms WHERE host = ?1", {name}));
  if (vms[0].Int(0) > 0) {
    return FailedPrecondition("host '" + name + "' still has " + vms[0].Text(0) + " VMs");
  }
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(db_.Exec("DELETE FROM host_images WHERE host = ?1", {name}));
  RETURN_IF_ERROR(db_.Exec("DELETE FROM hosts WHERE name = ?1", {name}));
  return txn.Commit();
}

Result<HostRef> HostRegistry::Default(const std::string& default_uri) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT name FROM hosts ORDER BY name LIMIT 2"));
  if (rows.size() == 1) return Get(rows[0].Text(0));
  if (rows.size() > 1) {
    auto local = Get("local");
    if (local.ok()) return local;
    return InvalidArgument("several hosts are registered: name one with --host");
  }
  RETURN_IF_ERROR(Add("local", default_uri, "vdswap").status());
  return Get("local");
}

}  // namespace vdswap
