#include "guest/agent/linux_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "core/unique_fd.h"

extern char** environ;

namespace vdswap::guest {

namespace {

constexpr char kDataDir[] = "/var/lib/vdswap/data";
constexpr char kAppBase[] = "/run/vdswap/app";
constexpr size_t kMaxHealthOutput = 4096;

// One line on the console (the VM's serial log), stamped with the guest's uptime.
void Note(const std::string& what) {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  char stamp[32];
  snprintf(stamp, sizeof stamp, "[%5ld.%03ld] ", static_cast<long>(ts.tv_sec),
           ts.tv_nsec / 1000000);
  std::cerr << stamp << "vdswap-guest: " << what << std::endl;
}

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void MkdirP(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
}

// True when the first 128 KiB are zeros: no filesystem has ever been made on the disk.
// Anything else (a filesystem, or garbage) is never formatted.
Result<bool> IsBlank(const std::string& device) {
  vdswap::UniqueFd fd(open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Internal("cannot open " + device + ": " + strerror(errno));
  std::vector<char> buf(128 * 1024);
  ssize_t n = pread(fd.get(), buf.data(), buf.size(), 0);
  if (n < 0) return Internal("cannot read " + device + ": " + strerror(errno));
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[static_cast<size_t>(i)] != 0) return false;
  }
  return true;
}

std::vector<std::string> EnvFor(const AppManifest& m) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/data",
      "VDSWAP_DATA=/data", "VDSWAP_APP_VERSION=" + m.version};
  for (const auto& [k, v] : m.env) {
    std::string prefix = k + "=";
    auto it = std::find_if(env.begin(), env.end(),
                           [&prefix](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    if (it != env.end()) {
      *it = prefix + v;
    } else {
      env.push_back(prefix + v);
    }
  }
  return env;
}

// In a forked child: enter the app's root and exec argv. Never returns.
[[noreturn]] void ExecInRoot(const AppManifest& m, const std::vector<std::string>& argv) {
  std::string root = std::string(kAppBase) + "/root";
  // A private mount namespace: what the app mounts stays its own.
  if (unshare(CLONE_NEWNS) == 0) mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  if (chroot(root.c_str()) != 0 || chdir(m.workdir.c_str()) != 0) {
    if (chdir("/") != 0) _exit(126);
  }
  std::vector<std::string> env = EnvFor(m);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(args[0], args.data(), envp.data());
  _exit(127);
}

}  // namespace

Result<std::string> LinuxEnv::FindDisk(const std::string& serial, std::chrono::milliseconds wait) {
  int64_t deadline = NowMs() + wait.count();
  while (true) {
    if (DIR* d = opendir("/sys/block")) {
      std::string found;
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.rfind("vd", 0) != 0) continue;
        if (ReadSmall("/sys/block/" + name + "/serial") == serial) found = "/dev/" + name;
      }
      closedir(d);
      if (!found.empty() && access(found.c_str(), F_OK) == 0) {
        Note("disk " + serial + " is " + found);
        return found;
      }
    }
    if (NowMs() >= deadline) return NotFound("no disk with serial '" + serial + "'");
    SleepMs(100);
  }
}

Status LinuxEnv::Mount(const std::string& src, const std::string& dst, const char* type,
                       unsigned long flags, const std::string& options) {
  MkdirP(dst);
  if (mount(src.c_str(), dst.c_str(), type, flags, options.empty() ? nullptr : options.c_str()) !=
      0) {
    return Internal("mount " + src + " on " + dst + ": " + strerror(errno));
  }
  return Status::Ok();
}

Status LinuxEnv::MountData(const std::string& device) {
  ASSIGN_OR_RETURN(bool blank, IsBlank(device));
  if (blank) {
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execl("/bin/mke2fs", "mke2fs", "-q", "-L", "vdswap-data", device.c_str(), nullptr);
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return Internal("mke2fs " + device + " failed");
  }
  Status s = Mount(device, kDataDir, "ext4", MS_NOATIME, "");
  if (!s.ok()) return s.WithContext("data disk (not formatted: it is not blank)");
  MkdirP(std::string(kDataDir) + "/app");
  Note(std::string("data disk mounted") + (blank ? " (formatted: it was blank)" : ""));
  return Status::Ok();
}

