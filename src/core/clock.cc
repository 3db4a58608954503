#include "core/clock.h"

#include <thread>

namespace vdswap {

namespace {
constexpr int64_t kFakeEpochSeconds = 1'800'000'000;
}  // namespace

void SystemClock::SleepFor(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

Clock::TimePoint FakeClock::Now() {
  std::lock_guard lock(mu_);
  return TimePoint{} + std::chrono::seconds(kFakeEpochSeconds) + elapsed_;
}

int64_t FakeClock::UnixSeconds() {
  std::lock_guard lock(mu_);
  return kFakeEpochSeconds + std::chrono::duration_cast<std::chrono::seconds>(elapsed_).count();
}

int64_t FakeClock::UnixMillis() {
  std::lock_guard lock(mu_);
  return kFakeEpochSeconds * 1000 + elapsed_.count();
}

void FakeClock::Advance(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  elapsed_ += d;
}

}  // namespace vdswap
