#include "api/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace vdswap {
namespace {

TEST(WorkerPoolTest, QueuesAtMostMaxQueuedJobsThenRefuses) {
  WorkerPool pool(/*threads=*/1, /*max_queued=*/1);
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.Submit([&] {
    started.set_value();
    released.wait();
    ++ran;
  }));
  started.get_future().wait();  // the thread is busy: the next job waits in the queue
  EXPECT_TRUE(pool.Submit([&] { ++ran; }));
  EXPECT_FALSE(pool.Submit([&] { ++ran; })) << "a second waiting job exceeds max_queued";
  release.set_value();
  pool.Drain();
  EXPECT_EQ(ran, 2);
  EXPECT_FALSE(pool.Submit([&] { ++ran; })) << "a drained pool takes no more jobs";
}

}  // namespace
}  // namespace vdswap
