#include "fleet/swapper.h"

#include "core/enum_names.h"
#include "core/kill_point.h"
#include "core/log.h"
#include "hypervisor/agent_client.h"

namespace vdswap {

namespace {
constexpr auto kAppStopTimeout = std::chrono::seconds(90);
constexpr auto kShutdownGrace = std::chrono::seconds(60);
// A rollback that fails while the host cannot be reached (libvirtd restarting, a network
// blip) is tried again, every kRollbackRetryEvery for up to kRollbackRetryFor: its steps
// are idempotent, and giving up would leave the VM without its app.
constexpr auto kRollbackRetryFor = std::chrono::seconds(120);
constexpr auto kRollbackRetryEvery = std::chrono::seconds(2);

constexpr EnumNames<SwapOrder, 2> kOrders = {{
    {SwapOrder::kMakeBeforeBreak, "make-before-break"},
    {SwapOrder::kBreakBeforeMake, "break-before-make"},
}};
constexpr EnumNames<SwapResult, 3> kResults = {{
    {SwapResult::kDone, "done"},
    {SwapResult::kRolledBack, "rolled_back"},
    {SwapResult::kFailed, "failed"},
}};
}  // namespace

std::string_view SwapOrderName(SwapOrder o) { return NameOf(kOrders, o); }

Result<SwapOrder> SwapOrderFromName(std::string_view name) {
  if (std::optional<SwapOrder> order = FindValue(kOrders, name)) return *order;
  return InvalidArgument("unknown swap order '" + std::string(name) +
                         "' (make-before-break or break-before-make)");
}

std::string_view SwapResultName(SwapResult r) { return NameOf(kResults, r); }

// A swap in progress: its saved state (the journal's detail) and what it resolved from it.
struct Swapper::Run {
  VmRecord vm;
  HostRef host;
  Template from, to;
  int64_t rollout_id = 0;
  SavedSwap saved;
  bool crashed = false;  // an injected crash stopped it
  Clock::TimePoint stopped_at{};
};

Swapper::Swapper(Db& db, VmTable& vms, SwapJournal& journal, VmLocks& locks, HostRegistry& hosts,
                 TemplateStore& templates, DiskPlanner& disks, AgentGateway& agent, Hypervisor& hv,
                 Clock& clock, Options options)
    : db_(db),
      vms_(vms),
      journal_(journal),
      locks_(locks),
      hosts_(hosts),
      templates_(templates),
      disks_(disks),
      agent_(agent),
      hv_(hv),
      clock_(clock),
      options_(options) {}

Status Swapper::Write(Run& r, SwapStep step, SwapPhase phase) {
  RETURN_IF_ERROR(journal_.Append({r.vm.name, r.rollout_id, step, phase, r.saved.Detail()},
                                  clock_.UnixSeconds()));
  const std::string at = std::string(SwapStepName(step)) + "/" + std::string(SwapPhaseName(phase));
  KillPoint(at);
  if (crash_hook_ && crash_hook_(step, phase)) {
    r.crashed = true;
    return Internal("engine stopped after " + at + " (injected crash)");
  }
  return Status::Ok();
}

Status Swapper::Step(Run& r, SwapStep step, const std::function<Status()>& action) {
  RETURN_IF_ERROR(Write(r, step, SwapPhase::kIntent));
  RETURN_IF_ERROR(action().WithContext(SwapStepName(step)));
  return Write(r, step, SwapPhase::kDone);
}

Result<SwapOutcome> Swapper::End(Run& r, const Status& s, int64_t downtime_ms) {
  if (r.crashed) return s;
  if (!s.ok()) return Rollback(r, s.message());
  ASSIGN_OR_RETURN(SwapOutcome out, Finish(r));
  out.downtime_ms = downtime_ms;
  return out;
}

Result<SwapOutcome> Swapper::Swap(const std::string& vm_name, const Template& to,
                                  int64_t rollout_id, const ProgressFn& progress,
                                  std::optional<SwapOrder> order) {
  std::lock_guard vm_lock(locks_.For(vm_name));
  Run r;
  ASSIGN_OR_RETURN(r.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(auto last, journal_.Last(vm_name));
  if (last && !last->IsTerminal()) {
    return FailedPrecondition("vm '" + vm_name + "' has an unfinished swap; it resumes first");
  }
  if (r.vm.template_name != to.name) {
    return FailedPrecondition("vm '" + vm_name + "' runs template '" + r.vm.template_name +
                              "', not '" + to.name + "'");
  }
  ASSIGN_OR_RETURN(r.host, hosts_.Get(r.vm.host));
  ASSIGN_OR_RETURN(r.from, templates_.Get(r.vm.template_name + ":" + std::to_string(r.vm.version)));
  r.to = to;
  r.rollout_id = rollout_id;
  ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(r.host, vm_name));
  if (!live.running) return FailedPrecondition("vm '" + vm_name + "' is not running");
  SavedSwap& saved = r.saved;
  saved.template_name = to.name;
  saved.from_version = r.from.version;
  saved.to_version = to.version;
  saved.kind = KindOf(r.from.os_digest != to.os_digest, order.value_or(options_.order));
  for (const char* serial : {kAppSerial, kAppSerialB}) {
    if (const DiskSpec* app = live.Disk(serial); app != nullptr && saved.old_app.empty()) {
      saved.old_app = app->path;
      saved.old_serial = serial;
    }
  }
  saved.new_serial = saved.kind == SwapKind::kAppMakeBeforeBreak ? OtherAppSerial(saved.old_serial)
                                                                 : saved.old_serial;
  saved.old_os = r.vm.os_volume;
  saved.new_os = saved.kind == SwapKind::kOs ? OsOverlayVolume(vm_name, to.version) : saved.old_os;
  RETURN_IF_ERROR(vms_.SetState(vm_name, VmState::kSwapping, ""));
  if (progress) {
    progress({{"phase", "swap"},
              {"vm", vm_name},
              {"message",
               vm_name + ": " + r.from.Ref() + " -> " + to.Ref() + " (" +
                   (saved.kind == SwapKind::kOs ? "OS swap, one reboot" : "app hot swap") + ")"}});
  }
  int64_t downtime = -1;
  Status s = Forward(r, progress, &downtime);
  return End(r, s, downtime);
}

Status Swapper::Forward(Run& r, const ProgressFn& progress, int64_t* downtime_ms) {
  // The new version's disks are resolved and put on the host once, here.
  TemplateDisks to_disks;
  RETURN_IF_ERROR(Step(r, SwapStep::kChecked, [&]() -> Status {
    ASSIGN_OR_RETURN(to_disks, disks_.Ensure(r.host, r.to, progress));
    r.saved.new_app = to_disks.app_on_host.disk;
    return Status::Ok();
  }));
  switch (r.saved.kind) {
    case SwapKind::kAppBreakBeforeMake:
      return BreakBeforeMake(r, downtime_ms);
    case SwapKind::kAppMakeBeforeBreak:
      return MakeBeforeBreak(r, downtime_ms);
    case SwapKind::kOs:
      return SwapOs(r, to_disks, downtime_ms);
  }
  return Internal("unknown swap kind");
}

Status Swapper::BreakBeforeMake(Run& r, int64_t* downtime_ms) {
  const SavedSwap& saved = r.saved;
  RETURN_IF_ERROR(Step(r, SwapStep::kStopped, [&] {
    r.stopped_at = clock_.Now();
    return agent_.StopApp(r.host, r.vm.name, kAppStopTimeout);
  }));
  RETURN_IF_ERROR(Step(r, SwapStep::kDetached, [&] {
    return hv_.DetachDisk(r.host, r.vm.name, saved.old_serial, options_.detach_timeout);
  }));
  RETURN_IF_ERROR(Step(r, SwapStep::kAttached, [&] {
    return hv_.AttachDisk(r.host, r.vm.name, {saved.new_serial, saved.new_app, "raw", true});
  }));
  return Step(r, SwapStep::kStarted, [&]() -> Status {
    ASSIGN_OR_RETURN(AppStatus started,
                     agent_.StartApp(r.host, r.vm.name, options_.health_timeout));
    *downtime_ms = started.last_downtime_ms.value_or(clock_.MsSince(r.stopped_at));
    return Status::Ok();
  });
}

Status Swapper::MakeBeforeBreak(Run& r, int64_t* downtime_ms) {
  const SavedSwap& saved = r.saved;
  RETURN_IF_ERROR(Step(r, SwapStep::kAttached, [&] {
    return hv_.AttachDisk(r.host, r.vm.name, {saved.new_serial, saved.new_app, "raw", true});
  }));
  RETURN_IF_ERROR(Step(r, SwapStep::kPrepared, [&] {
    return agent_.PrepareApp(r.host, r.vm.name, saved.new_serial, kAppStopTimeout).status();
  }));
  RETURN_IF_ERROR(Step(r, SwapStep::kSwitched, [&]() -> Status {
    r.stopped_at = clock_.Now();
    ASSIGN_OR_RETURN(AppStatus started, agent_.SwitchApp(r.host, r.vm.name, saved.new_serial,
                                                         options_.health_timeout));
    *downtime_ms = started.last_downtime_ms.value_or(clock_.MsSince(r.stopped_at));
    return Status::Ok();
  }));
  // Only now, with the new version healthy, does the old disk go.
  return Step(r, SwapStep::kReleased, [&] { return ReleaseOld(r); });
}

Status Swapper::SwapOs(Run& r, const TemplateDisks& to_disks, int64_t* downtime_ms) {
  RETURN_IF_ERROR(Step(r, SwapStep::kStopped, [&] {
    r.stopped_at = clock_.Now();
    return agent_.StopApp(r.host, r.vm.name, kAppStopTimeout);
  }));
  RETURN_IF_ERROR(Step(r, SwapStep::kShutdown,
                       [&] { return hv_.Shutdown(r.host, r.vm.name, kShutdownGrace); }));
  std::string overlay_path;
  RETURN_IF_ERROR(Step(r, SwapStep::kOverlay, [&]() -> Status {
    ASSIGN_OR_RETURN(overlay_path, disks_.CreateOsOverlay(r.host, r.saved.new_os, to_disks));
    return Status::Ok();
  }));
  return Step(r, SwapStep::kStarted, [&]() -> Status {
    ASSIGN_OR_RETURN(VmSpec spec, disks_.Spec(r.vm, r.host, r.to, to_disks, overlay_path));
    return BootAndCheck(r, spec, downtime_ms);
  });
}

Status Swapper::ReleaseOld(Run& r) {
  RETURN_IF_ERROR(agent_.ReleaseApp(r.host, r.vm.name, r.saved.old_serial, kAppStopTimeout));
  return hv_.DetachDisk(r.host, r.vm.name, r.saved.old_serial, options_.detach_timeout);
}

Status Swapper::BootAndCheck(Run& r, const VmSpec& spec, int64_t* downtime_ms) {
  RETURN_IF_ERROR(hv_.DefineAndStart(r.host, spec));
  // Running and healthy, or an error (AgentGateway proves it).
  RETURN_IF_ERROR(
      agent_.AwaitHealthy(r.host, r.vm.name, options_.boot_timeout + options_.health_timeout)
          .status());
  if (r.stopped_at != Clock::TimePoint{}) *downtime_ms = clock_.MsSince(r.stopped_at);
  return Status::Ok();
}

Result<SwapOutcome> Swapper::Finish(Run& r) {
  // The VM row and the journal's end are one fact: both or neither.
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(vms_.SetVersion(r.vm.name, r.to.version, r.saved.new_os));
  RETURN_IF_ERROR(Write(r, SwapStep::kDone, SwapPhase::kDone));
  RETURN_IF_ERROR(txn.Commit());
  return SwapOutcome{SwapResult::kDone, -1, ""};
}

Status Swapper::RollbackSteps(Run& r) {
  switch (r.saved.kind) {
    case SwapKind::kAppBreakBeforeMake:
      return RollbackBreakBeforeMake(r);
    case SwapKind::kAppMakeBeforeBreak:
      return RollbackMakeBeforeBreak(r);
    case SwapKind::kOs:
      return RollbackOs(r);
  }
  return Internal("unknown swap kind");
}

Status Swapper::RollbackBreakBeforeMake(Run& r) {
  const SavedSwap& saved = r.saved;
  agent_.StopApp(r.host, r.vm.name, kAppStopTimeout).IgnoreError();
  // Detach whatever app disk is there, even the old one: a detach interrupted by a crash
  // may still be completing in the guest, and would take the disk away later.
  RETURN_IF_ERROR(hv_.DetachDisk(r.host, r.vm.name, saved.new_serial, options_.detach_timeout));
  if (!saved.old_app.empty()) {
    RETURN_IF_ERROR(
        hv_.AttachDisk(r.host, r.vm.name, {saved.old_serial, saved.old_app, "raw", true}));
  }
  return agent_.StartApp(r.host, r.vm.name, options_.health_timeout).status();
}

Status Swapper::RollbackMakeBeforeBreak(Run& r) {
  const SavedSwap& saved = r.saved;
  // The old disk is still plugged and mounted: switch back (stop new, start old), then let
  // the new disk go. No hot-plug of the old one.
  RETURN_IF_ERROR(
      agent_.SwitchApp(r.host, r.vm.name, saved.old_serial, options_.health_timeout).status());
  RETURN_IF_ERROR(agent_.ReleaseApp(r.host, r.vm.name, saved.new_serial, kAppStopTimeout));
  return hv_.DetachDisk(r.host, r.vm.name, saved.new_serial, options_.detach_timeout);
}

Status Swapper::RollbackOs(Run& r) {
  RETURN_IF_ERROR(hv_.Shutdown(r.host, r.vm.name, kShutdownGrace));
  ASSIGN_OR_RETURN(std::string old_path, hv_.FindVolume(r.host, r.saved.old_os));
  ASSIGN_OR_RETURN(TemplateDisks from_disks, disks_.Ensure(r.host, r.from, nullptr));
  ASSIGN_OR_RETURN(VmSpec spec, disks_.Spec(r.vm, r.host, r.from, from_disks, old_path));
  int64_t ignored = -1;
  return BootAndCheck(r, spec, &ignored);
}

Result<SwapOutcome> Swapper::Rollback(Run& r, const std::string& why) {
  VLOG(kWarning) << "vm '" << r.vm.name << "': rolling back to " << r.from.Ref() << ": " << why;
  RETURN_IF_ERROR(Write(r, SwapStep::kRollingBack, SwapPhase::kIntent));
  Status s = RollbackSteps(r);
  const Clock::TimePoint give_up = clock_.Now() + kRollbackRetryFor;
  while (!s.ok() && !r.crashed && clock_.Now() < give_up &&
         hv_.GetState(r.host, r.vm.name).status().code() == Code::kUnavailable) {
    VLOG(kWarning) << "vm '" << r.vm.name << "': host '" << r.host.name
                   << "' unreachable during the rollback (" << s.message() << "); trying again";
    clock_.SleepFor(kRollbackRetryEvery);
    s = RollbackSteps(r);
  }
  if (r.crashed) return s;
  SwapResult result = s.ok() ? SwapResult::kRolledBack : SwapResult::kFailed;
  std::string error = s.ok() ? why : why + "; rollback failed: " + s.message();
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(vms_.SetState(r.vm.name, s.ok() ? VmState::kRunning : VmState::kFailed, error));
  RETURN_IF_ERROR(Write(r, s.ok() ? SwapStep::kRolledBack : SwapStep::kFailed, SwapPhase::kDone));
  RETURN_IF_ERROR(txn.Commit());
  return SwapOutcome{result, -1, error};
}

Result<std::vector<std::string>> Swapper::Unfinished() { return journal_.Unfinished(); }

Result<SwapOutcome> Swapper::Resume(const std::string& vm_name) {
  std::lock_guard vm_lock(locks_.For(vm_name));
  ASSIGN_OR_RETURN(auto last, journal_.Last(vm_name));
  if (!last || last->IsTerminal()) {
    return FailedPrecondition("vm '" + vm_name + "' has no unfinished swap");
  }
  Run r;
  ASSIGN_OR_RETURN(r.saved, SavedSwap::FromDetail(last->detail));
  ASSIGN_OR_RETURN(r.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(r.host, hosts_.Get(r.vm.host));
  const std::string& name = r.saved.template_name;
  ASSIGN_OR_RETURN(r.from, templates_.Get(name + ":" + std::to_string(r.saved.from_version)));
  ASSIGN_OR_RETURN(r.to, templates_.Get(name + ":" + std::to_string(r.saved.to_version)));
  r.rollout_id = last->rollout_id;
  const std::string step(SwapStepName(last->step));
  VLOG(kInfo) << "vm '" << vm_name << "': resuming the " << SwapKindName(r.saved.kind) << " swap "
              << r.from.Ref() << " -> " << r.to.Ref() << " from step " << step;
  ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(r.host, vm_name));
  if (DecideResume(r.saved, *last, live) == ResumeDirection::kBack) {
    return Rollback(r, "resumed after an interruption at step '" + step + "'");
  }
  int64_t downtime = -1;
  Status s = Complete(r, live, &downtime);
  return End(r, s, downtime);
}

Status Swapper::Complete(Run& r, const VmLiveState& live, int64_t* downtime_ms) {
  if (!live.running) RETURN_IF_ERROR(hv_.Start(r.host, r.vm.name));
  if (r.saved.kind != SwapKind::kAppMakeBeforeBreak) {
    ASSIGN_OR_RETURN(AppStatus started,
                     agent_.AwaitHealthy(r.host, r.vm.name, options_.boot_timeout));
    *downtime_ms = started.last_downtime_ms.value_or(-1);
    return Status::Ok();
  }
  // Waits for the agent; with both disks present its app.start refuses at once, and the
  // switch below decides: the new slot becomes (or stays) the active one.
  agent_.AwaitHealthy(r.host, r.vm.name, options_.boot_timeout).status().IgnoreError();
  ASSIGN_OR_RETURN(AppStatus started, agent_.SwitchApp(r.host, r.vm.name, r.saved.new_serial,
                                                       options_.health_timeout));
  *downtime_ms = started.last_downtime_ms.value_or(-1);
  return ReleaseOld(r);
}

}  // namespace vdswap
