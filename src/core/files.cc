#include "core/files.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/unique_fd.h"

namespace vdswap {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno;
    if (e == ENOENT) return NotFound("'" + path + "' does not exist");
    return Internal("cannot open '" + path + "': " + strerror(e));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return Internal("cannot create '" + tmp + "': " + strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = write(fd.get(), data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      unlink(tmp.c_str());
      return Internal("cannot write '" + tmp + "': " + strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  if (fsync(fd.get()) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return Internal("cannot write '" + path + "': " + strerror(errno));
  }
  return Status::Ok();
}

Status SyncPath(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || fsync(fd.get()) != 0) {
    return Internal("cannot flush '" + path + "' to disk: " + strerror(errno));
  }
  return Status::Ok();
}

void StartWriteback(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
}

Result<TempDir> TempDir::Create(const std::string& parent, const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + ".XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Internal("cannot create a directory under '" + parent + "': " + strerror(errno));
  }
  return TempDir(tmpl);
}

TempDir::TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Release() { return std::exchange(path_, std::string()); }

}  // namespace vdswap
