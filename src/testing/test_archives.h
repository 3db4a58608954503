#pragma once

#include <string>
#include <vector>

namespace vdswap::testing {

// One entry of a tar archive written by tests: crafted freely, including entries a
// well-behaved tar never writes.
struct TarEntry {
  enum Type { kFile, kDir, kSymlink, kHardlink, kCharDevice, kFifo };
  std::string path;
  Type type = kFile;
  std::string data;    // file contents
  std::string target;  // symlink or hardlink target
  int mode = 0644;
};

// Writes `entries` as a ustar/pax archive at `path`, gzip-compressed when `gzip`.
void WriteTar(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = false);

// Reads a whole file.
std::string Slurp(const std::string& path);

}  // namespace vdswap::testing
