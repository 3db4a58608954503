#include "cli/progress_bar.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

TEST(ProgressBarTest, FillsWithFinishedVmsAndCountsEachKind) {
  Json r = {{"counts",
             {{"done", 10}, {"rolled_back", 1}, {"failed", 1}, {"swapping", 2}, {"pending", 26}}},
            {"eta_ms", 80000}};
  EXPECT_EQ(RolloutProgressLine(r, 10),
            "[###.......] 10/40 done, 2 in flight, 2 failed, ETA 1m20s");
}

TEST(ProgressBarTest, EmptyAndFinishedRollouts) {
  EXPECT_EQ(RolloutProgressLine(Json::object(), 4),
            "[....] 0/0 done, 0 in flight, 0 failed, ETA -");
  Json r = {{"counts", {{"done", 3}}}, {"eta_ms", nullptr}};
  EXPECT_EQ(RolloutProgressLine(r, 4), "[####] 3/3 done, 0 in flight, 0 failed, ETA -");
  r["eta_ms"] = 3 * 3600 * 1000 + 60 * 1000;
  EXPECT_EQ(RolloutProgressLine(r, 4), "[####] 3/3 done, 0 in flight, 0 failed, ETA 3h1m");
  r["eta_ms"] = 1;
  EXPECT_EQ(RolloutProgressLine(r, 4), "[####] 3/3 done, 0 in flight, 0 failed, ETA 1s");
}

}  // namespace
}  // namespace vdswap
