#include "fleet/swapper.h"

#include "core/clock.h"
#include "core/log.h"
#include "hypervisor/agent_client.h"

namespace vdswap {

namespace {

using SteadyClock = std::chrono::steady_clock;

bool IsTerminal(const std::string& step, const std::string& phase) {
  return phase == "done" && (step == "done" || step == "rolled_back" || step == "failed");
}

}  // namespace

// Everything a swap needs to know, persisted as the journal's detail so Resume can
// continue from any entry.
struct Swapper::Plan {
  VmRecord vm;
  HostRef host;
  Template from, to;
  int64_t rollout_id = 0;
  bool os_swap = false;
  std::string old_app, new_app;  // app disk paths on the host
  std::string old_os, new_os;    // OS overlay volume names
  bool crashed = false;
  SteadyClock::time_point stopped_at{};

  Json Detail() const {
    return {{"from", from.version}, {"to", to.version},   {"template", to.name},
            {"os_swap", os_swap},   {"old_app", old_app}, {"new_app", new_app},
            {"old_os", old_os},     {"new_os", new_os}};
  }
};

Json SwapOutcome::ToJson() const {
  Json j = {{"state", state}, {"error", error}};
  if (downtime_ms >= 0) j["downtime_ms"] = downtime_ms;
  return j;
}

Swapper::Swapper(Db& db, VmService& vms, TemplateStore& templates, Options options)
    : db_(db), vms_(vms), templates_(templates), options_(options) {}

Status Swapper::Write(Plan& p, const std::string& step, const std::string& phase) {
  RETURN_IF_ERROR(
      db_.Exec("INSERT INTO swap_journal (vm, rollout_id, step, phase, detail, at) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
               {p.vm.name, p.rollout_id, step, phase, DumpJson(p.Detail()), UnixSeconds()}));
  if (crash_hook_ && crash_hook_(step, phase)) {
    p.crashed = true;
    return Internal("engine stopped after " + step + "/" + phase + " (injected crash)");
  }
  return Status::Ok();
}

Status Swapper::Step(Plan& p, const std::string& step, const std::function<Status()>& action) {
  RETURN_IF_ERROR(Write(p, step, "intent"));
  RETURN_IF_ERROR(action().WithContext(step));
  return Write(p, step, "done");
}

Status Swapper::StopApp(Plan& p) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(vms_.hypervisor(), p.host, p.vm.name));
  return agent.StopApp(std::chrono::seconds(90)).status();
}

Result<AppStatus> Swapper::StartApp(Plan& p) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(vms_.hypervisor(), p.host, p.vm.name));
  return agent.StartApp({}, options_.health_timeout);
}

