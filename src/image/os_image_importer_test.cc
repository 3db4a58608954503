#include "image/os_image_importer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/files.h"
#include "image/image_test_fixture.h"

namespace fs = std::filesystem;

namespace vdswap {
namespace {

class OsImageImporterTest : public testing::ImageFixture {
 protected:
  // An import refused with kInvalidArgument mentioning `needle`, before qemu-img or
  // debugfs ever saw the caller's path, and with nothing new in the state dir.
  void ExpectImportRefused(const OsImportRequest& req, const std::string& needle) {
    auto before = StateFiles();
    runner_.Forget();
    auto r = importer_->Import(req, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    for (const auto& arg : runner_.Args()) {
      for (const auto* p : {&req.disk, &req.kernel, &req.initrd}) {
        if (!p->empty()) {
          EXPECT_EQ(arg.find(*p), std::string::npos) << arg;
        }
      }
    }
    EXPECT_EQ(StateFiles(), before);
  }
};

TEST_F(OsImageImporterTest, ImportsRawOsDiskReadingOsRelease) {
  std::string root = dir_->path() + "/osroot";
  fs::create_directories(root + "/etc");
  ASSERT_TRUE(WriteFileAtomic(root + "/etc/os-release", "ID=vdswap-testos\nVERSION_ID=7\n").ok());
  std::string disk = dir_->path() + "/os.img";
  ASSERT_TRUE(runner_.RunOk({"mkfs.ext4", "-q", "-F", "-d", root, disk, "8M"}).ok());
  std::string kernel = dir_->path() + "/vmlinuz";
  ASSERT_TRUE(WriteFileAtomic(kernel, "kernel").ok());
  auto r = importer_->Import({disk, kernel, "", "console=ttyS0", "testos", ""}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "7");
  EXPECT_EQ(r->meta["os_release"]["ID"], "vdswap-testos");
  EXPECT_EQ(r->kernel_path(), r->dir + "/vmlinuz");
  EXPECT_EQ(r->initrd_path(), "");
  EXPECT_EQ(r->cmdline(), "console=ttyS0");
}

// Where os-release cannot be read (here a qcow2 disk), the caller states the OS; the
// firmware is part of the image.
TEST_F(OsImageImporterTest, TakesTheStatedOsAndFirmware) {
  std::string disk = dir_->path() + "/os.qcow2";
  ASSERT_TRUE(runner_.RunOk({"qemu-img", "create", "-q", "-f", "qcow2", disk, "8M"}).ok());
  std::vector<Json> progress;
  auto plain = importer_->Import({disk, "", "", "", "os", "1"},
                                 [&](const Json& e) { progress.push_back(e); });
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->meta["os_release"].empty());
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(progress.back().value("message", "").find("--os-id"), std::string::npos);

  OsImportRequest req{disk, "", "", "", "rhel", ""};
  req.os_id = "rhel";
  req.os_version = "9.4";
  req.firmware = "efi";
  auto stated = importer_->Import(req, nullptr);
  ASSERT_TRUE(stated.ok()) << stated.status().ToString();
  EXPECT_EQ(stated->meta["os_release"]["ID"], "rhel");
  EXPECT_EQ(stated->version, "9.4");
  EXPECT_EQ(stated->firmware(), "efi");
  EXPECT_NE(stated->digest, plain->digest);
  EXPECT_EQ(stated->meta["disk_sha256"], plain->meta["disk_sha256"]);

  req.os_version.clear();
  EXPECT_EQ(importer_->Import(req, nullptr).status().code(), Code::kInvalidArgument);
  req.os_version = "9";
  req.firmware = "coreboot";
  EXPECT_EQ(importer_->Import(req, nullptr).status().code(), Code::kInvalidArgument);
}

TEST_F(OsImageImporterTest, RefusesBackingFilesAndJunk) {
  std::string base = dir_->path() + "/base.img";
  std::string overlay = dir_->path() + "/overlay.qcow2";
  ASSERT_TRUE(runner_.RunOk({"qemu-img", "create", "-q", "-f", "raw", base, "1M"}).ok());
  ASSERT_TRUE(
      runner_.RunOk({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay})
          .ok());
  auto r = importer_->Import({overlay, "", "", "", "os", ""}, nullptr);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("backing file"), std::string::npos);
  EXPECT_EQ(
      importer_->Import({dir_->path() + "/none", "", "", "", "os", ""}, nullptr).status().code(),
      Code::kInvalidArgument);
}

TEST_F(OsImageImporterTest, ReadsOnlyRegularLocalFiles) {
  const std::string disk = OsDisk();
  ExpectImportRefused({"nbd://127.0.0.1:10809/export", "", "", "", "os", ""}, "absolute path");
  ExpectImportRefused({"nbd:127.0.0.1:10809", "", "", "", "os", ""}, "absolute path");
  ExpectImportRefused({"/dev/zero", "", "", "", "os", ""}, "under /dev");
  ExpectImportRefused({dir_->path(), "", "", "", "os", ""}, "not a regular file");
  ExpectImportRefused({disk, "/proc/cpuinfo", "", "", "os", ""}, "kernel '/proc/cpuinfo'");
  const std::string empty = dir_->path() + "/empty";
  ASSERT_TRUE(WriteFileAtomic(empty, "").ok());
  ExpectImportRefused({disk, empty, "", "", "os", ""}, "kernel '" + empty + "' is empty");
  ExpectImportRefused({disk, disk, empty, "", "os", ""}, "initrd '" + empty + "' is empty");
}

// A small text file is "raw" to qemu-img; a disk's size is whole sectors.
TEST_F(OsImageImporterTest, RefusesAFileThatIsNoDisk) {
  const std::string secret = dir_->path() + "/shadow";
  ASSERT_TRUE(WriteFileAtomic(secret, "root:$6$salt$hash:19000:0:99999:7:::\n", 0600).ok());
  auto before = StateFiles();
  auto r = importer_->Import({secret, "", "", "", "os", ""}, nullptr);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("not a disk image"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(StateFiles(), before);
}

TEST_F(OsImageImporterTest, RunsQemuImgOnlyOnItsOwnCopyAfterDoubleDash) {
  const std::string disk = OsDisk();
  runner_.Forget();
  ASSERT_TRUE(importer_->Import({disk, "", "", "", "os", ""}, nullptr).ok());
  for (const auto& arg : runner_.Args()) EXPECT_EQ(arg.find(disk), std::string::npos) << arg;
  const auto args = runner_.Args();
  auto dash = std::find(args.begin(), args.end(), "--");
  ASSERT_NE(dash, args.end());
  ASSERT_NE(dash + 1, args.end());
  EXPECT_EQ((dash + 1)->rfind(state_ + "/tmp/import", 0), 0u) << *(dash + 1);
}

TEST_F(OsImageImporterTest, RefusesControlCharactersInVersionAndCmdline) {
  const std::string disk = OsDisk();
  ExpectImportRefused({disk, "", "", "", "os", "7\n8"}, "version '7\\x0a8'");
  ExpectImportRefused({disk, disk, "", "console=ttyS0\rroot=/dev/vda", "os", ""},
                      "kernel command line 'console=ttyS0\\x0droot=/dev/vda' contains control");
}

}  // namespace
}  // namespace vdswap
