#include "tests/e2e/cli_harness.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "api/api_client.h"
#include "core/unique_fd.h"

namespace vdswap::testing {

bool DaemonProcess::Start(const std::vector<std::string>& extra) {
  Kill();
  auto dir = TempDir::Create("/tmp", "vdswap-e2e");
  if (!dir.ok()) return false;
  dir_ = std::make_unique<TempDir>(std::move(*dir));
  extra_ = extra;
  return Spawn();
}

void DaemonProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool DaemonProcess::Restart() {
  Kill();
  return Spawn();
}

bool DaemonProcess::KillAndRestart() { return Restart(); }

int DaemonProcess::WaitForExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_status_;
}

bool DaemonProcess::Spawn() {
  std::vector<std::string> argv = {VDSWAPD_BIN, "--state-dir", dir_->path(), "--log-level",
                                   "warning"};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  exit_status_ = -1;
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    ApiClient client({.socket_path = socket()});
    if (client.Call(Method::kGet, "/v1/status").ok()) return true;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int DaemonProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

DaemonProcess::~DaemonProcess() { Kill(); }

int FreeTcpPort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return -1;
  }
  return ntohs(addr.sin_port);
}

UniqueFd ConnectUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd.valid() || path.size() >= sizeof addr.sun_path) return UniqueFd();
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  return fd;
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      int64_t kib = -1;
      status >> kib;
      return kib;
    }
  }
  return -1;
}

CommandOutput RunCli(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {VDSWAP_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessRunner runner;
  RunOptions opts;
  opts.timeout = timeout;
  auto out = runner.Run(argv, opts);
  if (!out.ok()) return CommandOutput{-1, "", out.status().ToString()};
  return *out;
}

Json RunJson(const DaemonProcess& daemon, std::vector<std::string> args, int* exit_code) {
  args.insert(args.begin(), {"--socket", daemon.socket(), "-o", "json"});
  CommandOutput out = RunCli(args);
  if (exit_code) *exit_code = out.exit_code;
  auto j = ParseJson(out.out, "cli output");
  return j.ok() ? *j : Json();
}

}  // namespace vdswap::testing
