#include "fleet/swapper.h"

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
}  // namespace

std::string_view SwapOrderName(SwapOrder o) {
  return o == SwapOrder::kBreakBeforeMake ? "break-before-make" : "make-before-break";
}

Result<SwapOrder> SwapOrderFromName(std::string_view name) {
  if (name == "make-before-break") return SwapOrder::kMakeBeforeBreak;
  if (name == "break-before-make") return SwapOrder::kBreakBeforeMake;
  return InvalidArgument("unknown swap order '" + std::string(name) +
                         "' (make-before-break or break-before-make)");
}

std::string_view SwapResultName(SwapResult r) {
  switch (r) {
    case SwapResult::kDone:
      return "done";
    case SwapResult::kRolledBack:
      return "rolled_back";
    case SwapResult::kFailed:
      return "failed";
  }
  return "failed";
}

// Everything a swap needs to know, persisted as the journal's detail so Resume can
// continue from any entry.
struct Swapper::Plan {
  VmRecord vm;
  HostRef host;
  Template from, to;
  int64_t rollout_id = 0;
  bool os_swap = false;
  std::string old_app, new_app;  // app disk paths on the host
  // The app slots: the old disk's serial, and the new one's (the other slot when making
  // before breaking, the same one otherwise).
  std::string old_serial = kAppSerial, new_serial = kAppSerial;
  SwapOrder order = SwapOrder::kBreakBeforeMake;
  std::string old_os, new_os;  // OS overlay volume names
  bool crashed = false;
  Clock::TimePoint stopped_at{};

  Json Detail() const {
    return {{"from", from.version},
            {"to", to.version},
            {"template", to.name},
            {"os_swap", os_swap},
            {"old_app", old_app},
            {"new_app", new_app},
            {"old_os", old_os},
            {"new_os", new_os},
            {"old_serial", old_serial},
            {"new_serial", new_serial},
            {"order", SwapOrderName(order)}};
  }
};

