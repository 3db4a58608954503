#include "rollout/change_feed.h"

namespace vdswap {

void ChangeFeed::Bump(int64_t id) {
  {
    std::lock_guard lock(mu_);
    ++versions_[id];
  }
  changed_.notify_all();
}

uint64_t ChangeFeed::Version(int64_t id) {
  std::lock_guard lock(mu_);
  return VersionLocked(id);
}

uint64_t ChangeFeed::WaitForChange(int64_t id, uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return cancelled_ || VersionLocked(id) > seen; });
  return VersionLocked(id);
}

void ChangeFeed::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  changed_.notify_all();
}

bool ChangeFeed::Cancelled() {
  std::lock_guard lock(mu_);
  return cancelled_;
}

uint64_t ChangeFeed::VersionLocked(int64_t id) const {
  auto it = versions_.find(id);
  return it == versions_.end() ? 0 : it->second;
}

}  // namespace vdswap
