#include "rollout/rollout_engine.h"

#include <algorithm>
#include <set>

#include "core/log.h"

namespace vdswap {

namespace {

// How long a coordinator waits for a wake-up before it looks again itself: Shutdown
// notifies without the engine's lock (it may run inside a swap's crash hook), so a
// notification can slip past a coordinator that is about to wait.
constexpr auto kRecheck = std::chrono::seconds(1);
// Longest single sleep of a --canary-wait, so pause, abort and shutdown are seen.
constexpr auto kCanaryWaitSlice = std::chrono::milliseconds(500);
constexpr auto kReadyCheckTimeout = std::chrono::seconds(30);

std::optional<int64_t> Downtime(const SwapOutcome& o) {
  if (o.downtime_ms < 0) return std::nullopt;
  return o.downtime_ms;
}

bool IsFailure(RolloutVmState s) {
  return s == RolloutVmState::kRolledBack || s == RolloutVmState::kFailed;
}

}  // namespace

RolloutVmState RolloutVmStateFor(SwapResult r) {
  switch (r) {
    case SwapResult::kDone:
      return RolloutVmState::kDone;
    case SwapResult::kRolledBack:
      return RolloutVmState::kRolledBack;
    case SwapResult::kFailed:
      return RolloutVmState::kFailed;
  }
  return RolloutVmState::kFailed;
}

// A rollout as its coordinator drives it. Guarded by run_mu_ once workers run.
struct RolloutEngine::Run {
  Rollout rollout;
  std::unique_ptr<BatchPlanner> planner;
  std::map<int64_t, Template> templates;  // by version
  std::vector<PendingVm> pending;         // not started, in rollout order
  std::vector<size_t> pending_vm;         // index into rollout.vms, parallel to pending
  InFlight in_flight;
  int64_t canaries_left = 0;  // canaries pending or in flight
  int64_t failures = 0;
  std::string first_failure;
  std::optional<Clock::TimePoint> canary_wait_until;
  std::map<std::string, std::thread> workers;  // by VM
  std::vector<std::thread> prefetchers;        // one per host, joined at the end
  std::vector<std::string> ended;              // workers to join
  std::vector<RolloutVmOutcome> outcomes;      // of ended swaps, not yet recorded
  uint64_t wake = 0;                           // bumped by every event the coordinator awaits
};

RolloutEngine::RolloutEngine(RolloutStore& store, VmTable& vms, TemplateStore& templates,
                             HostRegistry& hosts, Swapper& swapper, AgentGateway& agent,
                             Clock& clock)
    : store_(store),
      vms_(vms),
      templates_(templates),
      hosts_(hosts),
      swapper_(swapper),
      agent_(agent),
      clock_(clock) {}

void RolloutEngine::Shutdown() {
  stopping_ = true;
  work_cv_.notify_all();
  CancelWaits();
}

RolloutEngine::~RolloutEngine() {
  Shutdown();
  std::map<int64_t, Coordinator> coordinators;
  {
    std::lock_guard lock(run_mu_);
    coordinators.swap(coordinators_);
  }
  for (auto& [id, c] : coordinators) {
    if (c.thread.joinable()) c.thread.join();
  }
}

Status RolloutEngine::SetState(int64_t id, RolloutState state, const std::string& error) {
  Status s = store_.SetState(id, state, error, clock_.UnixSeconds());
  changes_.Bump(id);
  if (s.ok() && observer_ && !IsActive(state)) observer_->RolloutEnded(state);
  VLOG(kInfo) << "rollout " << id << ": " << RolloutStateName(state)
              << (error.empty() ? "" : ": " + error);
  return s;
}

Result<Template> RolloutEngine::TemplateAt(const std::string& name, int64_t version) {
  return templates_.Get(name + ":" + std::to_string(version));
}

Result<int64_t> RolloutEngine::Start(const std::string& to_ref, std::vector<std::string> vms,
                                     const RolloutPolicy& policy) {
  ASSIGN_OR_RETURN(Template to, templates_.Get(to_ref));
  std::lock_guard start_lock(start_mu_);
  // The template's VMs and the VMs active rollouts hold, read once: a rollout of
  // thousands of VMs checks each in memory.
  ASSIGN_OR_RETURN(auto all, vms_.List(to.name));
  std::map<std::string, const VmRecord*> by_name;
  for (const auto& v : all) by_name.emplace(v.name, &v);
  if (vms.empty()) {
    for (const auto& v : all) {
      if (v.version != to.version) vms.push_back(v.name);
    }
    if (vms.empty()) return InvalidArgument("every VM of '" + to.name + "' is on " + to.Ref());
  }
  ASSIGN_OR_RETURN(auto busy, store_.ActiveMembers());
  std::map<int64_t, Template> from_templates;
  std::vector<RolloutMember> members;
  members.reserve(vms.size());
  for (const auto& name : vms) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      ASSIGN_OR_RETURN(VmRecord other, vms_.Get(name));  // kNotFound when there is none
      return InvalidArgument("vm '" + name + "' runs template '" + other.template_name + "'");
    }
    const VmRecord& vm = *it->second;
    if (auto held = busy.find(name); held != busy.end()) {
      return FailedPrecondition("vm '" + name + "' is in active rollout " +
                                std::to_string(held->second));
    }
    if (policy.max_action == MaxAction::kApp) {
      if (!from_templates.count(vm.version)) {
        ASSIGN_OR_RETURN(from_templates[vm.version], TemplateAt(vm.template_name, vm.version));
      }
      const Template& from = from_templates[vm.version];
      if (from.os_digest != to.os_digest) {
        return FailedPrecondition("vm '" + name + "' would need an OS swap (" + from.Ref() +
                                  " -> " + to.Ref() + ") and --max-action is app");
      }
    }
    members.push_back({vm.name, vm.host, vm.version, to.version});
  }
  return Begin(to.name, to.version, members, policy);
}

