#include "core/dir_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace vdswap {
namespace {

class DirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dirlock.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

// Whether another process can take the lock right now (flock locks belong to the open
// file description, so the test asks a child process).
bool OtherProcessCanLock(const std::string& dir) {
  pid_t pid = fork();
  if (pid == 0) _exit(DirLock::Acquire(dir, "test.lock").ok() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(DirLockTest, SecondHolderIsRefusedWithThePid) {
  auto first = DirLock::Acquire(dir_, "test.lock");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_FALSE(OtherProcessCanLock(dir_));
  auto second = DirLock::Acquire(dir_, "test.lock");  // another open file: refused too
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("(pid " + std::to_string(getpid()) + ")"),
            std::string::npos)
      << second.status().message();
}

TEST_F(DirLockTest, ReleasedWhenTheHolderGoes) {
  {
    auto held = DirLock::Acquire(dir_, "test.lock");
    ASSERT_TRUE(held.ok());
  }
  EXPECT_TRUE(OtherProcessCanLock(dir_));
}

TEST_F(DirLockTest, MissingDirectoryIsAnError) {
  auto r = DirLock::Acquire(dir_ + "/nope", "test.lock");
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace vdswap
