#include "fleet/swap_journal.h"

#include "core/enum_names.h"

namespace vdswap {

namespace {

constexpr EnumNames<SwapStep, 14> kSteps = {{
    {SwapStep::kChecked, "checked"},
    {SwapStep::kStopped, "stopped"},
    {SwapStep::kDetached, "detached"},
    {SwapStep::kShutdown, "shutdown"},
    {SwapStep::kOverlay, "overlay"},
    {SwapStep::kAttached, "attached"},
    {SwapStep::kPrepared, "prepared"},
    {SwapStep::kSwitched, "switched"},
    {SwapStep::kReleased, "released"},
    {SwapStep::kStarted, "started"},
    {SwapStep::kRollingBack, "rolling_back"},
    {SwapStep::kDone, "done"},
    {SwapStep::kRolledBack, "rolled_back"},
    {SwapStep::kFailed, "failed"},
}};
constexpr EnumNames<SwapPhase, 2> kPhases = {
    {{SwapPhase::kIntent, "intent"}, {SwapPhase::kDone, "done"}}};

Result<JournalEntry> FromRow(const DbRow& r) {
  JournalEntry e;
  e.vm = r.Text(0);
  e.rollout_id = r.Int(1);
  ASSIGN_OR_RETURN(e.step, SwapStepFromName(r.Text(2)));
  ASSIGN_OR_RETURN(e.phase, SwapPhaseFromName(r.Text(3)));
  ASSIGN_OR_RETURN(e.detail, ParseJson(r.Text(4), "journal detail"));
  return e;
}

}  // namespace

std::string_view SwapStepName(SwapStep s) { return NameOf(kSteps, s); }
std::string_view SwapPhaseName(SwapPhase p) { return NameOf(kPhases, p); }
Result<SwapStep> SwapStepFromName(std::string_view name) {
  return ValueOf(kSteps, name, "swap step");
}
Result<SwapPhase> SwapPhaseFromName(std::string_view name) {
  return ValueOf(kPhases, name, "swap phase");
}

bool JournalEntry::IsTerminal() const {
  return phase == SwapPhase::kDone &&
         (step == SwapStep::kDone || step == SwapStep::kRolledBack || step == SwapStep::kFailed);
}

namespace {

// The rows that end a swap (JournalEntry::IsTerminal).
constexpr char kTerminal[] = "phase = 'done' AND step IN ('done', 'rolled_back', 'failed')";

}  // namespace

bool SwapJournal::WrittenAtOnce(const JournalEntry& e) {
  return e.phase == SwapPhase::kIntent || e.IsTerminal() || e.step == SwapStep::kSwitched;
}

Status SwapJournal::Insert(const JournalEntry& e, int64_t at) {
  return db_.Exec(
      "INSERT INTO swap_journal (vm, rollout_id, step, phase, detail, at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      {e.vm, e.rollout_id, std::string(SwapStepName(e.step)), std::string(SwapPhaseName(e.phase)),
       DumpJson(e.detail), at});
}

Status SwapJournal::Append(const JournalEntry& e, int64_t at) {
  std::vector<Held> rows;
  {
    std::lock_guard lock(mu_);
    if (!WrittenAtOnce(e)) {
      held_[e.vm] = Held{e, at};
      return Status::Ok();
    }
    auto it = held_.find(e.vm);
    if (it != held_.end()) {
      rows.push_back(std::move(it->second));
      held_.erase(it);
    }
  }
  rows.push_back(Held{e, at});
  if (!e.IsTerminal()) return GroupCommit(std::move(rows));
  Transaction txn(db_);  // joins the caller's, as the terminal entry's with the VM row
  RETURN_IF_ERROR(txn.begin_status());
  for (const Held& h : rows) RETURN_IF_ERROR(Insert(h.entry, h.at));
  // The newest terminal is this one (offset 0); rows up to the one before the kept
  // swaps go.
  RETURN_IF_ERROR(
      db_.Exec("DELETE FROM swap_journal WHERE vm = ?1 AND seq <= (SELECT seq FROM swap_journal "
               "WHERE vm = ?1 AND " +
                   std::string(kTerminal) + " ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
               {e.vm, kFinishedSwapsKept}));
  return txn.Commit();
}

Status SwapJournal::GroupCommit(std::vector<Held> rows) {
  auto mine = std::make_shared<Waiting>();
  mine->rows = std::move(rows);
  std::unique_lock lock(commit_mu_);
  queue_.push_back(mine);
  while (!mine->done) {
    if (committing_) {
      commit_cv_.wait(lock);
      continue;
    }
    // Nobody commits: this thread writes everything queued, its own rows included.
    committing_ = true;
    std::vector<std::shared_ptr<Waiting>> batch;
    batch.swap(queue_);
    lock.unlock();
    WriteBatch(batch);
    lock.lock();
    for (auto& w : batch) w->done = true;
    committing_ = false;
    commit_cv_.notify_all();
  }
  return mine->status;
}

Status SwapJournal::WriteRows(const std::vector<std::shared_ptr<Waiting>>& batch) {
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  for (const auto& w : batch) {
    for (const Held& h : w->rows) RETURN_IF_ERROR(Insert(h.entry, h.at));
  }
  return txn.Commit();
}

void SwapJournal::WriteBatch(const std::vector<std::shared_ptr<Waiting>>& batch) {
  Status s = WriteRows(batch);
  if (s.ok() || batch.size() == 1) {
    for (auto& w : batch) w->status = s;
    return;
  }
  // One entry that cannot be written (its VM was removed meanwhile) must not fail the
  // others: each on its own then.
  for (auto& w : batch) w->status = WriteRows({w});
}

Result<std::optional<JournalEntry>> SwapJournal::Last(const std::string& vm) {
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(vm);
    if (it != held_.end()) return std::optional<JournalEntry>(it->second.entry);
  }
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT vm, rollout_id, step, phase, detail FROM "
                                        "swap_journal WHERE vm = ?1 ORDER BY seq DESC LIMIT 1",
                                        {vm}));
  if (rows.empty()) return std::optional<JournalEntry>();
  ASSIGN_OR_RETURN(JournalEntry e, FromRow(rows[0]));
  return std::optional<JournalEntry>(std::move(e));
}

Result<std::vector<std::string>> SwapJournal::Unfinished() {
  // The newest row of each VM (one index walk: the (vm, seq) index gives max(seq) per
  // VM), kept when it is not terminal. Held entries are never terminal and follow a
  // durable intent of the same swap, so they change no answer.
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT vm FROM swap_journal WHERE seq IN (SELECT max(seq) FROM "
                             "swap_journal GROUP BY vm) AND NOT (" +
                             std::string(kTerminal) + ") ORDER BY vm"));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r.Text(0));
  return out;
}

Result<int64_t> SwapJournal::RowCount(const std::string& vm) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM swap_journal WHERE vm = ?1", {vm}));
  return rows.at(0).Int(0);
}

}  // namespace vdswap
