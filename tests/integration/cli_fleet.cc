#include "tests/integration/cli_fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "core/command_runner.h"
#include "core/files.h"
#include "tests/integration/journal_rows.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {

HelloView ParseHello(const Json& inspected_vm) {
  HelloView v;
  std::string out = inspected_vm["app"].value("health_output", "");
  char version[64] = {};
  if (std::sscanf(out.c_str(), "hello %63s starts=%d", version, &v.starts) == 2) {
    v.version = version;
  }
  return v;
}

bool CliFleet::Start(const std::string& prefix, const std::vector<std::string>& daemon_flags) {
  std::vector<std::string> flags = {"--accel", "tcg"};
  flags.insert(flags.end(), daemon_flags.begin(), daemon_flags.end());
  if (!daemon_.Start(flags)) {
    ADD_FAILURE() << "vdswapd did not start";
    return false;
  }
  pool_ = "vdswap-" + prefix + "-" + std::to_string(getpid());
  return true;
}

bool CliFleet::SetUp(const std::string& prefix, const std::vector<std::string>& daemon_flags,
                     const std::vector<std::string>& template_flags) {
  if (!Start(prefix, daemon_flags)) return false;
  const Assets& a = BuildAssets();
  for (const auto& [dir, version] : {std::pair{a.os_dir, "1"}, std::pair{a.os2_dir, "2"}}) {
    Json os = Ok({"image", "import-os", dir + "/os.img", "--kernel", dir + "/vmlinuz", "--initrd",
                  dir + "/initrd.img", "--cmdline", a.cmdline, "--name", "testos"});
    EXPECT_EQ(os["version"], version);
  }
  for (const char* v : {"1", "2", "broken", "slow"}) {
    Json img = Ok({"image", "build", a.hello_dir + "/hello-" + v});
    EXPECT_EQ(img["name"], "hello");
  }
  Ok({"host", "add", "local", "--uri", "qemu:///system", "--pool", pool_});
  // By default the test OS gets little memory: small VMs, so that several fit on a CI machine.
  std::vector<std::string> create = {"template", "create", "hello",  "--os",
                                     "testos:1", "--app",  "hello:1"};
  create.insert(create.end(), template_flags.begin(), template_flags.end());
  Ok(create);
  return !::testing::Test::HasFailure();
}

void CliFleet::TearDown(const std::vector<std::string>& vms) {
  EnsureDaemon();
  for (const auto& vm : vms) {
    Cli({"vm", "rm", "--delete-data", vm});
  }
  Cli({"host", "rm", "local"});
  RemovePool({"local", "qemu:///system", pool_});
  daemon_.Stop();
}

Json CliFleet::Cli(std::vector<std::string> args, int* rc) {
  return RunJson(daemon_, std::move(args), rc);
}

Json CliFleet::Ok(const std::vector<std::string>& args) {
  int rc = -1;
  Json j = Cli(args, &rc);
  std::string cmd;
  for (const auto& a : args) {
    cmd += a + " ";
  }
  EXPECT_EQ(rc, 0) << cmd << ": " << j.dump();
  return j;
}

std::string CliFleet::NewVersion(const std::string& os, const std::string& app) {
  return Ok({"template", "update", "hello", "--os", os, "--app", app}).value("ref", "");
}

Json CliFleet::StartRollout(const std::string& to, const std::vector<std::string>& vms,
                            const std::vector<std::string>& flags) {
  std::string list;
  for (const auto& v : vms) {
    list += (list.empty() ? "" : ",") + v;
  }
  std::vector<std::string> args = {"rollout", "start", "--to", to, "--vms", list};
  args.insert(args.end(), flags.begin(), flags.end());
  return Ok(args);
}

Json CliFleet::Watch(int64_t id) {
  return Cli({"rollout", "status", std::to_string(id), "--watch", "--vms"});
}

std::string CliFleet::UseVersion(const std::vector<std::string>& vms, const std::string& os,
                                 const std::string& app,
                                 const std::vector<std::string>& rollout_flags) {
  std::string ref = NewVersion(os, app);
  std::vector<std::string> healthy;
  for (const auto& vm : vms) {
    Json j = Cli({"vm", "inspect", vm});
    if (j.value("state", "") == "running" && j["app"].value("healthy", false)) {
      healthy.push_back(vm);
      continue;
    }
    Cli({"vm", "rm", "--delete-data", vm});
    Ok({"vm", "create", vm, "--template", ref});
  }
  if (!healthy.empty()) {
    Json r = Watch(StartRollout(ref, healthy, rollout_flags).value("id", 0));
    EXPECT_EQ(r["state"], "succeeded") << "setting up " << ref << ": " << r.dump();
  }
  for (const auto& vm : vms) {
    Json j = Inspect(vm);
    EXPECT_EQ(j["template"], ref) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  }
  return ref;
}

std::vector<std::string> CliFleet::JournalSteps(const std::string& vm, int64_t rollout_id) {
  std::vector<std::string> steps;
  auto rows = ReadSwapJournal(daemon_.state_dir(), vm);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  for (const auto& r : rows.ok() ? *rows : std::vector<JournalRow>{}) {
    if (r.rollout_id == rollout_id) steps.push_back(r.Name());
  }
  return steps;
}

std::string CliFleet::LastStep(const std::string& vm) {
  auto rows = ReadSwapJournal(daemon_.state_dir(), vm);
  return rows.ok() && !rows->empty() ? rows->back().Name() : "";
}

JournalRow CliFleet::LastJournalRow(const std::string& vm) {
  auto rows = ReadSwapJournal(daemon_.state_dir(), vm);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() && !rows->empty() ? rows->back() : JournalRow{};
}

std::string CliFleet::AwaitJournal(const std::vector<std::string>& vms, const std::string& want,
                                   std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& vm : vms) {
      if (LastStep(vm) == want) return vm;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

void CliFleet::EnsureDaemon() {
  int rc = -1;
  Cli({"status"}, &rc);
  if (rc != 0) {
    EXPECT_TRUE(daemon_.Restart());
  }
}

int QemuPid(const std::string& vm) {
  auto pid = ReadFile("/run/libvirt/qemu/" + vm + ".pid");
  return pid.ok() ? std::atoi(pid->c_str()) : -1;
}

int Virsh(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv = {"virsh", "-c", "qemu:///system"};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessRunner runner;
  auto r = runner.Run(argv, RunOptions{});
  if (!r.ok()) return -1;
  if (out != nullptr) *out = r->out;
  return r->exit_code;
}

}  // namespace vdswap::testing
