#include "image/caller_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace vdswap {

namespace {

constexpr const char* kPseudoDirs[] = {"/proc", "/sys", "/dev"};

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || path.rfind(dir + "/", 0) == 0;
}

// Kernel filesystems whose "files" are views of kernel or process state, not data.
bool IsPseudoFs(int fd) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) return true;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case BPF_FS_MAGIC:
    case DEVPTS_SUPER_MAGIC:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<CallerFile> CallerFile::Open(const std::string& what, const std::string& path) {
  const std::string named = what + " '" + path + "'";
  if (path.empty() || path[0] != '/') {
    return InvalidArgument(named +
                           " must be the absolute path of a local file (URLs and protocol "
                           "prefixes such as nbd: or http: are refused)");
  }
  char resolved_buf[PATH_MAX];
  if (realpath(path.c_str(), resolved_buf) == nullptr) {
    return InvalidArgument(named + " cannot be read: " + strerror(errno));
  }
  const std::string resolved = resolved_buf;
  for (const char* dir : kPseudoDirs) {
    if (IsUnder(resolved, dir)) {
      return InvalidArgument(named + " is under " + dir + "; only regular files are imported");
    }
  }
  // O_NOFOLLOW: the last component was resolved above, so a symlink there now was swapped
  // in since. O_NONBLOCK: opening a FIFO must not wait for a writer.
  UniqueFd fd(open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return InvalidArgument(named + " cannot be opened: " + strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return InvalidArgument(named + ": " + strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument(named +
                           " is not a regular file (directories, devices, FIFOs and sockets "
                           "are refused)");
  }
  if (IsPseudoFs(fd.get())) {
    return InvalidArgument(named +
                           " is on a kernel pseudo filesystem; only regular files are "
                           "imported");
  }
  if (st.st_size == 0) return InvalidArgument(named + " is empty");
  // Reads go through the descriptor from now on; blocking reads are what the copy wants.
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return CallerFile(what, path, std::move(fd), static_cast<uint64_t>(st.st_size));
}

Status CallerFile::CopyTo(const std::string& dst) const {
  const std::string named = what_ + " '" + path_ + "'";
  UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out.valid()) {
    return Internal("cannot copy " + named + ": cannot create '" + dst + "': " + strerror(errno));
  }
  auto fail = [&](const std::string& why) {
    out.reset();
    unlink(dst.c_str());
    return Internal("cannot copy " + named + " into the image store: " + why);
  };
  std::vector<char> buf(size_t{1} << 20);
  uint64_t copied = 0;
  off_t offset = 0;
  while (true) {
    ssize_t n = pread(fd_.get(), buf.data(), buf.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("read: ") + strerror(errno));
    if (n == 0) break;
    offset += n;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out.get(), buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(std::string("write: ") + strerror(errno));
      done += w;
    }
    copied += static_cast<uint64_t>(n);
  }
  if (copied != size_) {
    return fail("it changed size while it was copied (" + std::to_string(size_) + " then " +
                std::to_string(copied) + " bytes)");
  }
  if (close(out.release()) != 0) {
    unlink(dst.c_str());
    return Internal("cannot copy " + named + " into the image store: close: " + strerror(errno));
  }
  return Status::Ok();
}

}  // namespace vdswap
