#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"
#include "store/db.h"

namespace vdswap {

// The host_images table: which image is complete on which host, as which volume. The
// only code that runs SQL on it; rows go with their host or image (ON DELETE CASCADE).
// Thread-safe (the Db serializes).
class HostImages {
 public:
  explicit HostImages(Db& db) : db_(db) {}

  // The recorded volume path of `digest` on `host`, or nullopt.
  Result<std::optional<std::string>> Find(const std::string& host, const std::string& digest);
  // Records (or re-records) a complete upload.
  Status Record(const std::string& host, const std::string& digest, const std::string& volume,
                int64_t uploaded_at);
  Status Forget(const std::string& host, const std::string& digest);
  Result<int64_t> Count();

 private:
  Db& db_;
};

}  // namespace vdswap
