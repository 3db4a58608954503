#include "fleet/swap_journal.h"

#include "core/enum_names.h"

namespace vdswap {

namespace {

constexpr EnumNames<SwapStep, 14> kSteps = {{
    {SwapStep::kChecked, "checked"},
    {SwapStep::kStopped, "stopped"},
    {SwapStep::kDetached, "detached"},
    {SwapStep::kAttached, "attached"},
    {SwapStep::kShutdown, "shutdown"},
    {SwapStep::kOverlay, "overlay"},
    {SwapStep::kStarted, "started"},
    {SwapStep::kRollingBack, "rolling_back"},
    {SwapStep::kDone, "done"},
    {SwapStep::kRolledBack, "rolled_back"},
    {SwapStep::kFailed, "failed"},
    {SwapStep::kPrepared, "prepared"},
    {SwapStep::kSwitched, "switched"},
    {SwapStep::kReleased, "released"},
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

Status SwapJournal::Append(const JournalEntry& e, int64_t at) {
  return db_.Exec(
      "INSERT INTO swap_journal (vm, rollout_id, step, phase, detail, at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      {e.vm, e.rollout_id, std::string(SwapStepName(e.step)), std::string(SwapPhaseName(e.phase)),
       DumpJson(e.detail), at});
}

Result<std::optional<JournalEntry>> SwapJournal::Last(const std::string& vm) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT vm, rollout_id, step, phase, detail FROM "
                                        "swap_journal WHERE vm = ?1 ORDER BY seq DESC LIMIT 1",
                                        {vm}));
  if (rows.empty()) return std::optional<JournalEntry>();
  ASSIGN_OR_RETURN(JournalEntry e, FromRow(rows[0]));
  return std::optional<JournalEntry>(std::move(e));
}

Result<std::vector<std::string>> SwapJournal::Unfinished() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT j.vm, j.rollout_id, j.step, j.phase, j.detail "
                                        "FROM swap_journal j WHERE j.seq = (SELECT max(seq) "
                                        "FROM swap_journal WHERE vm = j.vm) ORDER BY j.vm"));
  std::vector<std::string> out;
  for (const auto& r : rows) {
    ASSIGN_OR_RETURN(JournalEntry e, FromRow(r));
    if (!e.IsTerminal()) out.push_back(e.vm);
  }
  return out;
}

}  // namespace vdswap
