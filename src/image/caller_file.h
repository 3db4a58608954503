#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/unique_fd.h"

namespace vdswap {

// A file an API caller named for the daemon to read (the disk, kernel and initrd of
// `image import-os`). The daemon runs as root and the caller may not, so it reads only
// what a caller could mean by "my image file": an absolute path of a non-empty regular
// file on a local filesystem, opened once and read only through that descriptor.
// Refused (kInvalidArgument naming `what` and the path): relative paths, URLs and
// protocol specs ("nbd://...", "http:..."), paths under /proc, /sys and /dev or on a
// pseudo filesystem (proc, sysfs, debugfs, securityfs, cgroup, bpf), devices, FIFOs,
// sockets, directories, empty files, and a symlink swapped in after the path was
// resolved. Move-only; not thread-safe.
class CallerFile {
 public:
  // `what` names the file in messages ("disk", "kernel").
  static Result<CallerFile> Open(const std::string& what, const std::string& path);

  // Copies the whole file to a new file `dst` (mode 0644), checking every read and write
  // (short writes, ENOSPC) and that the file did not change size while copied. On error
  // `dst` is removed; kInternal naming the file and the reason.
  Status CopyTo(const std::string& dst) const;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  CallerFile(std::string what, std::string path, UniqueFd fd, uint64_t size)
      : what_(std::move(what)), path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

  std::string what_;
  std::string path_;
  UniqueFd fd_;
  uint64_t size_ = 0;
};

}  // namespace vdswap
