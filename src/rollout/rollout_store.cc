#include "rollout/rollout_store.h"

#include "core/enum_names.h"

namespace vdswap {

namespace {

constexpr EnumNames<RolloutState, 7> kStates = {{
    {RolloutState::kRunning, "running"},
    {RolloutState::kPaused, "paused"},
    {RolloutState::kRollingBack, "rolling_back"},
    {RolloutState::kSucceeded, "succeeded"},
    {RolloutState::kFailed, "failed"},
    {RolloutState::kRolledBack, "rolled_back"},
    {RolloutState::kAborted, "aborted"},
}};
constexpr EnumNames<RolloutVmState, 7> kVmStates = {{
    {RolloutVmState::kPending, "pending"},
    {RolloutVmState::kSwapping, "swapping"},
    {RolloutVmState::kDone, "done"},
    {RolloutVmState::kRolledBack, "rolled_back"},
    {RolloutVmState::kFailed, "failed"},
    {RolloutVmState::kSkipped, "skipped"},
    {RolloutVmState::kReverted, "reverted"},
}};

std::string S(RolloutState s) { return std::string(RolloutStateName(s)); }
std::string S(RolloutVmState s) { return std::string(RolloutVmStateName(s)); }

DbValue Downtime(std::optional<int64_t> ms) { return ms ? DbValue(*ms) : DbValue(nullptr); }

std::optional<int64_t> OptionalInt(const DbRow& r, size_t i) {
  if (r.IsNull(i)) return std::nullopt;
  return r.Int(i);
}

}  // namespace

bool IsActive(RolloutState s) {
  return s == RolloutState::kRunning || s == RolloutState::kPaused ||
         s == RolloutState::kRollingBack;
}

std::string_view RolloutStateName(RolloutState s) { return NameOf(kStates, s); }
std::string_view RolloutVmStateName(RolloutVmState s) { return NameOf(kVmStates, s); }
Result<RolloutState> RolloutStateFromName(std::string_view name) {
  return ValueOf(kStates, name, "rollout state");
}
Result<RolloutVmState> RolloutVmStateFromName(std::string_view name) {
  return ValueOf(kVmStates, name, "rollout vm state");
}

Result<int64_t> RolloutStore::Create(const std::string& template_name, int64_t to_version,
                                     const std::vector<RolloutMember>& vms,
                                     const RolloutPolicy& policy, int64_t now) {
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(db_.Exec(
      "INSERT INTO rollouts (template, to_version, state, policy, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
      {template_name, to_version, S(RolloutState::kRunning), PolicyToJson(policy).dump(), now}));
  int64_t id = db_.LastInsertId();
  for (size_t i = 0; i < vms.size(); ++i) {
    const RolloutMember& m = vms[i];
    RolloutVmState state =
        m.from_version == m.to_version ? RolloutVmState::kDone : RolloutVmState::kPending;
    RETURN_IF_ERROR(db_.Exec(
        "INSERT INTO rollout_vms (rollout_id, position, vm, host, state, from_version, "
        "to_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        {id, static_cast<int64_t>(i), m.vm, m.host, S(state), m.from_version, m.to_version}));
  }
  RETURN_IF_ERROR(txn.Commit());
  return id;
}

Result<Rollout> RolloutStore::Get(int64_t id) {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT template, to_version, state, error, created_at, updated_at, "
                             "policy, canaries_released, failures_forgiven FROM rollouts "
                             "WHERE id = ?1",
                             {id}));
  if (rows.empty()) return NotFound("rollout " + std::to_string(id) + " not found");
  const DbRow& r = rows[0];
  Rollout out;
  out.id = id;
  out.template_name = r.Text(0);
  out.to_version = r.Int(1);
  ASSIGN_OR_RETURN(out.state, RolloutStateFromName(r.Text(2)));
  out.error = r.Text(3);
  out.created_at = r.Int(4);
  out.updated_at = r.Int(5);
  ASSIGN_OR_RETURN(Json policy, ParseJson(r.Text(6), "rollout " + std::to_string(id) + " policy"));
  ASSIGN_OR_RETURN(out.policy, PolicyFromJson(policy));
  out.canaries_released = r.Int(7) != 0;
  out.failures_forgiven = r.Int(8);
  ASSIGN_OR_RETURN(auto vms, db_.Query("SELECT vm, state, from_version, to_version, downtime_ms, "
                                       "error, host, position, started_at_ms, finished_at_ms "
                                       "FROM rollout_vms WHERE rollout_id = ?1 ORDER BY position",
                                       {id}));
  out.vms.reserve(vms.size());
  for (const auto& v : vms) {
    RolloutVm e;
    e.vm = v.Text(0);
    ASSIGN_OR_RETURN(e.state, RolloutVmStateFromName(v.Text(1)));
    e.from_version = v.Int(2);
    e.to_version = v.Int(3);
    e.downtime_ms = OptionalInt(v, 4);
    e.error = v.Text(5);
    e.host = v.Text(6);
    e.position = v.Int(7);
    e.started_at_ms = OptionalInt(v, 8);
    e.finished_at_ms = OptionalInt(v, 9);
    out.vms.push_back(std::move(e));
  }
  return out;
}

Result<RolloutControl> RolloutStore::Control(int64_t id) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT state, canaries_released, failures_forgiven FROM "
                                        "rollouts WHERE id = ?1",
                                        {id}));
  if (rows.empty()) return NotFound("rollout " + std::to_string(id) + " not found");
  RolloutControl c;
  ASSIGN_OR_RETURN(c.state, RolloutStateFromName(rows[0].Text(0)));
  c.canaries_released = rows[0].Int(1) != 0;
  c.failures_forgiven = rows[0].Int(2);
  return c;
}

