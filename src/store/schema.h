#pragma once

#include <string>
#include <vector>

namespace vdswap {

// The schema as an ordered list of migrations; migration i brings user_version from i to
// i+1. Append only: a released migration is never edited.
const std::vector<std::string>& SchemaMigrations();

}  // namespace vdswap
