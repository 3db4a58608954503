#include "rollout/rollout_engine.h"

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"

namespace vdswap {

namespace {

// Nearest-rank percentile of sorted values.
int64_t Percentile(const std::vector<int64_t>& sorted, int p) {
  if (sorted.empty()) return 0;
  size_t rank = (static_cast<size_t>(p) * sorted.size() + 99) / 100;
  return sorted[std::max<size_t>(rank, 1) - 1];
}

}  // namespace

RolloutEngine::RolloutEngine(Db& db, VmService& vms, TemplateStore& templates, Swapper& swapper)
    : db_(db), vms_(vms), templates_(templates), swapper_(swapper) {}

RolloutEngine::~RolloutEngine() {
  stopping_ = true;
  std::map<int64_t, std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) {
    if (t.joinable()) t.join();
  }
}

Result<int64_t> RolloutEngine::Start(const std::string& to_ref, std::vector<std::string> vms) {
  ASSIGN_OR_RETURN(Template to, templates_.Get(to_ref));
  if (vms.empty()) {
    ASSIGN_OR_RETURN(auto all, vms_.List(to.name));
    for (const auto& v : all) {
      if (v.version != to.version) vms.push_back(v.name);
    }
    if (vms.empty()) return InvalidArgument("every VM of '" + to.name + "' is on " + to.Ref());
  }
  std::vector<VmRecord> records;
  for (const auto& name : vms) {
    ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
    if (vm.template_name != to.name) {
      return InvalidArgument("vm '" + name + "' runs template '" + vm.template_name + "'");
    }
    ASSIGN_OR_RETURN(auto busy, db_.Query("SELECT r.id FROM rollout_vms rv JOIN rollouts r ON "
                                          "r.id = rv.rollout_id WHERE rv.vm = ?1 AND r.state = "
                                          "'running'",
                                          {name}));
    if (!busy.empty()) {
      return FailedPrecondition("vm '" + name + "' is in running rollout " + busy[0].Text(0));
    }
    records.push_back(vm);
  }
  int64_t id;
  {
    Transaction txn(db_);
    RETURN_IF_ERROR(txn.begin_status());
    RETURN_IF_ERROR(
        db_.Exec("INSERT INTO rollouts (template, to_version, state, policy, "
                 "created_at, updated_at) VALUES (?1, ?2, 'running', '{}', ?3, ?3)",
                 {to.name, to.version, UnixSeconds()}));
    id = db_.LastInsertId();
    for (size_t i = 0; i < records.size(); ++i) {
      std::string state = records[i].version == to.version ? "done" : "pending";
      RETURN_IF_ERROR(db_.Exec(
          "INSERT INTO rollout_vms (rollout_id, position, vm, state, "
          "from_version, to_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
          {id, static_cast<int64_t>(i), records[i].name, state, records[i].version, to.version}));
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  Launch(id);
  return id;
}

void RolloutEngine::Launch(int64_t id) {
  std::lock_guard lock(mu_);
  finished_[id] = false;
  threads_[id] = std::thread([this, id] { Run(id); });
}

Status RolloutEngine::SetRolloutState(int64_t id, const std::string& state,
                                      const std::string& error) {
  return db_.Exec("UPDATE rollouts SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                  {id, state, error, UnixSeconds()});
}

void RolloutEngine::Run(int64_t id) {
  auto finish = [this, id](const std::string& state, const std::string& error) {
    SetRolloutState(id, state, error).IgnoreError();
    VLOG(kInfo) << "rollout " << id << ": " << state << (error.empty() ? "" : ": " + error);
    {
      std::lock_guard lock(mu_);
      finished_[id] = true;
    }
    done_cv_.notify_all();
  };
  auto rollout = db_.Query("SELECT template, to_version FROM rollouts WHERE id = ?1", {id});
  if (!rollout.ok() || rollout->empty()) return finish("failed", "rollout record missing");
  auto to = templates_.Get((*rollout)[0].Text(0) + ":" + (*rollout)[0].Text(1));
  if (!to.ok()) return finish("failed", to.status().message());
  auto pending = db_.Query(
      "SELECT vm FROM rollout_vms WHERE rollout_id = ?1 AND state IN "
      "('pending', 'swapping') ORDER BY position",
      {id});
  if (!pending.ok()) return finish("failed", pending.status().message());
  for (const auto& row : *pending) {
    if (stopping_) {
      VLOG(kInfo) << "rollout " << id << ": paused by shutdown; it continues at the next start";
      std::lock_guard lock(mu_);
      finished_[id] = true;
      return;
    }
    std::string vm = row.Text(0);
    db_.Exec("UPDATE rollout_vms SET state = 'swapping' WHERE rollout_id = ?1 AND vm = ?2",
             {id, vm})
        .IgnoreError();
    auto outcome = swapper_.Swap(vm, *to, id, nullptr);
    SwapOutcome o = outcome.ok() ? *outcome : SwapOutcome{"failed", -1, outcome.status().message()};
    db_.Exec(
           "UPDATE rollout_vms SET state = ?3, downtime_ms = ?4, error = ?5 WHERE rollout_id "
           "= ?1 AND vm = ?2",
           {id, vm, o.state, o.downtime_ms >= 0 ? DbValue(o.downtime_ms) : DbValue(nullptr),
            o.error})
        .IgnoreError();
    if (o.state != "done") {
      db_.Exec(
             "UPDATE rollout_vms SET state = 'skipped' WHERE rollout_id = ?1 AND state = "
             "'pending'",
             {id})
          .IgnoreError();
      return finish("failed", "vm '" + vm + "' " + o.state + ": " + o.error);
    }
  }
  finish("succeeded", "");
}

void RolloutEngine::Wait(int64_t id) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return finished_.count(id) == 0 || finished_[id]; });
}

