#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "rollout/policy.h"
#include "store/db.h"

namespace vdswap {

// running: VMs are being moved; paused: none start until `resume` (in-flight ones finish);
// rolling_back: the failure budget was exceeded and the moved VMs go back; the rest end it.
enum class RolloutState {
  kRunning,
  kPaused,
  kRollingBack,
  kSucceeded,
  kFailed,
  kRolledBack,
  kAborted
};
// A VM's part: pending, swapping, then done (moved), rolled_back (its swap failed and was
// undone), failed, skipped (never started), or reverted (moved, then moved back by the
// rollout's rollback).
enum class RolloutVmState { kPending, kSwapping, kDone, kRolledBack, kFailed, kSkipped, kReverted };

// True for the states in which a rollout holds its VMs (running, paused, rolling_back).
bool IsActive(RolloutState s);

// Lower-case names as stored and shown by the API ("running", "rolled_back"...).
std::string_view RolloutStateName(RolloutState s);
std::string_view RolloutVmStateName(RolloutVmState s);
Result<RolloutState> RolloutStateFromName(std::string_view name);
Result<RolloutVmState> RolloutVmStateFromName(std::string_view name);

// One VM of a rollout.
struct RolloutVm {
  std::string vm;
  std::string host;
  int64_t position = 0;
  RolloutVmState state = RolloutVmState::kPending;
  int64_t from_version = 0;
  int64_t to_version = 0;
  std::optional<int64_t> downtime_ms;
  std::optional<int64_t> started_at_ms;
  std::optional<int64_t> finished_at_ms;
  std::string error;
};

// A VM as a rollout is created with: where it is and where it goes.
struct RolloutMember {
  std::string vm;
  std::string host;
  int64_t from_version = 0;
  int64_t to_version = 0;
};

// How one VM's part of a rollout ended, as SetVmOutcomes records it.
struct RolloutVmOutcome {
  std::string vm;
  RolloutVmState state = RolloutVmState::kDone;
  std::optional<int64_t> downtime_ms;
  std::string error;
  int64_t now_ms = 0;
};

// A rollout as recorded, with its VMs in order.
struct Rollout {
  int64_t id = 0;
  std::string template_name;
  int64_t to_version = 0;
  RolloutState state = RolloutState::kRunning;
  RolloutPolicy policy;
  bool canaries_released = false;
  int64_t failures_forgiven = 0;  // failures before the last resume: outside the budget
  std::string error;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<RolloutVm> vms;
};

// What an engine rereads while it drives a rollout.
struct RolloutControl {
  RolloutState state = RolloutState::kRunning;
  bool canaries_released = false;
  int64_t failures_forgiven = 0;
};

// The rollouts and rollout_vms tables: the only code that runs SQL on them. A VM's
// rollout_vms rows go with the VM (ON DELETE CASCADE). Thread-safe (the Db serializes).
class RolloutStore {
 public:
  explicit RolloutStore(Db& db) : db_(db) {}

  // Records a running rollout of `vms` (in order) of template `template_name` under
  // `policy`; `to_version` is the version it names. VMs already there are done. Returns
  // its id.
  Result<int64_t> Create(const std::string& template_name, int64_t to_version,
                         const std::vector<RolloutMember>& vms, const RolloutPolicy& policy,
                         int64_t now);
  // kNotFound naming the rollout.
  Result<Rollout> Get(int64_t id);
  // The rollout's state and the policy switches a resume changes; kNotFound.
  Result<RolloutControl> Control(int64_t id);
  // Every rollout, by id.
  Result<std::vector<Rollout>> List();
  Status SetState(int64_t id, RolloutState state, const std::string& error, int64_t now);
  // Canaries let go (resume or the end of --canary-wait), and the failures a resume
  // forgave.
  Status SetCanariesReleased(int64_t id);
  Status SetFailuresForgiven(int64_t id, int64_t failures);
  Status SetVmState(int64_t id, const std::string& vm, RolloutVmState state);
  // `vm` is swapping since `now_ms`.
  Status SetVmStarted(int64_t id, const std::string& vm, int64_t now_ms);
  // SetVmStarted for each of `vms`, in one transaction.
  Status SetVmsStarted(int64_t id, const std::vector<std::string>& vms, int64_t now_ms);
  Status SetVmOutcome(int64_t id, const std::string& vm, RolloutVmState state,
                      std::optional<int64_t> downtime_ms, const std::string& error, int64_t now_ms);
  // SetVmOutcome for each of `outcomes`, in one transaction.
  Status SetVmOutcomes(int64_t id, const std::vector<RolloutVmOutcome>& outcomes);
  // The outcome of `vm` in whichever rollout has it swapping.
  Status SetSwappingVmOutcome(const std::string& vm, RolloutVmState state,
                              std::optional<int64_t> downtime_ms, const std::string& error,
                              int64_t now_ms);
  // Marks the pending VMs of `id` skipped.
  Status SkipPending(int64_t id);
  // VMs of `id` still to do (pending or swapping), in order.
  Result<std::vector<std::string>> Remaining(int64_t id);
  // The active (running, paused, rolling_back) rollout `vm` is part of, if any.
  Result<std::optional<int64_t>> ActiveRolloutOf(const std::string& vm);
  // Every VM some active rollout holds, with that rollout's id.
  Result<std::map<std::string, int64_t>> ActiveMembers();
  // Rollouts an engine must drive: running or rolling_back (paused ones wait for resume).
  Result<std::vector<int64_t>> RunningIds();
  Result<int64_t> Count();
  // (state, count) for every state some rollout is in, by state name.
  Result<std::vector<std::pair<std::string, int64_t>>> CountByState();

 private:
  Db& db_;
};

}  // namespace vdswap
