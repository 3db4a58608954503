#include "fleet/host_images.h"

namespace vdswap {

namespace {

Json BadCopyJson(const BadImageCopy& c) {
  return {{"digest", c.digest}, {"volume", c.volume}, {"detail", c.detail}, {"at", c.found_at}};
}

}  // namespace

Result<std::optional<ImageVolume>> HostImages::Find(const std::string& host,
                                                    const std::string& digest,
                                                    const std::string& default_volume) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT volume, volume_name, disk_sha256, disk_bytes, "
                                        "mismatch FROM host_images WHERE host = ?1 AND digest = ?2",
                                        {host, digest}));
  if (rows.empty()) return std::optional<ImageVolume>();
  ImageVolume v;
  v.path = rows[0].Text(0);
  v.volume = rows[0].Text(1).empty() ? default_volume : rows[0].Text(1);
  v.disk_sha256 = rows[0].Text(2);
  v.disk_bytes = static_cast<uint64_t>(rows[0].Int(3));
  v.mismatch = rows[0].Text(4);
  return std::optional<ImageVolume>(std::move(v));
}

Status HostImages::Record(const std::string& host, const std::string& digest, const ImageVolume& v,
                          int64_t uploaded_at) {
  return db_.Exec(
      "INSERT INTO host_images (host, digest, volume, uploaded_at, volume_name, disk_sha256, "
      "disk_bytes, mismatch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '') ON CONFLICT (host, digest) "
      "DO UPDATE SET volume = ?3, uploaded_at = ?4, volume_name = ?5, disk_sha256 = ?6, "
      "disk_bytes = ?7, mismatch = ''",
      {host, digest, v.path, uploaded_at, v.volume, v.disk_sha256,
       static_cast<int64_t>(v.disk_bytes)});
}

Status HostImages::SetMismatch(const std::string& host, const std::string& digest,
                               const std::string& mismatch) {
  return db_.Exec("UPDATE host_images SET mismatch = ?3 WHERE host = ?1 AND digest = ?2",
                  {host, digest, mismatch});
}

Status HostImages::AddBadCopy(const std::string& host, const BadImageCopy& copy) {
  return db_.Exec(
      "UPDATE host_images SET bad_copies = json_insert(bad_copies, '$[#]', json(?3)) "
      "WHERE host = ?1 AND digest = ?2",
      {host, copy.digest, DumpJson(BadCopyJson(copy))});
}

Result<std::vector<std::pair<std::string, BadImageCopy>>> HostImages::BadCopies(
    const std::string& host) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT host, bad_copies FROM host_images WHERE "
                                        "bad_copies != '[]' AND (?1 = '' OR host = ?1) "
                                        "ORDER BY host, digest",
                                        {host}));
  std::vector<std::pair<std::string, BadImageCopy>> out;
  for (const auto& row : rows) {
    ASSIGN_OR_RETURN(Json copies, ParseJson(row.Text(1), "host_images.bad_copies"));
    for (const auto& c : copies) {
      out.push_back({row.Text(0),
                     {c.value("digest", ""), c.value("volume", ""), c.value("detail", ""),
                      c.value("at", int64_t{0})}});
    }
  }
  return out;
}

Result<int64_t> HostImages::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM host_images"));
  return rows.at(0).Int(0);
}

}  // namespace vdswap
