#pragma once

#include <functional>

#include "core/json.h"

namespace vdswap {

// Receives progress events of a long operation, e.g. {"phase": "stage", "message": ...}.
// Callers may pass an empty function.
using ProgressFn = std::function<void(const Json&)>;

}  // namespace vdswap
