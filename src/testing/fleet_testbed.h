#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/command_runner.h"
#include "core/files.h"
#include "fake/fake_hypervisor.h"
#include "fleet/disk_planner.h"
#include "fleet/guest_agent.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/image_distributor.h"
#include "fleet/swap_journal.h"
#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_locks.h"
#include "fleet/vm_service.h"
#include "fleet/vm_table.h"
#include "image/image_store.h"
#include "store/db.h"

namespace vdswap::testing {

// The fleet on a FakeHypervisor and an in-memory store, with template "web": web:1 (app
// v1), web:2 (app v2), web:3 (app v3, unhealthy on the fake) and web:4 (OS 2, app v2).
// Runs on a FakeClock: agent retries and timeouts cost no real time.
struct FleetTestbed {
  FleetTestbed();

  // Creates VMs of web:1 on host "h1"; fails the test on error.
  void CreateVms(const std::vector<std::string>& names);
  // The app volume name of template version v.
  std::string AppVolume(int64_t version);
  // A Swapper over the same store, hypervisor and locks, as a restarted daemon builds it.
  std::unique_ptr<Swapper> NewSwapper();

  SubprocessRunner runner;
  FakeClock clock;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Db> db;
  FakeHypervisor hv{clock};
  VmLocks locks;
  std::unique_ptr<ImageStore> images;
  std::unique_ptr<HostRegistry> hosts;
  std::unique_ptr<TemplateStore> templates;
  std::unique_ptr<VmTable> vm_table;
  std::unique_ptr<SwapJournal> journal;
  std::unique_ptr<HostImages> host_images;
  std::unique_ptr<ImageDistributor> distributor;
  std::unique_ptr<DiskPlanner> disks;
  std::unique_ptr<GuestAgent> agent;
  std::unique_ptr<VmService> vms;
  std::unique_ptr<Swapper> swapper;
};

}  // namespace vdswap::testing