Result<AppManifest> LinuxEnv::MountApp(const std::string& device) {
  std::string base = kAppBase;
  RETURN_IF_ERROR(UnmountApp());
  RETURN_IF_ERROR(Mount(device, base + "/lower", "erofs", MS_RDONLY, ""));
  app_mounts_.push_back(base + "/lower");
  std::string text = ReadSmall(base + "/lower/vdswap.json");
  auto manifest = ParseManifest(text);
  if (!manifest.ok()) {
    UnmountApp().IgnoreError();
    return manifest.status();
  }
  auto step = [this](Status s, const std::string& mounted) {
    if (s.ok()) app_mounts_.push_back(mounted);
    return s;
  };
  Status s =
      step(Mount("tmpfs", base + "/scratch", "tmpfs", 0, "size=64m,mode=0755"), base + "/scratch");
  MkdirP(base + "/scratch/upper");
  MkdirP(base + "/scratch/work");
  std::string root = base + "/root";
  if (s.ok()) {
    s = step(Mount("overlay", root, "overlay", 0,
                   "lowerdir=" + base + "/lower,upperdir=" + base +
                       "/scratch/upper,workdir=" + base + "/scratch/work"),
             root);
  }
  if (s.ok()) s = step(Mount("proc", root + "/proc", "proc", 0, ""), root + "/proc");
  if (s.ok()) s = step(Mount("sysfs", root + "/sys", "sysfs", 0, ""), root + "/sys");
  if (s.ok()) s = step(Mount("/dev", root + "/dev", nullptr, MS_BIND | MS_REC, ""), root + "/dev");
  if (s.ok()) s = step(Mount("tmpfs", root + "/tmp", "tmpfs", 0, "mode=1777"), root + "/tmp");
  if (s.ok()) {
    s = step(Mount(std::string(kDataDir) + "/app", root + "/data", nullptr, MS_BIND, ""),
             root + "/data");
  }
  for (const char* f : {"/etc/resolv.conf", "/etc/hosts"}) {
    if (!s.ok() || access(f, F_OK) != 0) continue;
    MkdirP(root + "/etc");
    close(open((root + f).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    s = step(Mount(f, root + f, nullptr, MS_BIND, ""), root + f);
  }
  if (!s.ok()) {
    UnmountApp().IgnoreError();
    return s;
  }
  Note("app " + manifest->name + " " + manifest->version + " mounted");
  return manifest;
}

Status LinuxEnv::UnmountApp() {
  Status result;
  while (!app_mounts_.empty()) {
    const std::string& m = app_mounts_.back();
    bool ok = umount2(m.c_str(), 0) == 0;
    // Retry briefly: a process that just died may still hold a reference.
    for (int i = 0; !ok && errno == EBUSY && i < 50; ++i) {
      SleepMs(20);
      ok = umount2(m.c_str(), 0) == 0;
    }
    if (!ok && errno != EINVAL && errno != ENOENT) {
      // Detach lazily so the next mount can proceed; report it, since the disk may still
      // be held.
      umount2(m.c_str(), MNT_DETACH);
      result = Internal("unmount " + m + ": " + strerror(errno));
    }
    app_mounts_.pop_back();
  }
  return result;
}

Result<pid_t> LinuxEnv::Spawn(const AppManifest& m) {
  pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setsid();
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    int console = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (console >= 0) {
      dup2(console, 1);
      dup2(console, 2);
    }
    ExecInRoot(m, m.start);
  }
  Note("app started, pid " + std::to_string(pid));
  return pid;
}

void LinuxEnv::Kill(pid_t pid, int signal) {
  if (kill(-pid, signal) != 0) kill(pid, signal);
}

bool LinuxEnv::Reaped(pid_t pid) {
  int st = 0;
  pid_t r = waitpid(pid, &st, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD);
}

GuestEnv::HealthResult LinuxEnv::CheckHealth(const AppManifest& m,
                                             std::chrono::milliseconds timeout) {
  HealthResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return result;
  vdswap::UniqueFd rd(fds[0]), wr(fds[1]);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    dup2(wr.get(), 1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 2);
    ExecInRoot(m, m.health.exec);
  }
  wr.reset();
  int64_t deadline = NowMs() + timeout.count();
  char buf[1024];
  while (true) {
    int64_t left = deadline - NowMs();
    if (left <= 0) break;
    pollfd p{rd.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = read(rd.get(), buf, sizeof buf);
    if (n <= 0) break;
    if (result.output.size() < kMaxHealthOutput) {
      result.output.append(
          buf, std::min(static_cast<size_t>(n), kMaxHealthOutput - result.output.size()));
    }
  }
  int st = 0;
  if (waitpid(pid, &st, WNOHANG) != pid) {
    // Still running past the deadline, or just closing: give it a moment, then kill.
    int64_t grace = NowMs() + 100;
    while (waitpid(pid, &st, WNOHANG) != pid) {
      if (NowMs() >= grace) {
        kill(-pid, SIGKILL);
        waitpid(pid, &st, 0);
        result.output += "(health check timed out)";
        return result;
      }
      SleepMs(5);
    }
  }
  while (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
  result.healthy = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  return result;
}

int64_t LinuxEnv::NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void LinuxEnv::SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

OsRelease LinuxEnv::ReadOsRelease() { return ParseOsRelease(ReadSmall("/etc/os-release")); }

std::string LinuxEnv::Arch() {
  utsname u{};
  uname(&u);
  return u.machine;
}

std::string LinuxEnv::BootId() { return ReadSmall("/proc/sys/kernel/random/boot_id"); }

void LinuxEnv::PowerOff() {
  sync();
  umount2(kDataDir, 0);
  sync();
  kill(1, SIGUSR2);  // busybox init: power off
}

}  // namespace vdswap::guest
