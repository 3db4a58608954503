#pragma once

#include <chrono>
#include <string>

#include "api/metrics.h"
#include "api/router.h"
#include "store/db.h"

namespace vdswap {

// What the daemon says about itself in GET /v1/status.
struct DaemonInfo {
  std::string state_dir;
  std::string hypervisor;  // "libvirt" or "fake"
  std::string default_uri;
  std::chrono::steady_clock::time_point started;
};

// GET /v1/status: version, uptime, configuration and inventory counts.
// Also registers the inventory gauges on `metrics`.
void RegisterStatusRoutes(Router& router, Metrics& metrics, Db& db, const DaemonInfo& info);

}  // namespace vdswap
