#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace vdswap {

// Time as the host side sees it, behind one seam so unit tests run on virtual time:
// waits, deadlines and the fake hypervisor's latency all go through a Clock.
// Implementations are thread-safe.
class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Monotonic time, for deadlines and durations.
  virtual TimePoint Now() = 0;
  // Seconds since the Unix epoch, for timestamps in the store.
  virtual int64_t UnixSeconds() = 0;
  // Milliseconds since the Unix epoch, for per-VM start and end times.
  virtual int64_t UnixMillis() = 0;
  // Blocks the calling thread for `d` (of this clock's time).
  virtual void SleepFor(std::chrono::milliseconds d) = 0;

  // Milliseconds from `start` to Now().
  int64_t MsSince(TimePoint start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Now() - start).count();
  }
};

// The machine's clocks. Stateless; the composition root owns one.
class SystemClock : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  int64_t UnixSeconds() override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t UnixMillis() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepFor(std::chrono::milliseconds d) override;
};

// Virtual time for unit tests: SleepFor advances the clock by `d` and returns at once,
// so a wait of minutes costs nothing and a deadline is reached exactly. Advance() moves
// time forward from a test. Every thread shares the one virtual time.
class FakeClock : public Clock {
 public:
  // Starts at an arbitrary fixed point (Unix time 1,800,000,000).
  FakeClock() = default;

  TimePoint Now() override;
  int64_t UnixSeconds() override;
  int64_t UnixMillis() override;
  void SleepFor(std::chrono::milliseconds d) override { Advance(d); }
  void Advance(std::chrono::milliseconds d);

 private:
  std::mutex mu_;
  std::chrono::milliseconds elapsed_{0};
};

// Seconds since the Unix epoch (wall clock). For code outside the Clock seam (the image
// store's records, logs); host-side logic that tests must control takes a Clock.
inline int64_t UnixSeconds() { return SystemClock().UnixSeconds(); }

// Milliseconds elapsed on the monotonic clock since `start`.
inline int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return SystemClock().MsSince(start);
}

}  // namespace vdswap
