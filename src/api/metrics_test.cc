#include "api/metrics.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

TEST(MetricsTest, HistogramRendersCumulativeBucketsSumAndCount) {
  Metrics m;
  m.DescribeHistogram("t_seconds", "Test.", {0.1, 1});
  m.Observe("t_seconds", "", 0.05);
  m.Observe("t_seconds", "", 0.1);  // a bound is inclusive (le)
  m.Observe("t_seconds", "", 0.5);
  m.Observe("t_seconds", "", 7);
  EXPECT_EQ(m.Render(),
            "# HELP t_seconds Test.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{le=\"0.1\"} 2\n"
            "t_seconds_bucket{le=\"1\"} 3\n"
            "t_seconds_bucket{le=\"+Inf\"} 4\n"
            "t_seconds_sum 7.65\n"
            "t_seconds_count 4\n");
}

TEST(MetricsTest, RolloutMetricsCountRolloutsSwapsAndDowntime) {
  Metrics m;
  RolloutMetrics rm(m, SwapOrder::kBreakBeforeMake);
  rm.RolloutStarted();
  rm.RolloutStarted();
  rm.SwapEnded(SwapResult::kDone, false, std::nullopt, 120);
  rm.SwapEnded(SwapResult::kDone, false, SwapOrder::kMakeBeforeBreak, 40);
  rm.SwapEnded(SwapResult::kRolledBack, false, std::nullopt, -1);  // not measured
  rm.SwapEnded(SwapResult::kDone, true, SwapOrder::kMakeBeforeBreak, 30000);
  rm.RolloutEnded(RolloutState::kSucceeded);
  rm.RolloutEnded(RolloutState::kRolledBack);
  const std::string text = m.Render();
  // Each entry is a run of consecutive lines of the exposition.
  const std::vector<std::vector<std::string>> runs = {
      {"# TYPE vdswap_rollouts_started_total counter", "vdswap_rollouts_started_total 2"},
      {"vdswap_rollouts_ended_total{state=\"aborted\"} 0",
       "vdswap_rollouts_ended_total{state=\"failed\"} 0",
       "vdswap_rollouts_ended_total{state=\"rolled_back\"} 1",
       "vdswap_rollouts_ended_total{state=\"succeeded\"} 1"},
      {"# TYPE vdswap_swaps_total counter",
       "vdswap_swaps_total{result=\"done\",order=\"break-before-make\"} 1",
       "vdswap_swaps_total{result=\"done\",order=\"make-before-break\"} 1",
       "vdswap_swaps_total{result=\"done\",order=\"reboot\"} 1",
       "vdswap_swaps_total{result=\"rolled_back\",order=\"break-before-make\"} 1"},
      {"# TYPE vdswap_swap_downtime_seconds histogram"},
      {"vdswap_swap_downtime_seconds_bucket{order=\"break-before-make\",le=\"0.1\"} 0",
       "vdswap_swap_downtime_seconds_bucket{order=\"break-before-make\",le=\"0.25\"} 1"},
      {"vdswap_swap_downtime_seconds_bucket{order=\"break-before-make\",le=\"+Inf\"} 1",
       "vdswap_swap_downtime_seconds_sum{order=\"break-before-make\"} 0.12",
       "vdswap_swap_downtime_seconds_count{order=\"break-before-make\"} 1"},
      {"vdswap_swap_downtime_seconds_bucket{order=\"make-before-break\",le=\"0.05\"} 1"},
      {"vdswap_swap_downtime_seconds_bucket{order=\"reboot\",le=\"10\"} 0",
       "vdswap_swap_downtime_seconds_bucket{order=\"reboot\",le=\"30\"} 1"},
  };
  for (const auto& run : runs) {
    std::string lines;
    for (const auto& line : run) lines += line + "\n";
    EXPECT_NE(text.find(lines), std::string::npos) << "missing:\n" << lines << "in:\n" << text;
  }
}

}  // namespace
}  // namespace vdswap
