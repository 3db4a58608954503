#include "api/http_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "api/api_client.h"
#include "core/files.h"

namespace vdswap {
namespace {

using Clock = std::chrono::steady_clock;

// A raw client connection to a unix socket, for requests no well-behaved client sends.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() { Close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // What the server sends until it closes the connection or `timeout` passes.
  std::string ReadAll(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// A handler that blocks until released or its request is cancelled; counts who entered
// and who saw the cancel.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  int cancelled = 0;
  bool open = false;

  Result<Json> Block(const ApiRequest& r) {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    while (!open && !r.Cancelled()) cv.wait_for(lock, std::chrono::milliseconds(10));
    if (open) return Json{{"released", true}};
    ++cancelled;
    cv.notify_all();
    return Unavailable("cancelled");
  }
  bool AwaitEntered(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered >= n; });
  }
  bool AwaitCancelled(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return cancelled >= n; });
  }
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("/tmp", "http");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    socket_ = dir_->path() + "/api.sock";
    router_.Add(Method::kGet, R"(/v1/things/([a-z]+))", [](const ApiRequest& r) -> Result<Json> {
      if (r.params[0] == "missing") return NotFound("thing 'missing' not found");
      if (r.params[0] == "down") return Unavailable("guest did not answer");
      return Json{{"name", r.params[0]}};
    });
    router_.Add(Method::kPost, "/v1/work", [](const ApiRequest& r) -> Result<Json> {
      for (int i = 0; i < 3; ++i) r.progress({{"step", i}});
      return Json{{"echo", r.body}};
    });
    router_.Add(Method::kPost, "/v1/block",
                [this](const ApiRequest& r) -> Result<Json> { return gate_.Block(r); });
    router_.Add(
        Method::kGet, "/v1/slow-read",
        [this](const ApiRequest& r) -> Result<Json> { return gate_.Block(r); }, Wait::kMay);
    HttpLimits limits;
    limits.max_body_bytes = 4096;
    server_ = std::make_unique<HttpServer>(router_, metrics_, limits);
    ASSERT_TRUE(server_->ListenUnix(socket_).ok());
  }

  // Stops the server before the gate goes away: a blocked handler may still hold it.
  void TearDown() override {
    gate_.Open();
    server_->Stop();
  }

  std::unique_ptr<TempDir> dir_;
  std::string socket_;
  Gate gate_;
  Router router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoutesOverUnixSocket) {
  ApiClient client({.socket_path = socket_});
  auto out = client.Call(Method::kGet, "/v1/things/abc");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)["name"], "abc");
}

