#include "fleet/host_registry.h"

#include "image/manifest.h"

namespace vdswap {

Result<HostInfo> HostRegistry::Add(const std::string& name, const std::string& uri,
                                   const std::string& pool) {
  if (!IsValidName(name)) return InvalidArgument("host name '" + name + "' is not valid");
  if (!IsValidName(pool)) return InvalidArgument("pool name '" + pool + "' is not valid");
  if (uri.empty()) return InvalidArgument("host '" + name + "' needs --uri");
  ASSIGN_OR_RETURN(auto existing, db_.Query("SELECT 1 FROM hosts WHERE name = ?1", {name}));
  if (!existing.empty()) return AlreadyExists("host '" + name + "' exists");
  HostRef ref{name, uri, pool};
  ASSIGN_OR_RETURN(std::string path, hv_.EnsurePool(ref));
  RETURN_IF_ERROR(db_.Exec("INSERT INTO hosts (name, uri, pool, pool_path, created_at) VALUES "
                           "(?1, ?2, ?3, ?4, ?5)",
                           {name, uri, pool, path, clock_.UnixSeconds()})
                      .WithContext("host '" + name + "'"));
  return HostInfo{name, uri, pool, path};
}

Result<HostRef> HostRegistry::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT uri, pool FROM hosts WHERE name = ?1", {name}));
  if (rows.empty()) return NotFound("host '" + name + "' not found");
  return HostRef{name, rows[0].Text(0), rows[0].Text(1)};
}

Result<std::vector<HostInfo>> HostRegistry::List() {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT name, uri, pool, pool_path FROM hosts ORDER BY name"));
  std::vector<HostInfo> out;
  for (const auto& r : rows) out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Text(3)});
  return out;
}

Result<int64_t> HostRegistry::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM hosts"));
  return rows.at(0).Int(0);
}

Status HostRegistry::Remove(const std::string& name) {
  RETURN_IF_ERROR(Get(name).status());
  // Its host_images rows go with it; its VMs keep it (RESTRICT).
  Status s = db_.Exec("DELETE FROM hosts WHERE name = ?1", {name});
  if (s.code() == Code::kFailedPrecondition) {
    return FailedPrecondition("host '" + name + "' still has VMs");
  }
  return s;
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
