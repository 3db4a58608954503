#include "rollout/change_feed.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace vdswap {
namespace {

using std::chrono::milliseconds;

// Long enough that a test never passes by timing out; the waits below end sooner.
constexpr milliseconds kLong{60000};

TEST(ChangeFeedTest, CountsChangesPerRolloutFromZero) {
  ChangeFeed feed;
  EXPECT_EQ(feed.Version(1), 0U);
  feed.Bump(1);
  feed.Bump(1);
  feed.Bump(2);
  EXPECT_EQ(feed.Version(1), 2U);
  EXPECT_EQ(feed.Version(2), 1U);
  EXPECT_EQ(feed.Version(3), 0U);
}

TEST(ChangeFeedTest, WaitReturnsAtOnceWhenAlreadyPastSeen) {
  ChangeFeed feed;
  feed.Bump(7);
  EXPECT_EQ(feed.WaitForChange(7, 0, kLong), 1U);
}

TEST(ChangeFeedTest, WaitTimesOutWithTheVersionUnchanged) {
  ChangeFeed feed;
  feed.Bump(7);
  feed.Bump(8);  // another rollout's change does not end the wait
  EXPECT_EQ(feed.WaitForChange(7, 1, milliseconds(20)), 1U);
  EXPECT_FALSE(feed.Cancelled());
}

TEST(ChangeFeedTest, BumpWakesAWaiter) {
  ChangeFeed feed;
  const uint64_t seen = feed.Version(7);
  std::thread bumper([&] {
    std::this_thread::sleep_for(milliseconds(20));
    feed.Bump(7);
  });
  EXPECT_EQ(feed.WaitForChange(7, seen, kLong), seen + 1);
  bumper.join();
}

TEST(ChangeFeedTest, CancelWakesWaitersAndEndsLaterWaitsAtOnce) {
  ChangeFeed feed;
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(20));
    feed.Cancel();
  });
  EXPECT_EQ(feed.WaitForChange(7, 0, kLong), 0U);
  canceller.join();
  EXPECT_TRUE(feed.Cancelled());
  EXPECT_EQ(feed.WaitForChange(7, 0, kLong), 0U);
}

}  // namespace
}  // namespace vdswap
