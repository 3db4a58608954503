#include "fleet/host_images.h"

namespace vdswap {

Result<std::optional<std::string>> HostImages::Find(const std::string& host,
                                                    const std::string& digest) {
  ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT volume FROM host_images WHERE host = ?1 AND digest = ?2", {host, digest}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].Text(0));
}

Status HostImages::Record(const std::string& host, const std::string& digest,
                          const std::string& volume, int64_t uploaded_at) {
  return db_.Exec(
      "INSERT OR REPLACE INTO host_images (host, digest, volume, uploaded_at) VALUES "
      "(?1, ?2, ?3, ?4)",
      {host, digest, volume, uploaded_at});
}

Status HostImages::Forget(const std::string& host, const std::string& digest) {
  return db_.Exec("DELETE FROM host_images WHERE host = ?1 AND digest = ?2", {host, digest});
}

Result<int64_t> HostImages::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM host_images"));
  return rows.at(0).Int(0);
}

}  // namespace vdswap
