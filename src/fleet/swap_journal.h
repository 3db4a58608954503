#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "store/db.h"

namespace vdswap {

// The steps of a swap, in the order they run, and the terminal entries.
enum class SwapStep {
  kChecked,
  kStopped,
  kDetached,
  kAttached,
  kShutdown,
  kOverlay,
  kStarted,
  kRollingBack,
  kDone,
  kRolledBack,
  kFailed,
  // Make-before-break app swap: checked → attached (the new disk beside the old) →
  // prepared (mounted and checked in the guest) → switched (old stopped, new healthy) →
  // released (old disk unmounted in the guest and unplugged) → done.
  kPrepared,
  kSwitched,
  kReleased,
};
enum class SwapPhase { kIntent, kDone };

// Lower-case names as stored in swap_journal ("checked", "rolling_back", "intent"...).
std::string_view SwapStepName(SwapStep s);
std::string_view SwapPhaseName(SwapPhase p);
Result<SwapStep> SwapStepFromName(std::string_view name);
Result<SwapPhase> SwapPhaseFromName(std::string_view name);

// One journal row.
struct JournalEntry {
  std::string vm;
  int64_t rollout_id = 0;
  SwapStep step = SwapStep::kChecked;
  SwapPhase phase = SwapPhase::kIntent;
  Json detail = Json::object();

  // done/done, rolled_back/done or failed/done: the swap is over.
  bool IsTerminal() const;
};

// The swap_journal table, written by the Swapper before and after every step so that a
// crash anywhere can be resumed. The only code that runs SQL on it; a VM's rows go with
// the VM (ON DELETE CASCADE). Thread-safe (the Db serializes).
class SwapJournal {
 public:
  explicit SwapJournal(Db& db) : db_(db) {}

  // Appends `e` stamped `at` (Unix seconds).
  Status Append(const JournalEntry& e, int64_t at);
  // The newest entry of `vm`, or nullopt when it has none.
  Result<std::optional<JournalEntry>> Last(const std::string& vm);
  // VMs whose newest entry is not terminal.
  Result<std::vector<std::string>> Unfinished();

 private:
  Db& db_;
};

}  // namespace vdswap
