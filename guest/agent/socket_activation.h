#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "image/manifest.h"

namespace vdswap::guest {

// The first fd systemd's socket activation protocol passes (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

// The environment systemd's socket activation protocol gives an app that receives
// m.sockets as fds 3..: LISTEN_FDS=<n>, LISTEN_PID=<pid>, LISTEN_FDNAMES=<a:b>. Empty when
// the manifest has no sockets. `pid` is the app's own pid (sd_listen_fds(3) ignores the
// fds otherwise), so the caller builds it in the child after fork.
std::vector<std::string> ListenEnv(const AppManifest& m, pid_t pid);

}  // namespace vdswap::guest
