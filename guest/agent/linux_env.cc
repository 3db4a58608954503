#include "guest/agent/linux_env.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/unique_fd.h"
#include "guest/agent/probe.h"
#include "guest/agent/socket_activation.h"
#include "protocol/agent_protocol.h"

extern char** environ;

namespace vdswap::guest {

namespace {

constexpr char kDataDir[] = "/var/lib/vdswap/data";
constexpr char kAppBase[] = "/run/vdswap/app";     // slot kAppSerial
constexpr char kAppBaseB[] = "/run/vdswap/app-b";  // slot kAppSerialB

std::string AppBase(const std::string& serial) {
  return serial == kAppSerialB ? kAppBaseB : kAppBase;
}
constexpr size_t kMaxHealthOutput = 4096;

std::string ReadSmallRaw(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Note(const std::string& what) { LogLine(LogLevel::kInfo, what); }

// True when stderr is the journal stream systemd gave us (JOURNAL_STREAM is "DEV:INODE"
// of that stream; a child of ours that inherited the variable but not the fd is not).
bool StderrIsJournal() {
  const char* js = getenv("JOURNAL_STREAM");
  if (js == nullptr || *js == '\0') return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

// Decodes mountinfo's octal escapes (" " is "\040").
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsMountPoint(const std::string& path) {
  std::istringstream in(ReadSmallRaw("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, devno, root, point;
    if ((f >> id >> parent >> devno >> root >> point) && Unescape(point) == path) return true;
  }
  return false;
}

// Runs argv (an absolute path first) with stdout on /dev/null and stderr inherited (the
// journal or the console); returns its exit status, or -1.
int RunTool(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string ReadSmall(const std::string& path) {
  std::string s = ReadSmallRaw(path);
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
  std::vector<char> buf(size_t{128} << 10);
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
[[noreturn]] void ExecInRoot(const std::string& serial, const AppManifest& m,
                             const std::vector<std::string>& argv,
                             const std::vector<std::string>& extra_env = {}) {
  std::string root = AppBase(serial) + "/root";
  // A private mount namespace: what the app mounts stays its own, and nothing mounted
  // or unmounted outside later reaches into it (systemd makes every mount shared, and
  // unshare copies propagation along).
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    _exit(126);
  }
  if (chroot(root.c_str()) != 0 || chdir(m.workdir.c_str()) != 0) {
    if (chdir("/") != 0) _exit(126);
  }
  std::vector<std::string> env = EnvFor(m);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
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

void LogLine(LogLevel level, const std::string& what) {
  static const bool journal = StderrIsJournal();
  std::string line;
  if (journal) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">" + what + "\n";
  } else {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    char stamp[32];
    snprintf(stamp, sizeof stamp, "[%5ld.%03ld] ", static_cast<long>(ts.tv_sec),
             ts.tv_nsec / 1000000);
    line = stamp + std::string("vdswap-guest: ") + what + "\n";
  }
  // One write(2) per line, so lines of the agent and the app never interleave.
  if (write(2, line.data(), line.size()) < 0) return;
}

void NotifyReady() {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof addr.sun_path) return;
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
  vdswap::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return;
  static const char kReady[] = "READY=1";
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (sendto(fd.get(), kReady, sizeof kReady - 1, MSG_NOSIGNAL,
             reinterpret_cast<const sockaddr*>(&addr), addr_len) < 0) {
    LogLine(LogLevel::kWarning, std::string("sd_notify READY=1: ") + strerror(errno));
  }
}

std::string FindTool(const std::string& name) {
  const char* env_path = getenv("PATH");
  std::string dirs = env_path != nullptr ? env_path : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty() || dir[0] != '/') continue;  // a relative PATH entry is never trusted
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

std::vector<std::string> MountsUnder(const std::string& mountinfo, const std::string& dir) {
  std::string prefix = dir;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  prefix += "/";
  std::vector<std::string> points;
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...": the fifth field.
    std::istringstream f(line);
    std::string id, parent, devno, root, point;
    if (!(f >> id >> parent >> devno >> root >> point)) continue;
    point = Unescape(point);
    if (point.size() > prefix.size() && point.rfind(prefix, 0) == 0) points.push_back(point);
  }
  std::reverse(points.begin(), points.end());
  return points;
}

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
  if ((flags & MS_BIND) != 0 &&
      mount(nullptr, dst.c_str(), nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Internal("make " + dst + " private: " + strerror(errno));
  }
  return Status::Ok();
}

Status LinuxEnv::MakeAppBasePrivate(const std::string& base) {
  MkdirP(base);
  if (!IsMountPoint(base) && mount(base.c_str(), base.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Internal("bind " + base + ": " + strerror(errno));
  }
  if (mount(nullptr, base.c_str(), nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Internal("make " + base + " private: " + strerror(errno));
  }
  return Status::Ok();
}

Status LinuxEnv::MountData(const std::string& device) {
  ASSIGN_OR_RETURN(bool blank, IsBlank(device));
  if (blank) {
    // e2fsprogs' mkfs.ext4 (a journal) where the OS has it, else mke2fs (busybox: ext2).
    std::vector<std::string> argv;
    if (std::string mkfs = FindTool("mkfs.ext4"); !mkfs.empty()) {
      argv = {mkfs, "-q", "-F", "-L", "vdswap-data", device};
    } else if (std::string mke2fs = FindTool("mke2fs"); !mke2fs.empty()) {
      argv = {mke2fs, "-q", "-L", "vdswap-data", device};
    } else {
      return FailedPrecondition("cannot format " + device +
                                ": neither mkfs.ext4 nor mke2fs is on PATH, /usr/sbin or /sbin");
    }
    int rc = RunTool(argv);
    if (rc != 0) {
      return Internal(argv[0] + " " + device + " failed (exit status " + std::to_string(rc) + ")");
    }
  }
  Status s = Mount(device, kDataDir, "ext4", MS_NOATIME, "");
  if (!s.ok()) return s.WithContext("data disk (not formatted: it is not blank)");
  MkdirP(std::string(kDataDir) + "/app");
  Note(std::string("data disk mounted") + (blank ? " (formatted: it was blank)" : ""));
  return Status::Ok();
}

Result<AppManifest> LinuxEnv::MountApp(const std::string& serial, const std::string& device) {
  std::string base = AppBase(serial);
  RETURN_IF_ERROR(UnmountApp(serial));
  RETURN_IF_ERROR(MakeAppBasePrivate(base));
  RETURN_IF_ERROR(Mount(device, base + "/lower", "erofs", MS_RDONLY, ""));
  std::string text = ReadSmall(base + "/lower/vdswap.json");
  auto manifest = ParseManifest(text);
  if (!manifest.ok()) {
    UnmountApp(serial).IgnoreError();
    return manifest.status();
  }
  Status s = Mount("tmpfs", base + "/scratch", "tmpfs", 0, "size=64m,mode=0755");
  MkdirP(base + "/scratch/upper");
  MkdirP(base + "/scratch/work");
  std::string root = base + "/root";
  if (s.ok()) {
    s = Mount("overlay", root, "overlay", 0,
              "lowerdir=" + base + "/lower,upperdir=" + base + "/scratch/upper,workdir=" + base +
                  "/scratch/work");
  }
  if (s.ok()) s = Mount("proc", root + "/proc", "proc", 0, "");
  if (s.ok()) s = Mount("sysfs", root + "/sys", "sysfs", 0, "");
  // /dev with its submounts (/dev/pts, /dev/shm, ... on systemd); UnmountApp takes them all.
  if (s.ok()) s = Mount("/dev", root + "/dev", nullptr, MS_BIND | MS_REC, "");
  if (s.ok()) s = Mount("tmpfs", root + "/tmp", "tmpfs", 0, "mode=1777");
  if (s.ok()) s = Mount(std::string(kDataDir) + "/app", root + "/data", nullptr, MS_BIND, "");
  for (const char* f : {"/etc/resolv.conf", "/etc/hosts"}) {
    if (!s.ok() || access(f, F_OK) != 0) continue;
    MkdirP(root + "/etc");
    close(open((root + f).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    s = Mount(f, root + f, nullptr, MS_BIND, "");
  }
  if (!s.ok()) {
    UnmountApp(serial).IgnoreError();
    return s;
  }
  Note("app " + manifest->name + " " + manifest->version + " mounted in slot " + serial);
  return manifest;
}

Status LinuxEnv::UnmountApp(const std::string& serial) {
  // Whatever is mounted under the app's base, not just what MountApp mounted: the /dev
  // bind brings submounts along, and the app may have left mounts behind.
  Status result;
  for (const std::string& m : MountsUnder(ReadSmallRaw("/proc/self/mountinfo"), AppBase(serial))) {
    bool ok = umount2(m.c_str(), 0) == 0;
    // Retry briefly: a process that just died may still hold a reference.
    for (int i = 0; !ok && errno == EBUSY && i < 50; ++i) {
      SleepMs(20);
      ok = umount2(m.c_str(), 0) == 0;
    }
    if (!ok && errno != EINVAL && errno != ENOENT) {
      int err = errno;
      // Detach lazily so the next mount can proceed; report it, since the disk may still
      // be held.
      umount2(m.c_str(), MNT_DETACH);
      if (result.ok()) result = Internal("unmount " + m + ": " + strerror(err));
    }
  }
  return result;
}

Status LinuxEnv::UnmountData() {
  sync();
  if (umount2(kDataDir, 0) != 0 && errno != EINVAL && errno != ENOENT) {
    return Internal(std::string("unmount ") + kDataDir + ": " + strerror(errno));
  }
  return Status::Ok();
}

Result<int> LinuxEnv::Listen(const SocketAddress& address) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (address.family == SocketAddress::Family::kUnix) {
    auto* a = reinterpret_cast<sockaddr_un*>(&ss);
    if (address.path.size() >= sizeof a->sun_path) {
      return InvalidArgument("unix socket path too long: " + address.path);
    }
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, address.path.c_str(), address.path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.path.size() + 1);
    family = AF_UNIX;
    // A socket file left by an earlier agent (a crash, a reboot on a persistent /run):
    // bind would fail on it. Anything that is not a socket is left alone.
    struct stat st {};
    if (lstat(address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(address.path.c_str());
    }
    MkdirP(address.path.substr(0, address.path.rfind('/')));
  } else if (address.family == SocketAddress::Family::kInet6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(address.port));
    if (inet_pton(AF_INET6, address.host.c_str(), &a->sin6_addr) != 1) {
      return InvalidArgument("not a numeric IPv6 address: " + address.host);
    }
    len = sizeof *a;
    family = AF_INET6;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(address.port));
    if (inet_pton(AF_INET, address.host.c_str(), &a->sin_addr) != 1) {
      return InvalidArgument("not a numeric IPv4 address: " + address.host);
    }
    len = sizeof *a;
  }
  // CLOEXEC: only the app gets these (Spawn dups them to 3..), not health checks or tools.
  vdswap::UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Internal(std::string("socket: ") + strerror(errno));
  if (family != AF_UNIX) {
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    return Unavailable("bind " + address.ToString() + ": " + strerror(errno));
  }
  if (listen(fd.get(), SOMAXCONN) != 0) {
    return Unavailable("listen " + address.ToString() + ": " + strerror(errno));
  }
  Note("holding socket " + address.ToString() + " (fd " + std::to_string(fd.get()) + ")");
  return fd.release();
}

void LinuxEnv::CloseListener(int fd) { close(fd); }

std::string LinuxEnv::NotifySocket() {
  if (notify_.valid()) return notify_name_;
  std::string name = "vdswap-guest-notify-" + std::to_string(getpid());
  vdswap::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int one = 1;
  if (!fd.valid() || bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
    LogLine(LogLevel::kWarning, std::string("no NOTIFY_SOCKET for apps: ") + strerror(errno));
    return "";
  }
  notify_ = std::move(fd);
  notify_name_ = "@" + name;
  return notify_name_;
}

bool LinuxEnv::NotifiedReady(pid_t pid) {
  if (!notify_.valid()) return false;
  // Drain what arrived; the sender is known by its credentials (SO_PASSCRED), as systemd
  // does, and only READY=1 of the app's main process counts.
  while (true) {
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(notify_.get(), &msg, MSG_DONTWAIT);
    if (n < 0) break;
    buf[n] = '\0';
    pid_t sender = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        sender = cred.pid;
      }
    }
    std::string text = "\n" + std::string(buf, static_cast<size_t>(n)) + "\n";
    if (sender > 0 && text.find("\nREADY=1\n") != std::string::npos) ready_.insert(sender);
  }
  return ready_.count(pid) > 0;
}

Result<pid_t> LinuxEnv::Spawn(const std::string& serial, const AppManifest& m,
                              const std::vector<int>& listen_fds) {
  std::string notify = NotifySocket();
  pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setsid();
    // stdout and stderr stay the agent's: the console under busybox init, the journal
    // under systemd.
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    // The held sockets to 3, 4, ...: first out of that range (a source fd may sit where
    // another one goes), then into place; dup2 leaves them without CLOEXEC.
    int n = static_cast<int>(listen_fds.size());
    std::vector<int> moved;
    for (int fd : listen_fds) moved.push_back(fcntl(fd, F_DUPFD_CLOEXEC, kListenFdsStart + n));
    for (int i = 0; i < n; ++i) {
      if (moved[static_cast<size_t>(i)] < 0 ||
          dup2(moved[static_cast<size_t>(i)], kListenFdsStart + i) < 0) {
        _exit(126);
      }
    }
    std::vector<std::string> env =
        listen_fds.empty() ? std::vector<std::string>{} : ListenEnv(m, getpid());
    if (!notify.empty()) env.push_back("NOTIFY_SOCKET=" + notify);
    ExecInRoot(serial, m, m.start, env);
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

GuestEnv::HealthResult LinuxEnv::CheckHealth(const std::string& serial, const AppManifest& m,
                                             std::chrono::milliseconds timeout) {
  // The agent's own probes: the app shares the guest's network namespace, so its
  // 127.0.0.1 is ours.
  if (m.health.http) {
    ProbeResult p = ProbeHttp(*m.health.http, timeout);
    return {p.healthy, p.output};
  }
  if (m.health.tcp) {
    ProbeResult p = ProbeTcp(*m.health.tcp, timeout);
    return {p.healthy, p.output};
  }
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
    ExecInRoot(serial, m, m.health.exec);
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
  Status s = UnmountData();
  if (!s.ok()) LogLine(LogLevel::kWarning, s.message());
  sync();
  // systemd powers off on SIGRTMIN+4 (an orderly shutdown: it stops this service, whose
  // SIGTERM path exits); busybox init on SIGUSR2.
  bool systemd = access("/run/systemd/system", F_OK) == 0;
  kill(1, systemd ? SIGRTMIN + 4 : SIGUSR2);
}

}  // namespace vdswap::guest
