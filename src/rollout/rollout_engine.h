#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_table.h"
#include "rollout/rollout_store.h"

namespace vdswap {

// Rollouts: move a set of VMs to a template version, one VM at a time; the first VM
// that fails is rolled back and the rollout stops there ("failed"). Each rollout runs on
// its own thread; its state and per-VM results live in the RolloutStore, so a restarted
// daemon resumes them (ResumeAll). Destroying the engine lets each rollout finish the VM
// it is swapping and leaves the rest running for the next start to continue.
// Every change of a rollout bumps its version, which WaitForChange waits on. Thread-safe.
class RolloutEngine {
 public:
  RolloutEngine(RolloutStore& store, VmTable& vms, TemplateStore& templates, Swapper& swapper,
                Clock& clock);
  ~RolloutEngine();

  // Starts moving `vms` (default: every VM of the template not on the version) to `to_ref`
  // (NAME:V). Returns the rollout id. kInvalidArgument when there is nothing to do,
  // kFailedPrecondition when a VM is in another running rollout.
  Result<int64_t> Start(const std::string& to_ref, std::vector<std::string> vms);
  // kNotFound naming the rollout.
  Result<Rollout> Get(int64_t id);
  Result<std::vector<Rollout>> List();
  // Finishes unfinished swaps (journal) and continues rollouts that were running.
  Status ResumeAll();
  // Blocks until rollout `id` is no longer running in this engine (tests, --wait).
  void Wait(int64_t id);
  // Makes every rollout stop after the VM it is swapping (the destructor does this, then
  // joins them); rollouts stay running in the store for the next engine.
  void Shutdown();

  // The change counter of rollout `id` (0 before its first change in this process).
  uint64_t Version(int64_t id);
  // Blocks until the version of `id` exceeds `seen`, `timeout` passes, or CancelWaits
  // was called; returns the version then.
  uint64_t WaitForChange(int64_t id, uint64_t seen, std::chrono::milliseconds timeout);
  // Wakes every WaitForChange for good (the daemon is stopping).
  void CancelWaits();
  bool WaitsCancelled();

 private:
  void Run(int64_t id);
  void Launch(int64_t id);
  void Changed(int64_t id);
  Status SetState(int64_t id, RolloutState state, const std::string& error);

  RolloutStore& store_;
  VmTable& vms_;
  TemplateStore& templates_;
  Swapper& swapper_;
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::condition_variable change_cv_;
  std::map<int64_t, std::thread> threads_;
  std::map<int64_t, bool> finished_;
  std::map<int64_t, uint64_t> versions_;
  bool waits_cancelled_ = false;
  std::atomic<bool> stopping_{false};
};

// The outcome of a swap as a rollout records it.
RolloutVmState RolloutVmStateFor(SwapResult r);

}  // namespace vdswap
