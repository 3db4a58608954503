// libFuzzer target: the app manifest parser never crashes, and whatever it accepts
// survives a round trip through its canonical JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = vdswap::ParseManifest(text);
  if (m.ok()) {
    auto again = vdswap::ManifestFromJson(vdswap::ManifestToJson(*m));
    if (!again.ok()) __builtin_trap();
  }
  vdswap::ParseOsRelease(text);
  return 0;
}
