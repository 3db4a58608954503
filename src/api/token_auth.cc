#include "api/token_auth.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include "core/files.h"
#include "core/sha256.h"

namespace vdswap {

Result<TokenAuth> TokenAuth::FromFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return InvalidArgument("token file '" + path + "' not found");
  if ((st.st_mode & 077) != 0) {
    return InvalidArgument("token file '" + path + "' is readable by others; chmod 600 it");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto first = text.find_first_not_of(" \t\r\n");
  auto last = text.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) return InvalidArgument("token file '" + path + "' is empty");
  std::string token = text.substr(first, last - first + 1);
  if (token.size() < kMinTokenBytes) {
    return InvalidArgument("token file '" + path + "' holds " + std::to_string(token.size()) +
                           " bytes; a token needs at least " + std::to_string(kMinTokenBytes) +
                           " (e.g. `head -c 32 /dev/urandom | base64 > " + path + "`)");
  }
  return TokenAuth(token);
}

TokenAuth::TokenAuth(const std::string& token) : token_digest_(Sha256::Of(token)) {}

bool TokenAuth::Check(std::string_view authorization) const {
  constexpr std::string_view kPrefix = "Bearer ";
  bool prefixed = authorization.substr(0, kPrefix.size()) == kPrefix;
  std::string presented =
      Sha256::Of(prefixed ? authorization.substr(kPrefix.size()) : std::string_view());
  // Both digests have the same length, so CRYPTO_memcmp runs over all of them.
  bool same = CRYPTO_memcmp(presented.data(), token_digest_.data(), token_digest_.size()) == 0;
  return prefixed && same;
}

}  // namespace vdswap
