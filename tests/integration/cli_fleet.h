#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "tests/e2e/cli_harness.h"
#include "tests/integration/journal_rows.h"

namespace vdswap::testing {

// What `hello --check` printed last ("hello 2 starts=5"), read from `vm inspect`: the
// running version and how many times the app has started on this VM's data disk.
struct HelloView {
  std::string version;
  int starts = -1;
};
HelloView ParseHello(const Json& inspected_vm);

// A real-VM fleet driven through the CLI of one vdswapd (libvirt, TCG) on a private state
// dir, with the test OS and the hello apps imported, one host on a pool of its own and a
// template "hello" on testos:1. Shared by the real-VM suites; one per process.
class CliFleet {
 public:
  // Starts the daemon with `daemon_flags` (after --accel tcg) and names the pool after
  // `prefix`, importing nothing. Returns false (with a test failure recorded) when the
  // daemon does not start.
  bool Start(const std::string& prefix, const std::vector<std::string>& daemon_flags = {});
  // Start(), then imports everything and creates template hello with `template_flags`.
  // Returns false (with a test failure recorded) when that fails.
  bool SetUp(const std::string& prefix, const std::vector<std::string>& daemon_flags = {},
             const std::vector<std::string>& template_flags = {"--memory", "128M"});
  // Removes `vms`, the host and its pool, and stops the daemon.
  void TearDown(const std::vector<std::string>& vms);

  DaemonProcess& daemon() { return daemon_; }
  const std::string& pool() const { return pool_; }
  // The pool's directory on this host.
  std::string pool_dir() const { return "/var/lib/libvirt/images/" + pool_; }

  // `vdswap -o json ARGS`; *rc gets the exit code.
  Json Cli(std::vector<std::string> args, int* rc = nullptr);
  // The same, expecting exit 0 (a test failure naming the command otherwise).
  Json Ok(const std::vector<std::string>& args);
  Json Inspect(const std::string& vm) { return Ok({"vm", "inspect", vm}); }
  // A new version of template hello with this OS and app; returns its ref ("hello:7").
  std::string NewVersion(const std::string& os, const std::string& app);
  // Starts a rollout of `vms` to `to` with the policy flags `flags`; returns its JSON.
  Json StartRollout(const std::string& to, const std::vector<std::string>& vms,
                    const std::vector<std::string>& flags = {});
  // `rollout status ID --watch --vms`: returns the rollout once it no longer runs.
  Json Watch(int64_t id);
  Json Status(int64_t id) { return Ok({"rollout", "status", std::to_string(id), "--vms"}); }
  // Puts `vms` on a new template version with `os` and `app`, running and healthy (a VM
  // that is not is created anew, the others are rolled out with `rollout_flags`); returns
  // the version's ref.
  std::string UseVersion(const std::vector<std::string>& vms, const std::string& os,
                         const std::string& app,
                         const std::vector<std::string>& rollout_flags = {"--batch", "3"});
  // The swap journal's step names ("started/intent") of `vm` written for `rollout_id`.
  std::vector<std::string> JournalSteps(const std::string& vm, int64_t rollout_id);
  // The last journal row's name of `vm` ("" when none).
  std::string LastStep(const std::string& vm);
  // The last journal row of `vm` (an empty row when none), expecting a readable journal.
  JournalRow LastJournalRow(const std::string& vm);
  // Polls the journal until the last row of one of `vms` is `want`; returns that VM, or
  // "" at the deadline.
  std::string AwaitJournal(const std::vector<std::string>& vms, const std::string& want,
                           std::chrono::seconds timeout);
  // Restarts the daemon when it does not answer (a test that failed mid-way).
  void EnsureDaemon();

 private:
  DaemonProcess daemon_;
  std::string pool_;
};

// The pid of the QEMU process running `vm` (libvirt's pid file), or -1.
int QemuPid(const std::string& vm);
// `virsh -c qemu:///system ARGS`: its exit code, stdout in *out when given.
int Virsh(const std::vector<std::string>& args, std::string* out = nullptr);

}  // namespace vdswap::testing
