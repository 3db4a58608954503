#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/status.h"

namespace vdswap {

using Json = nlohmann::json;

// Parses JSON without throwing; kInvalidArgument names `what`.
Result<Json> ParseJson(std::string_view text, std::string_view what);

// Parses JSON from a peer that may be hostile: kInvalidArgument when arrays and objects
// nest deeper than `max_depth`, found by a linear scan before the parser runs, so that
// neither parsing, copying nor destroying the document recurses without bound.
Result<Json> ParseUntrustedJson(std::string_view text, std::string_view what, int max_depth);

// The deepest nesting of arrays and objects in JSON `text` (brackets inside strings do not
// count); stops counting past `limit` and returns limit + 1. Linear, constant space.
int JsonNestingDepth(std::string_view text, int limit);

// Serializes without throwing: invalid UTF-8 is replaced, never an exception.
std::string DumpJson(const Json& j, int indent = -1);

}  // namespace vdswap