Status RolloutEngine::Pause(int64_t id) {
  std::lock_guard lock(run_mu_);
  ASSIGN_OR_RETURN(RolloutControl ctl, store_.Control(id));
  if (ctl.state != RolloutState::kRunning) {
    return FailedPrecondition("rollout " + std::to_string(id) + " is " +
                              std::string(RolloutStateName(ctl.state)) + ", not running");
  }
  RETURN_IF_ERROR(SetState(id, RolloutState::kPaused, ""));
  work_cv_.notify_all();
  return Status::Ok();
}

Status RolloutEngine::Resume(int64_t id) {
  std::lock_guard lock(run_mu_);
  ASSIGN_OR_RETURN(RolloutControl ctl, store_.Control(id));
  if (ctl.state != RolloutState::kPaused) {
    return FailedPrecondition("rollout " + std::to_string(id) + " is " +
                              std::string(RolloutStateName(ctl.state)) + ", not paused");
  }
  ASSIGN_OR_RETURN(Rollout r, store_.Get(id));
  int64_t failures = 0;
  for (const auto& v : r.vms) failures += IsFailure(v.state);
  // The operator saw the failures and resumed: the budget counts only new ones.
  RETURN_IF_ERROR(store_.SetFailuresForgiven(id, failures));
  RETURN_IF_ERROR(store_.SetCanariesReleased(id));
  RETURN_IF_ERROR(SetState(id, RolloutState::kRunning, ""));
  work_cv_.notify_all();
  LaunchLocked(id);
  return Status::Ok();
}

Status RolloutEngine::Abort(int64_t id) {
  std::lock_guard lock(run_mu_);
  ASSIGN_OR_RETURN(RolloutControl ctl, store_.Control(id));
  if (ctl.state != RolloutState::kRunning && ctl.state != RolloutState::kPaused) {
    return FailedPrecondition("rollout " + std::to_string(id) + " is " +
                              std::string(RolloutStateName(ctl.state)) + "; only a running or " +
                              "paused rollout can be aborted");
  }
  RETURN_IF_ERROR(store_.SkipPending(id));
  RETURN_IF_ERROR(SetState(id, RolloutState::kAborted, "aborted"));
  work_cv_.notify_all();
  return Status::Ok();
}

