#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "store/db.h"

namespace vdswap {

// An image's volume on one host, as vdswapd uploaded it.
struct ImageVolume {
  std::string volume;       // the volume's name in the host's pool
  std::string path;         // its path on the host
  std::string disk_sha256;  // of the bytes uploaded ("" in records older than this field)
  uint64_t disk_bytes = 0;
  // What the last check of `volume` found wrong; "" while it matched.
  std::string mismatch;
};

// A copy found not to hold its image's bytes while VMs used it: kept (a volume that backs
// an overlay or is attached is never deleted), reported, replaced for new users.
struct BadImageCopy {
  std::string digest;
  std::string volume;
  std::string detail;
  int64_t found_at = 0;
};

// The host_images table: which image is complete on which host, as which volume, and
// which copies were found bad. The only code that runs SQL on it; rows go with their host
// or image (ON DELETE CASCADE). Thread-safe (the Db serializes).
class HostImages {
 public:
  explicit HostImages(Db& db) : db_(db) {}

  // The recorded volume of `digest` on `host`, or nullopt. A record made before volume
  // names were kept names `default_volume`.
  Result<std::optional<ImageVolume>> Find(const std::string& host, const std::string& digest,
                                          const std::string& default_volume);
  // Records (or re-records) a complete upload; the copies found bad stay listed.
  Status Record(const std::string& host, const std::string& digest, const ImageVolume& volume,
                int64_t uploaded_at);
  // Notes what a check found wrong with the recorded volume.
  Status SetMismatch(const std::string& host, const std::string& digest,
                     const std::string& mismatch);
  // Lists `copy` among the host's bad copies of its image. REQUIRES: a record exists.
  Status AddBadCopy(const std::string& host, const BadImageCopy& copy);
  // The bad copies on `host` (every host when empty), for host ls and /metrics.
  Result<std::vector<std::pair<std::string, BadImageCopy>>> BadCopies(const std::string& host);
  Result<int64_t> Count();

 private:
  Db& db_;
};

}  // namespace vdswap
