#include "image/os_release_reader.h"

#include <gtest/gtest.h>

#include "core/files.h"

namespace vdswap {
namespace {

// Disk images built with the real tools: an ext4 root (mkfs.ext4 -d), placed whole or as a
// partition of an MBR or GPT table (sfdisk) behind a small FAT-typed first partition.
class OsReleaseReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("/tmp", "osrelease-test");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }
  // An ext4 filesystem of 8 MiB holding `file` with `text` (no file when `file` is "").
  std::string Root(const std::string& file, const std::string& text) {
    const std::string tree = dir_->path() + "/tree";
    std::string img = dir_->path() + "/root.img";
    Run({"mkdir", "-p", tree + "/etc", tree + "/usr/lib"});
    if (!file.empty()) {
      EXPECT_TRUE(WriteFileAtomic(tree + file, text).ok());
    }
    Run({"mkfs.ext4", "-q", "-F", "-d", tree, img, "8M"});
    return img;
  }
  // A 16 MiB disk with `table` ("dos" or "gpt"): partition 1 (1 MiB, empty) at sector
  // 2048, partition 2 = `root` at sector 4096.
  std::string Partitioned(const std::string& table, const std::string& root) {
    std::string disk = dir_->path() + "/disk-" + table + ".img";
    Run({"truncate", "-s", "16M", disk});
    const std::string types = table == "gpt" ? "C12A7328-F81F-11D2-BA4B-00A0C93EC93B,"
                                               "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
                                             : "c,83";
    RunOptions in;
    in.stdin_data = "label: " + table +
                    "\nstart=2048, size=2048, type=" + types.substr(0, types.find(',')) +
                    "\nstart=4096, size=16384, type=" + types.substr(types.find(',') + 1) + "\n";
    auto out = runner_.RunOk({"sfdisk", "-q", disk}, in);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    Run({"dd", "if=" + root, "of=" + disk, "bs=512", "seek=4096", "conv=notrunc", "status=none"});
    return disk;
  }
  void Run(const std::vector<std::string>& argv) {
    auto out = runner_.RunOk(argv);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
  }

  SubprocessRunner runner_;
  std::unique_ptr<TempDir> dir_;
};

TEST_F(OsReleaseReaderTest, ReadsAWholeDiskFilesystem) {
  OsReleaseProbe p = ReadOsRelease(runner_, Root("/etc/os-release", "ID=debian\nVERSION_ID=12\n"));
  EXPECT_EQ(p.fields["ID"], "debian");
  EXPECT_EQ(p.fields["VERSION_ID"], "12");
  EXPECT_EQ(p.found_in, "the whole disk");
}

TEST_F(OsReleaseReaderTest, FindsTheRootPartitionOfMbrAndGptDisks) {
  const std::string root = Root("/usr/lib/os-release", "ID=ubuntu\nVERSION_ID=\"24.04\"\n");
  for (const std::string table : {"dos", "gpt"}) {
    OsReleaseProbe p = ReadOsRelease(runner_, Partitioned(table, root));
    EXPECT_EQ(p.fields["ID"], "ubuntu") << table << ": " << p.not_found;
    EXPECT_EQ(p.fields["VERSION_ID"], "24.04") << table;
    EXPECT_EQ(p.found_in, "partition 2") << table;
  }
}

TEST_F(OsReleaseReaderTest, SaysWhatItTriedWhenThereIsNone) {
  OsReleaseProbe p = ReadOsRelease(runner_, Partitioned("gpt", Root("", "")));
  EXPECT_TRUE(p.fields.empty());
  EXPECT_NE(p.not_found.find("tried the whole disk, partition 1, partition 2"), std::string::npos)
      << p.not_found;
  const std::string junk = dir_->path() + "/junk.img";
  ASSERT_TRUE(WriteFileAtomic(junk, std::string(1 << 20, 'x')).ok());
  EXPECT_TRUE(ReadOsRelease(runner_, junk).fields.empty());
}

}  // namespace
}  // namespace vdswap
