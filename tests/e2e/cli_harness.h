#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/command_runner.h"
#include "core/files.h"
#include "core/json.h"
#include "core/unique_fd.h"

namespace vdswap::testing {

// A vdswapd child process on a private state dir, for end-to-end tests of the CLI.
class DaemonProcess {
 public:
  // Starts VDSWAPD_BIN on a fresh state dir with `extra` flags; waits (deadline 10 s) until
  // its socket answers. A daemon started earlier by this object is killed first, so a
  // failed start can be retried (e.g. with another port).
  bool Start(const std::vector<std::string>& extra = {});
  // Sends SIGTERM and waits for exit; returns its exit status (or -1).
  int Stop();
  // SIGKILLs the daemon (a crash) and waits until it is gone; no-op when not running.
  void Kill();
  // Starts the daemon again on the same state dir and flags (killing it first if running).
  bool Restart();
  // Kill() then Restart().
  bool KillAndRestart();
  // Waits up to `timeout` for the daemon to exit on its own (it may already have, during
  // Start or Restart); returns its wait status, or -1 when it still runs.
  int WaitForExit(std::chrono::milliseconds timeout);
  ~DaemonProcess();

  const std::string& state_dir() const { return dir_->path(); }
  pid_t pid() const { return pid_; }
  std::string socket() const { return dir_->path() + "/vdswapd.sock"; }

 private:
  bool Spawn();

  std::unique_ptr<TempDir> dir_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int exit_status_ = -1;  // of a daemon that exited while Spawn waited for it
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
// Another process may take it before the caller binds it: callers retry on failure.
int FreeTcpPort();

// A client connection to the unix socket at `path` (invalid when it cannot connect).
UniqueFd ConnectUnix(const std::string& path);

// The peak resident set size of process `pid` in KiB (VmHWM), or -1.
int64_t PeakRssKib(pid_t pid);

// Runs VDSWAP_BIN with `args` and returns what it printed and its exit code.
CommandOutput RunCli(const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::minutes(10));
// Runs the CLI with `-o json` against `daemon`; parses stdout (null when not JSON).
Json RunJson(const DaemonProcess& daemon, std::vector<std::string> args, int* exit_code);

}  // namespace vdswap::testing