Result<int64_t> RolloutEngine::Undo(int64_t id) {
  ASSIGN_OR_RETURN(Rollout r, store_.Get(id));
  if (IsActive(r.state)) {
    return FailedPrecondition("rollout " + std::to_string(id) + " is " +
                              std::string(RolloutStateName(r.state)) + "; abort it first");
  }
  std::lock_guard start_lock(start_mu_);
  std::vector<RolloutMember> members;
  for (const auto& v : r.vms) {
    auto vm = vms_.Get(v.vm);
    if (!vm.ok()) continue;  // removed since
    if (vm->template_name != r.template_name || vm->version == v.from_version) continue;
    ASSIGN_OR_RETURN(auto busy, store_.ActiveRolloutOf(v.vm));
    if (busy) {
      return FailedPrecondition("vm '" + v.vm + "' is in active rollout " + std::to_string(*busy));
    }
    members.push_back({vm->name, vm->host, vm->version, v.from_version});
  }
  if (members.empty()) {
    return InvalidArgument("rollout " + std::to_string(id) + " left no VM to move back");
  }
  RolloutPolicy policy = r.policy;
  policy.canary = Amount{0, false};  // going back to what ran before needs no canary
  return Begin(r.template_name, members.front().to_version, members, policy);
}

Result<int64_t> RolloutEngine::Begin(const std::string& template_name, int64_t to_version,
                                     const std::vector<RolloutMember>& members,
                                     const RolloutPolicy& policy) {
  ASSIGN_OR_RETURN(int64_t id,
                   store_.Create(template_name, to_version, members, policy, clock_.UnixSeconds()));
  if (observer_) observer_->RolloutStarted();
  changes_.Bump(id);
  Launch(id);
  return id;
}

void RolloutEngine::Launch(int64_t id) {
  std::lock_guard lock(run_mu_);
  LaunchLocked(id);
}

void RolloutEngine::LaunchLocked(int64_t id) {
  Coordinator& c = coordinators_[id];
  if (c.thread.joinable() && !c.finished) return;
  if (c.thread.joinable()) c.thread.join();
  c.finished = false;
  c.thread = std::thread([this, id] { Coordinate(id); });
}

void RolloutEngine::Coordinate(int64_t id) {
  Run run;
  Status s = Drive(id, run);
  if (!s.ok() && !stopping_) SetState(id, RolloutState::kFailed, s.message()).IgnoreError();
  // Drive returns with no swap in flight unless it failed; either way every worker ends.
  for (auto& [vm, t] : run.workers) {
    if (t.joinable()) t.join();
  }
  for (auto& t : run.prefetchers) t.join();
  {
    std::lock_guard lock(run_mu_);
    coordinators_[id].finished = true;
  }
  done_cv_.notify_all();
}

Status RolloutEngine::Drive(int64_t id, Run& run) {
  RETURN_IF_ERROR(Rebuild(id, run));
  Rollout& r = run.rollout;
  if (r.state == RolloutState::kRollingBack) return RollBack(id, run, r.error);
  StartPrefetch(run);

  std::unique_lock lock(run_mu_);
  for (;;) {
    for (const auto& vm : run.ended) {
      auto it = run.workers.find(vm);
      if (it != run.workers.end()) {
        it->second.join();  // it only has its notifications left; it takes no run_mu_
        run.workers.erase(it);
      }
    }
    run.ended.clear();
    // The swaps that ended since the last look, recorded in one write. A crash before
    // it leaves them swapping, which the next engine settles from the VMs' records.
    if (!run.outcomes.empty()) {
      store_.SetVmOutcomes(id, run.outcomes).IgnoreError();
      run.outcomes.clear();
      changes_.Bump(id);
    }
    const uint64_t wake = run.wake;
    ASSIGN_OR_RETURN(RolloutControl ctl, store_.Control(id));
    const bool over_budget = run.planner->BudgetExceeded(run.failures - ctl.failures_forgiven);
    if (ctl.state == RolloutState::kRunning && !stopping_ && !over_budget) {
      ASSIGN_OR_RETURN(std::optional<bool> released, GateCanaries(id, run, ctl, lock));
      if (!released) continue;
      std::vector<size_t> picks = run.planner->Next(run.pending, run.in_flight, *released);
      StartSwaps(id, run, picks);
      for (auto it = picks.rbegin(); it != picks.rend(); ++it) {
        run.pending.erase(run.pending.begin() + static_cast<std::ptrdiff_t>(*it));
        run.pending_vm.erase(run.pending_vm.begin() + static_cast<std::ptrdiff_t>(*it));
      }
    }
    if (run.in_flight.total == 0) {
      if (std::optional<Status> end = End(id, run, ctl, over_budget, lock)) return *end;
    }
    work_cv_.wait_for(lock, kRecheck, [&] { return run.wake != wake; });
  }
}

