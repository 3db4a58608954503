#include "image/caller_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/files.h"

namespace vdswap {
namespace {

class CallerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::Create("/tmp", "callerfile");
    ASSERT_TRUE(d.ok());
    dir_ = std::make_unique<TempDir>(std::move(*d));
  }
  std::string Path(const std::string& name) { return dir_->path() + "/" + name; }

  // `path` is refused with kInvalidArgument whose message holds `needle`.
  static void ExpectRefused(const std::string& path, const std::string& needle) {
    auto f = CallerFile::Open("disk", path);
    ASSERT_FALSE(f.ok()) << path;
    EXPECT_EQ(f.status().code(), Code::kInvalidArgument) << f.status().ToString();
    EXPECT_NE(f.status().message().find(needle), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find("disk '" + path + "'"), std::string::npos)
        << f.status().message();
  }

  std::unique_ptr<TempDir> dir_;
};

TEST_F(CallerFileTest, RefusesUrlsProtocolSpecsAndRelativePaths) {
  ExpectRefused("nbd://127.0.0.1:10809/x", "absolute path");
  ExpectRefused("nbd:127.0.0.1:10809", "absolute path");
  ExpectRefused("http://example.com/disk.img", "absolute path");
  ExpectRefused("json:{\"file.driver\":\"nbd\"}", "absolute path");
  ExpectRefused("disk.img", "absolute path");
  ExpectRefused("", "absolute path");
}

TEST_F(CallerFileTest, RefusesProcSysAndDevEvenThroughASymlink) {
  ExpectRefused("/proc/cpuinfo", "under /proc");
  ExpectRefused("/proc/self/environ", "under /proc");
  ExpectRefused("/sys/kernel/uevent_seqnum", "under /sys");
  ExpectRefused("/dev/null", "under /dev");
  ASSERT_EQ(symlink("/proc/cpuinfo", Path("cpuinfo").c_str()), 0);
  ExpectRefused(Path("cpuinfo"), "under /proc");
}

TEST_F(CallerFileTest, RefusesDirectoriesFifosSocketsAndEmptyFiles) {
  ExpectRefused(dir_->path(), "not a regular file");
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0600), 0);
  ExpectRefused(Path("fifo"), "not a regular file");  // and does not block on open
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock_path = Path("sock");
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  sock_path.copy(addr.sun_path, sock_path.size());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ExpectRefused(sock_path, "cannot be opened");
  close(sock);
  ASSERT_TRUE(WriteFileAtomic(Path("empty"), "").ok());
  ExpectRefused(Path("empty"), "is empty");
  ExpectRefused(Path("missing"), "cannot be read");
}

TEST_F(CallerFileTest, CopiesARegularFileThroughASymlinkByteForByte) {
  std::string data(3 << 20, 'x');
  data[12345] = 'y';
  ASSERT_TRUE(WriteFileAtomic(Path("disk.img"), data).ok());
  ASSERT_EQ(symlink(Path("disk.img").c_str(), Path("link").c_str()), 0);
  auto f = CallerFile::Open("disk", Path("link"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->size(), data.size());
  ASSERT_TRUE(f->CopyTo(Path("copy")).ok());
  EXPECT_EQ(*ReadFile(Path("copy")), data);
  // It never overwrites: the destination is new.
  EXPECT_EQ(f->CopyTo(Path("copy")).code(), Code::kInternal);
}

// A write error part way (as ENOSPC on a full state dir): here the file size limit, which
// makes write() fail with EFBIG once 64 KiB are written.
TEST_F(CallerFileTest, AWriteErrorPartWayFailsTheCopyAndLeavesNothing) {
  ASSERT_TRUE(WriteFileAtomic(Path("disk.img"), std::string(1 << 20, 'x')).ok());
  auto f = CallerFile::Open("disk", Path("disk.img"));
  ASSERT_TRUE(f.ok());
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 64 << 10;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Status s = f->CopyTo(Path("copy"));
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_NE(s.message().find("write: File too large"), std::string::npos) << s.message();
  EXPECT_NE(access(Path("copy").c_str(), F_OK), 0) << "a failed copy is removed";
}

TEST_F(CallerFileTest, AFileThatShrinksWhileCopiedFails) {
  ASSERT_TRUE(WriteFileAtomic(Path("disk.img"), std::string(8192, 'x')).ok());
  auto f = CallerFile::Open("disk", Path("disk.img"));
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(truncate(Path("disk.img").c_str(), 4096), 0);
  Status s = f->CopyTo(Path("copy"));
  EXPECT_NE(s.message().find("changed size"), std::string::npos) << s.message();
  EXPECT_NE(access(Path("copy").c_str(), F_OK), 0) << "a failed copy is removed";
}

}  // namespace
}  // namespace vdswap
