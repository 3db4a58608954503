#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rollout/policy.h"

namespace vdswap {

// A VM a rollout has not started yet: its place in the rollout's order and its host.
struct PendingVm {
  int64_t position = 0;
  std::string host;
};

// The swaps a rollout has running now.
struct InFlight {
  int64_t total = 0;
  std::map<std::string, int64_t> by_host;
};

// Decides which VMs a rollout starts next under its policy. Pure functions of the
// rollout's state, so the limits are tested without a hypervisor; the engine owns the
// state and calls these whenever a swap starts or ends.
class BatchPlanner {
 public:
  BatchPlanner(const RolloutPolicy& policy, int64_t total_vms);

  // The VMs of `pending` (indexes into it, in order) to start now: rollout order, at most
  // `batch` in flight in all and `max_per_host` on one host (a full host does not hold
  // back VMs of other hosts). Until `canaries_released`, only canary positions start.
  std::vector<size_t> Next(const std::vector<PendingVm>& pending, const InFlight& in_flight,
                           bool canaries_released) const;

  // True for the positions that are canaries (the first `canary` VMs).
  bool IsCanary(int64_t position) const { return position < canaries_; }
  int64_t canaries() const { return canaries_; }
  int64_t batch() const { return batch_; }
  // True once `failures` exceed the rollout's failure budget.
  bool BudgetExceeded(int64_t failures) const { return failures > max_failures_; }

 private:
  int64_t batch_;
  int64_t max_per_host_;
  int64_t canaries_;
  int64_t max_failures_;
};

}  // namespace vdswap
