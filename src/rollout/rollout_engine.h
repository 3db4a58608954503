#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "fleet/agent_gateway.h"
#include "fleet/disk_planner.h"
#include "fleet/host_registry.h"
#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_table.h"
#include "rollout/batch_planner.h"
#include "rollout/change_feed.h"
#include "rollout/policy.h"
#include "rollout/rollout_store.h"

namespace vdswap {

// What a RolloutEngine reports as it goes (the daemon's metrics). Called from the engine's
// threads, never with the engine's locks held; implementations are thread-safe.
class RolloutObserver {
 public:
  virtual ~RolloutObserver() = default;
  // A rollout was created (start or undo).
  virtual void RolloutStarted() = 0;
  // A rollout reached an end state: succeeded, failed, rolled_back or aborted.
  virtual void RolloutEnded(RolloutState state) = 0;
  // A swap of a rollout ended with `result`: an OS swap (`os_swap`, one reboot) or an app
  // swap in `order` (unset: the swapper's default); `downtime_ms` < 0 when not measured.
  virtual void SwapEnded(SwapResult result, bool os_swap, std::optional<SwapOrder> order,
                         int64_t downtime_ms) = 0;
};

// Rollouts: move a set of VMs to a template version under a RolloutPolicy (docs/architecture.md
// "Rollouts"): up to `batch` swaps at once, at most `max_per_host` on one host, canaries first, a
// VM done only after `min_ready` of health, and a failure budget whose excess pauses the rollout or
// moves every VM it moved back. Each rollout has a coordinator thread and one thread per swap in
// flight; state and per-VM results live in the RolloutStore, so a restarted daemon resumes them
// (ResumeAll). Destroying the engine lets in-flight swaps finish and leaves the rollouts as they
// are for the next start to continue. Every change of a rollout bumps its version, which
// WaitForChange waits on. With PrefetchWith, a rollout's coordinator first starts putting the
// target version's images on every host with VMs still to move, one thread per host, while its
// first batch runs: the swaps on other hosts then find the images there instead of each host
// uploading when its first VM's turn comes. Thread-safe.
class RolloutEngine {
 public:
  RolloutEngine(RolloutStore& store, VmTable& vms, TemplateStore& templates, HostRegistry& hosts,
                Swapper& swapper, AgentGateway& agent, Clock& clock);
  ~RolloutEngine();

  // Optional collaborators; set before the first Start or ResumeAll. `disks` uploads the
  // target images ahead of the swaps (see above); `observer` is told of starts, ends and
  // swaps. Either may be null (the default: none).
  void PrefetchWith(DiskPlanner* disks) { prefetch_ = disks; }
  void Observe(RolloutObserver* observer) { observer_ = observer; }

  // Starts moving `vms` (default: every VM of the template not on the version) to `to_ref`
  // (NAME:V) under `policy`. Returns the rollout id. kInvalidArgument when there is
  // nothing to do; kFailedPrecondition when a VM is in another active rollout, or when
  // the policy's max_action is app and a VM would need an OS swap.
  Result<int64_t> Start(const std::string& to_ref, std::vector<std::string> vms,
                        const RolloutPolicy& policy = {});
  // Pause: in-flight swaps finish, no more start (state paused). kFailedPrecondition
  // unless running; kNotFound.
  Status Pause(int64_t id);
  // Continues a paused rollout: canaries count as released and the failures so far are
  // forgiven by the budget. kFailedPrecondition unless paused; kNotFound.
  Status Resume(int64_t id);
  // Ends a running or paused rollout: in-flight swaps finish, pending VMs are skipped
  // (state aborted). kFailedPrecondition otherwise; kNotFound.
  Status Abort(int64_t id);
  // Starts a rollout moving every VM that rollout `id` moved back to the version it had
  // before `id`. kFailedPrecondition while `id` is active; kInvalidArgument when it moved
  // no VM; kNotFound.
  Result<int64_t> Undo(int64_t id);

  // kNotFound naming the rollout.
  Result<Rollout> Get(int64_t id);
  Result<std::vector<Rollout>> List();
  // Finishes unfinished swaps (journal) and continues rollouts that were running or
  // rolling back; paused ones stay paused.
  Status ResumeAll();
  // Blocks until no coordinator of rollout `id` runs in this engine (tests, --wait).
  void Wait(int64_t id);
  // Makes every rollout stop starting swaps; in-flight ones finish (the destructor does
  // this, then joins them); rollouts keep their state for the next engine. Never blocks
  // on the engine's locks, so it may be called from a swap's crash hook.
  void Shutdown();

