#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "guest/agent/guest_env.h"

namespace vdswap::guest {

// A simulated guest OS for the agent: disks by serial, app images on devices, processes
// that obey signals, health per app version, time from a Clock, and a log of what the
// agent did ("mount data /dev/vdc", "spawn 2", "kill TERM", "unmount app"). Used by the
// agent's tests and by FakeHypervisor, which runs the real Agent on one per running VM.
// Not thread-safe (like the agent); the owner serializes calls.
class FakeGuestEnv : public GuestEnv {
 public:
  // REQUIRES: `clock` outlives this env.
  FakeGuestEnv(Clock& clock, std::string boot_id);

  // --- The simulation, driven by tests and the fake hypervisor.

  // A disk with `serial` appears as `device` (a hot-plug, or present at boot).
  void PlugDisk(const std::string& serial, const std::string& device);
  // The disk with `serial` goes away. Missing is fine.
  void UnplugDisk(const std::string& serial);
  // Puts an app image with manifest `m` on `device`: MountApp(device) returns it. A device
  // without one has no valid /vdswap.json.
  void PutApp(const std::string& device, AppManifest m);
  // Makes the health check of the app with `version` pass (the default) or always fail.
  void SetHealthy(const std::string& version, bool healthy);
  // Makes the next `n` health checks fail, as an app that warms up.
  void FailNextHealthChecks(int n) { failing_checks_ = n; }
  // Every health probe hangs until its timeout, as an app that accepts but never answers.
  void SetProbesHang(bool hang) { probes_hang_ = hang; }
  // Listen on `address` fails with kUnavailable, as when something else holds the port.
  void SetAddressInUse(const std::string& address) { in_use_.insert(address); }
  // Apps of `version` send sd_notify READY=1 as soon as they start.
  void SetNotifiesReady(const std::string& version) { notifying_versions_.insert(version); }
  // The app ignores SIGTERM (only SIGKILL stops it).
  void SetIgnoresTerm(bool ignores) { ignores_term_ = ignores; }
  // The data disk is blank, so mounting it formats it first.
  void SetBlankData(bool blank) { blank_data_ = blank; }
  void SetOsRelease(OsRelease os) { os_ = std::move(os); }
  // Every app process dies, as in a crash.
  void CrashApps() { alive_.clear(); }

  // --- What happened.

  const std::vector<std::string>& log() const { return log_; }
  // Processes alive now.
  size_t running_processes() const { return alive_.size(); }
  // Sockets open now: fd -> address.
  const std::map<int, std::string>& listening() const { return listening_; }
  // The fds and socket activation environment of the last spawn.
  const std::vector<int>& last_spawn_fds() const { return last_spawn_fds_; }
  const std::vector<std::string>& last_spawn_env() const { return last_spawn_env_; }
  // How many times an app was spawned.
  int spawns() const { return spawns_; }
  bool powered_off() const { return powered_off_; }

  // --- GuestEnv.

  // A missing disk is waited for (`wait` passes on the clock), then kNotFound.
  Result<std::string> FindDisk(const std::string& serial, std::chrono::milliseconds wait) override;
  Status MountData(const std::string& device) override;
  Result<AppManifest> MountApp(const std::string& serial, const std::string& device) override;
  Status UnmountApp(const std::string& serial) override;
  Result<int> Listen(const SocketAddress& address) override;
  void CloseListener(int fd) override;
  Result<pid_t> Spawn(const std::string& serial, const AppManifest& m,
                      const std::vector<int>& listen_fds) override;
  void Kill(pid_t pid, int signal) override;
  bool NotifiedReady(pid_t pid) override;
  bool Reaped(pid_t pid) override;
  HealthResult CheckHealth(const std::string& serial, const AppManifest& m,
                           std::chrono::milliseconds timeout) override;
  int64_t NowMs() override;
  void SleepMs(int64_t ms) override;
  OsRelease ReadOsRelease() override { return os_; }
  std::string Arch() override { return "x86_64"; }
  std::string BootId() override { return boot_id_; }
  void PowerOff() override;

 private:
  Clock& clock_;
  std::string boot_id_;
  std::map<std::string, std::string> disks_;          // serial -> device
  std::map<std::string, AppManifest> app_on_device_;  // device -> manifest
  std::set<std::string> unhealthy_versions_;
  std::set<std::string> notifying_versions_;
  std::set<pid_t> notified_;
  std::set<pid_t> alive_;
  std::vector<std::string> log_;
  OsRelease os_ = {{"ID", "vdswap-testos"}, {"VERSION_ID", "1"}};
  std::map<int, std::string> listening_;
  std::set<std::string> in_use_;
  std::vector<int> last_spawn_fds_;
  std::vector<std::string> last_spawn_env_;
  pid_t next_pid_ = 100;
  int next_fd_ = 20;
  bool probes_hang_ = false;
  int spawns_ = 0;
  int failing_checks_ = 0;
  bool ignores_term_ = false;
  bool blank_data_ = false;
  bool powered_off_ = false;
};

}  // namespace vdswap::guest
