#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/status.h"

namespace vdswap {

using Json = nlohmann::json;

// Parses JSON without throwing; kInvalidArgument names `what` and the parse position.
Result<Json> ParseJson(std::string_view text, std::string_view what);

// Serializes without throwing: invalid UTF-8 is replaced, never an exception.
std::string DumpJson(const Json& j, int indent = -1);

}  // namespace vdswap
