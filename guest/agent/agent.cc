#include "guest/agent/agent.h"

#include <signal.h>

#include <algorithm>

#include "core/version.h"

namespace vdswap::guest {

namespace {

constexpr int64_t kKillWaitMs = 5000;
constexpr int64_t kMaxBackoffMs = 30000;
constexpr int64_t kMaxWaitDiskMs = 120000;

int SignalNumber(const std::string& name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"HUP", SIGHUP},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"KILL", SIGKILL}};
  for (const auto& [n, s] : kSignals) {
    if (name == n) return s;
  }
  return SIGTERM;
}

}  // namespace

Agent::Agent(GuestEnv& env) : env_(env) {}

void Agent::Boot() {
  auto data = env_.FindDisk(kDataSerial, std::chrono::seconds(10));
  if (!data.ok()) {
    last_error_ = data.status().message();
    return;
  }
  Status s = env_.MountData(*data);
  if (!s.ok()) {
    last_error_ = s.message();
    return;
  }
  data_mounted_ = true;
  auto started = Start(/*wait_disk_ms=*/1000);  // two app disks: FindAppDisk refuses
  if (!started.ok()) last_error_ = started.status().message();
}

std::string Agent::HandleLine(std::string_view line) {
  Json id;
  Result<AgentRequest> req = DecodeRequest(line, &id);
  if (!req.ok()) return EncodeReply(id, req.status());
  return EncodeReply(id, Dispatch(*req));
}

Result<Json> Agent::Dispatch(const AgentRequest& req) {
  switch (req.op) {
    case AgentOp::kHello:
      return ToJson(Hello());
    case AgentOp::kStatus:
      return ToJson(Report());
    case AgentOp::kAppStop: {
      ASSIGN_OR_RETURN(StopReply stopped, Stop());
      return ToJson(stopped);
    }
    case AgentOp::kAppStart: {
      ASSIGN_OR_RETURN(StartRequest start, FromJson<StartRequest>(req.fields));
      ASSIGN_OR_RETURN(AppStatus app,
                       Start(std::clamp<int64_t>(start.wait_disk_ms, 0, kMaxWaitDiskMs)));
      return ToJson(app);
    }
    case AgentOp::kAppHealth: {
      ASSIGN_OR_RETURN(HealthReply health, CheckHealth());
      return ToJson(health);
    }
    case AgentOp::kAppPrepare:
    case AgentOp::kAppSwitch:
    case AgentOp::kAppRelease: {
      ASSIGN_OR_RETURN(SlotRequest slot, FromJson<SlotRequest>(req.fields));
      int64_t wait = std::clamp<int64_t>(slot.wait_disk_ms, 0, kMaxWaitDiskMs);
      if (req.op == AgentOp::kAppRelease) {
        ASSIGN_OR_RETURN(StopReply released, Release(slot.serial));
        return ToJson(released);
      }
      ASSIGN_OR_RETURN(AppStatus app, req.op == AgentOp::kAppPrepare ? Prepare(slot.serial, wait)
                                                                     : Switch(slot.serial, wait));
      return ToJson(app);
    }
    case AgentOp::kShutdown: {
      RETURN_IF_ERROR(Stop().status());
      shutting_down_ = true;
      return ToJson(ShutdownReply{true});
    }
  }
  return Internal("op '" + std::string(AgentOpName(req.op)) + "' is not served");
}

HelloReply Agent::Hello() const {
  OsRelease os = env_.ReadOsRelease();
  return {kVersion, env_.BootId(), env_.Arch(), os["ID"], os["VERSION_ID"], os["IMAGE_VERSION"]};
}

AppStatus Agent::App() const {
  AppStatus app;
  app.state = state_;
  app.healthy = healthy_;
  app.health_output = health_output_;
  app.restarts = restarts_;
  app.pid = pid_;
  app.error = last_error_;
  if (manifest_) {
    app.name = manifest_->name;
    app.version = manifest_->version;
  }
  if (last_downtime_ms_ >= 0) app.last_downtime_ms = last_downtime_ms_;
  return app;
}

StatusReply Agent::Report() const { return {env_.BootId(), data_mounted_, app_mounted_, App()}; }

Result<HealthReply> Agent::CheckHealth() {
  if (!manifest_ || pid_ <= 0) return FailedPrecondition("the app is not running");
  GuestEnv::HealthResult h =
      manifest_->health.has_probe()
          ? env_.CheckHealth(active_serial_, *manifest_, std::chrono::seconds(5))
          : GuestEnv::HealthResult{true, ""};
  healthy_ = h.healthy;
  health_output_ = h.output;
  return HealthReply{h.healthy, h.output};
}

