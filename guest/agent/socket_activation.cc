#include "guest/agent/socket_activation.h"

namespace vdswap::guest {

std::vector<std::string> ListenEnv(const AppManifest& m, pid_t pid) {
  if (m.sockets.empty()) return {};
  std::string names;
  for (const AppManifest::Socket& s : m.sockets) {
    if (!names.empty()) names += ":";
    names += s.name;
  }
  return {"LISTEN_FDS=" + std::to_string(m.sockets.size()), "LISTEN_PID=" + std::to_string(pid),
          "LISTEN_FDNAMES=" + names};
}

}  // namespace vdswap::guest
