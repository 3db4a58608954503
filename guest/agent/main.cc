// vdswap-guest: the agent inside every vdswap VM. Started by the guest's init (busybox
// inittab, or systemd through the vdswap-guest package's udev rule and unit); mounts the
// data and app disks, supervises the app and serves the host on the virtio-serial port
// org.vdswap.agent.0 (see agent.h for the protocol). The ACPI power button stops the app
// and powers off, so the host's graceful shutdown is graceful for the app too. SIGTERM
// (systemd stopping the service, or init shutting down) stops the app, unmounts the app
// and the data disk, and exits.
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "core/unique_fd.h"
#include "guest/agent/agent.h"
#include "guest/agent/linux_env.h"

namespace vdswap::guest {
namespace {

volatile sig_atomic_t g_terminate = 0;

void OnTerminate(int) { g_terminate = 1; }

// The SIGTERM path: the app stops before the data disk it writes to is unmounted.
int StopAndExit(Agent& agent, LinuxEnv& env) {
  LogLine(LogLevel::kNotice, "terminating: stopping the app and unmounting its disks");
  agent.Shutdown();
  Status s = env.UnmountData();
  if (!s.ok()) LogLine(LogLevel::kWarning, s.message());
  return 0;
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// The /dev node of the virtio-serial port named kAgentChannel ("/dev/vport1p1"), or "".
std::string FindPort() {
  std::string found;
  if (DIR* d = opendir("/sys/class/virtio-ports")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (FirstLine(std::string("/sys/class/virtio-ports/") + e->d_name + "/name") ==
          kAgentChannel) {
        found = std::string("/dev/") + e->d_name;
      }
    }
    closedir(d);
  }
  return found;
}

// The evdev node of the ACPI power button, or -1 (no button: no graceful power-off).
int OpenPowerButton() {
  for (int i = 0; i < 16; ++i) {
    std::string name = FirstLine("/sys/class/input/event" + std::to_string(i) + "/device/name");
    if (name == "Power Button") {
      return open(("/dev/input/event" + std::to_string(i)).c_str(), O_RDONLY | O_CLOEXEC);
    }
  }
  return -1;
}

bool WriteAll(int fd, const std::string& data, LinuxEnv& env) {
  size_t off = 0;
  int64_t deadline = env.NowMs() + 5000;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    if (env.NowMs() >= deadline) return false;  // the host went away: drop the reply
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 100);
  }
  return true;
}

int Main() {
  signal(SIGPIPE, SIG_IGN);
  struct sigaction term {};
  term.sa_handler = OnTerminate;  // no SA_RESTART: poll and sleeps return early
  sigaction(SIGTERM, &term, nullptr);
  sigaction(SIGINT, &term, nullptr);
  LinuxEnv env;
  std::string port;
  for (int i = 0; port.empty(); ++i) {
    if (g_terminate) return 0;
    port = FindPort();
    if (port.empty()) {
      if (i % 50 == 0) LogLine(LogLevel::kNotice, std::string("waiting for port ") + kAgentChannel);
      env.SleepMs(100);
    }
  }
  UniqueFd fd(open(port.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    LogLine(LogLevel::kErr, "cannot open " + port + ": " + strerror(errno));
    return 1;
  }
  UniqueFd power(OpenPowerButton());
  Agent agent(env);
  agent.Boot();
  LogLine(LogLevel::kInfo, "serving on " + port);
  NotifyReady();

  std::string buf;
  int64_t next_button_look_ms = env.NowMs() + 1000;
  while (!agent.shutting_down()) {
    if (g_terminate) return StopAndExit(agent, env);
    // Under systemd the agent can start before udev has loaded the button and evdev
    // drivers: keep looking, or the host's ACPI shutdown would go unanswered.
    if (!power.valid() && env.NowMs() >= next_button_look_ms) {
      power.reset(OpenPowerButton());
      if (power.valid()) LogLine(LogLevel::kInfo, "listening to the power button");
      next_button_look_ms = env.NowMs() + 1000;
    }
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {power.get(), POLLIN, 0}};
    int n = poll(fds, power.valid() ? 2 : 1, 200);
    if (n > 0 && (fds[0].revents & POLLIN)) {
      char chunk[4096];
      ssize_t r = read(fd.get(), chunk, sizeof chunk);
      if (r > 0) {
        buf.append(chunk, static_cast<size_t>(r));
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
          std::string line = buf.substr(0, nl);
          buf.erase(0, nl + 1);
          if (line.empty()) continue;
          WriteAll(fd.get(), agent.HandleLine(line) + "\n", env);
          if (agent.shutting_down()) break;
        }
        if (buf.size() > 1 << 20) buf.clear();  // no newline in 1 MiB: junk
      }
    } else if (n > 0 && (fds[0].revents & POLLHUP)) {
      buf.clear();  // the host hung up: a partial request will never complete
      env.SleepMs(100);
    }
    if (n > 0 && power.valid() && (fds[1].revents & POLLIN)) {
      input_event ev{};
      if (read(power.get(), &ev, sizeof ev) == sizeof ev && ev.type == EV_KEY &&
          ev.code == KEY_POWER && ev.value == 1) {
        LogLine(LogLevel::kNotice, "power button: stopping the app and powering off");
        agent.Shutdown();
      }
    }
    agent.Tick();
  }
  env.PowerOff();
  // Stay alive while init powers off, so it is not respawned meanwhile; systemd stops
  // the service on its way down (SIGTERM).
  while (!g_terminate) pause();
  return 0;
}

}  // namespace
}  // namespace vdswap::guest

int main() { return vdswap::guest::Main(); }
