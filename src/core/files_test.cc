#include "core/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace vdswap {
namespace {

namespace fs = std::filesystem;

TempDir MakeDir() { return std::move(TempDir::Create("/tmp", "files-test")).value(); }

TEST(FilesTest, ReadFileReturnsTheWholeFileBinarySafe) {
  TempDir dir = MakeDir();
  const std::string file = dir.path() + "/blob";
  const std::string bytes("a\0b\nc", 5);
  ASSERT_TRUE(WriteFileAtomic(file, bytes).ok());
  auto read = ReadFile(file);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, bytes);
}

TEST(FilesTest, ReadOfAMissingFileIsNotFoundAndNamesIt) {
  auto read = ReadFile("/nonexistent/vdswap-file");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kNotFound);
  EXPECT_NE(read.status().message().find("/nonexistent/vdswap-file"), std::string::npos)
      << read.status().message();
}

TEST(FilesTest, WriteFileAtomicReplacesContentAndLeavesNoTemporary) {
  TempDir dir = MakeDir();
  const std::string file = dir.path() + "/config";
  ASSERT_TRUE(WriteFileAtomic(file, "old contents, longer than the new").ok());
  ASSERT_TRUE(WriteFileAtomic(file, "new").ok());
  EXPECT_EQ(*ReadFile(file), "new");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    names.push_back(e.path().filename());
  }
  EXPECT_EQ(names, std::vector<std::string>{"config"});
}

TEST(FilesTest, WriteFileAtomicAppliesTheMode) {
  TempDir dir = MakeDir();
  const std::string file = dir.path() + "/token";
  mode_t old_umask = umask(022);
  ASSERT_TRUE(WriteFileAtomic(file, "secret", 0600).ok());
  umask(old_umask);
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FilesTest, FailedWriteIsAnErrorAndKeepsTheOldFile) {
  TempDir dir = MakeDir();
  Status missing_dir = WriteFileAtomic(dir.path() + "/no-such-dir/file", "x");
  EXPECT_EQ(missing_dir.code(), Code::kInternal);
  EXPECT_NE(missing_dir.message().find("no-such-dir"), std::string::npos) << missing_dir.message();

  // Renaming over a non-empty directory fails after the temporary is written: the target
  // stays as it was and the temporary is removed.
  const std::string target = dir.path() + "/target";
  ASSERT_TRUE(fs::create_directory(target));
  ASSERT_TRUE(WriteFileAtomic(target + "/keep", "kept").ok());
  Status over_dir = WriteFileAtomic(target, "x");
  EXPECT_EQ(over_dir.code(), Code::kInternal);
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(*ReadFile(target + "/keep"), "kept");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    names.push_back(e.path().filename());
  }
  EXPECT_EQ(names, std::vector<std::string>{"target"});
}

TEST(FilesTest, SyncPathFlushesFilesAndDirectories) {
  TempDir dir = MakeDir();
  const std::string file = dir.path() + "/image";
  ASSERT_TRUE(WriteFileAtomic(file, "bytes").ok());
  Status file_sync = SyncPath(file);
  EXPECT_TRUE(file_sync.ok()) << file_sync.ToString();
  Status dir_sync = SyncPath(dir.path());
  EXPECT_TRUE(dir_sync.ok()) << dir_sync.ToString();
  EXPECT_EQ(*ReadFile(file), "bytes");
}

TEST(FilesTest, SyncOfAMissingPathIsAnErrorNamingIt) {
  Status s = SyncPath("/nonexistent/vdswap-image");
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_NE(s.message().find("/nonexistent/vdswap-image"), std::string::npos) << s.message();
}

TEST(FilesTest, StartWritebackLeavesContentAndALaterSyncSucceeds) {
  TempDir dir = MakeDir();
  const std::string file = dir.path() + "/image";
  ASSERT_TRUE(WriteFileAtomic(file, std::string(1 << 20, 'x')).ok());
  StartWriteback(file);
  Status synced = SyncPath(file);
  EXPECT_TRUE(synced.ok()) << synced.ToString();
  EXPECT_EQ(*ReadFile(file), std::string(1 << 20, 'x'));
}

TEST(FilesTest, StartWritebackOfAMissingPathCreatesNothing) {
  TempDir dir = MakeDir();
  const std::string missing = dir.path() + "/missing";
  StartWriteback(missing);  // best effort: errors surface in SyncPath
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_EQ(SyncPath(missing).code(), Code::kInternal);
}

TEST(FilesTest, TempDirIsCreatedUnderParentWithPrefixAndRemovedWithContents) {
  std::string path;
  {
    TempDir dir = MakeDir();
    path = dir.path();
    EXPECT_EQ(fs::path(path).parent_path(), "/tmp");
    EXPECT_EQ(fs::path(path).filename().string().rfind("files-test.", 0), 0u) << path;
    ASSERT_TRUE(fs::is_directory(path));
    ASSERT_TRUE(fs::create_directory(path + "/sub"));
    ASSERT_TRUE(WriteFileAtomic(path + "/sub/file", "x").ok());
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(FilesTest, TempDirsAreDistinct) {
  TempDir a = MakeDir();
  TempDir b = MakeDir();
  EXPECT_NE(a.path(), b.path());
}

TEST(FilesTest, ReleasedTempDirIsKept) {
  std::string released;
  {
    TempDir dir = MakeDir();
    released = dir.Release();
    EXPECT_TRUE(dir.path().empty());
  }
  EXPECT_TRUE(fs::is_directory(released));
  fs::remove_all(released);
}

TEST(FilesTest, MovedTempDirIsRemovedOnceByItsNewOwner) {
  std::string path;
  {
    TempDir outer = MakeDir();
    path = outer.path();
    {
      TempDir inner(std::move(outer));
      EXPECT_EQ(inner.path(), path);
      EXPECT_TRUE(outer.path().empty());  // NOLINT(bugprone-use-after-move): the contract
    }
    EXPECT_FALSE(fs::exists(path));
  }
}

TEST(FilesTest, TempDirUnderAMissingParentIsAnError) {
  auto dir = TempDir::Create("/nonexistent/vdswap-parent", "x");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), Code::kInternal);
  EXPECT_NE(dir.status().message().find("/nonexistent/vdswap-parent"), std::string::npos)
      << dir.status().message();
}

}  // namespace
}  // namespace vdswap
