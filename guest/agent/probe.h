#pragma once

#include <chrono>
#include <string>

#include "image/socket_address.h"

namespace vdswap::guest {

// What one health probe saw.
struct ProbeResult {
  bool healthy = false;
  std::string output;  // what was seen (status line, error), at most 4 KiB
};

// The agent's own health probes (manifest health.tcp / health.http), so app images need
// no curl. Each call makes one attempt and returns within `timeout`.
//
// Healthy when `target` accepts a TCP connection.
ProbeResult ProbeTcp(const SocketAddress& target, std::chrono::milliseconds timeout);
// Healthy when `GET url.path` answers with a 2xx or 3xx status. The output is the status
// line and the start of the body.
ProbeResult ProbeHttp(const HttpUrl& url, std::chrono::milliseconds timeout);

}  // namespace vdswap::guest
