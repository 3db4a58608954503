#include "guest/agent/linux_env.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "core/files.h"

namespace vdswap::guest {
namespace {

// /proc/self/mountinfo of a Debian 12 guest (systemd: everything shared) with an app
// root whose /dev bind brought /dev's submounts along.
constexpr char kMountinfo[] =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw\n"
    "24 23 0:21 / /dev/pts rw shared:3 - devpts devpts rw\n"
    "25 23 0:22 / /dev/shm rw shared:4 - tmpfs tmpfs rw\n"
    "40 22 0:25 / /run rw shared:12 - tmpfs tmpfs rw\n"
    "50 40 0:25 /vdswap/app /run/vdswap/app rw - tmpfs tmpfs rw\n"
    "51 50 254:32 / /run/vdswap/app/lower ro - erofs /dev/vdb ro\n"
    "52 50 0:30 / /run/vdswap/app/scratch rw - tmpfs tmpfs rw\n"
    "53 50 0:31 / /run/vdswap/app/root rw - overlay overlay rw\n"
    "54 53 0:32 / /run/vdswap/app/root/proc rw - proc proc rw\n"
    "55 53 0:5 / /run/vdswap/app/root/dev rw - devtmpfs udev rw\n"
    "56 55 0:21 / /run/vdswap/app/root/dev/pts rw - devpts devpts rw\n"
    "57 55 0:22 / /run/vdswap/app/root/dev/shm rw - tmpfs tmpfs rw\n"
    "58 53 254:16 /app /run/vdswap/app/root/data rw - ext4 /dev/vdc rw\n"
    "59 53 0:33 / /run/vdswap/app/root/my\\040dir rw - tmpfs tmpfs rw\n"
    "60 22 0:34 / /run/vdswap/apple rw - tmpfs tmpfs rw\n";

TEST(LinuxEnvTest, MountsUnderListsSubmountsDeepestFirst) {
  std::vector<std::string> want = {
      "/run/vdswap/app/root/my dir",  "/run/vdswap/app/root/data", "/run/vdswap/app/root/dev/shm",
      "/run/vdswap/app/root/dev/pts", "/run/vdswap/app/root/dev",  "/run/vdswap/app/root/proc",
      "/run/vdswap/app/root",         "/run/vdswap/app/scratch",   "/run/vdswap/app/lower"};
  EXPECT_EQ(MountsUnder(kMountinfo, "/run/vdswap/app"), want);
  EXPECT_EQ(MountsUnder(kMountinfo, "/run/vdswap/app/"), want);
}

TEST(LinuxEnvTest, MountsUnderExcludesTheDirectoryItselfAndSiblings) {
  auto dev = MountsUnder(kMountinfo, "/dev");
  EXPECT_EQ(dev, (std::vector<std::string>{"/dev/shm", "/dev/pts"}));
  EXPECT_TRUE(MountsUnder(kMountinfo, "/nowhere").empty());
}

TEST(LinuxEnvTest, FindToolSearchesPathThenTheSbinDirectories) {
  auto dir = TempDir::Create("/tmp", "findtool");
  ASSERT_TRUE(dir.ok());
  std::string tool = dir->path() + "/vdswap-test-tool";
  std::ofstream(tool) << "#!/bin/sh\n";
  chmod(tool.c_str(), 0755);
  std::string plain = dir->path() + "/not-executable";
  std::ofstream(plain) << "x";
  std::string saved = getenv("PATH") != nullptr ? getenv("PATH") : "";

  setenv("PATH", ("relative:" + dir->path()).c_str(), 1);
  EXPECT_EQ(FindTool("vdswap-test-tool"), tool);
  EXPECT_EQ(FindTool("not-executable"), "");
  // Not on PATH, but in /bin or /usr/bin (a service's PATH may lack the sbin dirs).
  setenv("PATH", "/nonexistent", 1);
  EXPECT_NE(FindTool("sh"), "");
  EXPECT_EQ(FindTool("vdswap-test-tool"), "");
  setenv("PATH", saved.c_str(), 1);
}

}  // namespace
}  // namespace vdswap::guest