  // The change counter of rollout `id` (0 before its first change in this process).
  uint64_t Version(int64_t id) { return changes_.Version(id); }
  // Blocks until the version of `id` exceeds `seen`, `timeout` passes, or CancelWaits
  // was called; returns the version then.
  uint64_t WaitForChange(int64_t id, uint64_t seen, std::chrono::milliseconds timeout) {
    return changes_.WaitForChange(id, seen, timeout);
  }
  // Wakes every WaitForChange for good (the daemon is stopping).
  void CancelWaits() { changes_.Cancel(); }
  bool WaitsCancelled() { return changes_.Cancelled(); }

 private:
  struct Run;
  // Records a rollout of `members` under `policy` (see RolloutStore::Create), tells the
  // observer and the watchers, and launches its coordinator; returns its id.
  // REQUIRES: start_mu_ held (the members were checked under it).
  Result<int64_t> Begin(const std::string& template_name, int64_t to_version,
                        const std::vector<RolloutMember>& members, const RolloutPolicy& policy);
  // Starts a coordinator for rollout `id` unless one runs (it goes on: a resumed rollout
  // whose coordinator is still draining), joining a finished one first.
  void Launch(int64_t id);
  // Launch for a caller holding run_mu_. REQUIRES: run_mu_ held.
  void LaunchLocked(int64_t id);
  void Coordinate(int64_t id);
  // Returns when the rollout needs no more work from this coordinator.
  Status Drive(int64_t id, Run& run);
  // Reads the rollout back from the store into `run`: its pending VMs, its failures so
  // far, the templates it moves between; settles swaps whose end was never recorded.
  Status Rebuild(int64_t id, Run& run);
  // Whether new swaps may start beyond the canaries (true: released): nullopt when the
  // gate paused the rollout or waited a slice of --canary-wait (look again).
  // REQUIRES: `lock` holds run_mu_ (released while waiting).
  Result<std::optional<bool>> GateCanaries(int64_t id, Run& run, const RolloutControl& ctl,
                                           std::unique_lock<std::mutex>& lock);
  // With no swap in flight: the rollout's end state, written, when it ends now (or
  // stops for the next engine); nullopt when more swaps are to come.
  // REQUIRES: `lock` holds run_mu_ (released for a rollback).
  std::optional<Status> End(int64_t id, Run& run, const RolloutControl& ctl, bool over_budget,
                            std::unique_lock<std::mutex>& lock);
  // Starts the swaps of `picks` (indexes into run.pending), recording them in one write.
  void StartSwaps(int64_t id, Run& run, const std::vector<size_t>& picks);
  // Tells the observer how a swap of a VM from version `from` to `to` ended. REQUIRES:
  // both versions in run.templates.
  void ReportSwap(const Run& run, int64_t from, int64_t to, const SwapOutcome& o);
  // Starts the uploads of the target images to the hosts of the pending VMs.
  void StartPrefetch(Run& run);
  void SwapOne(int64_t id, Run& run, const RolloutVm& vm, const Template& to);
  Status RollBack(int64_t id, Run& run, const std::string& why);
  Result<Template> TemplateAt(const std::string& name, int64_t version);
  Status SetState(int64_t id, RolloutState state, const std::string& error);

  RolloutStore& store_;
  VmTable& vms_;
  TemplateStore& templates_;
  HostRegistry& hosts_;
  Swapper& swapper_;
  AgentGateway& agent_;
  Clock& clock_;
  DiskPlanner* prefetch_ = nullptr;
  RolloutObserver* observer_ = nullptr;

  std::mutex start_mu_;  // serializes the "VM in another rollout" check and Create
  // Guards coordinators_ and every Run. Held around control writes to the store; never
  // taken while the store's lock is held (see Shutdown).
  std::mutex run_mu_;
  std::condition_variable work_cv_;  // a swap ended, a control changed, or stopping
  std::condition_variable done_cv_;  // a coordinator ended
  struct Coordinator {
    std::thread thread;
    bool finished = false;
  };
  std::map<int64_t, Coordinator> coordinators_;

  ChangeFeed changes_;  // bumped on every change of a rollout
  std::atomic<bool> stopping_{false};
};

// The outcome of a swap as a rollout records it.
RolloutVmState RolloutVmStateFor(SwapResult r);

}  // namespace vdswap
