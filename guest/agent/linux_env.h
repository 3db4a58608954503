#pragma once

#include <string>
#include <vector>

#include "guest/agent/guest_env.h"

namespace vdswap::guest {

// The real GuestEnv: sysfs, mount(2), fork/exec, chroot. Paths:
//   data disk   /var/lib/vdswap/data (the app's part: .../data/app, seen as /data)
//   app disk    /run/vdswap/app/lower (read-only EROFS)
//   app root    /run/vdswap/app/root  (overlay: lower + tmpfs upper)
class LinuxEnv : public GuestEnv {
 public:
  Result<std::string> FindDisk(const std::string& serial, std::chrono::milliseconds wait) override;
  Status MountData(const std::string& device) override;
  Result<AppManifest> MountApp(const std::string& device) override;
  Status UnmountApp() override;
  Result<pid_t> Spawn(const AppManifest& m) override;
  void Kill(pid_t pid, int signal) override;
  bool Reaped(pid_t pid) override;
  HealthResult CheckHealth(const AppManifest& m, std::chrono::milliseconds timeout) override;
  int64_t NowMs() override;
  void SleepMs(int64_t ms) override;
  OsRelease ReadOsRelease() override;
  std::string Arch() override;
  std::string BootId() override;
  void PowerOff() override;

 private:
  Status Mount(const std::string& src, const std::string& dst, const char* type,
               unsigned long flags, const std::string& options);

  std::vector<std::string> app_mounts_;  // mounted by MountApp, in order
};

}  // namespace vdswap::guest
