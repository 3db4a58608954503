#pragma once

namespace vdswap {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace vdswap
