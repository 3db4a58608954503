#include "api/http_server.h"

#include <gtest/gtest.h>

#include "api/api_client.h"
#include "core/files.h"

namespace vdswap {
namespace {

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
    server_ = std::make_unique<HttpServer>(router_, metrics_);
    ASSERT_TRUE(server_->ListenUnix(socket_).ok());
  }

  std::unique_ptr<TempDir> dir_;
  std::string socket_;
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

TEST(ApiClientTest, UnreachableDaemonIsUnavailable) {
  ApiClient client({.socket_path = "/nonexistent/vdswapd.sock"});
  auto out = client.Call(Method::kGet, "/v1/status");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kUnavailable);
  EXPECT_NE(out.status().message().find("start it with"), std::string::npos);
}

}  // namespace
}  // namespace vdswap
