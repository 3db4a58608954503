#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
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
  // The libvirt networks each VM gets a NIC on, in order. Fixed when the template is
  // created: VMs keep their NICs (and MACs) for life.
  std::vector<std::string> networks;

  std::string Ref() const { return name + ":" + std::to_string(version); }
};

struct TemplateShape {
  std::optional<int64_t> memory_mib, cpus, data_bytes;
  // `--network` flags as given (see fleet/nics.h ParseNetworks); create only.
  std::vector<std::string> networks;
};

// The templates table: the only code that runs SQL on it. Creating a version checks the
// app's `requires` against the OS image's os-release. Its images cannot be removed while a
// version uses them (RESTRICT). Thread-safe.
class TemplateStore {
 public:
  TemplateStore(Db& db, ImageStore& images, Clock& clock)
      : db_(db), images_(images), clock_(clock) {}

  // NAME:1, with one NIC on "default" unless `shape.networks` says otherwise.
  // kAlreadyExists when NAME exists; kFailedPrecondition when the app does not fit the OS;
  // kNotFound for unknown images; kInvalidArgument for bad networks or sizes.
  Result<Template> Create(const std::string& name, const std::string& os_ref,
                          const std::string& app_ref, const TemplateShape& shape);
  // NAME:V+1 from the newest version with the OS and/or app replaced. Networks and the
  // data disk size stay: kInvalidArgument when the shape changes them.
  Result<Template> Update(const std::string& name, const std::string& os_ref,
                          const std::string& app_ref, const TemplateShape& shape);
  // "NAME" (newest) or "NAME:V".
  Result<Template> Get(const std::string& ref);
  Result<std::vector<Template>> List();
  // The versions of template `name`, ascending (empty when there is none).
  Result<std::vector<int64_t>> Versions(const std::string& name);
  Result<int64_t> Count();

 private:
  Result<Template> Insert(Template t);

  Db& db_;
  ImageStore& images_;
  Clock& clock_;
};

// Parses "1G", "512M", "1024" (bytes) into bytes; kInvalidArgument otherwise.
Result<int64_t> ParseSize(const std::string& s);

}  // namespace vdswap
