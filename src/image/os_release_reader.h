#pragma once

#include <string>

#include "core/command_runner.h"
#include "image/manifest.h"

namespace vdswap {

// What an OS disk says about itself: its os-release, and where it was found.
struct OsReleaseProbe {
  OsRelease fields;       // empty when none was found
  std::string found_in;   // "the whole disk" or "partition N"
  std::string not_found;  // when fields is empty: what was tried
};

// Reads /etc/os-release, else /usr/lib/os-release, from the raw disk image `disk`: the
// disk as one ext2/3/4 filesystem, else each partition of its MBR or GPT table (read with
// `sfdisk --json`; at most kMaxPartitionsTried) holding one, through debugfs at the
// partition's offset. Nothing is mounted. XFS, LVM and encrypted roots are not read
// (not_found says what was tried). `disk` must be a path the caller owns (tools see it).
OsReleaseProbe ReadOsRelease(CommandRunner& runner, const std::string& disk);

inline constexpr int kMaxPartitionsTried = 16;

}  // namespace vdswap
