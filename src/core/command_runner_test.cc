#include "core/command_runner.h"

#include <gtest/gtest.h>

#include <chrono>

namespace vdswap {
namespace {

using std::chrono::milliseconds;

TEST(SubprocessRunnerTest, CapturesStdoutStderrAndExitCode) {
  SubprocessRunner runner;
  auto out = runner.Run({"sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->out, "out\n");
  EXPECT_EQ(out->err, "err\n");
  EXPECT_EQ(out->exit_code, 3);
}

TEST(SubprocessRunnerTest, PassesArgvWithoutAShell) {
  SubprocessRunner runner;
  auto out = runner.Run({"echo", "$HOME; rm -rf /", "'quoted'"}, {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->out, "$HOME; rm -rf / 'quoted'\n");
}

TEST(SubprocessRunnerTest, FeedsStdin) {
  SubprocessRunner runner;
  RunOptions opts;
  opts.stdin_data = std::string(300000, 'x');  // more than a pipe buffer
  auto out = runner.Run({"wc", "-c"}, opts);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::stoi(out->out), 300000);
}

TEST(SubprocessRunnerTest, KillsOnTimeout) {
  SubprocessRunner runner;
  RunOptions opts;
  opts.timeout = milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  // The grandchild keeps the pipe open: the whole process group must die.
  auto out = runner.Run({"sh", "-c", "sleep 30 & sleep 30"}, opts);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kUnavailable);
  EXPECT_NE(out.status().message().find("timed out"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(10));
}

// A tool reading hostile input may write without end: it is stopped at the cap.
TEST(SubprocessRunnerTest, StopsAChildThatWritesPastTheOutputCap) {
  SubprocessRunner runner;
  RunOptions opts;
  opts.max_output = size_t{1} << 20;
  auto start = std::chrono::steady_clock::now();
  auto out = runner.Run({"sh", "-c", "cat /dev/zero; sleep 30"}, opts);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "sh wrote more than 1048576 bytes of output; stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(SubprocessRunnerTest, MissingProgramIsUnavailable) {
  SubprocessRunner runner;
  auto out = runner.Run({"/nonexistent/program"}, {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kUnavailable);
}

TEST(SubprocessRunnerTest, RunOkTurnsNonZeroExitIntoError) {
  SubprocessRunner runner;
  auto out = runner.RunOk({"sh", "-c", "echo broken pipe >&2; exit 1"});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInternal);
  EXPECT_EQ(out.status().message(), "sh exited with status 1: broken pipe");
}

}  // namespace
}  // namespace vdswap
