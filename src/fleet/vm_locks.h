#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace vdswap {

// One mutex per VM name, so one operation at a time (create, start, stop, remove, swap)
// touches a VM. Shared by VmService and Swapper; owned by the composition root.
// Thread-safe; a VM's mutex lives as long as the VmLocks.
class VmLocks {
 public:
  // The mutex serializing operations on `vm`.
  std::mutex& For(const std::string& vm) {
    std::lock_guard lock(mu_);
    auto& m = locks_[vm];
    if (!m) m = std::make_unique<std::mutex>();
    return *m;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
};

}  // namespace vdswap