Status RolloutEngine::Rebuild(int64_t id, Run& run) {
  ASSIGN_OR_RETURN(run.rollout, store_.Get(id));
  Rollout& r = run.rollout;
  run.planner = std::make_unique<BatchPlanner>(r.policy, static_cast<int64_t>(r.vms.size()));
  if (r.state == RolloutState::kRollingBack) return Status::Ok();
  for (size_t i = 0; i < r.vms.size(); ++i) {
    RolloutVm& v = r.vms[i];
    if (v.state == RolloutVmState::kSwapping) {
      // A swap whose end was never recorded (the engine stopped while it failed): the
      // VM's record says where it is.
      ASSIGN_OR_RETURN(VmRecord rec, vms_.Get(v.vm));
      if (rec.version == v.to_version) {
        RETURN_IF_ERROR(store_.SetVmOutcome(id, v.vm, RolloutVmState::kDone, std::nullopt, "",
                                            clock_.UnixMillis()));
        v.state = RolloutVmState::kDone;
      } else {
        RETURN_IF_ERROR(store_.SetVmState(id, v.vm, RolloutVmState::kPending));
        v.state = RolloutVmState::kPending;
      }
    }
    if (IsFailure(v.state)) {
      ++run.failures;
      if (run.first_failure.empty()) run.first_failure = "vm '" + v.vm + "': " + v.error;
    }
    if (v.state != RolloutVmState::kPending) continue;
    run.pending.push_back({v.position, v.host});
    run.pending_vm.push_back(i);
    if (run.planner->IsCanary(v.position)) ++run.canaries_left;
    for (int64_t version : {v.from_version, v.to_version}) {
      if (!run.templates.count(version)) {
        ASSIGN_OR_RETURN(run.templates[version], TemplateAt(r.template_name, version));
      }
    }
  }
  return Status::Ok();
}

Result<std::optional<bool>> RolloutEngine::GateCanaries(int64_t id, Run& run,
                                                        const RolloutControl& ctl,
                                                        std::unique_lock<std::mutex>& lock) {
  const bool released = ctl.canaries_released || run.planner->canaries() == 0;
  if (released || run.canaries_left != 0 || run.pending.empty()) {
    return std::optional<bool>(released);
  }
  const RolloutPolicy& policy = run.rollout.policy;
  if (!policy.canary_wait) {
    RETURN_IF_ERROR(
        SetState(id, RolloutState::kPaused,
                 "canaries done: `rollout resume " + std::to_string(id) + "` continues"));
    return std::optional<bool>();
  }
  if (!run.canary_wait_until) run.canary_wait_until = clock_.Now() + *policy.canary_wait;
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(*run.canary_wait_until - clock_.Now());
  if (left.count() > 0) {
    lock.unlock();
    clock_.SleepFor(std::min<std::chrono::milliseconds>(left, kCanaryWaitSlice));
    lock.lock();
    return std::optional<bool>();
  }
  RETURN_IF_ERROR(store_.SetCanariesReleased(id));
  return std::optional<bool>(true);
}

std::optional<Status> RolloutEngine::End(int64_t id, Run& run, const RolloutControl& ctl,
                                         bool over_budget, std::unique_lock<std::mutex>& lock) {
  if (stopping_) return Status::Ok();  // the next engine continues
  const Rollout& r = run.rollout;
  if (ctl.state == RolloutState::kRunning && over_budget) {
    const std::string why =
        "failure budget exceeded (" + std::to_string(run.failures - ctl.failures_forgiven) +
        " failed, " + r.policy.max_failures.ToString() + " allowed); first: " + run.first_failure;
    if (r.policy.on_failure == OnFailure::kRollback) {
      RETURN_IF_ERROR(store_.SkipPending(id));
      lock.unlock();
      return RollBack(id, run, why);
    }
    return SetState(id, run.pending.empty() ? RolloutState::kFailed : RolloutState::kPaused, why);
  }
  if (ctl.state != RolloutState::kRunning) return Status::Ok();  // paused or aborted
  if (run.pending.empty()) {
    return SetState(id, RolloutState::kSucceeded,
                    run.failures == 0
                        ? ""
                        : std::to_string(run.failures) + " VM(s) failed within the failure budget");
  }
  return std::nullopt;
}

