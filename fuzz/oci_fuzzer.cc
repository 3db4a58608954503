// libFuzzer target: the docker-archive / OCI index, manifest and config parsers never
// crash, and every path they return stays inside the archive.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/oci.h"

namespace {
void CheckPath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find("..") != std::string::npos) __builtin_trap();
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
