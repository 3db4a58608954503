#include "core/files.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

TEST(FilesTest, WriteFileAtomicThenSyncFileAndDirectory) {
  auto dir = TempDir::Create("/tmp", "files-test");
  ASSERT_TRUE(dir.ok());
  const std::string file = dir->path() + "/image";
  ASSERT_TRUE(WriteFileAtomic(file, "bytes").ok());
  StartWriteback(file);
  EXPECT_TRUE(SyncPath(file).ok());
  EXPECT_TRUE(SyncPath(dir->path()).ok());
  EXPECT_EQ(*ReadFile(file), "bytes");
}

TEST(FilesTest, SyncOfAMissingPathNamesIt) {
  Status s = SyncPath("/nonexistent/vdswap-image");
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_NE(s.message().find("/nonexistent/vdswap-image"), std::string::npos) << s.message();
  StartWriteback("/nonexistent/vdswap-image");  // best effort: no crash, no error
}

}  // namespace
}  // namespace vdswap
