#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vdswap {

// A fixed set of threads running submitted jobs in submission order, with a bounded
// queue: at most `max_queued` jobs wait for a thread. Thread-safe.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queued);
  ~WorkerPool();  // Drain()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false (and `job` dropped) when `max_queued` jobs wait already or the
  // pool is draining.
  bool Submit(std::function<void()> job);
  // Refuses new jobs, runs every queued one, then joins the threads. Idempotent.
  void Drain();

 private:
  void Loop();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool draining_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace vdswap
