#include "guest/agent/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

namespace vdswap::guest {

namespace {

using Steady = std::chrono::steady_clock;
constexpr size_t kMaxOutput = 4096;

int MsLeft(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, Steady::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, MsLeft(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// A connected, non-blocking socket, or the reason there is none.
struct Connected {
  UniqueFd fd;
  std::string error;
};

Connected Connect(const SocketAddress& target, Steady::time_point deadline) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (target.family == SocketAddress::Family::kInet6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(target.port));
    inet_pton(AF_INET6, target.host.c_str(), &a->sin6_addr);
    len = sizeof(*a);
    family = AF_INET6;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(target.port));
    inet_pton(AF_INET, target.host.c_str(), &a->sin_addr);
    len = sizeof(*a);
    family = AF_INET;
  }
  Connected c;
  c.fd.reset(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd.valid()) {
    c.error = std::string("socket: ") + strerror(errno);
    return c;
  }
  if (connect(c.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      c.error = "connect " + target.ToString() + ": " + strerror(errno);
      c.fd.reset();
      return c;
    }
    if (!WaitFor(c.fd.get(), POLLOUT, deadline)) {
      c.error = "connect " + target.ToString() + ": timed out";
      c.fd.reset();
      return c;
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      c.error = "connect " + target.ToString() + ": " + strerror(err);
      c.fd.reset();
    }
  }
  return c;
}

}  // namespace

ProbeResult ProbeTcp(const SocketAddress& target, std::chrono::milliseconds timeout) {
  Connected c = Connect(target, Steady::now() + timeout);
  if (!c.fd.valid()) return {false, c.error};
  return {true, "connected to " + target.ToString()};
}

ProbeResult ProbeHttp(const HttpUrl& url, std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  Connected c = Connect(url.address, deadline);
  if (!c.fd.valid()) return {false, c.error};
  const std::string host = url.address.family == SocketAddress::Family::kInet6
                               ? "[" + url.address.host + "]"
                               : url.address.host;
  const std::string request = "GET " + url.path + " HTTP/1.0\r\nHost: " + host + ":" +
                              std::to_string(url.address.port) +
                              "\r\nUser-Agent: vdswap-guest\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    if (!WaitFor(c.fd.get(), POLLOUT, deadline)) return {false, "sending the request: timed out"};
    ssize_t n = send(c.fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return {false, std::string("sending the request: ") + strerror(errno)};
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[1024];
  while (reply.size() < kMaxOutput) {
    if (!WaitFor(c.fd.get(), POLLIN, deadline)) break;
    ssize_t n = recv(c.fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  if (reply.size() > kMaxOutput) reply.resize(kMaxOutput);
  // "HTTP/1.1 204 No Content"
  if (reply.rfind("HTTP/", 0) != 0 || reply.size() < 12 || reply[8] != ' ') {
    return {false, reply.empty() ? "no answer within " + std::to_string(timeout.count()) + " ms"
                                 : "not an HTTP answer: " + reply.substr(0, 80)};
  }
  const char klass = reply[9];
  return {klass == '2' || klass == '3', reply};
}

}  // namespace vdswap::guest
