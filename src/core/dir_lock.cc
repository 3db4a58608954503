#include "core/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdswap {

Result<DirLock> DirLock::Acquire(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd.valid()) return Internal("cannot open lock file '" + path + "': " + strerror(errno));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Internal("cannot lock '" + path + "': " + strerror(errno));
    char pid[32] = {};
    ssize_t n = pread(fd.get(), pid, sizeof(pid) - 1, 0);
    std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return FailedPrecondition("'" + dir + "' is in use by another process" +
                              (holder.empty() ? "" : " (pid " + holder + ")") +
                              "; stop it or choose another directory");
  }
  const std::string me = std::to_string(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) != 0 ||
      pwrite(fd.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    return Internal("cannot write lock file '" + path + "': " + strerror(errno));
  }
  return DirLock(std::move(fd));
}

}  // namespace vdswap
