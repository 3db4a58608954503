#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_service.h"

namespace vdswap {

// Rollouts: move a set of VMs to a template version, one VM at a time; the first VM
// that fails is rolled back and the rollout stops there ("failed"). Each rollout runs on
// its own thread; its state and per-VM results live in the store, so a restarted daemon
// resumes them (ResumeAll). Destroying the engine lets each rollout finish the VM it is
// swapping and leaves the rest "running" for the next start to continue. Thread-safe.
class RolloutEngine {
 public:
  RolloutEngine(Db& db, VmService& vms, TemplateStore& templates, Swapper& swapper);
  ~RolloutEngine();

  // Starts moving `vms` (default: every VM of the template not on the version) to `to_ref`
  // (NAME:V). Returns the rollout id. kInvalidArgument when there is nothing to do,
  // kFailedPrecondition when a VM is in another running rollout.
  Result<int64_t> Start(const std::string& to_ref, std::vector<std::string> vms);
  // {id, state, to, vms: [{vm, state, from, to, downtime_ms, error}], downtime: {p50,p95,max}}
  Result<Json> Get(int64_t id);
  Result<Json> List();
  // Finishes unfinished swaps (journal) and continues rollouts that were running.
  Status ResumeAll();
  // Blocks until rollout `id` is no longer running (tests and the CLI's --wait).
  void Wait(int64_t id);

 private:
  void Run(int64_t id);
  Status SetRolloutState(int64_t id, const std::string& state, const std::string& error);
  void Launch(int64_t id);

  Db& db_;
  VmService& vms_;
  TemplateStore& templates_;
  Swapper& swapper_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::map<int64_t, std::thread> threads_;
  std::map<int64_t, bool> finished_;
  std::atomic<bool> stopping_{false};
};

}  // namespace vdswap
