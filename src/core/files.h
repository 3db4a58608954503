#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace vdswap {

// Whole-file read; kNotFound when missing, kInternal on other errors.
Result<std::string> ReadFile(const std::string& path);

// Writes via a temporary file, fsync and rename, so readers see old or new, never half.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);

// Flushes `path` (a file or a directory) to stable storage: fsync.
Status SyncPath(const std::string& path);

// Starts writing `path`'s dirty pages to disk without waiting, so that a later SyncPath
// finds the work done or under way (sync_file_range). Best effort: errors surface in
// SyncPath.
void StartWriteback(const std::string& path);

// A directory removed with its contents when the object dies (unless Release()d).
class TempDir {
 public:
  // Creates a fresh directory under `parent` named prefix.XXXXXX.
  static Result<TempDir> Create(const std::string& parent, const std::string& prefix);
  TempDir(TempDir&& o) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // Keeps the directory on destruction and returns its path.
  std::string Release();

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace vdswap
