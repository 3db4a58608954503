#include "rollout/rollout_engine.h"

#include "core/log.h"

namespace vdswap {

namespace {

std::optional<int64_t> Downtime(const SwapOutcome& o) {
  if (o.downtime_ms < 0) return std::nullopt;
  return o.downtime_ms;
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

RolloutEngine::RolloutEngine(RolloutStore& store, VmTable& vms, TemplateStore& templates,
                             Swapper& swapper, Clock& clock)
    : store_(store), vms_(vms), templates_(templates), swapper_(swapper), clock_(clock) {}

void RolloutEngine::Shutdown() {
  stopping_ = true;
  CancelWaits();
}

RolloutEngine::~RolloutEngine() {
  Shutdown();
  std::map<int64_t, std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) {
    if (t.joinable()) t.join();
  }
}

void RolloutEngine::Changed(int64_t id) {
  {
    std::lock_guard lock(mu_);
    ++versions_[id];
  }
  change_cv_.notify_all();
}

uint64_t RolloutEngine::Version(int64_t id) {
  std::lock_guard lock(mu_);
  return versions_[id];
}

uint64_t RolloutEngine::WaitForChange(int64_t id, uint64_t seen,
                                      std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  change_cv_.wait_for(lock, timeout, [&] { return waits_cancelled_ || versions_[id] > seen; });
  return versions_[id];
}

void RolloutEngine::CancelWaits() {
  {
    std::lock_guard lock(mu_);
    waits_cancelled_ = true;
  }
  change_cv_.notify_all();
}

bool RolloutEngine::WaitsCancelled() {
  std::lock_guard lock(mu_);
  return waits_cancelled_;
}

Status RolloutEngine::SetState(int64_t id, RolloutState state, const std::string& error) {
  Status s = store_.SetState(id, state, error, clock_.UnixSeconds());
  Changed(id);
  return s;
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
  std::vector<std::pair<std::string, int64_t>> members;
  for (const auto& name : vms) {
    ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
    if (vm.template_name != to.name) {
      return InvalidArgument("vm '" + name + "' runs template '" + vm.template_name + "'");
    }
    ASSIGN_OR_RETURN(auto busy, store_.RunningRolloutOf(name));
    if (busy) {
      return FailedPrecondition("vm '" + name + "' is in running rollout " + std::to_string(*busy));
    }
    members.emplace_back(vm.name, vm.version);
  }
  ASSIGN_OR_RETURN(int64_t id, store_.Create(to.name, to.version, members, clock_.UnixSeconds()));
  Changed(id);
  Launch(id);
  return id;
}

void RolloutEngine::Launch(int64_t id) {
  std::lock_guard lock(mu_);
  finished_[id] = false;
  threads_[id] = std::thread([this, id] { Run(id); });
}

void RolloutEngine::Run(int64_t id) {
  auto finish = [this, id](RolloutState state, const std::string& error) {
    SetState(id, state, error).IgnoreError();
    VLOG(kInfo) << "rollout " << id << ": " << RolloutStateName(state)
                << (error.empty() ? "" : ": " + error);
    {
      std::lock_guard lock(mu_);
      finished_[id] = true;
    }
    done_cv_.notify_all();
  };
  auto rollout = store_.Get(id);
  if (!rollout.ok()) return finish(RolloutState::kFailed, rollout.status().message());
  auto to = templates_.Get(rollout->template_name + ":" + std::to_string(rollout->to_version));
  if (!to.ok()) return finish(RolloutState::kFailed, to.status().message());
  auto remaining = store_.Remaining(id);
  if (!remaining.ok()) return finish(RolloutState::kFailed, remaining.status().message());
  for (const auto& vm : *remaining) {
    if (stopping_) {
      VLOG(kInfo) << "rollout " << id << ": paused by shutdown; it continues at the next start";
      {
        std::lock_guard lock(mu_);
        finished_[id] = true;
      }
      done_cv_.notify_all();
      return;
    }
    store_.SetVmState(id, vm, RolloutVmState::kSwapping).IgnoreError();
    Changed(id);
    auto outcome = swapper_.Swap(vm, *to, id, nullptr);
    SwapOutcome o =
        outcome.ok() ? *outcome : SwapOutcome{SwapResult::kFailed, -1, outcome.status().message()};
    store_.SetVmOutcome(id, vm, RolloutVmStateFor(o.result), Downtime(o), o.error).IgnoreError();
    if (o.result != SwapResult::kDone) {
      store_.SkipPending(id).IgnoreError();
      return finish(RolloutState::kFailed,
                    "vm '" + vm + "' " + std::string(SwapResultName(o.result)) + ": " + o.error);
    }
    Changed(id);
  }
  finish(RolloutState::kSucceeded, "");
}

void RolloutEngine::Wait(int64_t id) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return finished_.count(id) == 0 || finished_[id]; });
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
    // Record the resumed VM's outcome in its rollout.
    store_.SetSwappingVmOutcome(vm, RolloutVmStateFor(out->result), Downtime(*out), out->error)
        .IgnoreError();
  }
  ASSIGN_OR_RETURN(auto running, store_.RunningIds());
  for (int64_t id : running) {
    ASSIGN_OR_RETURN(Rollout r, store_.Get(id));
    const RolloutVm* bad = nullptr;
    for (const auto& v : r.vms) {
      if (v.state == RolloutVmState::kRolledBack || v.state == RolloutVmState::kFailed) {
        bad = &v;
        break;
      }
    }
    if (bad != nullptr) {
      store_.SkipPending(id).IgnoreError();
      RETURN_IF_ERROR(SetState(id, RolloutState::kFailed,
                               "vm '" + bad->vm + "' " +
                                   std::string(RolloutVmStateName(bad->state)) +
                                   " (after a daemon restart)"));
      continue;
    }
    VLOG(kInfo) << "rollout " << id << ": continuing after a restart";
    Launch(id);
  }
  return Status::Ok();
}

}  // namespace vdswap