void Agent::StopProcess() {
  if (pid_ <= 0) return;
  int sig = manifest_ ? SignalNumber(manifest_->stop.signal) : SIGTERM;
  // drain_s is time the app is given after the signal to finish what it has in hand,
  // before the stop timeout starts counting down to SIGKILL.
  int64_t grace =
      manifest_ ? (manifest_->stop.drain_s + manifest_->stop.timeout_s) * 1000LL : 10000;
  env_.Kill(pid_, sig);
  int64_t deadline = env_.NowMs() + grace;
  while (!env_.Reaped(pid_)) {
    if (env_.NowMs() >= deadline) {
      env_.Kill(pid_, SIGKILL);
      int64_t kill_deadline = env_.NowMs() + kKillWaitMs;
      while (!env_.Reaped(pid_) && env_.NowMs() < kill_deadline) env_.SleepMs(10);
      break;
    }
    env_.SleepMs(10);
  }
  pid_ = -1;
}

Result<StopReply> Agent::Stop() {
  bool was_up = pid_ > 0;
  if (was_up) stopped_at_ms_ = env_.NowMs();
  StopProcess();
  state_ = AppState::kStopped;
  healthy_ = false;
  if (app_mounted_) {
    RETURN_IF_ERROR(env_.UnmountApp(active_serial_));
    app_mounted_ = false;
  }
  // A stop frees every app disk for a detach, a standby one too.
  if (standby_) {
    RETURN_IF_ERROR(env_.UnmountApp(standby_->serial));
    standby_.reset();
  }
  return StopReply{true, was_up};
}

Result<std::vector<int>> Agent::HoldSockets(const AppManifest& m) {
  // Close dropped sockets first: a new socket may reuse a dropped one's address.
  std::erase_if(held_, [&](const HeldSocket& h) {
    bool kept = std::find(m.sockets.begin(), m.sockets.end(), h.socket) != m.sockets.end();
    if (!kept) env_.CloseListener(h.fd);
    return !kept;
  });
  std::vector<int> fds;
  for (const AppManifest::Socket& want : m.sockets) {
    auto it = std::find_if(held_.begin(), held_.end(),
                           [&](const HeldSocket& h) { return h.socket == want; });
    if (it == held_.end()) {
      Result<int> fd = env_.Listen(want.listen);
      if (!fd.ok()) return fd.status().WithContext("socket '" + want.name + "'");
      held_.push_back({want, *fd});
      it = held_.end() - 1;
    }
    fds.push_back(it->fd);
  }
  return fds;
}

Status Agent::Launch() {
  ASSIGN_OR_RETURN(std::vector<int> fds, HoldSockets(*manifest_));
  ASSIGN_OR_RETURN(pid_t pid, env_.Spawn(active_serial_, *manifest_, fds));
  pid_ = pid;
  state_ = AppState::kStarting;
  healthy_ = false;
  return Status::Ok();
}

Result<AppStatus> Agent::Start(int64_t wait_disk_ms) {
  if (state_ == AppState::kRunning && healthy_ && pid_ > 0) return App();
  if (pid_ <= 0) {
    if (!data_mounted_) return FailedPrecondition("the data disk is not mounted: " + last_error_);
    if (!app_mounted_) {
      ASSIGN_OR_RETURN(std::string serial, FindAppDisk(wait_disk_ms));
      ASSIGN_OR_RETURN(std::string dev, env_.FindDisk(serial, std::chrono::milliseconds(0)));
      ASSIGN_OR_RETURN(AppManifest m, env_.MountApp(serial, dev));
      Status compat = CheckRequires(m, env_.ReadOsRelease(), env_.Arch());
      if (!compat.ok()) {
        env_.UnmountApp(serial).IgnoreError();
        return compat;
      }
      app_mounted_ = true;
      active_serial_ = serial;
      manifest_ = std::move(m);
    }
    RETURN_IF_ERROR(Launch());
    last_error_.clear();
  }
  return AwaitHealthy();
}

Result<AppStatus> Agent::AwaitHealthy() {
  const AppManifest& m = *manifest_;
  int64_t deadline = env_.NowMs() + m.health.timeout_s * 1000LL;
  auto check_timeout =
      std::chrono::milliseconds(std::min(5000, std::max(m.health.interval_ms, 1000)));
  while (true) {
    if (env_.Reaped(pid_)) {
      pid_ = -1;
      state_ = AppState::kFailed;
      last_error_ = "the app exited while starting";
      return Internal(last_error_);
    }
    GuestEnv::HealthResult h;
    if (env_.NotifiedReady(pid_)) {
      h = {true, "READY=1"};
    } else if (!m.health.has_probe()) {
      h.healthy = true;  // no check: a running app is a healthy one
    } else {
      h = env_.CheckHealth(active_serial_, m, check_timeout);
    }
    health_output_ = h.output;
    if (h.healthy) {
      healthy_ = true;
      state_ = AppState::kRunning;
      if (stopped_at_ms_ >= 0) last_downtime_ms_ = env_.NowMs() - stopped_at_ms_;
      stopped_at_ms_ = -1;
      next_health_ms_ = env_.NowMs() + m.health.interval_ms;
      return App();
    }
    if (env_.NowMs() >= deadline) {
      state_ = AppState::kFailed;
      last_error_ = "health check did not pass within " + std::to_string(m.health.timeout_s) +
                    " s: " + h.output;
      return Internal(last_error_);
    }
    // Until the next probe, an sd_notify READY=1 counts at once.
    for (int64_t next = env_.NowMs() + m.health.interval_ms;
         env_.NowMs() < next && !env_.NotifiedReady(pid_);) {
      env_.SleepMs(std::min<int64_t>(10, next - env_.NowMs()));
    }
  }
}