Result<Json> RolloutEngine::Get(int64_t id) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT template, to_version, state, error, created_at, "
                                        "updated_at FROM rollouts WHERE id = ?1",
                                        {id}));
  if (rows.empty()) return NotFound("rollout " + std::to_string(id) + " not found");
  const DbRow& r = rows[0];
  Json j = {{"id", id},
            {"to", r.Text(0) + ":" + r.Text(1)},
            {"state", r.Text(2)},
            {"error", r.Text(3)},
            {"created_at", r.Int(4)},
            {"updated_at", r.Int(5)}};
  ASSIGN_OR_RETURN(auto vms, db_.Query("SELECT vm, state, from_version, to_version, downtime_ms, "
                                       "error FROM rollout_vms WHERE rollout_id = ?1 ORDER BY "
                                       "position",
                                       {id}));
  Json list = Json::array();
  std::vector<int64_t> downtimes;
  for (const auto& v : vms) {
    Json e = {{"vm", v.Text(0)},
              {"state", v.Text(1)},
              {"from", r.Text(0) + ":" + v.Text(2)},
              {"to", r.Text(0) + ":" + v.Text(3)},
              {"downtime_ms", v.IsNull(4) ? Json() : Json(v.Int(4))},
              {"error", v.Text(5)}};
    if (!v.IsNull(4)) downtimes.push_back(v.Int(4));
    list.push_back(e);
  }
  std::sort(downtimes.begin(), downtimes.end());
  j["vms"] = list;
  j["downtime_ms"] = {{"p50", Percentile(downtimes, 50)},
                      {"p95", Percentile(downtimes, 95)},
                      {"max", downtimes.empty() ? 0 : downtimes.back()}};
  return j;
}

Result<Json> RolloutEngine::List() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id FROM rollouts ORDER BY id"));
  Json out = Json::array();
  for (const auto& r : rows) {
    ASSIGN_OR_RETURN(Json j, Get(r.Int(0)));
    j.erase("vms");
    out.push_back(j);
  }
  return out;
}

Status RolloutEngine::ResumeAll() {
  ASSIGN_OR_RETURN(auto unfinished, swapper_.Unfinished());
  for (const auto& vm : unfinished) {
    auto out = swapper_.Resume(vm);
    if (!out.ok()) {
      VLOG(kWarning) << "vm '" << vm << "': cannot resume its swap: " << out.status().message();
      continue;
    }
    // Record the resumed VM's outcome in its rollout.
    db_.Exec(
           "UPDATE rollout_vms SET state = ?2, downtime_ms = ?3, error = ?4 WHERE vm = ?1 "
           "AND state = 'swapping'",
           {vm, out->state, out->downtime_ms >= 0 ? DbValue(out->downtime_ms) : DbValue(nullptr),
            out->error})
        .IgnoreError();
  }
  ASSIGN_OR_RETURN(auto running, db_.Query("SELECT id FROM rollouts WHERE state = 'running'"));
  for (const auto& r : running) {
    int64_t id = r.Int(0);
    ASSIGN_OR_RETURN(auto bad, db_.Query("SELECT vm, state FROM rollout_vms WHERE rollout_id = "
                                         "?1 AND state IN ('rolled_back', 'failed')",
                                         {id}));
    if (!bad.empty()) {
      db_.Exec(
             "UPDATE rollout_vms SET state = 'skipped' WHERE rollout_id = ?1 AND state = "
             "'pending'",
             {id})
          .IgnoreError();
      RETURN_IF_ERROR(SetRolloutState(
          id, "failed",
          "vm '" + bad[0].Text(0) + "' " + bad[0].Text(1) + " (after a daemon restart)"));
      continue;
    }
    VLOG(kInfo) << "rollout " << id << ": continuing after a restart";
    Launch(id);
  }
  return Status::Ok();
}

}  // namespace vdswap
