#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace vdswap {

// Checks "Authorization: Bearer <token>" headers against one secret in constant time.
// Immutable after construction; thread-safe.
class TokenAuth {
 public:
  // The shortest token FromFile accepts: guessing one is out of reach.
  static constexpr size_t kMinTokenBytes = 32;

  // Reads the token from `path` (surrounding whitespace ignored). kInvalidArgument when the
  // file is missing, empty, readable by group/other, or holds fewer than kMinTokenBytes.
  static Result<TokenAuth> FromFile(const std::string& path);
  explicit TokenAuth(const std::string& token);

  // True when `authorization` is exactly "Bearer " + token. The comparison time does not
  // depend on where the strings differ, nor on the presented token's length.
  bool Check(std::string_view authorization) const;

 private:
  std::string token_digest_;  // SHA-256 of the token: compared digest to digest
};

}  // namespace vdswap
