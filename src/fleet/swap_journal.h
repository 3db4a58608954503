#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "store/db.h"

namespace vdswap {

// The steps of a swap, in the order they run, then the rollback and the terminal entries.
// Every swap starts with checked (the new version's disks on the host); then, by kind
// (SwapKind):
//   app break-before-make: stopped, detached, attached, started
//   app make-before-break: attached (the new disk beside the old), prepared (mounted and
//     checked in the guest), switched (old stopped, new healthy), released (the old disk
//     unmounted in the guest and unplugged)
//   OS: stopped, shutdown, overlay, started (booted on the new overlay, healthy)
// and ends done/done, or rolling_back then rolled_back or failed.
enum class SwapStep {
  kChecked,
  kStopped,
  kDetached,
  kShutdown,
  kOverlay,
  kAttached,
  kPrepared,
  kSwitched,
  kReleased,
  kStarted,
  kRollingBack,
  kDone,
  kRolledBack,
  kFailed,
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
// the VM (ON DELETE CASCADE). Thread-safe (the Db serializes); one VM's rows are
// appended by one thread at a time (the Swapper holds the VM's lock).
//
// Durability, grouped. An intent must be durable before the action it guards runs, and a
// terminal entry is one fact with the VM's row (the Swapper writes both in one
// transaction). A plain step's done entry guards nothing: the next thing the Swapper does
// after it is to append the next step's intent (or the rollback's intent, or the
// terminal entry), with no action in between. So Append keeps such a done entry in memory
// and writes it in one transaction with the VM's next entry: one commit per step
// instead of two. And the entries of all VMs that wait to be written at the same moment
// are written in one transaction (group commit: one thread commits what queued up
// while the commit before ran), so a rollout of hundreds of swaps at once pays for a
// few fsyncs per step of all of them, not one per VM; each Append still returns only
// once its entry is durable. A crash loses at most that done entry, which leaves the
// step's intent as the newest durable entry, exactly as a crash just after the step's
// action and before its done entry would; Resume already decides from the hypervisor's
// live state there. The one done entry Resume reads as a fact, switched/done (the new
// app was healthy, so make-before-break goes forward), is written at once.
//
// Retention. When a swap ends (terminal entry), the rows of the VM's older swaps are
// deleted in the same transaction: a VM keeps the rows of its last kFinishedSwapsKept
// finished swaps (an interrupted swap that was rolled back, its retry and the swap
// before them stay readable) and of a swap in progress, so the table stays at a few
// dozen rows per VM however many rollouts ran. Rows of an unfinished swap come after the
// VM's newest terminal entry and are never deleted.
class SwapJournal {
 public:
  explicit SwapJournal(Db& db) : db_(db) {}

  // How many of a VM's finished swaps keep their rows (see Retention above).
  static constexpr int64_t kFinishedSwapsKept = 3;

  // Appends `e` stamped `at` (Unix seconds): durable on return, or (a plain step's done
  // entry, see above) with the VM's next Append. A terminal entry joins the caller's
  // transaction, if any; REQUIRES: other entries are appended outside a transaction
  // (they wait for the group commit, which needs the Db).
  Status Append(const JournalEntry& e, int64_t at);
  // The newest entry of `vm` (one still held for grouping included), or nullopt when it
  // has none.
  Result<std::optional<JournalEntry>> Last(const std::string& vm);
  // VMs whose newest entry is not terminal.
  Result<std::vector<std::string>> Unfinished();
  // Rows the table holds for `vm` (tests of the retention).
  Result<int64_t> RowCount(const std::string& vm);

  // True for the entries Append writes at once: intents, terminals and switched/done.
  static bool WrittenAtOnce(const JournalEntry& e);

 private:
  struct Held {
    JournalEntry entry;
    int64_t at = 0;
  };
  // Rows of one Append waiting in the group commit's queue.
  struct Waiting {
    std::vector<Held> rows;
    bool done = false;
    Status status;
  };
  Status Insert(const JournalEntry& e, int64_t at);
  // Queues `rows` and returns once they are committed (by this thread or another).
  Status GroupCommit(std::vector<Held> rows);
  // Writes the rows of `batch` in one transaction; with one failing, each on its own.
  void WriteBatch(const std::vector<std::shared_ptr<Waiting>>& batch);
  Status WriteRows(const std::vector<std::shared_ptr<Waiting>>& batch);

  Db& db_;
  std::mutex mu_;                     // held_; never held while calling into the Db
  std::map<std::string, Held> held_;  // by VM: a done entry waiting for the VM's next one
  std::mutex commit_mu_;              // queue_, committing_; never held while calling into the Db
  std::condition_variable commit_cv_;
  std::vector<std::shared_ptr<Waiting>> queue_;
  bool committing_ = false;
};

}  // namespace vdswap
