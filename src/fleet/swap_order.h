#pragma once

#include <string_view>

#include "core/status.h"

namespace vdswap {

// The order of an app hot swap. Make-before-break plugs the new app disk beside the old
// one (the other app slot's serial) and prepares it while the old app runs, then stops
// old -> starts new -> healthy -> unplugs old; until the unplug, rollback is a switch back
// with no hot-plug. Break-before-make (stop, detach, attach, start) is for guests that
// cannot hold two app disks.
enum class SwapOrder { kMakeBeforeBreak, kBreakBeforeMake };
// "make-before-break", "break-before-make".
std::string_view SwapOrderName(SwapOrder o);
// Inverse of SwapOrderName; kInvalidArgument for any other name.
Result<SwapOrder> SwapOrderFromName(std::string_view name);

}  // namespace vdswap