Result<std::vector<Rollout>> RolloutStore::List() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id FROM rollouts ORDER BY id"));
  std::vector<Rollout> out;
  for (const auto& r : rows) {
    ASSIGN_OR_RETURN(Rollout one, Get(r.Int(0)));
    out.push_back(std::move(one));
  }
  return out;
}

Status RolloutStore::SetState(int64_t id, RolloutState state, const std::string& error,
                              int64_t now) {
  return db_.Exec("UPDATE rollouts SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                  {id, S(state), error, now});
}

Status RolloutStore::SetCanariesReleased(int64_t id) {
  return db_.Exec("UPDATE rollouts SET canaries_released = 1 WHERE id = ?1", {id});
}

Status RolloutStore::SetFailuresForgiven(int64_t id, int64_t failures) {
  return db_.Exec("UPDATE rollouts SET failures_forgiven = ?2 WHERE id = ?1", {id, failures});
}

Status RolloutStore::SetVmState(int64_t id, const std::string& vm, RolloutVmState state) {
  return db_.Exec("UPDATE rollout_vms SET state = ?3 WHERE rollout_id = ?1 AND vm = ?2",
                  {id, vm, S(state)});
}

Status RolloutStore::SetVmStarted(int64_t id, const std::string& vm, int64_t now_ms) {
  return db_.Exec(
      "UPDATE rollout_vms SET state = ?3, started_at_ms = ?4, finished_at_ms = NULL "
      "WHERE rollout_id = ?1 AND vm = ?2",
      {id, vm, S(RolloutVmState::kSwapping), now_ms});
}

Status RolloutStore::SetVmsStarted(int64_t id, const std::vector<std::string>& vms,
                                   int64_t now_ms) {
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  for (const auto& vm : vms) RETURN_IF_ERROR(SetVmStarted(id, vm, now_ms));
  return txn.Commit();
}

Status RolloutStore::SetVmOutcome(int64_t id, const std::string& vm, RolloutVmState state,
                                  std::optional<int64_t> downtime_ms, const std::string& error,
                                  int64_t now_ms) {
  return db_.Exec(
      "UPDATE rollout_vms SET state = ?3, downtime_ms = coalesce(?4, downtime_ms), error = ?5, "
      "finished_at_ms = ?6 WHERE rollout_id = ?1 AND vm = ?2",
      {id, vm, S(state), Downtime(downtime_ms), error, now_ms});
}

Status RolloutStore::SetVmOutcomes(int64_t id, const std::vector<RolloutVmOutcome>& outcomes) {
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  for (const auto& o : outcomes) {
    RETURN_IF_ERROR(SetVmOutcome(id, o.vm, o.state, o.downtime_ms, o.error, o.now_ms));
  }
  return txn.Commit();
}

Status RolloutStore::SetSwappingVmOutcome(const std::string& vm, RolloutVmState state,
                                          std::optional<int64_t> downtime_ms,
                                          const std::string& error, int64_t now_ms) {
  return db_.Exec(
      "UPDATE rollout_vms SET state = ?2, downtime_ms = coalesce(?3, downtime_ms), error = ?4, "
      "finished_at_ms = ?6 WHERE vm = ?1 AND state = ?5",
      {vm, S(state), Downtime(downtime_ms), error, S(RolloutVmState::kSwapping), now_ms});
}

Status RolloutStore::SkipPending(int64_t id) {
  return db_.Exec("UPDATE rollout_vms SET state = ?2 WHERE rollout_id = ?1 AND state = ?3",
                  {id, S(RolloutVmState::kSkipped), S(RolloutVmState::kPending)});
}

Result<std::vector<std::string>> RolloutStore::Remaining(int64_t id) {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT vm FROM rollout_vms WHERE rollout_id = ?1 AND "
                             "state IN (?2, ?3) ORDER BY position",
                             {id, S(RolloutVmState::kPending), S(RolloutVmState::kSwapping)}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.Text(0));
  return out;
}

Result<std::optional<int64_t>> RolloutStore::ActiveRolloutOf(const std::string& vm) {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT r.id FROM rollout_vms rv JOIN rollouts r ON "
                             "r.id = rv.rollout_id WHERE rv.vm = ?1 AND r.state IN (?2, ?3, ?4)",
                             {vm, S(RolloutState::kRunning), S(RolloutState::kPaused),
                              S(RolloutState::kRollingBack)}));
  if (rows.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(rows[0].Int(0));
}

Result<std::map<std::string, int64_t>> RolloutStore::ActiveMembers() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT rv.vm, r.id FROM rollouts r JOIN rollout_vms rv ON "
                                        "rv.rollout_id = r.id WHERE r.state IN (?1, ?2, ?3)",
                                        {S(RolloutState::kRunning), S(RolloutState::kPaused),
                                         S(RolloutState::kRollingBack)}));
  std::map<std::string, int64_t> out;
  for (const auto& r : rows) out.emplace(r.Text(0), r.Int(1));
  return out;
}

Result<std::vector<int64_t>> RolloutStore::RunningIds() {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT id FROM rollouts WHERE state IN (?1, ?2) ORDER BY id",
                             {S(RolloutState::kRunning), S(RolloutState::kRollingBack)}));
  std::vector<int64_t> out;
  for (const auto& r : rows) out.push_back(r.Int(0));
  return out;
}

Result<int64_t> RolloutStore::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM rollouts"));
  return rows.at(0).Int(0);
}

Result<std::vector<std::pair<std::string, int64_t>>> RolloutStore::CountByState() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT state, count(*) FROM rollouts GROUP BY state "
                                        "ORDER BY state"));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : rows) out.emplace_back(r.Text(0), r.Int(1));
  return out;
}

}  // namespace vdswap
