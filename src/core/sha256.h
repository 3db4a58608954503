#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vdswap {

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; one object per digest.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // Lower-case hex of the digest. REQUIRES: called once.
  std::string HexDigest();

  static std::string Of(std::string_view bytes);
  // Digest of a file's bytes; kNotFound when it cannot be opened.
  static Result<std::string> OfFile(const std::string& path);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace vdswap
