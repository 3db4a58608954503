#include "api/token_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/files.h"

namespace vdswap {
namespace {

TEST(TokenAuthTest, AcceptsOnlyTheExactBearerToken) {
  TokenAuth auth("s3cret");
  EXPECT_TRUE(auth.Check("Bearer s3cret"));
  EXPECT_FALSE(auth.Check("Bearer s3cre"));
  EXPECT_FALSE(auth.Check("Bearer s3cret "));
  EXPECT_FALSE(auth.Check("bearer s3cret"));
  EXPECT_FALSE(auth.Check("s3cret"));
  EXPECT_FALSE(auth.Check(""));
  EXPECT_FALSE(auth.Check("Bearer "));
}

TEST(TokenAuthTest, ReadsTokenFileTrimmingWhitespace) {
  auto dir = TempDir::Create("/tmp", "auth");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/token";
  const std::string token(TokenAuth::kMinTokenBytes, 'k');
  ASSERT_TRUE(WriteFileAtomic(path, "  " + token + "\n", 0600).ok());
  auto auth = TokenAuth::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  EXPECT_TRUE(auth->Check("Bearer " + token));
}

TEST(TokenAuthTest, RefusesTokensShorterThan32Bytes) {
  auto dir = TempDir::Create("/tmp", "auth");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/token";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(31, 'k') + "\n", 0600).ok());
  auto auth = TokenAuth::FromFile(path);
  EXPECT_EQ(auth.status().code(), Code::kInvalidArgument);
  EXPECT_NE(auth.status().message().find("holds 31 bytes; a token needs at least 32"),
            std::string::npos)
      << auth.status().message();
}

TEST(TokenAuthTest, RefusesWorldReadableEmptyOrMissingFiles) {
  auto dir = TempDir::Create("/tmp", "auth");
  ASSERT_TRUE(dir.ok());
  std::string open_file = dir->path() + "/open";
  ASSERT_TRUE(WriteFileAtomic(open_file, "abc", 0644).ok());
  chmod(open_file.c_str(), 0644);
  EXPECT_EQ(TokenAuth::FromFile(open_file).status().code(), Code::kInvalidArgument);
  std::string empty = dir->path() + "/empty";
  ASSERT_TRUE(WriteFileAtomic(empty, "\n", 0600).ok());
  EXPECT_EQ(TokenAuth::FromFile(empty).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TokenAuth::FromFile(dir->path() + "/none").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vdswap
