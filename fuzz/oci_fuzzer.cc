// libFuzzer target: the docker-archive / OCI index, manifest and config parsers never
// crash, and every path they return stays inside the archive.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "image/oci.h"

namespace {
// A path escapes the archive when it is absolute or has a ".." component ("a..b" is a name).
void CheckPath(const std::string& p) {
  if (p.empty() || p[0] == '/') __builtin_trap();
  for (size_t start = 0; start <= p.size();) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0) __builtin_trap();
    start = end + 1;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto layout : {vdswap::ParseDockerManifest(text), vdswap::ParseOciManifest(text)}) {
    if (!layout.ok()) continue;
    CheckPath(layout->config_path);
    for (const auto& l : layout->layers) CheckPath(l.path);
  }
  (void)vdswap::ParseOciIndex(text);
  auto config = vdswap::ParseImageConfig(text);
  if (config.ok()) {
    (void)vdswap::ManifestFromConfig(*config, "fuzz",
                                     [](const std::string& p) { return p == "/bin/sh"; });
  }
  return 0;
}
