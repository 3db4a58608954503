#pragma once

#include "api/router.h"
#include "fleet/vm_service.h"
#include "fleet/vm_table.h"

namespace vdswap {

// /v1/vms (docs/api.md, "VMs"): POST /v1/vms creates VMs, GET /v1/vms lists them (paged
// from `vm_table` with ?limit= and/or ?after=), GET /v1/vms/{name} inspects one,
// GET /v1/vms/{name}/console shows the end of its console log, POST .../start and
// .../stop boot and shut it down, DELETE /v1/vms/{name} removes it.
void RegisterVmRoutes(Router& router, VmService& vms, VmTable& vm_table);

}  // namespace vdswap
