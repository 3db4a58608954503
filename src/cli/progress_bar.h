#pragma once

#include <string>

#include "core/json.h"

namespace vdswap {

// One line of a rollout's progress, from its JSON (`GET /v1/rollouts/ID`):
//   "[#####.....] 12/40 done, 2 in flight, 0 failed, ETA 1m20s"
// The bar (`width` cells) fills with the VMs that finished, whatever their end; "done"
// counts the VMs swapped, "failed" those rolled back or failed; the ETA is the daemon's
// estimate ("ETA -" while it has none).
std::string RolloutProgressLine(const Json& rollout, int width = 20);

}  // namespace vdswap
