#include "cli/progress_bar.h"

namespace vdswap {

namespace {

std::string Duration(int64_t ms) {
  const int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

}  // namespace

std::string RolloutProgressLine(const Json& rollout, int width) {
  int64_t total = 0, done = 0, in_flight = 0, failed = 0, open = 0;
  const Json counts = rollout.value("counts", Json::object());
  for (const auto& [state, n] : counts.items()) {
    const int64_t count = n.get<int64_t>();
    total += count;
    if (state == "done") done += count;
    if (state == "swapping") in_flight += count;
    if (state == "rolled_back" || state == "failed") failed += count;
    if (state == "pending" || state == "swapping") open += count;
  }
  const int64_t filled = total == 0 ? 0 : (total - open) * width / total;
  std::string line = "[" + std::string(static_cast<size_t>(filled), '#') +
                     std::string(static_cast<size_t>(width - filled), '.') + "] ";
  line += std::to_string(done) + "/" + std::to_string(total) + " done, " +
          std::to_string(in_flight) + " in flight, " + std::to_string(failed) + " failed, ETA ";
  const Json eta = rollout.value("eta_ms", Json());
  line += eta.is_number() ? Duration(eta.get<int64_t>()) : "-";
  return line;
}

}  // namespace vdswap
