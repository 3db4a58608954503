#include "rollout/policy.h"

#include <gtest/gtest.h>

#include "rollout/batch_planner.h"

namespace vdswap {
namespace {

using std::chrono::milliseconds;

TEST(PolicyTest, AmountsRoundDownAndAtLeastOne) {
  EXPECT_EQ(ParseAmount("25%", "--batch")->Of(10, true), 2);
  EXPECT_EQ(ParseAmount("1%", "--batch")->Of(10, true), 1);
  EXPECT_EQ(ParseAmount("1%", "--max-failures")->Of(10, false), 0);
  EXPECT_EQ(ParseAmount("7", "--batch")->Of(3, true), 3);
  EXPECT_EQ(ParseAmount("0", "--canary")->Of(10, true), 0);
  EXPECT_EQ(ParseAmount("100%", "--batch")->Of(10000, true), 10000);
}

TEST(PolicyTest, BadAmountsNameTheFlag) {
  EXPECT_EQ(ParseAmount("101%", "--batch").status().message(),
            "--batch percentage must be 0-100%, got '101%'");
  EXPECT_EQ(ParseAmount("-1", "--canary").status().message(), "--canary must be N or P%, got '-1'");
  EXPECT_FALSE(ParseAmount("", "--batch").ok());
  EXPECT_FALSE(ParseAmount("2.5", "--batch").ok());
  EXPECT_FALSE(ParseAmount("%", "--batch").ok());
}

TEST(PolicyTest, Durations) {
  EXPECT_EQ(*ParseDuration("500ms", "--min-ready"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("30s", "--min-ready"), milliseconds(30000));
  EXPECT_EQ(*ParseDuration("30", "--min-ready"), milliseconds(30000));
  EXPECT_EQ(*ParseDuration("5m", "--min-ready"), milliseconds(300000));
  EXPECT_EQ(*ParseDuration("2h", "--min-ready"), milliseconds(7200000));
  EXPECT_FALSE(ParseDuration("5 m", "--x").ok());
  EXPECT_FALSE(ParseDuration("1.5s", "--x").ok());
  EXPECT_FALSE(ParseDuration("s", "--x").ok());
  EXPECT_EQ(ParseDuration("99999999h", "--canary-wait").status().message(),
            "--canary-wait must be at most 30 days, got '99999999h'");
  for (const char* d : {"500ms", "0s", "30s", "5m", "2h", "1500ms", "90s"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(d, "--x")), d);
  }
}

TEST(PolicyTest, JsonRoundTripAndDefaults) {
  RolloutPolicy p;
  p.batch = {25, true};
  p.max_per_host = 3;
  p.canary = {1, false};
  p.canary_wait = milliseconds(30000);
  p.min_ready = milliseconds(500);
  p.max_failures = {10, true};
  p.on_failure = OnFailure::kRollback;
  p.max_action = MaxAction::kApp;
  p.swap_order = SwapOrder::kMakeBeforeBreak;
  auto again = PolicyFromJson(PolicyToJson(p));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, p);
  EXPECT_EQ(PolicyToJson(p)["batch"], "25%");
  EXPECT_EQ(*PolicyFromJson(Json::object()), RolloutPolicy{});
  EXPECT_EQ(*PolicyFromJson(Json()), RolloutPolicy{});
  EXPECT_TRUE(PolicyToJson(RolloutPolicy{})["canary_wait"].is_null());
}

TEST(PolicyTest, JsonErrorsNameTheFlag) {
  EXPECT_EQ(PolicyFromJson(Json{{"batch", "0"}}).status().message(),
            "--batch must be at least 1 (or 1%-100%)");
  EXPECT_EQ(PolicyFromJson(Json{{"on_failure", "retry"}}).status().message(),
            "--on-failure must be rollback or pause");
  EXPECT_EQ(PolicyFromJson(Json{{"max_per_host", 0}}).status().message(),
            "--max-per-host must be an integer 1-1000");
  EXPECT_EQ(PolicyFromJson(Json{{"min_ready", "soon"}}).status().message(),
            "--min-ready must be a duration like 500ms, 30s, 5m or 2h, got 'soon'");
  EXPECT_EQ(PolicyFromJson(Json{{"colour", "red"}}).status().message(),
            "unknown policy field 'colour'");
  EXPECT_EQ(PolicyFromJson(Json{{"batch", 2}})->batch, (Amount{2, false}));
}

std::vector<PendingVm> Vms(const std::vector<std::string>& hosts) {
  std::vector<PendingVm> out;
  for (size_t i = 0; i < hosts.size(); ++i) out.push_back({static_cast<int64_t>(i), hosts[i]});
  return out;
}

TEST(BatchPlannerTest, BatchAndPerHostLimits) {
  RolloutPolicy p;
  p.batch = {3, false};
  p.max_per_host = 2;
  BatchPlanner planner(p, 6);
  // Three on h1 first: the third waits for its host while h2's VM goes ahead.
  auto next = planner.Next(Vms({"h1", "h1", "h1", "h2", "h2", "h2"}), {}, true);
  EXPECT_EQ(next, (std::vector<size_t>{0, 1, 3}));
  // Two in flight on h2 already: only h1 VMs can start, up to the batch.
  InFlight busy{2, {{"h2", 2}}};
  EXPECT_EQ(planner.Next(Vms({"h2", "h1", "h1"}), busy, true), (std::vector<size_t>{1}));
  InFlight full{3, {{"h1", 1}, {"h2", 2}}};
  EXPECT_TRUE(planner.Next(Vms({"h1"}), full, true).empty());
}

TEST(BatchPlannerTest, CanariesGoFirstAndAlone) {
  RolloutPolicy p;
  p.batch = {4, false};
  p.canary = {1, false};
  BatchPlanner planner(p, 5);
  EXPECT_EQ(planner.Next(Vms({"a", "b", "c"}), {}, false), (std::vector<size_t>{0}));
  std::vector<PendingVm> after = {{1, "b"}, {2, "c"}};
  EXPECT_TRUE(planner.Next(after, {}, false).empty());
  EXPECT_EQ(planner.Next(after, {}, true), (std::vector<size_t>{0, 1}));
}

TEST(BatchPlannerTest, PercentagesAndBudget) {
  RolloutPolicy p;
  p.batch = {10, true};
  p.canary = {1, true};
  p.max_failures = {5, true};
  BatchPlanner planner(p, 40);
  EXPECT_EQ(planner.batch(), 4);
  EXPECT_EQ(planner.canaries(), 1);
  EXPECT_FALSE(planner.BudgetExceeded(2));
  EXPECT_TRUE(planner.BudgetExceeded(3));
  EXPECT_TRUE(BatchPlanner(RolloutPolicy{}, 40).BudgetExceeded(1));
}

}  // namespace
}  // namespace vdswap
