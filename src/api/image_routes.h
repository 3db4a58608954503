#pragma once

#include "api/router.h"
#include "core/clock.h"
#include "core/command_runner.h"
#include "image/image_store.h"

namespace vdswap {

// /v1/images: build (an AppImageBuilder) and import-os (an OsImageImporter) into
// `images`, running their tools with `runner` and timing builds on `clock`; list,
// inspect, remove and gc of `images`.
void RegisterImageRoutes(Router& router, ImageStore& images, CommandRunner& runner, Clock& clock);

}  // namespace vdswap
