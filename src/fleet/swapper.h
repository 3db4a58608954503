#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "fleet/disk_planner.h"
#include "fleet/guest_agent.h"
#include "fleet/host_registry.h"
#include "fleet/swap_journal.h"
#include "fleet/swap_order.h"
#include "fleet/template_store.h"
#include "fleet/vm_locks.h"
#include "fleet/vm_table.h"

namespace vdswap {

// How a swap ended: on the new version, back on the old one, or broken.
enum class SwapResult { kDone, kRolledBack, kFailed };
// "done", "rolled_back", "failed".
std::string_view SwapResultName(SwapResult r);

// How one VM's move to another template version ended.
struct SwapOutcome {
  SwapResult result = SwapResult::kFailed;
  int64_t downtime_ms = -1;  // -1 when not measured
  std::string error;         // why it rolled back or failed
};

// Moves one VM to another template version, journaling every step before and after it
// acts (SwapJournal), so that a crash anywhere is resumed to exactly one consistent
// version (Resume). When only the app image differs, the app disk is hot-swapped under
// the running guest (no reboot); when the OS image differs, the VM is shut down and
// redefined on a fresh overlay of the new OS with the same data disk (one boot). Any
// failure rolls the VM back to where it was. The data disk is never detached.
// Thread-safe; swaps of one VM are serialized by VmLocks.
class Swapper {
 public:
  struct Options {
    std::chrono::milliseconds health_timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds detach_timeout{std::chrono::seconds(30)};
    std::chrono::milliseconds boot_timeout{std::chrono::seconds(180)};
    // Of app hot swaps, unless Swap says. Break-before-make until the rollout policy
    // passes an order (--swap-order); the daemon's --swap-order sets it.
    SwapOrder order = SwapOrder::kBreakBeforeMake;
  };

  // `db` only groups the VM row and the journal entry that end a swap in one transaction.
  Swapper(Db& db, VmTable& vms, SwapJournal& journal, VmLocks& locks, HostRegistry& hosts,
          TemplateStore& templates, DiskPlanner& disks, GuestAgent& agent, Hypervisor& hv,
          Clock& clock, Options options);

  // Swaps `vm` to `to`. Returns the outcome (rolled back and failed swaps are outcomes,
  // not errors); an error means the swap could not be attempted (unknown VM, VM busy in
  // an unfinished swap: kFailedPrecondition). `order` overrides Options::order for an app
  // hot swap (an OS swap reboots either way).
  Result<SwapOutcome> Swap(const std::string& vm, const Template& to, int64_t rollout_id,
                           const ProgressFn& progress,
                           std::optional<SwapOrder> order = std::nullopt);
  // Finishes the unfinished swap of `vm`, reading the hypervisor's live state as the
  // truth: forward when the new version's disk is in place, else back.
  Result<SwapOutcome> Resume(const std::string& vm);
  // VMs whose last journal entry is not a terminal one.
  Result<std::vector<std::string>> Unfinished();

  // Test hook, called after every journal write; returning true makes the engine stop
  // right there, as if the process died.
  using CrashHook = std::function<bool(SwapStep step, SwapPhase phase)>;
  void SetCrashHook(CrashHook hook) { crash_hook_ = std::move(hook); }

 private:
  struct Plan;
  Status Write(Plan& p, SwapStep step, SwapPhase phase);
  Status Step(Plan& p, SwapStep step, const std::function<Status()>& action);
  Result<SwapOutcome> Forward(Plan& p, const ProgressFn& progress);
  // The make-before-break app swap after CHECKED; sets *downtime_ms.
  Status MakeBeforeBreak(Plan& p, int64_t* downtime_ms);
  // Unmounts the old app slot in the guest and unplugs its disk.
  Status ReleaseOld(Plan& p);
  Result<SwapOutcome> Finish(Plan& p);
  Result<SwapOutcome> Rollback(Plan& p, const std::string& why);
  // The rollback itself, once: back to the old disk and app (or OS).
  Status RollbackSteps(Plan& p);
  Status BootAndCheck(Plan& p, const VmSpec& spec, int64_t* downtime_ms);

  Db& db_;
  VmTable& vms_;
  SwapJournal& journal_;
  VmLocks& locks_;
  HostRegistry& hosts_;
  TemplateStore& templates_;
  DiskPlanner& disks_;
  GuestAgent& agent_;
  Hypervisor& hv_;
  Clock& clock_;
  Options options_;
  CrashHook crash_hook_;
};

}  // namespace vdswap
