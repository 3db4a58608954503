#include "fleet/nics.h"

#include <algorithm>
#include <cstdio>

#include "image/manifest.h"

namespace vdswap {

Result<std::vector<std::string>> ParseNetworks(const std::vector<std::string>& flags) {
  if (flags.empty()) return std::vector<std::string>{"default"};
  if (std::find(flags.begin(), flags.end(), "none") != flags.end()) {
    if (flags.size() > 1) return InvalidArgument("--network none cannot go with other networks");
    return std::vector<std::string>{};
  }
  std::vector<std::string> out;
  for (const std::string& n : flags) {
    if (!IsValidName(n)) return InvalidArgument("network name '" + n + "' is not valid");
    if (std::find(out.begin(), out.end(), n) != out.end()) {
      return InvalidArgument("network '" + n + "' is given twice");
    }
    out.push_back(n);
  }
  return out;
}

std::string MacFromBits(uint32_t random) {
  char mac[18];
  std::snprintf(mac, sizeof(mac), "52:54:00:%02x:%02x:%02x", (random >> 16) & 0xff,
                (random >> 8) & 0xff, random & 0xff);
  return mac;
}

}  // namespace vdswap
