#include "hypervisor/hypervisor.h"

namespace vdswap {

const DiskSpec* VmLiveState::Disk(const std::string& serial) const {
  for (const auto& d : disks) {
    if (d.serial == serial) return &d;
  }
  return nullptr;
}

}  // namespace vdswap