Swapper::Swapper(Db& db, VmTable& vms, SwapJournal& journal, VmLocks& locks, HostRegistry& hosts,
                 TemplateStore& templates, DiskPlanner& disks, GuestAgent& agent, Hypervisor& hv,
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

Status Swapper::Write(Plan& p, SwapStep step, SwapPhase phase) {
  RETURN_IF_ERROR(
      journal_.Append({p.vm.name, p.rollout_id, step, phase, p.Detail()}, clock_.UnixSeconds()));
  KillPoint(std::string(SwapStepName(step)) + "/" + std::string(SwapPhaseName(phase)));
  if (crash_hook_ && crash_hook_(step, phase)) {
    p.crashed = true;
    return Internal("engine stopped after " + std::string(SwapStepName(step)) + "/" +
                    std::string(SwapPhaseName(phase)) + " (injected crash)");
  }
  return Status::Ok();
}

Status Swapper::Step(Plan& p, SwapStep step, const std::function<Status()>& action) {
  RETURN_IF_ERROR(Write(p, step, SwapPhase::kIntent));
  RETURN_IF_ERROR(action().WithContext(SwapStepName(step)));
  return Write(p, step, SwapPhase::kDone);
}

Result<SwapOutcome> Swapper::Swap(const std::string& vm_name, const Template& to,
                                  int64_t rollout_id, const ProgressFn& progress,
                                  std::optional<SwapOrder> order) {
  std::lock_guard vm_lock(locks_.For(vm_name));
  Plan p;
  ASSIGN_OR_RETURN(p.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(auto last, journal_.Last(vm_name));
  if (last && !last->IsTerminal()) {
    return FailedPrecondition("vm '" + vm_name + "' has an unfinished swap; it resumes first");
  }
  if (p.vm.template_name != to.name) {
    return FailedPrecondition("vm '" + vm_name + "' runs template '" + p.vm.template_name +
                              "', not '" + to.name + "'");
  }
  ASSIGN_OR_RETURN(p.host, hosts_.Get(p.vm.host));
  ASSIGN_OR_RETURN(p.from, templates_.Get(p.vm.template_name + ":" + std::to_string(p.vm.version)));
  p.to = to;
  p.rollout_id = rollout_id;
  p.os_swap = p.from.os_digest != to.os_digest;
  p.old_os = p.vm.os_volume;
  p.new_os = p.os_swap ? OsOverlayVolume(vm_name, to.version) : p.vm.os_volume;
  ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(p.host, vm_name));
  if (!live.running) return FailedPrecondition("vm '" + vm_name + "' is not running");
  for (const char* serial : {kAppSerial, kAppSerialB}) {
    if (const DiskSpec* app = live.Disk(serial); app != nullptr && p.old_app.empty()) {
      p.old_app = app->path;
      p.old_serial = serial;
    }
  }
  p.order = order.value_or(options_.order);
  p.new_serial =
      p.order == SwapOrder::kMakeBeforeBreak ? OtherAppSerial(p.old_serial) : p.old_serial;
  RETURN_IF_ERROR(vms_.SetState(vm_name, VmState::kSwapping, ""));
  if (progress) {
    progress({{"phase", "swap"},
              {"vm", vm_name},
              {"message", vm_name + ": " + p.from.Ref() + " -> " + to.Ref() +
                              (p.os_swap ? " (OS swap, one reboot)" : " (app hot swap)")}});
  }
  return Forward(p, progress);
}

Result<SwapOutcome> Swapper::Forward(Plan& p, const ProgressFn& progress) {
  // The new version's disks are resolved and put on the host once, here.
  TemplateDisks to_disks;
  Status s = Step(p, SwapStep::kChecked, [&]() -> Status {
    ASSIGN_OR_RETURN(to_disks, disks_.Ensure(p.host, p.to, progress));
    p.new_app = to_disks.app_on_host.disk;
    return Status::Ok();
  });
  int64_t downtime = -1;
  if (s.ok() && !p.os_swap && p.order == SwapOrder::kMakeBeforeBreak) {
    s = MakeBeforeBreak(p, &downtime);
    if (p.crashed) return s;
    if (!s.ok()) return Rollback(p, s.message());
    Result<SwapOutcome> out = Finish(p);
    if (out.ok()) out->downtime_ms = downtime;
    return out;
  }
  if (s.ok()) {
    s = Step(p, SwapStep::kStopped, [&]() -> Status {
      p.stopped_at = clock_.Now();
      return agent_.StopApp(p.host, p.vm.name, kAppStopTimeout);
    });
  }
  if (!p.os_swap) {
    if (s.ok()) {
      s = Step(p, SwapStep::kDetached, [&] {
        return hv_.DetachDisk(p.host, p.vm.name, p.old_serial, options_.detach_timeout);
      });
    }
    if (s.ok()) {
      s = Step(p, SwapStep::kAttached, [&] {
        return hv_.AttachDisk(p.host, p.vm.name, {p.new_serial, p.new_app, "raw", true});
      });
    }
    if (s.ok()) {
      s = Step(p, SwapStep::kStarted, [&]() -> Status {
        ASSIGN_OR_RETURN(AppStatus started,
                         agent_.StartApp(p.host, p.vm.name, options_.health_timeout));
        downtime = started.last_downtime_ms.value_or(clock_.MsSince(p.stopped_at));
        return Status::Ok();
      });
    }
  } else {
    if (s.ok()) {
      s = Step(p, SwapStep::kShutdown,
               [&] { return hv_.Shutdown(p.host, p.vm.name, kShutdownGrace); });
    }
    std::string overlay_path;
    if (s.ok()) {
      s = Step(p, SwapStep::kOverlay, [&]() -> Status {
        ASSIGN_OR_RETURN(overlay_path, disks_.CreateOsOverlay(p.host, p.new_os, to_disks));
        return Status::Ok();
      });
    }
    if (s.ok()) {
      s = Step(p, SwapStep::kStarted, [&]() -> Status {
        ASSIGN_OR_RETURN(VmSpec spec, disks_.Spec(p.vm, p.host, p.to, to_disks, overlay_path));
        return BootAndCheck(p, spec, &downtime);
      });
    }
  }
  if (p.crashed) return s;
  if (!s.ok()) return Rollback(p, s.message());
  Result<SwapOutcome> out = Finish(p);
  if (out.ok()) out->downtime_ms = downtime;
  return out;
}

Status Swapper::MakeBeforeBreak(Plan& p, int64_t* downtime_ms) {
  RETURN_IF_ERROR(Step(p, SwapStep::kAttached, [&] {
    return hv_.AttachDisk(p.host, p.vm.name, {p.new_serial, p.new_app, "raw", true});
  }));
  RETURN_IF_ERROR(Step(p, SwapStep::kPrepared, [&] {
    return agent_.PrepareApp(p.host, p.vm.name, p.new_serial, kAppStopTimeout).status();
  }));
  RETURN_IF_ERROR(Step(p, SwapStep::kSwitched, [&]() -> Status {
    p.stopped_at = clock_.Now();
    ASSIGN_OR_RETURN(AppStatus started,
                     agent_.SwitchApp(p.host, p.vm.name, p.new_serial, options_.health_timeout));
    *downtime_ms = started.last_downtime_ms.value_or(clock_.MsSince(p.stopped_at));
    return Status::Ok();
  }));
  // Only now, with the new version healthy, does the old disk go.
  return Step(p, SwapStep::kReleased, [&] { return ReleaseOld(p); });
}

Status Swapper::ReleaseOld(Plan& p) {
  RETURN_IF_ERROR(agent_.ReleaseApp(p.host, p.vm.name, p.old_serial, kAppStopTimeout));
  return hv_.DetachDisk(p.host, p.vm.name, p.old_serial, options_.detach_timeout);
}

Status Swapper::BootAndCheck(Plan& p, const VmSpec& spec, int64_t* downtime_ms) {
  RETURN_IF_ERROR(hv_.DefineAndStart(p.host, spec));
  ASSIGN_OR_RETURN(
      AppStatus started,
      agent_.AwaitHealthy(p.host, p.vm.name, options_.boot_timeout + options_.health_timeout));
  if (!started.healthy) return Internal("the app is not healthy after boot");
  if (p.stopped_at != Clock::TimePoint{}) *downtime_ms = clock_.MsSince(p.stopped_at);
  return Status::Ok();
}

Result<SwapOutcome> Swapper::Finish(Plan& p) {
  // The VM row and the journal's end are one fact: both or neither.
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(vms_.SetVersion(p.vm.name, p.to.version, p.new_os));
  RETURN_IF_ERROR(Write(p, SwapStep::kDone, SwapPhase::kDone));
  RETURN_IF_ERROR(txn.Commit());
  return SwapOutcome{SwapResult::kDone, -1, ""};
}

Status Swapper::RollbackSteps(Plan& p) {
  Status s;
  if (!p.os_swap && p.order == SwapOrder::kMakeBeforeBreak) {
    // The old disk is still plugged and mounted: switch back (stop new, start old), then
    // let the new disk go. No hot-plug of the old one.
    s = agent_.SwitchApp(p.host, p.vm.name, p.old_serial, options_.health_timeout).status();
    if (s.ok()) s = agent_.ReleaseApp(p.host, p.vm.name, p.new_serial, kAppStopTimeout);
    if (s.ok()) s = hv_.DetachDisk(p.host, p.vm.name, p.new_serial, options_.detach_timeout);
  } else if (!p.os_swap) {
    agent_.StopApp(p.host, p.vm.name, kAppStopTimeout).IgnoreError();
    // Detach whatever app disk is there, even the old one: a detach interrupted by a
    // crash may still be completing in the guest, and would take the disk away later.
    s = hv_.DetachDisk(p.host, p.vm.name, p.new_serial, options_.detach_timeout);
    if (s.ok() && !p.old_app.empty()) {
      s = hv_.AttachDisk(p.host, p.vm.name, {p.old_serial, p.old_app, "raw", true});
    }
    if (s.ok()) s = agent_.StartApp(p.host, p.vm.name, options_.health_timeout).status();
  } else {
    s = hv_.Shutdown(p.host, p.vm.name, kShutdownGrace);
    if (s.ok()) {
      auto old_path = hv_.FindVolume(p.host, p.old_os);
      s = old_path.status();
      if (s.ok()) {
        auto from_disks = disks_.Ensure(p.host, p.from, nullptr);
        s = from_disks.status();
        if (s.ok()) {
          auto spec = disks_.Spec(p.vm, p.host, p.from, *from_disks, *old_path);
          s = spec.status();
          int64_t ignored;
          if (s.ok()) s = BootAndCheck(p, *spec, &ignored);
        }
      }
    }
  }
  return s;
}

Result<SwapOutcome> Swapper::Rollback(Plan& p, const std::string& why) {
  VLOG(kWarning) << "vm '" << p.vm.name << "': rolling back to " << p.from.Ref() << ": " << why;
  RETURN_IF_ERROR(Write(p, SwapStep::kRollingBack, SwapPhase::kIntent));
  Status s = RollbackSteps(p);
  const Clock::TimePoint give_up = clock_.Now() + kRollbackRetryFor;
  while (!s.ok() && !p.crashed && clock_.Now() < give_up &&
         hv_.GetState(p.host, p.vm.name).status().code() == Code::kUnavailable) {
    VLOG(kWarning) << "vm '" << p.vm.name << "': host '" << p.host.name
                   << "' unreachable during the rollback (" << s.message() << "); trying again";
    clock_.SleepFor(kRollbackRetryEvery);
    s = RollbackSteps(p);
  }
  if (p.crashed) return s;
  SwapResult result = s.ok() ? SwapResult::kRolledBack : SwapResult::kFailed;
  std::string error = s.ok() ? why : why + "; rollback failed: " + s.message();
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(vms_.SetState(p.vm.name, s.ok() ? VmState::kRunning : VmState::kFailed, error));
  RETURN_IF_ERROR(Write(p, s.ok() ? SwapStep::kRolledBack : SwapStep::kFailed, SwapPhase::kDone));
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
  const SwapStep step = last->step;
  const Json& d = last->detail;
  Plan p;
  ASSIGN_OR_RETURN(p.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(p.host, hosts_.Get(p.vm.host));
  std::string name = d.value("template", p.vm.template_name);
  ASSIGN_OR_RETURN(p.from, templates_.Get(name + ":" + std::to_string(d.value("from", 0))));
  ASSIGN_OR_RETURN(p.to, templates_.Get(name + ":" + std::to_string(d.value("to", 0))));
  p.rollout_id = last->rollout_id;
  p.os_swap = d.value("os_swap", false);
  p.old_app = d.value("old_app", "");
  p.new_app = d.value("new_app", "");
  p.old_os = d.value("old_os", "");
  p.new_os = d.value("new_os", "");
  p.old_serial = d.value("old_serial", std::string(kAppSerial));
  p.new_serial = d.value("new_serial", std::string(kAppSerial));
  // Entries written before make-before-break existed have no order: break-before-make.
  auto order = SwapOrderFromName(d.value("order", std::string("break-before-make")));
  p.order = order.ok() ? *order : SwapOrder::kBreakBeforeMake;
  VLOG(kInfo) << "vm '" << vm_name << "': resuming the swap " << p.from.Ref() << " -> "
              << p.to.Ref() << " from step " << SwapStepName(step);
  ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(p.host, vm_name));

  // Forward only when the new version's disk is certainly in place; else go back.
  bool forward = false;
  const bool mbb = !p.os_swap && p.order == SwapOrder::kMakeBeforeBreak;
  if (mbb) {
    // Forward once the new version was healthy (switched done); before that the old app
    // disk is still plugged and a switch back restores it. The new disk must be there.
    const DiskSpec* app = live.Disk(p.new_serial);
    bool healthy_seen = step == SwapStep::kReleased ||
                        (step == SwapStep::kSwitched && last->phase == SwapPhase::kDone);
    forward = healthy_seen && app != nullptr && app->path == p.new_app;
  } else if (step != SwapStep::kRollingBack) {
    if (!p.os_swap) {
      const DiskSpec* app = live.Disk(p.new_serial);
      forward = app != nullptr && !p.new_app.empty() && app->path == p.new_app;
    } else {
      const DiskSpec* os = live.Disk(kOsSerial);
      forward = os != nullptr && os->path.find(p.new_os) != std::string::npos;
    }
  }
  if (!forward) {
    return Rollback(
        p, "resumed after an interruption at step '" + std::string(SwapStepName(step)) + "'");
  }
  Status s;
  if (!live.running) s = hv_.Start(p.host, vm_name);
  int64_t downtime = -1;
  if (s.ok() && mbb) {
    // Waits for the agent; with both disks present its app.start refuses at once, and
    // the switch below decides: the new slot becomes (or stays) the active one.
    agent_.AwaitHealthy(p.host, vm_name, options_.boot_timeout).status().IgnoreError();
    auto started = agent_.SwitchApp(p.host, vm_name, p.new_serial, options_.health_timeout);
    s = started.status();
    if (s.ok()) downtime = started->last_downtime_ms.value_or(-1);
    if (s.ok()) s = ReleaseOld(p);
  } else if (s.ok()) {
    auto started = agent_.AwaitHealthy(p.host, vm_name, options_.boot_timeout);
    s = started.status();
    if (s.ok()) downtime = started->last_downtime_ms.value_or(-1);
  }
  if (p.crashed) return s;
  if (!s.ok()) return Rollback(p, s.message());
  Result<SwapOutcome> out = Finish(p);
  if (out.ok()) out->downtime_ms = downtime;
  return out;
}

}  // namespace vdswap
