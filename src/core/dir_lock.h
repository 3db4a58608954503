#pragma once

#include <string>

#include "core/status.h"
#include "core/unique_fd.h"

namespace vdswap {

// An exclusive lock on a directory, held for the owner's life: flock(2) on DIR/NAME, which
// the kernel drops when the process dies, so a crashed owner never leaves it stale. The
// lock file holds the owner's pid for the message others get. Move-only.
class DirLock {
 public:
  // kFailedPrecondition (naming the holder's pid) when another process holds it;
  // kInternal when the lock file cannot be opened.
  static Result<DirLock> Acquire(const std::string& dir, const std::string& name);

 private:
  explicit DirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vdswap