void RolloutEngine::StartPrefetch(Run& run) {
  if (prefetch_ == nullptr || run.pending.empty()) return;
  std::map<std::string, std::set<int64_t>> wanted;  // host -> target versions
  for (size_t i : run.pending_vm) {
    const RolloutVm& v = run.rollout.vms[i];
    wanted[v.host].insert(v.to_version);
  }
  // The swaps read each target image's volumes back once more before using them (in
  // their check step: a read in flight when vdswapd is killed can take libvirtd 9.0
  // down with it, see docs/operations.md).
  std::set<int64_t> targets;
  for (const auto& entry : wanted) targets.insert(entry.second.begin(), entry.second.end());
  for (int64_t version : targets) prefetch_->Recheck(run.templates.at(version));
  for (const auto& entry : wanted) {
    const std::string host_name = entry.first;
    std::vector<Template> targets;
    for (int64_t version : entry.second) targets.push_back(run.templates.at(version));
    run.prefetchers.emplace_back([this, host_name, targets = std::move(targets)] {
      // A failure here is only a missed head start: the swap's own check step uploads
      // (and reports) again.
      auto host = hosts_.Get(host_name);
      if (!host.ok()) return;
      for (const auto& t : targets) {
        if (stopping_) return;
        // Checking recorded volumes is left to each swap's own check step.
        auto put = prefetch_->Ensure(*host, t, nullptr, ImageDistributor::Check::kNever);
        if (!put.ok()) {
          VLOG(kWarning) << "host '" << host_name << "': uploading " << t.Ref()
                         << " ahead of the rollout: " << put.status().message();
        }
      }
    });
  }
}

void RolloutEngine::ReportSwap(const Run& run, int64_t from, int64_t to, const SwapOutcome& o) {
  if (observer_ == nullptr) return;
  const bool os_swap = run.templates.at(from).os_digest != run.templates.at(to).os_digest;
  observer_->SwapEnded(o.result, os_swap, run.rollout.policy.swap_order, o.downtime_ms);
}

void RolloutEngine::StartSwaps(int64_t id, Run& run, const std::vector<size_t>& picks) {
  if (picks.empty()) return;
  std::vector<std::string> names;
  names.reserve(picks.size());
  for (size_t i : picks) names.push_back(run.rollout.vms[run.pending_vm[i]].vm);
  store_.SetVmsStarted(id, names, clock_.UnixMillis()).IgnoreError();
  for (size_t i : picks) {
    const RolloutVm& vm = run.rollout.vms[run.pending_vm[i]];
    ++run.in_flight.total;
    ++run.in_flight.by_host[vm.host];
    const Template& to = run.templates.at(vm.to_version);
    run.workers[vm.vm] = std::thread([this, id, &run, vm, to] { SwapOne(id, run, vm, to); });
  }
  changes_.Bump(id);
}

void RolloutEngine::SwapOne(int64_t id, Run& run, const RolloutVm& vm, const Template& to) {
  auto outcome = swapper_.Swap(vm.vm, to, id, nullptr, run.rollout.policy.swap_order);
  // An error while the engine stops is an interrupted swap, not a result: the journal
  // and the next engine's ResumeAll decide how it ends.
  const bool record = outcome.ok() || !stopping_;
  SwapOutcome o =
      outcome.ok() ? *outcome : SwapOutcome{SwapResult::kFailed, -1, outcome.status().message()};
  RolloutVmState state = RolloutVmStateFor(o.result);
  const auto min_ready = run.rollout.policy.min_ready;
  if (state == RolloutVmState::kDone && min_ready.count() > 0) {
    clock_.SleepFor(min_ready);
    Status ready = [&]() -> Status {
      ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
      ASSIGN_OR_RETURN(StatusReply live, agent_.LiveStatus(host, vm.vm, kReadyCheckTimeout));
      if (!live.app.healthy) return Unavailable("the app is not healthy");
      return Status::Ok();
    }();
    if (!ready.ok()) {
      state = RolloutVmState::kFailed;
      o.error = "not ready after --min-ready " + FormatDuration(min_ready) + ": " + ready.message();
    }
  }
  if (outcome.ok()) ReportSwap(run, vm.from_version, vm.to_version, *outcome);
  {
    std::lock_guard lock(run_mu_);
    --run.in_flight.total;
    --run.in_flight.by_host[vm.host];
    if (run.planner->IsCanary(vm.position)) --run.canaries_left;
    if (record) {
      run.outcomes.push_back({vm.vm, state, Downtime(o), o.error, clock_.UnixMillis()});
    }
    if (record && IsFailure(state)) {
      ++run.failures;
      if (run.first_failure.empty()) run.first_failure = "vm '" + vm.vm + "': " + o.error;
    }
    run.ended.push_back(vm.vm);
    ++run.wake;
  }
  work_cv_.notify_all();
  changes_.Bump(id);
}

