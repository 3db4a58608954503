#pragma once

#include <functional>
#include <string>

#include "fleet/template_store.h"
#include "fleet/vm_service.h"

namespace vdswap {

// How one VM's move to another template version ended.
struct SwapOutcome {
  std::string state;  // "done", "rolled_back" or "failed"
  int64_t downtime_ms = -1;
  std::string error;  // why it rolled back or failed
  Json ToJson() const;
};

// Moves one VM to another template version, journaling every step before and after it
// acts (swap_journal), so that a crash anywhere is resumed to exactly one consistent
// version (Resume). When only the app image differs, the app disk is hot-swapped under
// the running guest (no reboot); when the OS image differs, the VM is shut down and
// redefined on a fresh overlay of the new OS with the same data disk (one boot). Any
// failure rolls the VM back to where it was. The data disk is never detached.
// Thread-safe; swaps of one VM are serialized by VmService::LockFor.
class Swapper {
 public:
  struct Options {
    std::chrono::milliseconds health_timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds detach_timeout{std::chrono::seconds(30)};
    std::chrono::milliseconds boot_timeout{std::chrono::seconds(180)};
  };

  Swapper(Db& db, VmService& vms, TemplateStore& templates, Options options);

  // Swaps `vm` to `to`. Returns the outcome (rolled back and failed swaps are outcomes,
  // not errors); an error means the swap could not be attempted (unknown VM, VM busy in
  // an unfinished swap: kFailedPrecondition).
  Result<SwapOutcome> Swap(const std::string& vm, const Template& to, int64_t rollout_id,
                           const ProgressFn& progress);
  // Finishes the unfinished swap of `vm`, reading the hypervisor's live state as the
  // truth: forward when the new version's disk is in place, else back.
  Result<SwapOutcome> Resume(const std::string& vm);
  // VMs whose last journal entry is not a terminal one.
  Result<std::vector<std::string>> Unfinished();

  // Test hook, called after every journal write; returning true makes the engine stop
  // right there, as if the process died.
  using CrashHook = std::function<bool(const std::string& step, const std::string& phase)>;
  void SetCrashHook(CrashHook hook) { crash_hook_ = std::move(hook); }

 private:
  struct Plan;
  Status Write(Plan& p, const std::string& step, const std::string& phase);
  Status Step(Plan& p, const std::string& step, const std::function<Status()>& action);
  Result<SwapOutcome> Forward(Plan& p, const ProgressFn& progress);
  Result<SwapOutcome> Finish(Plan& p);
  Result<SwapOutcome> Rollback(Plan& p, const std::string& why);
  Status BootAndCheck(Plan& p, const VmSpec& spec, int64_t* downtime_ms);
  Status StopApp(Plan& p);
  Result<AppStatus> StartApp(Plan& p);

  Db& db_;
  VmService& vms_;
  TemplateStore& templates_;
  Options options_;
  CrashHook crash_hook_;
};

}  // namespace vdswap
