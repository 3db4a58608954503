#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"
#include "fleet/swap_order.h"

namespace vdswap {

// "N" or "P%": a count, or a share of a total.
struct Amount {
  int64_t value = 0;
  bool percent = false;

  // The count for `total` items. A percentage rounds down; with `at_least_one` a non-zero
  // amount of a non-empty total is at least 1.
  int64_t Of(int64_t total, bool at_least_one) const;
  std::string ToString() const;  // "3" or "25%"
  bool operator==(const Amount&) const = default;
};

// Parses "N" (N >= 0) or "P%" (0 <= P <= 100). kInvalidArgument names `flag`.
Result<Amount> ParseAmount(std::string_view text, std::string_view flag);
// Parses "500ms", "30s", "5m", "2h"; a bare number is seconds. kInvalidArgument names `flag`.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text, std::string_view flag);
// The shortest exact form: "500ms", "30s", "5m", "2h".
std::string FormatDuration(std::chrono::milliseconds d);

enum class OnFailure { kPause, kRollback };
enum class MaxAction { kApp, kOs };

// How a rollout moves its VMs (docs/architecture.md "Rollouts"). Persisted with the
// rollout; the defaults move one VM at a time and stop at the first failure.
struct RolloutPolicy {
  Amount batch{1, false};    // most VMs in flight at once (at least 1)
  int64_t max_per_host = 2;  // most in flight on one host
  Amount canary{0, false};   // the first N VMs go alone
  // After the canaries: continue after this wait, or (unset) pause for `resume`.
  std::optional<std::chrono::milliseconds> canary_wait;
  std::chrono::milliseconds min_ready{0};  // a VM is done once healthy this long
  Amount max_failures{0, false};           // failures tolerated over the whole rollout
  OnFailure on_failure = OnFailure::kPause;
  MaxAction max_action = MaxAction::kOs;  // kApp refuses rollouts that need a reboot
  std::optional<SwapOrder> swap_order;    // unset: the daemon's default (vdswapd --swap-order)
  bool operator==(const RolloutPolicy&) const = default;
};

// The policy's JSON form, used on the wire and in the store: {"batch": "25%",
// "max_per_host": 2, "canary": "1", "canary_wait": "30s" | null, "min_ready": "0s",
// "max_failures": "0", "on_failure": "pause", "max_action": "os",
// "swap_order": "make-before-break" | null}.
Json PolicyToJson(const RolloutPolicy& p);
// Reads the JSON form; absent fields keep their defaults, numbers are accepted where a
// string amount or duration is expected. kInvalidArgument names the field.
Result<RolloutPolicy> PolicyFromJson(const Json& j);

}  // namespace vdswap
