#pragma once

#include <memory>
#include <string>

#include "assembly/fleet.h"
#include "core/clock.h"
#include "core/command_runner.h"
#include "core/files.h"
#include "fake/fake_hypervisor.h"
#include "store/db.h"

namespace vdswap::testing {

// What a testbed's Fleet runs on. A base of FleetTestbed, so that it is built before the
// Fleet and outlives it.
struct TestbedParts {
  TestbedParts();

  SubprocessRunner runner;
  FakeClock clock;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Db> db;
  FakeHypervisor hv{clock};
};

// The daemon's Fleet on a FakeHypervisor and an in-memory store, with hosts "h1" and "h2"
// and template "web": web:1 (app v1), web:2 (app v2), web:3 (app v3, unhealthy on the
// fake) and web:4 (OS 2, app v2). Runs on a FakeClock: agent retries and timeouts cost no
// real time; swaps wait 1 s for health.
struct FleetTestbed : TestbedParts, Fleet {
  FleetTestbed();

  // Creates VMs of web:1 on host "h1"; fails the test on error.
  void CreateVms(const std::vector<std::string>& names);
  // The app volume name of template version v.
  std::string AppVolume(int64_t version);
  // A Swapper over the same store, hypervisor and locks with its own `journal`, as a
  // restarted daemon builds it.
  std::unique_ptr<Swapper> NewSwapper(SwapJournal& journal);
  // A RolloutEngine over the same fleet driving `swapper`, as a restarted daemon builds it.
  std::unique_ptr<RolloutEngine> NewRolloutEngine(Swapper& swapper);
};

}  // namespace vdswap::testing
