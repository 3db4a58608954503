#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

// libarchive's types, declared to keep its header out of ours.
struct archive;
struct archive_entry;

namespace vdswap {

// Limits on what an archive may put in a tree, against decompression bombs.
struct StageLimits {
  uint64_t max_bytes = 64ull << 30;  // sum of regular file sizes
  uint64_t max_entries = 2'000'000;
  size_t max_path = 4096;
};

struct StageStats {
  uint64_t files = 0;  // entries of every type created
  uint64_t bytes = 0;  // regular file bytes written
};

// Unpacks tar archives (plain, gzip, zstd, xz: whatever libarchive detects) into a
// directory it owns, refusing anything that would leave it: absolute or ".." paths, writes
// through a symlink (even one the archive made), hard links to outside, device nodes,
// FIFOs, sockets, and trees over the limits. In layer mode it applies OCI whiteouts
// (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties the directory) to what earlier layers
// left, as image layers require. Not thread-safe.
class TreeStager {
 public:
  using ProgressFn = std::function<void(const StageStats&)>;

  // `progress` gets the counts so far at most once a second of `clock`.
  // REQUIRES: `root` is an existing empty directory that no one else writes to.
  TreeStager(std::string root, StageLimits limits, Clock& clock, ProgressFn progress = nullptr);

  // Applies one archive on top of the tree. kInvalidArgument names the archive and entry at
  // fault; the tree is then in an unspecified state (callers discard it).
  Status Apply(const std::string& archive_path, bool oci_layer);

  const StageStats& stats() const { return stats_; }

 private:
  Status ApplyWhiteouts(const std::string& archive_path);
  Status Extract(const std::string& archive_path, bool oci_layer);
  // The steps of extracting one entry whose path is `parts` (checked); an error's message
  // says why, and Extract names the archive and the entry.
  Status ExtractEntry(archive* a, archive_entry* entry, const std::vector<std::string>& parts,
                      std::vector<char>& buf);
  // Creates the missing parents of `parts`, refusing any that is a symlink or no directory.
  Status MakeParents(const std::vector<std::string>& parts);
  // A hard link at `path` to `target`, a regular file extracted earlier.
  Status LinkHard(const std::string& path, const char* target);
  // The entry's data into a new file at `path` (counted against the byte limit).
  Status WriteData(archive* a, const std::string& path, mode_t mode, std::vector<char>& buf);

  std::string root_;
  StageLimits limits_;
  Clock& clock_;
  ProgressFn progress_;
  StageStats stats_;
  Clock::TimePoint last_progress_{};
};

}  // namespace vdswap
