#pragma once

#include "api/router.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/template_store.h"
#include "fleet/vm_service.h"
#include "rollout/rollout_engine.h"

namespace vdswap {

// /v1/hosts, /v1/templates, /v1/vms and /v1/rollouts.
// GET /v1/rollouts/ID?watch=1 streams the rollout (as progress lines) at every change
// until it ends, then answers with its final view.
void RegisterFleetRoutes(Router& router, HostRegistry& hosts, HostImages& host_images,
                         TemplateStore& templates, VmService& vms, VmTable& vm_table,
                         RolloutEngine& rollouts);

}  // namespace vdswap