Result<std::string> Agent::FindAppDisk(int64_t wait_ms) {
  int64_t deadline = env_.NowMs() + wait_ms;
  while (true) {
    bool a = env_.FindDisk(kAppSerial, std::chrono::milliseconds(0)).ok();
    bool b = env_.FindDisk(kAppSerialB, std::chrono::milliseconds(0)).ok();
    if (a && b) {
      return FailedPrecondition(std::string("two app disks (") + kAppSerial + ", " + kAppSerialB +
                                "): the host chooses one with app.switch");
    }
    if (a || b) return std::string(a ? kAppSerial : kAppSerialB);
    if (env_.NowMs() >= deadline) {
      return NotFound("no disk with serial '" + std::string(kAppSerial) + "'");
    }
    env_.SleepMs(std::min<int64_t>(100, deadline - env_.NowMs()));
  }
}

Result<AppStatus> Agent::Prepare(const std::string& serial, int64_t wait_disk_ms) {
  if (!data_mounted_) return FailedPrecondition("the data disk is not mounted: " + last_error_);
  if (app_mounted_ && serial == active_serial_) {
    return FailedPrecondition("app slot '" + serial + "' is the active one");
  }
  if (!standby_ || standby_->serial != serial) {
    ASSIGN_OR_RETURN(std::string dev,
                     env_.FindDisk(serial, std::chrono::milliseconds(wait_disk_ms)));
    ASSIGN_OR_RETURN(AppManifest m, env_.MountApp(serial, dev));
    Status compat = CheckRequires(m, env_.ReadOsRelease(), env_.Arch());
    if (!compat.ok()) {
      env_.UnmountApp(serial).IgnoreError();
      return compat;
    }
    standby_ = Standby{serial, std::move(m)};
  }
  AppStatus prepared;
  prepared.name = standby_->manifest.name;
  prepared.version = standby_->manifest.version;
  return prepared;
}

Result<AppStatus> Agent::Switch(const std::string& serial, int64_t wait_disk_ms) {
  if (!(app_mounted_ && serial == active_serial_)) {
    RETURN_IF_ERROR(Prepare(serial, wait_disk_ms).status());
    if (pid_ > 0) stopped_at_ms_ = env_.NowMs();
    StopProcess();
    // The old slot stays mounted as the standby, so switching back needs no disk.
    std::optional<Standby> old;
    if (app_mounted_ && manifest_) old = Standby{active_serial_, *manifest_};
    manifest_ = std::move(standby_->manifest);
    active_serial_ = serial;
    app_mounted_ = true;
    standby_ = std::move(old);
    state_ = AppState::kStopped;
    healthy_ = false;
  }
  if (state_ == AppState::kRunning && healthy_ && pid_ > 0) return App();
  if (pid_ <= 0) {
    RETURN_IF_ERROR(Launch());
    last_error_.clear();
  }
  return AwaitHealthy();
}

Result<StopReply> Agent::Release(const std::string& serial) {
  if (app_mounted_ && serial == active_serial_) {
    return FailedPrecondition("app slot '" + serial + "' is the active one");
  }
  if (standby_ && standby_->serial == serial) {
    RETURN_IF_ERROR(env_.UnmountApp(serial));
    standby_.reset();
  }
  return StopReply{true, false};
}

void Agent::Tick() {
  if (!manifest_) return;
  int64_t now = env_.NowMs();
  if (pid_ > 0 && state_ == AppState::kRunning && env_.Reaped(pid_)) {
    // Died outside a stop: restart with exponential backoff.
    pid_ = -1;
    healthy_ = false;
    state_ = AppState::kStarting;
    last_error_ = "the app exited; restarting";
    next_restart_ms_ = now + std::min<int64_t>(kMaxBackoffMs, 500LL << std::min(restarts_, 6));
  }
  if (pid_ <= 0 && state_ == AppState::kStarting && now >= next_restart_ms_ && app_mounted_) {
    ++restarts_;
    if (Launch().ok()) next_health_ms_ = now;
  }
  if (pid_ > 0 && (state_ == AppState::kRunning || state_ == AppState::kStarting) &&
      now >= next_health_ms_) {
    GuestEnv::HealthResult h =
        !manifest_->health.has_probe()
            ? GuestEnv::HealthResult{true, ""}
            : env_.CheckHealth(active_serial_, *manifest_, std::chrono::seconds(5));
    healthy_ = h.healthy;
    health_output_ = h.output;
    if (h.healthy) state_ = AppState::kRunning;
    next_health_ms_ = env_.NowMs() + manifest_->health.interval_ms;
  }
}

void Agent::Shutdown() {
  Stop().status().IgnoreError();
  shutting_down_ = true;
}

}  // namespace vdswap::guest
