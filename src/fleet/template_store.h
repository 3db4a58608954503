#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "image/image_store.h"
#include "store/db.h"

namespace vdswap {

// NAME:VERSION: an OS image, an app image and the VM shape. Versions are immutable.
struct Template {
  std::string name;
  int64_t version = 0;
  std::string os_digest;
  std::string app_digest;
  int64_t memory_mib = 256;
  int64_t cpus = 1;
  int64_t data_bytes = 1ll << 30;

  std::string Ref() const { return name + ":" + std::to_string(version); }
  Json ToJson() const;
};

struct TemplateShape {
  std::optional<int64_t> memory_mib, cpus, data_bytes;
};

// The templates table. Creating a version checks the app's `requires` against the OS
// image's os-release. Thread-safe.
class TemplateStore {
 public:
  TemplateStore(Db& db, ImageStore& images) : db_(db), images_(images) {}

  // NAME:1. kAlreadyExists when NAME exists; kFailedPrecondition when the app does not
  // fit the OS; kNotFound for unknown images.
  Result<Template> Create(const std::string& name, const std::string& os_ref,
                          const std::string& app_ref, const TemplateShape& shape);
  // NAME:V+1 from the newest version with the OS and/or app replaced.
  Result<Template> Update(const std::string& name, const std::string& os_ref,
                          const std::string& app_ref, const TemplateShape& shape);
  // "NAME" (newest) or "NAME:V".
  Result<Template> Get(const std::string& ref);
  Result<std::vector<Template>> List();

 private:
  Result<Template> Insert(Template t);

  Db& db_;
  ImageStore& images_;
};

// Parses "1G", "512M", "1024" (bytes) into bytes; kInvalidArgument otherwise.
Result<int64_t> ParseSize(const std::string& s);

}  // namespace vdswap
