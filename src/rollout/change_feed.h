#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>

namespace vdswap {

// A change counter per rollout that watchers wait on (`GET /v1/rollouts/{id}?watch`, see
// docs/api.md "Long operations"): the engine bumps a rollout's counter on every change; a
// watcher reads the counter, then the rollout, then waits for the counter to pass what it
// read, so a change made in between is never missed. Counters start at 0 in each process
// and only grow. Cancel wakes every waiter for good (the daemon is stopping).
// Thread-safe. Its lock is its own and held only inside its functions, so callers may
// bump it while holding locks of theirs.
class ChangeFeed {
 public:
  // Counts a change of rollout `id` and wakes its waiters.
  void Bump(int64_t id);
  // The counter of rollout `id`: 0 before its first change.
  uint64_t Version(int64_t id);
  // Blocks until the counter of `id` exceeds `seen`, `timeout` passes, or Cancel was
  // called (then returns at once); returns the counter then.
  uint64_t WaitForChange(int64_t id, uint64_t seen, std::chrono::milliseconds timeout);
  // Wakes every WaitForChange, now and later, for good.
  void Cancel();
  // Whether Cancel was called.
  bool Cancelled();

 private:
  // REQUIRES: mu_ held.
  uint64_t VersionLocked(int64_t id) const;

  std::mutex mu_;  // guards what follows
  std::condition_variable changed_;
  std::map<int64_t, uint64_t> versions_;  // by rollout; absent: 0
  bool cancelled_ = false;
};

}  // namespace vdswap