Result<SwapOutcome> Swapper::Swap(const std::string& vm_name, const Template& to,
                                  int64_t rollout_id, const ProgressFn& progress) {
  std::lock_guard vm_lock(vms_.LockFor(vm_name));
  Plan p;
  ASSIGN_OR_RETURN(p.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(auto last, db_.Query("SELECT step, phase FROM swap_journal WHERE vm = ?1 "
                                        "ORDER BY seq DESC LIMIT 1",
                                        {vm_name}));
  if (!last.empty() && !IsTerminal(last[0].Text(0), last[0].Text(1))) {
    return FailedPrecondition("vm '" + vm_name + "' has an unfinished swap; it resumes first");
  }
  if (p.vm.template_name != to.name) {
    return FailedPrecondition("vm '" + vm_name + "' runs template '" + p.vm.template_name +
                              "', not '" + to.name + "'");
  }
  ASSIGN_OR_RETURN(p.host, vms_.hosts().Get(p.vm.host));
  ASSIGN_OR_RETURN(p.from, templates_.Get(p.vm.template_name + ":" + std::to_string(p.vm.version)));
  p.to = to;
  p.rollout_id = rollout_id;
  p.os_swap = p.from.os_digest != to.os_digest;
  p.old_os = p.vm.os_volume;
  p.new_os = p.os_swap ? OsOverlayVolume(vm_name, to.version) : p.vm.os_volume;
  ASSIGN_OR_RETURN(VmLiveState live, vms_.hypervisor().GetState(p.host, vm_name));
  if (!live.running) return FailedPrecondition("vm '" + vm_name + "' is not running");
  if (const DiskSpec* app = live.Disk(kAppSerial)) p.old_app = app->path;
  RETURN_IF_ERROR(vms_.SetState(vm_name, "swapping", ""));
  if (progress) {
    progress({{"phase", "swap"},
              {"vm", vm_name},
              {"message", vm_name + ": " + p.from.Ref() + " -> " + to.Ref() +
                              (p.os_swap ? " (OS swap, one reboot)" : " (app hot swap)")}});
  }
  return Forward(p, progress);
}

Result<SwapOutcome> Swapper::Forward(Plan& p, const ProgressFn& progress) {
  Hypervisor& hv = vms_.hypervisor();
  ASSIGN_OR_RETURN(ImageInfo app,
                   vms_.images().Resolve("sha256:" + p.to.app_digest, ImageKind::kApp));
  Status s = Step(p, "checked", [&]() -> Status {
    ASSIGN_OR_RETURN(HostImage on_host, vms_.distributor().Ensure(p.host, app, progress));
    p.new_app = on_host.disk;
    return Status::Ok();
  });
  if (s.ok()) {
    s = Step(p, "stopped", [&]() -> Status {
      p.stopped_at = SteadyClock::now();
      return StopApp(p);
    });
  }
  int64_t downtime = -1;
  if (!p.os_swap) {
    if (s.ok()) {
      s = Step(p, "detached", [&] {
        return hv.DetachDisk(p.host, p.vm.name, kAppSerial, options_.detach_timeout);
      });
    }
    if (s.ok()) {
      s = Step(p, "attached", [&] {
        return hv.AttachDisk(p.host, p.vm.name, {kAppSerial, p.new_app, "raw", true});
      });
    }
    if (s.ok()) {
      s = Step(p, "started", [&]() -> Status {
        ASSIGN_OR_RETURN(AppStatus started, StartApp(p));
        downtime = started.last_downtime_ms.value_or(MsSince(p.stopped_at));
        return Status::Ok();
      });
    }
  } else {
    if (s.ok()) {
      s = Step(p, "shutdown",
               [&] { return hv.Shutdown(p.host, p.vm.name, std::chrono::seconds(60)); });
    }
    std::string overlay_path;
    if (s.ok()) {
      s = Step(p, "overlay", [&]() -> Status {
        ASSIGN_OR_RETURN(ImageInfo os,
                         vms_.images().Resolve("sha256:" + p.to.os_digest, ImageKind::kOs));
        ASSIGN_OR_RETURN(HostImage os_on_host, vms_.distributor().Ensure(p.host, os, progress));
        RETURN_IF_ERROR(hv.DeleteVolume(p.host, p.new_os));
        ASSIGN_OR_RETURN(overlay_path, hv.CreateOverlay(p.host, p.new_os, os_on_host.disk,
                                                        os.meta.value("format", "raw")));
        return Status::Ok();
      });
    }
    if (s.ok()) {
      s = Step(p, "started", [&]() -> Status {
        ASSIGN_OR_RETURN(VmSpec spec, vms_.BuildSpec(p.vm, p.host, p.to, overlay_path, progress));
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

Status Swapper::BootAndCheck(Plan& p, const VmSpec& spec, int64_t* downtime_ms) {
  RETURN_IF_ERROR(vms_.hypervisor().DefineAndStart(p.host, spec));
  ASSIGN_OR_RETURN(
      AppStatus started,
      vms_.AwaitHealthy(p.host, p.vm.name, options_.boot_timeout + options_.health_timeout));
  if (!started.healthy) return Internal("the app is not healthy after boot");
  if (p.stopped_at != SteadyClock::time_point{}) *downtime_ms = MsSince(p.stopped_at);
  return Status::Ok();
}

Result<SwapOutcome> Swapper::Finish(Plan& p) {
  {
    Transaction txn(db_);
    RETURN_IF_ERROR(txn.begin_status());
    RETURN_IF_ERROR(
        db_.Exec("UPDATE vms SET version = ?2, os_volume = ?3, state = 'running', "
                 "last_error = '' WHERE name = ?1",
                 {p.vm.name, p.to.version, p.new_os}));
    RETURN_IF_ERROR(Write(p, "done", "done"));
    RETURN_IF_ERROR(txn.Commit());
  }
  return SwapOutcome{"done", -1, ""};
}

Result<SwapOutcome> Swapper::Rollback(Plan& p, const std::string& why) {
  VLOG(kWarning) << "vm '" << p.vm.name << "': rolling back to " << p.from.Ref() << ": " << why;
  Hypervisor& hv = vms_.hypervisor();
  RETURN_IF_ERROR(Write(p, "rolling_back", "intent"));
  Status s;
  if (!p.os_swap) {
    StopApp(p).IgnoreError();
    // Detach whatever app disk is there, even the old one: a detach interrupted by a
    // crash may still be completing in the guest, and would take the disk away later.
    s = hv.DetachDisk(p.host, p.vm.name, kAppSerial, options_.detach_timeout);
    if (s.ok() && !p.old_app.empty()) {
      s = hv.AttachDisk(p.host, p.vm.name, {kAppSerial, p.old_app, "raw", true});
    }
    if (s.ok()) s = StartApp(p).status();
  } else {
    s = hv.Shutdown(p.host, p.vm.name, std::chrono::seconds(60));
    if (s.ok()) {
      auto old_path = hv.FindVolume(p.host, p.old_os);
      s = old_path.status();
      if (s.ok()) {
        auto spec = vms_.BuildSpec(p.vm, p.host, p.from, *old_path, nullptr);
        s = spec.status();
        int64_t ignored;
        if (s.ok()) s = BootAndCheck(p, *spec, &ignored);
      }
    }
  }
  if (p.crashed) return s;
  std::string state = s.ok() ? "rolled_back" : "failed";
  std::string error = s.ok() ? why : why + "; rollback failed: " + s.message();
  {
    Transaction txn(db_);
    RETURN_IF_ERROR(txn.begin_status());
    RETURN_IF_ERROR(vms_.SetState(p.vm.name, s.ok() ? "running" : "failed", error));
    RETURN_IF_ERROR(Write(p, state, "done"));
    RETURN_IF_ERROR(txn.Commit());
  }
  return SwapOutcome{state, -1, error};
}

Result<std::vector<std::string>> Swapper::Unfinished() {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT j.vm, j.step, j.phase FROM swap_journal j WHERE j.seq = "
                             "(SELECT max(seq) FROM swap_journal WHERE vm = j.vm)"));
  std::vector<std::string> out;
  for (const auto& r : rows) {
    if (!IsTerminal(r.Text(1), r.Text(2))) out.push_back(r.Text(0));
  }
  return out;
}

Result<SwapOutcome> Swapper::Resume(const std::string& vm_name) {
  std::lock_guard vm_lock(vms_.LockFor(vm_name));
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT step, phase, detail, rollout_id FROM "
                                        "swap_journal WHERE vm = ?1 ORDER BY seq DESC LIMIT 1",
                                        {vm_name}));
  if (rows.empty() || IsTerminal(rows[0].Text(0), rows[0].Text(1))) {
    return FailedPrecondition("vm '" + vm_name + "' has no unfinished swap");
  }
  const std::string step = rows[0].Text(0);
  ASSIGN_OR_RETURN(Json d, ParseJson(rows[0].Text(2), "journal detail"));
  Plan p;
  ASSIGN_OR_RETURN(p.vm, vms_.Get(vm_name));
  ASSIGN_OR_RETURN(p.host, vms_.hosts().Get(p.vm.host));
  std::string name = d.value("template", p.vm.template_name);
  ASSIGN_OR_RETURN(p.from, templates_.Get(name + ":" + std::to_string(d.value("from", 0))));
  ASSIGN_OR_RETURN(p.to, templates_.Get(name + ":" + std::to_string(d.value("to", 0))));
  p.rollout_id = rows[0].Int(3);
  p.os_swap = d.value("os_swap", false);
  p.old_app = d.value("old_app", "");
  p.new_app = d.value("new_app", "");
  p.old_os = d.value("old_os", "");
  p.new_os = d.value("new_os", "");
  VLOG(kInfo) << "vm '" << vm_name << "': resuming the swap " << p.from.Ref() << " -> "
              << p.to.Ref() << " from step " << step;
  Hypervisor& hv = vms_.hypervisor();
  ASSIGN_OR_RETURN(VmLiveState live, hv.GetState(p.host, vm_name));

  // Forward only when the new version's disk is certainly in place; else go back.
  bool forward = false;
  if (step != "rolling_back") {
    if (!p.os_swap) {
      const DiskSpec* app = live.Disk(kAppSerial);
      forward = app != nullptr && !p.new_app.empty() && app->path == p.new_app;
    } else {
      const DiskSpec* os = live.Disk(kOsSerial);
      forward = os != nullptr && os->path.find(p.new_os) != std::string::npos;
    }
  }
  if (!forward) return Rollback(p, "resumed after an interruption at step '" + step + "'");
  Status s;
  if (!live.running) s = hv.Start(p.host, vm_name);
  int64_t downtime = -1;
  if (s.ok()) {
    auto started = vms_.AwaitHealthy(p.host, vm_name, options_.boot_timeout);
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
