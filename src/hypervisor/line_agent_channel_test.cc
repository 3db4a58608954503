#include "hypervisor/line_agent_channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <thread>

#include "protocol/agent_protocol.h"

namespace vdswap {
namespace {

using std::chrono::milliseconds;

// A channel over one end of a socketpair; the test plays the agent on the other end.
class LineAgentChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    agent_ = UniqueFd(fds[1]);
    channel_ = std::make_unique<LineAgentChannel>(SocketByteStream(UniqueFd(fds[0])), "vm1");
  }

  // Reads one request line from the channel (waiting up to 5 s); returns its id.
  Json ReadRequestId() {
    std::string line;
    char c;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::recv(agent_.get(), &c, 1, 0);
      if (n == 1 && c == '\n') break;
      if (n == 1) line += c;
      if (n <= 0) std::this_thread::sleep_for(milliseconds(1));
    }
    Json id;
    EXPECT_TRUE(DecodeRequest(line, &id).ok()) << line;
    return id;
  }
  void Write(const std::string& bytes) {
    ASSERT_EQ(::send(agent_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Sends all of `data` as fast as the channel reads it; false when `stop` was set or the
  // channel went first.
  bool SendAll(std::string_view data, const std::atomic<bool>& stop) {
    while (!data.empty()) {
      if (stop) return false;
      ssize_t n = ::send(agent_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN) {
        return false;
      } else {
        std::this_thread::sleep_for(milliseconds(1));
      }
    }
    return true;
  }
  // Sends `unit` over and over, about `total` bytes in all; returns the bytes sent.
  size_t Flood(const std::string& unit, size_t total, const std::atomic<bool>& stop) {
    std::string chunk;
    while (chunk.size() < 65536) chunk += unit;
    size_t sent = 0;
    while (sent < total && SendAll(chunk, stop)) sent += chunk.size();
    return sent;
  }
  // Runs `guest` (the hostile agent) while the channel makes one call of `timeout`.
  Result<Json> CallWhile(const std::function<void(const std::atomic<bool>&)>& guest,
                         milliseconds timeout) {
    std::atomic<bool> stop{false};
    std::thread agent([&] {
      ReadRequestId();
      guest(stop);
    });
    auto r = channel_->Call(AgentOp::kStatus, nullptr, timeout);
    stop = true;
    agent.join();
    return r;
  }

  UniqueFd agent_;
  std::unique_ptr<LineAgentChannel> channel_;
};

TEST_F(LineAgentChannelTest, SkipsRepliesToOtherRequestsAndNoise) {
  std::thread agent([this] {
    Json id = ReadRequestId();
    Write("not json\n");
    Write(R"({"id": "someone-else", "ok": true, "result": {"agent_version": "x"}})"
          "\n");
    // The matching reply, split across writes.
    std::string reply = R"({"id": )" + id.dump() +
                        R"(, "ok": true, "result": {"v": 7}})"
                        "\n";
    Write(reply.substr(0, 10));
    std::this_thread::sleep_for(milliseconds(20));
    Write(reply.substr(10));
  });
  auto r = channel_->Call(AgentOp::kHello, nullptr, milliseconds(5000));
  agent.join();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["v"], 7);
}

TEST_F(LineAgentChannelTest, AgentErrorsKeepTheirCodeAndNameTheVm) {
  std::thread agent([this] {
    Json id = ReadRequestId();
    Write(R"({"id": )" + id.dump() +
          R"(, "ok": false, "error": {"code": "not_found", "message": "no disk"}})"
          "\n");
  });
  auto r = channel_->Call(AgentOp::kAppStart, Json::object(), milliseconds(5000));
  agent.join();
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "agent of vm 'vm1': no disk");
}

TEST_F(LineAgentChannelTest, NoAnswerIsUnavailableAtTheDeadline) {
  auto start = std::chrono::steady_clock::now();
  auto r = channel_->Call(AgentOp::kStatus, nullptr, milliseconds(200));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("did not answer 'status' within 200 ms"), std::string::npos)
      << r.status().message();
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, milliseconds(2000));
}

TEST_F(LineAgentChannelTest, AClosedChannelEndsTheCallAtOnce) {
  agent_.reset();
  auto start = std::chrono::steady_clock::now();
  auto r = channel_->Call(AgentOp::kStatus, nullptr, milliseconds(5000));
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

// A guest that floods a line without end: the call fails at the line cap, long before its
// deadline, holding no more than the cap; the channel stays failed.
TEST_F(LineAgentChannelTest, AHundredMegabytesWithoutNewlineFailAtTheLineCap) {
  size_t sent = 0;
  auto start = std::chrono::steady_clock::now();
  auto r =
      CallWhile([&](const std::atomic<bool>& stop) { sent = Flood("x", size_t{100} << 20, stop); },
                milliseconds(30000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_EQ(r.status().message(),
            "agent of vm 'vm1' sent an invalid reply: a line longer than 1048576 bytes");
  EXPECT_LT(sent, size_t{100} << 20);
  EXPECT_EQ(channel_->Call(AgentOp::kStatus, nullptr, milliseconds(100)).status().message(),
            r.status().message());
}

// Short lines that are not the reply, without end: the call fails at the per-call cap.
TEST_F(LineAgentChannelTest, AFloodOfOtherRepliesFailsAtTheByteCap) {
  auto r = CallWhile(
      [&](const std::atomic<bool>& stop) {
        Flood(R"({"id":"other","ok":true,"result":{}})"
              "\n",
              size_t{64} << 20, stop);
      },
      milliseconds(30000));
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_NE(r.status().message().find("sent an invalid reply: more than 8388608 bytes during "
                                      "'status'"),
            std::string::npos)
      << r.status().message();
}

// A reply nested a hundred thousand deep (800 KB, under the line cap) is skipped without
// being parsed; the call names it when no valid reply follows by the deadline.
TEST_F(LineAgentChannelTest, ADeeplyNestedReplyIsNamedAtTheDeadline) {
  auto r = CallWhile(
      [&](const std::atomic<bool>& stop) {
        SendAll(R"({"ok":true,"result":{"x":)" + std::string(400000, '[') +
                    std::string(400000, ']') + "}}\n",
                stop);
      },
      milliseconds(300));
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_EQ(r.status().message(),
            "agent of vm 'vm1' sent an invalid reply to 'status': agent reply nests deeper than "
            "16 levels");
}

TEST(ConnectUnixSocketTest, NobodyListeningIsUnavailable) {
  auto r = ConnectUnixSocket("/nonexistent/agent.sock");
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/agent.sock"), std::string::npos);
}

}  // namespace
}  // namespace vdswap
