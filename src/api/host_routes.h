#pragma once

#include "api/router.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/vm_table.h"

namespace vdswap {

// /v1/hosts (docs/api.md, "Hosts"): POST /v1/hosts adds a host, GET /v1/hosts lists them
// with their VM counts (`vm_table`) and bad image copies (`host_images`), and
// DELETE /v1/hosts/{name} removes one.
void RegisterHostRoutes(Router& router, HostRegistry& hosts, HostImages& host_images,
                        VmTable& vm_table);

}  // namespace vdswap
