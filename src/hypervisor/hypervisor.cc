#include "hypervisor/hypervisor.h"

namespace vdswap {

const DiskSpec* VmLiveState::Disk(const std::string& serial) const {
  for (const auto& d : disks) {
    if (d.serial == serial) return &d;
  }
  return nullptr;
}

Status NotManagedError(const std::string& vm) {
  return FailedPrecondition("domain '" + vm +
                            "' exists and is not managed by vdswap; vdswap leaves it alone "
                            "(rename or remove it with virsh, or pick another name)");
}

}  // namespace vdswap
