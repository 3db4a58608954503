#include "guest/agent/fake_guest_env.h"

#include <signal.h>

#include <cassert>

#include "guest/agent/socket_activation.h"
#include "protocol/agent_protocol.h"

namespace vdswap::guest {

namespace {

// Log lines name the second slot only, so the first slot's read as they always did.
std::string SlotSuffix(const std::string& serial) {
  return serial == kAppSerialB ? std::string(" ") + kAppSerialB : "";
}

}  // namespace

FakeGuestEnv::FakeGuestEnv(Clock& clock, std::string boot_id)
    : clock_(clock), boot_id_(std::move(boot_id)) {}

void FakeGuestEnv::PlugDisk(const std::string& serial, const std::string& device) {
  disks_[serial] = device;
}

void FakeGuestEnv::UnplugDisk(const std::string& serial) { disks_.erase(serial); }

void FakeGuestEnv::PutApp(const std::string& device, AppManifest m) {
  app_on_device_[device] = std::move(m);
}

void FakeGuestEnv::SetHealthy(const std::string& version, bool healthy) {
  if (healthy) {
    unhealthy_versions_.erase(version);
  } else {
    unhealthy_versions_.insert(version);
  }
}

Result<std::string> FakeGuestEnv::FindDisk(const std::string& serial,
                                           std::chrono::milliseconds wait) {
  auto it = disks_.find(serial);
  if (it != disks_.end()) return it->second;
  // The real agent polls until `wait` is over; so does virtual time here.
  clock_.SleepFor(wait);
  return NotFound("no disk with serial '" + serial + "'");
}

Status FakeGuestEnv::MountData(const std::string& device) {
  log_.push_back((blank_data_ ? "format+mount data " : "mount data ") + device);
  blank_data_ = false;
  return Status::Ok();
}

Result<AppManifest> FakeGuestEnv::MountApp(const std::string& serial, const std::string& device) {
  auto it = app_on_device_.find(device);
  if (it == app_on_device_.end()) {
    return InvalidArgument("manifest: /vdswap.json is not valid JSON");
  }
  log_.push_back("mount app " + device + SlotSuffix(serial));
  return it->second;
}

Status FakeGuestEnv::UnmountApp(const std::string& serial) {
  log_.push_back("unmount app" + SlotSuffix(serial));
  return Status::Ok();
}

Result<int> FakeGuestEnv::Listen(const SocketAddress& address) {
  std::string text = address.ToString();
  bool held = false;
  for (const auto& [fd, a] : listening_) held = held || a == text;
  if (held || in_use_.count(text)) {
    return Unavailable("listen on " + text + ": Address already in use");
  }
  int fd = next_fd_++;
  listening_[fd] = text;
  log_.push_back("listen " + text + " fd " + std::to_string(fd));
  return fd;
}

void FakeGuestEnv::CloseListener(int fd) {
  log_.push_back("close fd " + std::to_string(fd) + " " + listening_[fd]);
  listening_.erase(fd);
}

Result<pid_t> FakeGuestEnv::Spawn(const std::string& serial, const AppManifest& m,
                                  const std::vector<int>& listen_fds) {
  assert(listen_fds.empty() || listen_fds.size() == m.sockets.size());
  for (int fd : listen_fds) {
    if (!listening_.count(fd)) return Internal("fd " + std::to_string(fd) + " is not a socket");
  }
  pid_t pid = next_pid_++;
  alive_.insert(pid);
  ++spawns_;
  last_spawn_fds_ = listen_fds;
  last_spawn_env_ = ListenEnv(m, pid);
  if (notifying_versions_.count(m.version)) notified_.insert(pid);
  log_.push_back("spawn " + m.version + SlotSuffix(serial));
  return pid;
}

void FakeGuestEnv::Kill(pid_t pid, int signal) {
  log_.push_back(std::string("kill ") + (signal == SIGKILL ? "KILL" : "TERM"));
  if (signal == SIGKILL || !ignores_term_) alive_.erase(pid);
}

bool FakeGuestEnv::NotifiedReady(pid_t pid) { return notified_.count(pid) > 0; }

bool FakeGuestEnv::Reaped(pid_t pid) { return alive_.count(pid) == 0; }

GuestEnv::HealthResult FakeGuestEnv::CheckHealth(const std::string&, const AppManifest& m,
                                                 std::chrono::milliseconds timeout) {
  if (probes_hang_) {
    clock_.SleepFor(timeout);
    return {false, "(health check timed out)"};
  }
  if (failing_checks_ > 0) {
    --failing_checks_;
    return {false, "starting"};
  }
  if (unhealthy_versions_.count(m.version)) return {false, m.name + " " + m.version + ": down"};
  return {true, m.name + " " + m.version};
}

int64_t FakeGuestEnv::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

void FakeGuestEnv::SleepMs(int64_t ms) { clock_.SleepFor(std::chrono::milliseconds(ms)); }

void FakeGuestEnv::PowerOff() {
  log_.push_back("poweroff");
  powered_off_ = true;
}

}  // namespace vdswap::guest
