#pragma once

#include "api/router.h"
#include "fleet/template_store.h"

namespace vdswap {

// /v1/templates (docs/api.md, "Templates"): POST /v1/templates creates NAME:1,
// POST /v1/templates/{name}/versions makes the next version, GET /v1/templates lists every
// version and GET /v1/templates/{ref} shows one. A body's shape fields (memory, cpus,
// data_size, networks) are checked here.
void RegisterTemplateRoutes(Router& router, TemplateStore& templates);

}  // namespace vdswap