Status RolloutEngine::RollBack(int64_t id, Run& run, const std::string& why) {
  RETURN_IF_ERROR(SetState(id, RolloutState::kRollingBack, why));
  ASSIGN_OR_RETURN(Rollout r, store_.Get(id));
  bool all_back = true;
  for (const auto& v : r.vms) {
    if (stopping_) return Status::Ok();  // the next engine goes on rolling back
    // Pending here: a revert a restart interrupted and rolled back (see ResumeAll).
    if (v.state != RolloutVmState::kDone && v.state != RolloutVmState::kFailed &&
        v.state != RolloutVmState::kSwapping && v.state != RolloutVmState::kPending) {
      continue;
    }
    auto rec = vms_.Get(v.vm);
    if (!rec.ok()) continue;
    if (rec->version == v.from_version) {
      // Back already (a swap that rolled itself back, or a revert a restart finished).
      if (v.state != RolloutVmState::kFailed) {
        RETURN_IF_ERROR(store_.SetVmOutcome(id, v.vm, RolloutVmState::kReverted, std::nullopt,
                                            v.error, clock_.UnixMillis()));
        changes_.Bump(id);
      }
      continue;
    }
    if (!run.templates.count(v.from_version)) {
      ASSIGN_OR_RETURN(run.templates[v.from_version], TemplateAt(r.template_name, v.from_version));
    }
    RETURN_IF_ERROR(store_.SetVmState(id, v.vm, RolloutVmState::kSwapping));
    changes_.Bump(id);
    auto out = swapper_.Swap(v.vm, run.templates[v.from_version], id, nullptr, r.policy.swap_order);
    if (!out.ok() && stopping_) return Status::Ok();
    if (out.ok() && run.templates.count(rec->version)) {
      ReportSwap(run, rec->version, v.from_version, *out);
    }
    if (out.ok() && out->result == SwapResult::kDone) {
      RETURN_IF_ERROR(store_.SetVmOutcome(id, v.vm, RolloutVmState::kReverted, std::nullopt,
                                          v.error, clock_.UnixMillis()));
    } else {
      all_back = false;
      std::string error = out.ok() ? out->error : out.status().message();
      RETURN_IF_ERROR(store_.SetVmOutcome(id, v.vm, RolloutVmState::kFailed, std::nullopt,
                                          "moving back failed: " + error, clock_.UnixMillis()));
    }
    changes_.Bump(id);
  }
  if (!all_back) {
    return SetState(id, RolloutState::kFailed, why + "; some VMs could not be moved back");
  }
  return SetState(id, RolloutState::kRolledBack, why);
}

void RolloutEngine::Wait(int64_t id) {
  std::unique_lock lock(run_mu_);
  done_cv_.wait(lock, [&] {
    auto it = coordinators_.find(id);
    return it == coordinators_.end() || it->second.finished;
  });
}

Result<Rollout> RolloutEngine::Get(int64_t id) { return store_.Get(id); }

Result<std::vector<Rollout>> RolloutEngine::List() { return store_.List(); }

Status RolloutEngine::ResumeAll() {
  ASSIGN_OR_RETURN(auto unfinished, swapper_.Unfinished());
  for (const auto& vm : unfinished) {
    auto out = swapper_.Resume(vm);
    if (!out.ok()) {
      VLOG(kWarning) << "vm '" << vm << "': cannot resume its swap: " << out.status().message();
      continue;
    }
    // Record the resumed VM's outcome in its rollout. A swap the resume rolled back was
    // interrupted, not refused by the VM: it is back where it was, and its rollout tries
    // it again instead of charging the failure budget.
    RolloutVmState state = out->result == SwapResult::kRolledBack ? RolloutVmState::kPending
                                                                  : RolloutVmStateFor(out->result);
    store_
        .SetSwappingVmOutcome(vm, state, Downtime(*out),
                              state == RolloutVmState::kPending ? "" : out->error,
                              clock_.UnixMillis())
        .IgnoreError();
  }
  ASSIGN_OR_RETURN(auto running, store_.RunningIds());
  for (int64_t id : running) {
    if (stopping_) break;
    VLOG(kInfo) << "rollout " << id << ": continuing after a restart";
    Launch(id);
  }
  return Status::Ok();
}

}  // namespace vdswap
