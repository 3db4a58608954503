#pragma once

#include <string>

#include "core/clock.h"
#include "fleet/agent_gateway.h"
#include "fleet/disk_planner.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/image_distributor.h"
#include "fleet/swap_journal.h"
#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_locks.h"
#include "fleet/vm_service.h"
#include "fleet/vm_table.h"
#include "hypervisor/hypervisor.h"
#include "image/image_store.h"
#include "rollout/rollout_engine.h"
#include "rollout/rollout_store.h"
#include "store/db.h"

namespace vdswap {

struct FleetOptions {
  std::string state_dir;    // the image store's directory
  std::string default_uri;  // the libvirt URI of the host VMs go to when none is named
  Swapper::Options swap;
};

// The fleet's stores and services over one database and one Hypervisor, wired once, in
// the order they depend on each other: what vdswapd serves and what the tests' FleetTestbed
// runs, so both run the same composition. Constructing it starts nothing: the daemon
// settles interrupted work (VmService::ReconcileCreating, RolloutEngine::ResumeAll) and
// registers routes over the members. Members are public: this is an assembly, not an
// abstraction. REQUIRES: db, hv and clock outlive it.
struct Fleet {
  Fleet(Db& db, Hypervisor& hv, Clock& clock, const FleetOptions& options);
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  ImageStore images;
  HostRegistry hosts;
  TemplateStore templates;
  VmTable vm_table;
  SwapJournal journal;
  HostImages host_images;
  RolloutStore rollout_store;
  VmLocks locks;
  ImageDistributor distributor;
  DiskPlanner disks;
  AgentGateway agent;
  VmService vms;
  Swapper swapper;
  RolloutEngine rollouts;
};

}  // namespace vdswap
