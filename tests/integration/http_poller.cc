#include "tests/integration/http_poller.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

namespace vdswap::testing {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Waits until `fd` is ready for `events` or `deadline` passes; false on timeout or error.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    int64_t left = MsBetween(Clock::now(), deadline);
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

std::string Fetch(const std::string& host, int port, const std::string& path,
                  Clock::time_point deadline, bool* ok) {
  *ok = false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return "error: bad address " + host;
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return std::string("error: socket: ") + strerror(errno);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS) {
    return std::string("error: connect: ") + strerror(errno);
  }
  if (!WaitFor(fd.get(), POLLOUT, deadline)) return "error: connect timed out";
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return std::string("error: connect: ") + strerror(err);
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    if (!WaitFor(fd.get(), POLLOUT, deadline)) return "error: send timed out";
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return std::string("error: send: ") + strerror(errno);
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  while (true) {
    if (!WaitFor(fd.get(), POLLIN, deadline)) return "error: no complete answer in time";
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return std::string("error: recv: ") + strerror(errno);
    }
    answer.append(buf, static_cast<size_t>(n));
  }
  auto head_end = answer.find("\r\n\r\n");
  if (head_end == std::string::npos) return "error: answer without a header end";
  std::string status = answer.substr(0, answer.find("\r\n"));
  if (status.rfind("HTTP/1.", 0) != 0 || status.find(" 200 ") == std::string::npos) {
    return "error: " + status;
  }
  std::string body = answer.substr(head_end + 4);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  *ok = true;
  return body;
}

}  // namespace

HttpSample HttpGetOnce(const std::string& host, int port, const std::string& path,
                       std::chrono::milliseconds timeout) {
  HttpSample s;
  s.body = Fetch(host, port, path, Clock::now() + timeout, &s.ok);
  return s;
}

HttpPoller::HttpPoller(std::string host, int port, std::string path,
                       std::chrono::milliseconds interval, std::chrono::milliseconds timeout)
    : host_(std::move(host)),
      path_(std::move(path)),
      port_(port),
      interval_(interval),
      timeout_(timeout),
      thread_([this] { Run(); }) {}

HttpPoller::~HttpPoller() {
  if (thread_.joinable()) Stop();
}

std::vector<HttpSample> HttpPoller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

void HttpPoller::Run() {
  const Clock::time_point t0 = Clock::now();
  Clock::time_point next = t0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    std::this_thread::sleep_until(next);
    Clock::time_point start = Clock::now();
    HttpSample s;
    s.body = Fetch(host_, port_, path_, start + timeout_, &s.ok);
    s.start_ms = MsBetween(t0, start);
    s.end_ms = MsBetween(t0, Clock::now());
    next = std::max(start + interval_, Clock::now());
    std::lock_guard<std::mutex> lock(mu_);
    samples_.push_back(std::move(s));
  }
}

HttpPollSummary Summarize(const std::vector<HttpSample>& samples) {
  HttpPollSummary sum;
  sum.requests = static_cast<int>(samples.size());
  int64_t last_ok = samples.empty() ? 0 : samples.front().start_ms;
  for (const HttpSample& s : samples) {
    if (!s.ok) {
      ++sum.failed;
      continue;
    }
    sum.longest_gap_ms = std::max(sum.longest_gap_ms, s.end_ms - last_ok);
    last_ok = s.end_ms;
    if (sum.bodies.empty() || sum.bodies.back() != s.body) sum.bodies.push_back(s.body);
  }
  return sum;
}

}  // namespace vdswap::testing
