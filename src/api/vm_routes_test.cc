#include "api/vm_routes.h"

#include <gtest/gtest.h>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

class VmListRouteTest : public ::testing::Test {
 protected:
  void SetUp() override { RegisterVmRoutes(router_, tb_.vms, tb_.vm_table); }

  Result<Json> ListVms(std::map<std::string, std::string> query) {
    for (const auto& route : router_.routes()) {
      if (route.method == Method::kGet && route.pattern == "/v1/vms") {
        ApiRequest request;
        request.query = std::move(query);
        request.progress = [](const Json&) {};
        return route.handler(request);
      }
    }
    return NotFound("no GET /v1/vms route");
  }

  FleetTestbed tb_;
  Router router_;
};

TEST_F(VmListRouteTest, PagesFollowTheNextCursorToEveryVmOnce) {
  std::vector<std::string> names;
  for (int i = 1; i <= 7; ++i) names.push_back("vm" + std::to_string(i));
  tb_.CreateVms(names);
  std::vector<std::string> seen;
  int pages = 0;
  std::map<std::string, std::string> query = {{"limit", "3"}};
  for (;;) {
    auto page = ListVms(query);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    ASSERT_LE((*page)["vms"].size(), 3U);
    for (const auto& v : (*page)["vms"]) seen.push_back(v["name"]);
    if ((*page)["next"].is_null()) break;
    query["after"] = (*page)["next"];
    ASSERT_LT(pages, 10) << "the cursor does not advance";
  }
  EXPECT_EQ(seen, names);
  EXPECT_EQ(pages, 3);  // 3 + 3 + 1

  auto exact = ListVms({{"limit", "7"}});
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ((*exact)["vms"].size(), 7U);
  EXPECT_TRUE((*exact)["next"].is_null()) << "no empty extra page";
  auto first = ListVms({{"after", ""}});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)["vms"].size(), 7U) << "a page defaults to kVmPage VMs";
}

TEST_F(VmListRouteTest, WithoutPagingArgumentsEveryVmIsOneArrayAsBefore) {
  tb_.CreateVms({"vm1", "vm2", "vm3"});
  auto all = ListVms({});
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(all->is_array()) << all->dump();
  EXPECT_EQ(all->size(), 3U);
}

TEST_F(VmListRouteTest, RefusesALimitOutsideItsRange) {
  for (const char* limit : {"0", "-1", "x", "5001"}) {
    EXPECT_EQ(ListVms({{"limit", limit}}).status().code(), Code::kInvalidArgument) << limit;
  }
}

}  // namespace
}  // namespace vdswap::testing
