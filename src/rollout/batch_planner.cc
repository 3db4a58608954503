#include "rollout/batch_planner.h"

namespace vdswap {

BatchPlanner::BatchPlanner(const RolloutPolicy& policy, int64_t total_vms)
    : batch_(std::max<int64_t>(1, policy.batch.Of(total_vms, /*at_least_one=*/true))),
      max_per_host_(policy.max_per_host),
      canaries_(policy.canary.Of(total_vms, /*at_least_one=*/true)),
      max_failures_(policy.max_failures.Of(total_vms, /*at_least_one=*/false)) {}

std::vector<size_t> BatchPlanner::Next(const std::vector<PendingVm>& pending,
                                       const InFlight& in_flight, bool canaries_released) const {
  std::vector<size_t> out;
  int64_t total = in_flight.total;
  std::map<std::string, int64_t> by_host = in_flight.by_host;
  for (size_t i = 0; i < pending.size() && total < batch_; ++i) {
    const PendingVm& vm = pending[i];
    if (!canaries_released && !IsCanary(vm.position)) break;  // in order: none after it is
    int64_t& on_host = by_host[vm.host];
    if (on_host >= max_per_host_) continue;
    ++on_host;
    ++total;
    out.push_back(i);
  }
  return out;
}

}  // namespace vdswap
