#include "guest/agent/linux_env.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>

#include "core/files.h"
#include "guest/agent/socket_activation.h"

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

TEST(LinuxEnvTest, ListenReplacesAStaleUnixSocketAndAcceptsConnections) {
  auto dir = TempDir::Create("/tmp", "listen");
  ASSERT_TRUE(dir.ok());
  auto addr = ParseSocketAddress("unix:" + dir->path() + "/sub/app.sock");
  ASSERT_TRUE(addr.ok());
  LinuxEnv env;
  auto first = env.Listen(*addr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  env.CloseListener(*first);  // leaves the socket file behind, as a crashed agent does
  auto second = env.Listen(*addr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr->path.c_str());
  // Nobody accepts yet: the connection waits in the backlog instead of being refused.
  EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  close(c);
  env.CloseListener(*second);
}

TEST(LinuxEnvTest, ListenOnATakenPortIsUnavailable) {
  LinuxEnv env;
  auto any = env.Listen(*ParseSocketAddress("127.0.0.1:0"));
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ASSERT_EQ(getsockname(*any, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  int port = ntohs(sa.sin_port);
  auto again = env.Listen(*ParseSocketAddress("127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(again.status().code(), Code::kUnavailable);
  env.CloseListener(*any);
}

TEST(LinuxEnvTest, ListenEnvFollowsSystemdsProtocol) {
  AppManifest m;
  EXPECT_TRUE(ListenEnv(m, 42).empty());
  m.sockets = {{"http", *ParseSocketAddress("0.0.0.0:80")},
               {"admin", *ParseSocketAddress("unix:/run/a.sock")}};
  EXPECT_EQ(ListenEnv(m, 42), (std::vector<std::string>{"LISTEN_FDS=2", "LISTEN_PID=42",
                                                        "LISTEN_FDNAMES=http:admin"}));
  EXPECT_EQ(kListenFdsStart, 3);
}

TEST(LinuxEnvTest, ReadyNotificationCountsForItsSenderOnly) {
  LinuxEnv env;
  std::string name = env.NotifySocket();
  ASSERT_EQ(name.rfind("@vdswap-guest-notify-", 0), 0u) << name;
  EXPECT_FALSE(env.NotifiedReady(getpid()));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  const char kMsg[] = "STATUS=warming\nREADY=1";
  ASSERT_GT(sendto(fd, kMsg, sizeof kMsg - 1, 0, reinterpret_cast<sockaddr*>(&addr), len), 0);
  close(fd);
  EXPECT_TRUE(env.NotifiedReady(getpid()));
  EXPECT_FALSE(env.NotifiedReady(getpid() + 1));
}

}  // namespace
}  // namespace vdswap::guest
