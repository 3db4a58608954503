#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/db.h"

namespace vdswap {

enum class RolloutState { kRunning, kSucceeded, kFailed };
enum class RolloutVmState { kPending, kSwapping, kDone, kRolledBack, kFailed, kSkipped };

// Lower-case names as stored and shown by the API ("running", "rolled_back"...).
std::string_view RolloutStateName(RolloutState s);
std::string_view RolloutVmStateName(RolloutVmState s);
Result<RolloutState> RolloutStateFromName(std::string_view name);
Result<RolloutVmState> RolloutVmStateFromName(std::string_view name);

// One VM of a rollout.
struct RolloutVm {
  std::string vm;
  RolloutVmState state = RolloutVmState::kPending;
  int64_t from_version = 0;
  int64_t to_version = 0;
  std::optional<int64_t> downtime_ms;
  std::string error;
};

// A rollout as recorded, with its VMs in order.
struct Rollout {
  int64_t id = 0;
  std::string template_name;
  int64_t to_version = 0;
  RolloutState state = RolloutState::kRunning;
  std::string error;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<RolloutVm> vms;
};

// The rollouts and rollout_vms tables: the only code that runs SQL on them. A VM's
// rollout_vms rows go with the VM (ON DELETE CASCADE). Thread-safe (the Db serializes).
class RolloutStore {
 public:
  explicit RolloutStore(Db& db) : db_(db) {}

  // Records a running rollout of `vms` ((name, from_version) in order) to
  // template_name:to_version; VMs already there are done. Returns its id.
  Result<int64_t> Create(const std::string& template_name, int64_t to_version,
                         const std::vector<std::pair<std::string, int64_t>>& vms, int64_t now);
  // kNotFound naming the rollout.
  Result<Rollout> Get(int64_t id);
  // Every rollout, by id.
  Result<std::vector<Rollout>> List();
  Status SetState(int64_t id, RolloutState state, const std::string& error, int64_t now);
  Status SetVmState(int64_t id, const std::string& vm, RolloutVmState state);
  Status SetVmOutcome(int64_t id, const std::string& vm, RolloutVmState state,
                      std::optional<int64_t> downtime_ms, const std::string& error);
  // The outcome of `vm` in whichever rollout has it swapping.
  Status SetSwappingVmOutcome(const std::string& vm, RolloutVmState state,
                              std::optional<int64_t> downtime_ms, const std::string& error);
  // Marks the pending VMs of `id` skipped.
  Status SkipPending(int64_t id);
  // VMs of `id` still to do (pending or swapping), in order.
  Result<std::vector<std::string>> Remaining(int64_t id);
  // The running rollout `vm` is part of, if any.
  Result<std::optional<int64_t>> RunningRolloutOf(const std::string& vm);
  Result<std::vector<int64_t>> RunningIds();
  Result<int64_t> Count();
  // (state, count) for every state some rollout is in, by state name.
  Result<std::vector<std::pair<std::string, int64_t>>> CountByState();

 private:
  Db& db_;
};

}  // namespace vdswap
