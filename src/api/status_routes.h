#pragma once

#include <chrono>
#include <string>

#include "api/metrics.h"
#include "api/router.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/template_store.h"
#include "fleet/vm_table.h"
#include "image/image_store.h"
#include "rollout/rollout_store.h"
#include "store/db.h"

namespace vdswap {

// What the daemon says about itself in GET /v1/status.
struct DaemonInfo {
  std::string state_dir;
  std::string hypervisor;  // "libvirt" or "fake"
  std::string default_uri;
  std::chrono::steady_clock::time_point started;
};

// The table owners the counts come from.
struct Inventory {
  HostRegistry& hosts;
  HostImages& host_images;
  ImageStore& images;
  TemplateStore& templates;
  VmTable& vms;
  RolloutStore& rollouts;
};

// GET /v1/status: version, uptime, configuration and inventory counts (`db` only for the
// schema version). Also registers the inventory gauges on `metrics`.
void RegisterStatusRoutes(Router& router, Metrics& metrics, Db& db, Inventory inventory,
                          const DaemonInfo& info);

}  // namespace vdswap
