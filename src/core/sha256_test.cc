#include "core/sha256.h"

#include <gtest/gtest.h>

#include "core/files.h"

namespace vdswap {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256::Of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::Of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.HexDigest(), Sha256::Of("abc"));
}

TEST(Sha256Test, OfFile) {
  auto dir = TempDir::Create("/tmp", "sha");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "abc").ok());
  EXPECT_EQ(*Sha256::OfFile(path), Sha256::Of("abc"));
  EXPECT_EQ(Sha256::OfFile(dir->path() + "/missing").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace vdswap
