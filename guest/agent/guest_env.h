#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"
#include "image/manifest.h"

namespace vdswap::guest {

// Everything the agent does to the guest OS, behind one seam so the agent's state
// machine is tested with a fake. Not thread-safe; the agent is single-threaded.
class GuestEnv {
 public:
  struct HealthResult {
    bool healthy = false;
    std::string output;  // stdout of the check, at most 4 KiB
  };

  virtual ~GuestEnv() = default;

  // The block device (/dev/vdX) whose virtio serial is `serial`, waiting up to `wait`
  // for it to appear (a hot-attached disk shows up about a second later).
  // kNotFound when it does not.
  virtual Result<std::string> FindDisk(const std::string& serial,
                                       std::chrono::milliseconds wait) = 0;
  // Mounts the data disk at the data directory. Formats it only when it is blank (all
  // zeros where a filesystem would start); a disk with anything on it is never formatted.
  virtual Status MountData(const std::string& device) = 0;
  // Mounts the app disk read-only in the app slot `serial` (kAppSerial or kAppSerialB:
  // each slot has its own root, so two app disks can be mounted at once), reads and
  // validates its /vdswap.json, and prepares the app's root (overlay with a tmpfs upper,
  // /proc, /sys, /dev, /tmp, /data, resolv.conf).
  virtual Result<AppManifest> MountApp(const std::string& serial, const std::string& device) = 0;
  // Undoes MountApp of slot `serial` so its disk can be detached. Idempotent.
  virtual Status UnmountApp(const std::string& serial) = 0;
  // Creates a listening socket on `address` (a unix path: a stale socket file there is
  // removed first) and returns its fd, which the caller owns until CloseListener.
  // kUnavailable when the address cannot be bound (in use, not local).
  virtual Result<int> Listen(const SocketAddress& address) = 0;
  // Closes a socket that Listen returned.
  virtual void CloseListener(int fd) = 0;
  // Starts the app in its root (private mount namespace, own session). Returns its pid.
  // `listen_fds` (one per m.sockets entry, same order) reach the app by systemd's socket
  // activation protocol: fds 3.., LISTEN_FDS, LISTEN_PID (the app's pid), LISTEN_FDNAMES.
  // REQUIRES: listen_fds is empty or has m.sockets.size() entries.
  // REQUIRES: slot `serial` is mounted with m.
  virtual Result<pid_t> Spawn(const std::string& serial, const AppManifest& m,
                              const std::vector<int>& listen_fds) = 0;
  virtual void Kill(pid_t pid, int signal) = 0;
  // Non-blocking: true once the app `pid` sent sd_notify "READY=1" on the NOTIFY_SOCKET
  // that Spawn gave it (an immediate healthy signal, before the next probe).
  virtual bool NotifiedReady(pid_t pid) = 0;
  // Non-blocking: true when `pid` has exited (and is reaped).
  virtual bool Reaped(pid_t pid) = 0;
  // Runs the manifest's health probe (exec, http or tcp) once, waiting at most `timeout`.
  // An exec probe runs in slot `serial`'s root. REQUIRES: m.health.has_probe().
  virtual HealthResult CheckHealth(const std::string& serial, const AppManifest& m,
                                   std::chrono::milliseconds timeout) = 0;

  virtual int64_t NowMs() = 0;  // monotonic
  virtual void SleepMs(int64_t ms) = 0;

  virtual OsRelease ReadOsRelease() = 0;
  virtual std::string Arch() = 0;
  virtual std::string BootId() = 0;
  // Flushes and powers the guest off (asks init to). Returns when init has it.
  virtual void PowerOff() = 0;
};

}  // namespace vdswap::guest