TEST_F(HttpServerTest, ErrorsKeepTheirCode) {
  ApiClient client({.socket_path = socket_});
  EXPECT_EQ(client.Call(Method::kGet, "/v1/things/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(client.Call(Method::kGet, "/v1/nothing").status().code(), Code::kNotFound);
  // The daemon answered, so its "unavailable" is an operation failure, not exit 5.
  EXPECT_EQ(client.Call(Method::kGet, "/v1/things/down").status().code(), Code::kInternal);
}

TEST_F(HttpServerTest, StreamsProgressThenResult) {
  ApiClient client({.socket_path = socket_});
  std::vector<int> steps;
  auto out = client.Call(Method::kPost, "/v1/work", Json{{"x", 1}},
                         [&](const Json& e) { steps.push_back(e["step"]); });
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(steps, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ((*out)["echo"]["x"], 1);
}

TEST_F(HttpServerTest, RejectsNonObjectBody) {
  ApiClient client({.socket_path = socket_});
  EXPECT_EQ(client.Call(Method::kPost, "/v1/work", Json::array({1})).status().code(),
            Code::kInvalidArgument);
}

TEST_F(HttpServerTest, CountsRequestsInMetrics) {
  ApiClient client({.socket_path = socket_});
  ASSERT_TRUE(client.Call(Method::kGet, "/v1/things/abc").ok());
  EXPECT_NE(metrics_.Render().find("vdswap_api_requests_total{route="), std::string::npos);
}

TEST_F(HttpServerTest, SlowAndIdleClientsDoNotDelayOthers) {
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 100; ++i) {
    idle.push_back(std::make_unique<RawConnection>(socket_));
    ASSERT_TRUE(idle.back()->connected());
  }
  // Slowloris: a request line and one header, then nothing.
  for (int i = 0; i < 8; ++i) {
    idle.push_back(std::make_unique<RawConnection>(socket_));
    ASSERT_TRUE(idle.back()->Send("GET /v1/things/abc HTTP/1.1\r\nHost: x\r\n"));
  }
  const auto start = Clock::now();
  ApiClient client({.socket_path = socket_});
  auto out = client.Call(Method::kGet, "/v1/things/abc");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST_F(HttpServerTest, BodyOverTheCapIs413AndNotEchoed) {
  ApiClient client({.socket_path = socket_});
  auto out = client.Call(Method::kPost, "/v1/work", Json{{"x", std::string(8192, 'y')}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_NE(out.status().message().find("larger than 4096 bytes"), std::string::npos);
  EXPECT_EQ(out.status().message().find("yyyy"), std::string::npos);

  // A chunked body (no length announced) is cut off at the cap too.
  RawConnection raw(socket_);
  const std::string chunk(4000, 'z');
  std::string request =
      "POST /v1/work HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "fa0\r\n" + chunk + "\r\n";
  ASSERT_TRUE(raw.Send(request + "0\r\n\r\n"));
  std::string answer = raw.ReadAll();
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0U) << answer;
  EXPECT_EQ(answer.find("zzzz"), std::string::npos);
}

TEST_F(HttpServerTest, OtherMethodOnAKnownPathIs405WithAllow) {
  RawConnection put(socket_);
  ASSERT_TRUE(put.Send("PUT /v1/things/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string answer = put.ReadAll();
  EXPECT_EQ(answer.rfind("HTTP/1.1 405", 0), 0U) << answer;
  EXPECT_NE(answer.find("Allow: GET\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"invalid_argument\""), std::string::npos) << answer;

  RawConnection patch(socket_);
  ASSERT_TRUE(patch.Send("PATCH /v1/work HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  answer = patch.ReadAll();
  EXPECT_EQ(answer.rfind("HTTP/1.1 405", 0), 0U) << answer;
  EXPECT_NE(answer.find("Allow: POST\r\n"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, LongHandlersDoNotHoldUpReads) {
  // More blocked requests than the old server had threads.
  constexpr int kBlocked = 12;
  std::vector<std::future<Result<Json>>> blocked;
  for (int i = 0; i < kBlocked; ++i) {
    // Writes and reads that may wait (e.g. on a guest) alike.
    blocked.push_back(std::async(std::launch::async, [this, i] {
      ApiClient client({.socket_path = socket_});
      return i % 2 == 0 ? client.Call(Method::kPost, "/v1/block", Json::object())
                        : client.Call(Method::kGet, "/v1/slow-read");
    }));
  }
  ASSERT_TRUE(gate_.AwaitEntered(8));
  auto read = std::async(std::launch::async, [this] {
    ApiClient client({.socket_path = socket_});
    return client.Call(Method::kGet, "/v1/things/abc");
  });
  const bool prompt = read.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
  gate_.Open();
  EXPECT_TRUE(prompt) << "a plain GET waited for the blocked handlers";
  EXPECT_TRUE(read.get().ok());
  for (auto& b : blocked) {
    auto out = b.get();
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ((*out)["released"], true);
  }
}

TEST_F(HttpServerTest, ClientGoingAwayCancelsItsRequest) {
  for (bool streaming : {false, true}) {
    SCOPED_TRACE(streaming ? "streaming" : "plain");
    const int before = gate_.entered;
    RawConnection raw(socket_);
    ASSERT_TRUE(raw.Send(std::string("POST /v1/block HTTP/1.1\r\nHost: x\r\n") +
                         (streaming ? "Accept: application/x-ndjson\r\n" : "") +
                         "Content-Length: 0\r\n\r\n"));
    ASSERT_TRUE(gate_.AwaitEntered(before + 1));
    raw.Close();
    EXPECT_TRUE(gate_.AwaitCancelled(before + 1, std::chrono::seconds(5)));
  }
}

TEST_F(HttpServerTest, StopCancelsRequestsInFlight) {
  auto call = std::async(std::launch::async, [this] {
    ApiClient client({.socket_path = socket_});
    return client.Call(Method::kPost, "/v1/block", Json::object());
  });
  ASSERT_TRUE(gate_.AwaitEntered(1));
  const auto start = Clock::now();
  server_->Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(gate_.cancelled, 1);
  EXPECT_FALSE(call.get().ok());
}

// The idle timeout is for silent clients: a request whose handler outlasts it (a long
// create, a stream between two progress lines) is still answered.
TEST(HttpServerTimeoutTest, HandlersMayOutlastTheIdleTimeout) {
  auto dir = TempDir::Create("/tmp", "http");
  ASSERT_TRUE(dir.ok());
  const std::string socket = dir->path() + "/api.sock";
  Router router;
  router.Add(Method::kPost, "/v1/slow", [](const ApiRequest& r) -> Result<Json> {
    r.progress({{"step", 0}});
    // Real time is the point here: the handler must outlast the 1 s idle timeout.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    r.progress({{"step", 1}});
    return Json{{"done", true}};
  });
  Metrics metrics;
  HttpLimits limits;
  limits.idle_timeout_seconds = 1;
  HttpServer server(router, metrics, limits);
  ASSERT_TRUE(server.ListenUnix(socket).ok());
  ApiClient client({.socket_path = socket});
  auto plain = client.Call(Method::kPost, "/v1/slow", Json::object());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  std::vector<int> steps;
  auto streamed = client.Call(Method::kPost, "/v1/slow", Json::object(),
                              [&](const Json& e) { steps.push_back(e["step"]); });
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  EXPECT_EQ(steps, (std::vector<int>{0, 1}));
}

TEST(ApiClientTest, UnreachableDaemonIsUnavailable) {
  ApiClient client({.socket_path = "/nonexistent/vdswapd.sock"});
  auto out = client.Call(Method::kGet, "/v1/status");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kUnavailable);
  EXPECT_NE(out.status().message().find("start it with"), std::string::npos);
}

}  // namespace
}  // namespace vdswap
