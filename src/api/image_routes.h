#pragma once

#include "api/router.h"
#include "image/image_store.h"

namespace vdswap {

// /v1/images: build, import-os, list, inspect, remove, gc.
void RegisterImageRoutes(Router& router, ImageStore& images);

}  // namespace vdswap
