#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "guest/agent/guest_env.h"

namespace vdswap::guest {

// Priorities of sd-daemon(3) log lines (the syslog levels).
enum class LogLevel { kErr = 3, kWarning = 4, kNotice = 5, kInfo = 6 };

// Writes one line to stderr. Run by systemd (JOURNAL_STREAM names our stderr) the line
// gets an sd-daemon "<N>" priority prefix for the journal; otherwise (busybox init, the
// serial console) it is stamped with the guest's uptime.
void LogLine(LogLevel level, const std::string& what);

// Tells the service manager that the agent is up ("READY=1" on $NOTIFY_SOCKET, the
// sd_notify(3) datagram, without libsystemd). A no-op when NOTIFY_SOCKET is not set.
void NotifyReady();

// The real GuestEnv: sysfs, mount(2), fork/exec, chroot. Works on the busybox test OS
// and on systemd distros (tools looked up on PATH, private mounts under shared
// propagation). Paths:
//   data disk   /var/lib/vdswap/data (the app's part: .../data/app, seen as /data)
//   app disk    /run/vdswap/app/lower (read-only EROFS)
//   app root    /run/vdswap/app/root  (overlay: lower + tmpfs upper)
//   second slot /run/vdswap/app-b/... (the disk with serial vdswap-app-b), the same way
// Each slot's base is a private mount, so nothing mounted under it propagates elsewhere.
class LinuxEnv : public GuestEnv {
 public:
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
  OsRelease ReadOsRelease() override;
  std::string Arch() override;
  std::string BootId() override;
  void PowerOff() override;

  // The NOTIFY_SOCKET value Spawn gives apps ("@name": an abstract datagram socket,
  // reachable from the app's chroot), binding it on first use; "" when it cannot be made.
  std::string NotifySocket();
  // Unmounts the data disk (flushing it). The agent's exit path, after the app stopped.
  Status UnmountData();

 private:
  // mount(2) on `dst` (created). A bind mount is made private at once: a bind of a shared
  // mount (everything is shared under systemd) would otherwise stay a peer of its source,
  // and unmounting its submounts later would propagate back to the source.
  Status Mount(const std::string& src, const std::string& dst, const char* type,
               unsigned long flags, const std::string& options);
  vdswap::UniqueFd notify_;
  std::string notify_name_;
  std::set<pid_t> ready_;  // apps that sent READY=1
  // Makes a slot's base a private mount point (a bind onto itself). Idempotent.
  Status MakeAppBasePrivate(const std::string& base);
};

// The absolute path of the executable `name` found on $PATH, then /usr/sbin, /sbin,
// /usr/bin and /bin (a service's PATH may lack the sbin directories); "" when none.
std::string FindTool(const std::string& name);

// The mount points strictly under `dir` in `mountinfo` (the text of /proc/self/mountinfo,
// octal escapes decoded), in the order to unmount them: the reverse of mount order, so
// submounts and overmounts go first.
std::vector<std::string> MountsUnder(const std::string& mountinfo, const std::string& dir);

}  // namespace vdswap::guest
