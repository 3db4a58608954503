#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "fleet/agent_gateway.h"
#include "fleet/disk_planner.h"
#include "fleet/host_registry.h"
#include "fleet/saved_swap.h"
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
// version (Resume). The swap's kind (SwapKind) is decided once, when it starts: when only
// the app image differs, the app disk is hot-swapped under the running guest (no reboot),
// make-before-break or break-before-make; when the OS image differs, the VM is shut down
// and redefined on a fresh overlay of the new OS with the same data disk (one boot). Each
// kind has its forward steps and its rollback; any failure rolls the VM back to where it
// was. The data disk is never detached. Thread-safe; swaps of one VM are serialized by
// VmLocks.
class Swapper {
 public:
  struct Options {
    std::chrono::milliseconds health_timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds detach_timeout{std::chrono::seconds(30)};
    std::chrono::milliseconds boot_timeout{std::chrono::seconds(180)};
    // Of app hot swaps, unless Swap says (a rollout's --swap-order); the daemon's
    // --swap-order sets it.
    SwapOrder order = SwapOrder::kMakeBeforeBreak;
  };

  // `db` only groups the VM row and the journal entry that end a swap in one transaction.
  Swapper(Db& db, VmTable& vms, SwapJournal& journal, VmLocks& locks, HostRegistry& hosts,
          TemplateStore& templates, DiskPlanner& disks, AgentGateway& agent, Hypervisor& hv,
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
  struct Run;  // a swap in progress: its saved state and what only this process knows
  Status Write(Run& r, SwapStep step, SwapPhase phase);
  Status Step(Run& r, SwapStep step, const std::function<Status()>& action);
  // The one ending of every swap: stop where an injected crash stopped it, roll back
  // after a failure `s`, else record the new version.
  Result<SwapOutcome> End(Run& r, const Status& s, int64_t downtime_ms);

  // Forward, from the start: checked, then the steps of the swap's kind; each sets
  // *downtime_ms once the app serves again.
  Status Forward(Run& r, const ProgressFn& progress, int64_t* downtime_ms);
  Status BreakBeforeMake(Run& r, int64_t* downtime_ms);
  Status MakeBeforeBreak(Run& r, int64_t* downtime_ms);
  Status SwapOs(Run& r, const TemplateDisks& to_disks, int64_t* downtime_ms);
  // Forward, after a restart found the new version's disk in place.
  Status Complete(Run& r, const VmLiveState& live, int64_t* downtime_ms);
  // Unmounts the old app slot in the guest and unplugs its disk.
  Status ReleaseOld(Run& r);
  Status BootAndCheck(Run& r, const VmSpec& spec, int64_t* downtime_ms);
  Result<SwapOutcome> Finish(Run& r);

  // Back to the old version: journaled, retried while the host is unreachable.
  Result<SwapOutcome> Rollback(Run& r, const std::string& why);
  // The rollback of the swap's kind, once; each is idempotent.
  Status RollbackSteps(Run& r);
  Status RollbackBreakBeforeMake(Run& r);
  Status RollbackMakeBeforeBreak(Run& r);
  Status RollbackOs(Run& r);

  Db& db_;
  VmTable& vms_;
  SwapJournal& journal_;
  VmLocks& locks_;
  HostRegistry& hosts_;
  TemplateStore& templates_;
  DiskPlanner& disks_;
  AgentGateway& agent_;
  Hypervisor& hv_;
  Clock& clock_;
  Options options_;
  CrashHook crash_hook_;
};

}  // namespace vdswap
