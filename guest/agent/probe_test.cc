#include "guest/agent/probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "core/unique_fd.h"

namespace vdswap::guest {
namespace {

using std::chrono::milliseconds;

// A listening socket on 127.0.0.1 with a kernel-chosen port.
class Listener {
 public:
  Listener() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_.get(), 8), 0);
    socklen_t len = sizeof(a);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    address_ = {SocketAddress::Family::kInet, "127.0.0.1", ntohs(a.sin_port), ""};
  }
  // Answers one connection with `reply` on a thread.
  void ServeOnce(const std::string& reply) {
    server_ = std::thread([this, reply] {
      UniqueFd conn(accept(fd_.get(), nullptr, nullptr));
      char buf[1024];
      (void)!recv(conn.get(), buf, sizeof(buf), 0);
      (void)!send(conn.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    });
  }
  ~Listener() {
    if (server_.joinable()) server_.join();
  }
  const SocketAddress& address() const { return address_; }

 private:
  UniqueFd fd_;
  SocketAddress address_;
  std::thread server_;
};

HttpUrl UrlOf(const SocketAddress& a, const std::string& path = "/healthz") { return {a, path}; }

TEST(ProbeTest, TcpHealthyWhenAccepted) {
  Listener l;
  ProbeResult r = ProbeTcp(l.address(), milliseconds(500));
  EXPECT_TRUE(r.healthy) << r.output;
}

TEST(ProbeTest, TcpRefusedIsUnhealthy) {
  SocketAddress closed;
  {
    Listener l;
    closed = l.address();
  }  // the port is free again: connecting is refused
  ProbeResult r = ProbeTcp(closed, milliseconds(500));
  EXPECT_FALSE(r.healthy);
  EXPECT_NE(r.output.find("refused"), std::string::npos) << r.output;
}

TEST(ProbeTest, Http2xxAnd3xxAreHealthy) {
  for (const char* status : {"200 OK", "204 No Content", "302 Found"}) {
    Listener l;
    l.ServeOnce(std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 2\r\n\r\nok");
    ProbeResult r = ProbeHttp(UrlOf(l.address()), milliseconds(2000));
    EXPECT_TRUE(r.healthy) << status << ": " << r.output;
    EXPECT_EQ(r.output.rfind(std::string("HTTP/1.1 ") + status, 0), 0u) << r.output;
  }
}

TEST(ProbeTest, Http5xxAndGarbageAreUnhealthy) {
  {
    Listener l;
    l.ServeOnce("HTTP/1.1 503 Service Unavailable\r\n\r\nstarting");
    ProbeResult r = ProbeHttp(UrlOf(l.address()), milliseconds(2000));
    EXPECT_FALSE(r.healthy);
    EXPECT_NE(r.output.find("503"), std::string::npos);
  }
  {
    Listener l;
    l.ServeOnce("SSH-2.0-OpenSSH\r\n");
    ProbeResult r = ProbeHttp(UrlOf(l.address()), milliseconds(2000));
    EXPECT_FALSE(r.healthy);
    EXPECT_NE(r.output.find("not an HTTP answer"), std::string::npos) << r.output;
  }
}

TEST(ProbeTest, HttpTimesOutWhenNobodyAnswers) {
  Listener l;  // listens (the kernel accepts into the backlog) but never answers
  auto start = std::chrono::steady_clock::now();
  ProbeResult r = ProbeHttp(UrlOf(l.address()), milliseconds(200));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.healthy);
  EXPECT_NE(r.output.find("no answer within 200 ms"), std::string::npos) << r.output;
  EXPECT_LT(took, milliseconds(1500));
}

}  // namespace
}  // namespace vdswap::guest
