#include "api/router.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

// A handler that answers with its name, to tell which route matched.
ApiHandler Named(const std::string& name) {
  return [name](const ApiRequest&) -> Result<Json> { return Json(name); };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Method::kGet, "/v1/things", Named("list"));
    router_.Add(Method::kDelete, R"(/v1/things/([a-z]+))", Named("delete"));
    router_.Add(Method::kGet, R"(/v1/things/([a-z]+))", Named("get"), Wait::kMay);
    router_.Add(Method::kPost, R"(/v1/things/([a-z]+)/parts/([0-9]+))", Named("part"));
    router_.Add(Method::kGet, R"(/v1/things/([a-z]+))", Named("shadowed"));
  }

  // The name the matched route's handler answers with. REQUIRES: a match.
  static std::string HandlerName(const RouteMatch& match) {
    return match.route->handler(ApiRequest{})->get<std::string>();
  }

  Router router_;
};

TEST_F(RouterTest, MatchesMethodAndPathWithTheCaptureGroupsAsParams) {
  RouteMatch match = router_.Match("POST", "/v1/things/abc/parts/42");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->pattern, R"(/v1/things/([a-z]+)/parts/([0-9]+))");
  EXPECT_EQ(match.params, (std::vector<std::string>{"abc", "42"}));
  EXPECT_EQ(HandlerName(match), "part");
}

TEST_F(RouterTest, TheFirstRouteAddedWins) {
  RouteMatch match = router_.Match("GET", "/v1/things/abc");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(HandlerName(match), "get");
  EXPECT_EQ(match.route->wait, Wait::kMay);
  EXPECT_EQ(match.params, (std::vector<std::string>{"abc"}));
}

TEST_F(RouterTest, APatternWithoutGroupsGivesNoParams) {
  RouteMatch match = router_.Match("GET", "/v1/things");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(HandlerName(match), "list");
  EXPECT_TRUE(match.params.empty());
}

TEST_F(RouterTest, APathNoRouteHasIsNoPath) {
  for (const char* path : {"/v1/nothing", "/v1/things/", "/v1/things/ABC", "/v1/things/abc/x",
                           "/v1/things/abc/parts/x", "x/v1/things"}) {
    RouteMatch match = router_.Match("GET", path);
    EXPECT_EQ(match.kind, RouteMatch::Kind::kNoPath) << path;
    EXPECT_EQ(match.route, nullptr) << path;
    EXPECT_TRUE(match.allowed.empty()) << path;
  }
}

TEST_F(RouterTest, AnotherMethodOnAKnownPathListsTheAllowedOnesInMethodOrder) {
  RouteMatch match = router_.Match("POST", "/v1/things/abc");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(match.route, nullptr);
  EXPECT_EQ(match.allowed, (std::set<Method>{Method::kGet, Method::kDelete}));
  EXPECT_EQ(*match.allowed.begin(), Method::kGet);

  // A method the API never uses, and a method name in the wrong case, are refused alike.
  for (const char* method : {"PUT", "get"}) {
    match = router_.Match(method, "/v1/things");
    ASSERT_EQ(match.kind, RouteMatch::Kind::kMethodNotAllowed) << method;
    EXPECT_EQ(match.allowed, std::set<Method>{Method::kGet}) << method;
  }
}

TEST(RouterEmptyTest, AnEmptyRouterHasNoPath) {
  EXPECT_EQ(Router().Match("GET", "/").kind, RouteMatch::Kind::kNoPath);
}

}  // namespace
}  // namespace vdswap
