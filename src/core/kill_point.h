#pragma once

#include <string_view>

namespace vdswap {

// Named places where a crash test may kill the process for real: when the environment
// variable VDSWAPD_KILL_AT (read once) equals `point`, KillPoint(point) sends the process
// SIGKILL, exactly as an operator's `kill -9` or the OOM killer would at that moment.
// Without the variable it costs one comparison of an empty string. Points: a swap's
// journal rows ("attached/intent", "switched/done", …: right after the row is appended)
// and an image upload's "upload/created" (the volume exists, no bytes yet) and
// "upload/written" (every byte written, the upload not yet recorded).
void KillPoint(std::string_view point);

}  // namespace vdswap
