#pragma once

#include "api/router.h"
#include "rollout/rollout_engine.h"

namespace vdswap {

// /v1/rollouts (docs/api.md, "Rollouts"): POST /v1/rollouts starts one,
// POST /v1/rollouts/{id}/pause, .../resume and .../abort control it, .../undo starts the
// rollout that moves its VMs back, GET /v1/rollouts lists them and GET /v1/rollouts/{id}
// shows one (?vms adds every VM; ?wait answers once the daemon no longer drives it).
// GET /v1/rollouts/ID?watch=1 streams the rollout (as progress lines) at every change
// until it ends, then answers with its final view.
void RegisterRolloutRoutes(Router& router, RolloutEngine& rollouts);

}  // namespace vdswap
