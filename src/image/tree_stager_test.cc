#include "image/tree_stager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/files.h"
#include "testing/test_archives.h"

namespace vdswap {
namespace {

using testing::TarEntry;
using testing::WriteTar;

class TreeStagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::Create("/tmp", "stager");
    ASSERT_TRUE(d.ok());
    dir_ = std::make_unique<TempDir>(std::move(*d));
    root_ = dir_->path() + "/root";
    mkdir(root_.c_str(), 0755);
  }
  Status Apply(const std::vector<TarEntry>& entries, bool layer = false, bool gzip = false) {
    std::string tar = dir_->path() + "/t" + std::to_string(n_++) + ".tar";
    WriteTar(tar, entries, gzip);
    return stager_->Apply(tar, layer);
  }
  bool Exists(const std::string& rel) {
    struct stat st {};
    return lstat((root_ + "/" + rel).c_str(), &st) == 0;
  }
  void Expect(const Status& s, const std::string& needle) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  }

  FakeClock clock_;
  std::unique_ptr<TempDir> dir_;
  std::string root_;
  std::unique_ptr<TreeStager> stager_;
  int n_ = 0;

  void Init(StageLimits limits = {}) {
    stager_ = std::make_unique<TreeStager>(root_, limits, clock_);
  }
};

TEST_F(TreeStagerTest, ExtractsFilesDirsAndLinks) {
  Init();
  ASSERT_TRUE(Apply({{"./bin/", TarEntry::kDir},
                     {"bin/app", TarEntry::kFile, "#!/bin/sh\n", "", 0755},
                     {"bin/alias", TarEntry::kSymlink, "", "/bin/app"},
                     {"bin/hard", TarEntry::kHardlink, "", "bin/app"}})
                  .ok());
  EXPECT_EQ(testing::Slurp(root_ + "/bin/hard"), "#!/bin/sh\n");
  EXPECT_EQ(std::filesystem::read_symlink(root_ + "/bin/alias"), "/bin/app");
  EXPECT_EQ(stager_->stats().bytes, 10u);
}

TEST_F(TreeStagerTest, RefusesDotDot) {
  Init();
  Expect(Apply({{"a/../../evil", TarEntry::kFile, "x"}}), "escapes the root");
  EXPECT_FALSE(std::filesystem::exists(dir_->path() + "/evil"));
}

TEST_F(TreeStagerTest, RefusesAbsolutePaths) {
  Init();
  Expect(Apply({{"/etc/evil", TarEntry::kFile, "x"}}), "absolute path");
}

TEST_F(TreeStagerTest, RefusesWritesThroughAnAbsoluteSymlink) {
  Init();
  std::string outside = dir_->path() + "/outside";
  mkdir(outside.c_str(), 0755);
  Expect(Apply({{"etc", TarEntry::kSymlink, "", outside}, {"etc/passwd", TarEntry::kFile, "x"}}),
         "written through the symlink 'etc'");
  EXPECT_FALSE(std::filesystem::exists(outside + "/passwd"));
}

TEST_F(TreeStagerTest, RefusesWritesThroughASymlinkFromAnEarlierLayer) {
  Init();
  ASSERT_TRUE(Apply({{"lib", TarEntry::kSymlink, "", "../.."}}, true).ok());
  Expect(Apply({{"lib/x", TarEntry::kFile, "x"}}, true), "written through the symlink 'lib'");
}

TEST_F(TreeStagerTest, RefusesHardlinksOutside) {
  Init();
  Expect(Apply({{"h", TarEntry::kHardlink, "", "../../etc/shadow"}}), "leaves the root");
  Expect(Apply({{"h", TarEntry::kHardlink, "", "/etc/shadow"}}), "leaves the root");
}

TEST_F(TreeStagerTest, RefusesHardlinkThroughSymlink) {
  Init();
  Expect(Apply({{"s", TarEntry::kSymlink, "", "/etc"}, {"h", TarEntry::kHardlink, "", "s/passwd"}}),
         "not a regular file extracted earlier");
}

TEST_F(TreeStagerTest, RefusesDeviceNodesAndFifos) {
  Init();
  Expect(Apply({{"dev/null", TarEntry::kCharDevice}}), "device nodes are not allowed");
  Expect(Apply({{"pipe", TarEntry::kFifo}}), "FIFOs and sockets");
}

TEST_F(TreeStagerTest, RefusesTruncatedGzip) {
  Init();
  std::string tar = dir_->path() + "/t.tar.gz";
  WriteTar(tar, {{"big", TarEntry::kFile, std::string(200000, 'z') + "tail"}}, true);
  std::string bytes = testing::Slurp(tar);
  ASSERT_TRUE(WriteFileAtomic(tar, bytes.substr(0, bytes.size() / 2)).ok());
  Status s = stager_->Apply(tar, false);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
}

TEST_F(TreeStagerTest, EnforcesSizeLimits) {
  Init({.max_bytes = 100, .max_entries = 10, .max_path = 4096});
  Expect(Apply({{"big", TarEntry::kFile, std::string(101, 'x')}}), "grows past 100 bytes");
}

TEST_F(TreeStagerTest, AppliesWhiteoutsAndOpaqueDirs) {
  Init();
  ASSERT_TRUE(Apply({{"a/keep", TarEntry::kFile, "1"},
                     {"a/gone", TarEntry::kFile, "1"},
                     {"b/old1", TarEntry::kFile, "1"},
                     {"b/old2", TarEntry::kFile, "1"}},
                    true)
                  .ok());
  ASSERT_TRUE(Apply({{"a/.wh.gone", TarEntry::kFile},
                     {"b/new", TarEntry::kFile, "2"},
                     {"b/.wh..wh..opq", TarEntry::kFile}},
                    true)
                  .ok());
  EXPECT_TRUE(Exists("a/keep"));
  EXPECT_FALSE(Exists("a/gone"));
  EXPECT_FALSE(Exists("a/.wh.gone"));
  EXPECT_FALSE(Exists("b/old1"));
  EXPECT_FALSE(Exists("b/old2"));
  EXPECT_TRUE(Exists("b/new"));  // the opaque layer's own entries stay
  EXPECT_FALSE(Exists("b/.wh..wh..opq"));
}

TEST_F(TreeStagerTest, LaterLayerReplacesFileWithDirectory) {
  Init();
  ASSERT_TRUE(Apply({{"x", TarEntry::kFile, "1"}}, true).ok());
  ASSERT_TRUE(Apply({{"x", TarEntry::kDir}, {"x/y", TarEntry::kFile, "2"}}, true).ok());
  EXPECT_EQ(testing::Slurp(root_ + "/x/y"), "2");
}

}  // namespace
}  // namespace vdswap
