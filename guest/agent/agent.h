#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "guest/agent/guest_env.h"
#include "protocol/agent_protocol.h"

namespace vdswap::guest {

// The app supervisor inside the VM, serving the agent protocol (protocol/agent_protocol.h)
// one request line at a time. Every op is idempotent: app.stop on a stopped app and
// app.start on a running one succeed. Malformed or unknown requests get an error reply;
// nothing a host sends stops the agent.
//
// Single-threaded: the owner calls HandleLine() for each request and Tick() often.
class Agent {
 public:
  using AppState = vdswap::AppState;

  explicit Agent(GuestEnv& env);

  // Mounts the data disk and starts the app when its disk is present. With two app disks
  // present (a make-before-break swap interrupted by a reboot) it starts neither: the
  // host's resume decides with app.switch. Errors are kept in status (the agent serves
  // requests either way).
  void Boot();
  // Handles one request line; returns the reply line (no trailing newline).
  std::string HandleLine(std::string_view line);
  // Supervision: restarts an app that died outside a stop (with backoff) and runs the
  // periodic health check.
  void Tick();
  // True once a shutdown request or the power button asked the guest to power off.
  bool shutting_down() const { return shutting_down_; }
  // Stops the app, then powers off (the power button path).
  void Shutdown();

  AppState state() const { return state_; }
  // What a status request answers.
  StatusReply Report() const;

 private:
  Result<Json> Dispatch(const AgentRequest& req);
  HelloReply Hello() const;
  AppStatus App() const;
  Result<StopReply> Stop();
  Result<AppStatus> Start(int64_t wait_disk_ms);
  // Make-before-break: see AgentOp.
  Result<AppStatus> Prepare(const std::string& serial, int64_t wait_disk_ms);
  Result<AppStatus> Switch(const std::string& serial, int64_t wait_disk_ms);
  Result<StopReply> Release(const std::string& serial);
  // The serial of the one app disk present, waiting up to `wait_ms` for one to appear.
  // kFailedPrecondition when both slots have a disk (the host must choose).
  Result<std::string> FindAppDisk(int64_t wait_ms);
  Result<HealthReply> CheckHealth();
  // Waits for the first healthy check after a start, up to the manifest's timeout.
  Result<AppStatus> AwaitHealthy();
  Status Launch();
  // Makes the held sockets match m.sockets: a socket with the same name and address is
  // kept, dropped ones are closed, new ones opened. Returns the fds in manifest order.
  Result<std::vector<int>> HoldSockets(const AppManifest& m);
  void StopProcess();

  struct HeldSocket {
    AppManifest::Socket socket;
    int fd = -1;
  };

  GuestEnv& env_;
  // Listening sockets held for the app's whole life on the VM, across restarts and swaps.
  std::vector<HeldSocket> held_;
  AppState state_ = AppState::kStopped;
  std::optional<AppManifest> manifest_;  // the active slot's
  std::string active_serial_ = kAppSerial;
  // A slot mounted beside the active one: prepared for a switch, or the previous app
  // kept for a switch back until the host releases it.
  struct Standby {
    std::string serial;
    AppManifest manifest;
  };
  std::optional<Standby> standby_;
  pid_t pid_ = -1;
  bool data_mounted_ = false;
  bool app_mounted_ = false;
  bool healthy_ = false;
  std::string health_output_;
  std::string last_error_;
  int restarts_ = 0;
  int64_t next_restart_ms_ = 0;
  int64_t next_health_ms_ = 0;
  int64_t stopped_at_ms_ = -1;  // when the last stop began: the start of a downtime
  int64_t last_downtime_ms_ = -1;
  bool shutting_down_ = false;
};

}  // namespace vdswap::guest
