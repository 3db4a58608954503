// The product end to end on real libvirtd + QEMU (TCG), through the CLI and the daemon:
// app hot swaps, a broken app that rolls back, OS swaps (with their own rollback), and
// vdswapd SIGKILLed in the middle of a swap. The suite boots three VMs once; every test
// first puts the VMs it uses on the versions it starts from (UseVersion), so tests pass in
// any order and alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "tests/integration/cli_fleet.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

class UpgradeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fleet_ = new CliFleet;
    prefix_ = "up" + std::to_string(getpid());
    // The daemon's default memory for template hello.
    ASSERT_TRUE(fleet_->SetUp("e2e", {}, {}));
    Json created =
        fleet_->Ok({"vm", "create", "--count", "3", "--prefix", prefix_, "--template", "hello:1"});
    EXPECT_EQ(created["vms"].size(), 3u) << created.dump();
  }
  static void TearDownTestSuite() {
    fleet_->TearDown({Vm(1), Vm(2), Vm(3)});
    delete fleet_;
  }
  // A test that failed mid-way may have left the daemon dead.
  void SetUp() override {
    fleet_->EnsureDaemon();
    ASSERT_FALSE(HasFailure()) << "vdswapd is down";
  }

  static std::string Vm(int i) { return prefix_ + "-" + std::to_string(i); }
  // A rollout in the daemon's default swap order, watched to its end.
  static Json Rollout(const std::string& to, const std::vector<std::string>& vms) {
    return fleet_->Watch(fleet_->StartRollout(to, vms).value("id", 0));
  }
  // Puts `vms` on a new template version with `os` and `app` by rollouts in the daemon's
  // default batch size (CliFleet::UseVersion).
  static std::string UseVersion(const std::vector<std::string>& vms, const std::string& os,
                                const std::string& app) {
    return fleet_->UseVersion(vms, os, app, {});
  }
  // The OS image ("testos:1" or "testos:2") of the template version `vm` runs, so an OS
  // swap test can swap to the other one without first swapping back.
  static std::string CurrentOs(const std::string& vm) {
    Json t = fleet_->Ok({"template", "inspect", fleet_->Inspect(vm).value("template", "")});
    for (const char* os : {"testos:1", "testos:2"}) {
      if (fleet_->Ok({"image", "inspect", os})["digest"] == t["os"]) {
        return os;
      }
    }
    ADD_FAILURE() << vm << " runs neither testos:1 nor testos:2: " << t.dump();
    return "testos:1";
  }
  static std::string OtherOs(const std::string& os) {
    return os == "testos:1" ? "testos:2" : "testos:1";
  }
  // Waits (up to `timeout`) until the last journal row of `vm` is `step`, SIGKILLs vdswapd
  // there and starts it again; then expects rollout `id`, of `vm` alone, to succeed with
  // `vm` done.
  static void KillDaemonAtThenFinish(int64_t id, const std::string& vm, const std::string& step,
                                     seconds timeout) {
    ASSERT_EQ(fleet_->AwaitJournal({vm}, step, timeout), vm) << "the VM never reached " << step;
    fleet_->daemon().Kill();
    ASSERT_EQ(fleet_->LastJournalRow(vm).Name(), step) << "the kill landed too late";
    ASSERT_TRUE(fleet_->daemon().Restart());
    Json r = fleet_->Watch(id);
    EXPECT_EQ(r["state"], "succeeded") << r.dump();
    ASSERT_EQ(r["vms"].size(), 1u) << r.dump();
    EXPECT_EQ(r["vms"][0]["state"], "done") << r.dump();
  }

  static inline CliFleet* fleet_;
  static inline std::string prefix_;
};

// hello:1 -> hello:2 on two VMs: a new app disk hot-swapped, no reboot, the counter kept.
TEST_F(UpgradeTest, AppHotSwapKeepsDataWithoutReboot) {
  const std::vector<std::string> vms = {Vm(1), Vm(3)};
  UseVersion(vms, "testos:1", "hello:1");
  std::map<std::string, Json> before;
  for (const auto& vm : vms) {
    before[vm] = fleet_->Inspect(vm);
  }

  const std::string to = fleet_->NewVersion("testos:1", "hello:2");
  Json r = Rollout(to, vms);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  for (const auto& v : r["vms"]) {
    EXPECT_TRUE(v["downtime_ms"].is_number()) << r.dump();
  }
  for (const auto& vm : vms) {
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], to);
    EXPECT_EQ(j["app"]["version"], "2");
    EXPECT_EQ(j["app"]["healthy"], true);
    HelloView old_app = ParseHello(before[vm]), app = ParseHello(j);
    EXPECT_EQ(old_app.version, "1") << before[vm].dump();
    EXPECT_EQ(app.version, "2") << j.dump();
    EXPECT_EQ(app.starts, old_app.starts + 1) << "one start, on the same data disk";
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << "an app swap must not reboot";
  }
  std::printf("[measure] app swap downtime p50 %s ms, max %s ms over 2 VMs\n",
              r["downtime_ms"]["p50"].dump().c_str(), r["downtime_ms"]["max"].dump().c_str());
}

// A broken app: the first VM fails its health check and rolls back; the rollout pauses
// (the default --on-failure) with the rest pending.
TEST_F(UpgradeTest, BrokenAppRollsBackAndStopsTheRollout) {
  const std::vector<std::string> vms = {Vm(1), Vm(3)};
  const std::string from = UseVersion(vms, "testos:1", "hello:2");
  std::map<std::string, Json> before;
  for (const auto& vm : vms) {
    before[vm] = fleet_->Inspect(vm);
  }

  Json r = Rollout(fleet_->NewVersion("testos:1", "hello:3-broken"), vms);
  // A paused rollout keeps its VMs (another rollout is refused them): end it here, so the
  // other tests start from VMs no rollout holds.
  fleet_->Ok({"rollout", "abort", std::to_string(r.value("id", 0))});
  EXPECT_EQ(r["state"], "paused") << r.dump();
  ASSERT_EQ(r["vms"].size(), 2u) << r.dump();
  EXPECT_EQ(r["vms"][0]["vm"], Vm(1));
  EXPECT_EQ(r["vms"][0]["state"], "rolled_back");
  EXPECT_NE(r["vms"][0].value("error", "").find("health check"), std::string::npos) << r.dump();
  EXPECT_EQ(r["vms"][1]["state"], "pending");
  for (const auto& vm : vms) {
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], from) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true);
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]);
    HelloView old_app = ParseHello(before[vm]), app = ParseHello(j);
    EXPECT_EQ(app.version, "2") << j.dump();
    // The rolled-back VM started the broken app once and hello 2 again; the other none.
    EXPECT_EQ(app.starts, old_app.starts + (vm == Vm(1) ? 2 : 0)) << j.dump();
  }
  EXPECT_NE(fleet_->Inspect(Vm(1)).value("last_error", "").find("health check"), std::string::npos);
}

// A new OS image with the same app: one reboot, data kept. (It swaps to whichever test OS
// the VM does not run, so that its setup is never an OS swap of its own.)
TEST_F(UpgradeTest, OsSwapRebootsOnceAndKeepsData) {
  const std::string os = CurrentOs(Vm(2));
  UseVersion({Vm(2)}, os, "hello:2");
  Json before = fleet_->Inspect(Vm(2));

  const std::string to = fleet_->NewVersion(OtherOs(os), "hello:2");
  Json r = Rollout(to, {Vm(2)});
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  Json j = fleet_->Inspect(Vm(2));
  EXPECT_EQ(j["template"], to);
  EXPECT_EQ(j["app"]["healthy"], true);
  EXPECT_NE(j["boot_id"], before["boot_id"]) << "an OS swap reboots once";
  EXPECT_EQ(ParseHello(j).starts, ParseHello(before).starts + 1) << j.dump();
  const std::string version = to.substr(to.find(':') + 1);
  EXPECT_NE(j["disks"].value("vdswap-os", "").find("-os-v" + version), std::string::npos)
      << j.dump();
  std::printf("[measure] OS swap downtime %s ms\n", r["vms"][0]["downtime_ms"].dump().c_str());
}

// An OS swap whose app fails after the reboot restores the old OS and app.
TEST_F(UpgradeTest, FailedOsSwapRestoresTheOldOs) {
  const std::string os = CurrentOs(Vm(2));
  const std::string from = UseVersion({Vm(2)}, os, "hello:2");
  Json before = fleet_->Inspect(Vm(2));

  Json r = Rollout(fleet_->NewVersion(OtherOs(os), "hello:3-broken"), {Vm(2)});
  EXPECT_EQ(r["state"], "failed") << r.dump();
  EXPECT_EQ(r["vms"][0]["state"], "rolled_back") << r.dump();
  Json j = fleet_->Inspect(Vm(2));
  EXPECT_EQ(j["template"], from);
  EXPECT_EQ(j["app"]["healthy"], true);
  EXPECT_EQ(ParseHello(j).version, "2") << j.dump();
  EXPECT_EQ(j["disks"]["vdswap-os"], before["disks"]["vdswap-os"]) << j.dump();
}

// vdswapd is SIGKILLed while the first VM's new app disk is attached and its (slow) app is
// starting, in a break-before-make swap (its journal steps are pinned here). The swap must
// resume forward after the restart: no rollback, no second start, no reboot, and the
// rollout continues with the second VM.
TEST_F(UpgradeTest, DaemonKilledAfterAttachResumesForward) {
  const std::vector<std::string> vms = {Vm(1), Vm(3)};
  UseVersion(vms, "testos:1", "hello:1");
  std::map<std::string, Json> before;
  for (const auto& vm : vms) {
    before[vm] = fleet_->Inspect(vm);
  }

  const std::string to = fleet_->NewVersion("testos:1", "hello:slow");
  Json started = fleet_->StartRollout(to, vms, {"--swap-order", "break-before-make"});
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to become healthy: the swap sits in started/intent meanwhile.
  const std::string killed = fleet_->AwaitJournal(vms, "started/intent", seconds(120));
  ASSERT_EQ(killed, Vm(1)) << "the first VM never reached started/intent";
  fleet_->daemon().Kill();
  JournalRow last = fleet_->LastJournalRow(killed);
  ASSERT_EQ(last.Name(), "started/intent") << "the kill landed after the swap finished";
  EXPECT_EQ(last.rollout_id, id);

  ASSERT_TRUE(fleet_->daemon().Restart());
  Json r = fleet_->Watch(id);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  for (const auto& v : r["vms"]) {
    EXPECT_EQ(v["state"], "done") << r.dump();
  }
  for (const auto& vm : vms) {
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], to) << j.dump();
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["app"]["healthy"], true);
    EXPECT_EQ(j["app"]["running_version"], "slow");
    HelloView app = ParseHello(j);
    EXPECT_EQ(app.version, "slow") << j.dump();
    EXPECT_EQ(app.starts, ParseHello(before[vm]).starts + 1) << "exactly one start: " << j.dump();
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << "resuming must not reboot";
    EXPECT_EQ(fleet_->LastJournalRow(vm).Name(), "done/done");
  }
  std::vector<std::string> steps = fleet_->JournalSteps(killed, id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "rolling_back/intent"), 0)
      << "the swap went back instead of forward";
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "attached/intent"), 1) << "attached twice";
}

// vdswapd is SIGKILLed while the old (slow) app is stopping, before the new disk is
// attached, in a break-before-make swap. After the restart the interrupted swap rolls back
// (the new disk was never attached) and, being an interruption rather than a failure of
// the VM, the rollout tries the VM again: it ends on the new version, without a reboot.
TEST_F(UpgradeTest, DaemonKilledBeforeAttachRollsBackThenRetries) {
  const std::string from = UseVersion({Vm(3)}, "testos:1", "hello:slow");
  Json before = fleet_->Inspect(Vm(3));

  const std::string to = fleet_->NewVersion("testos:1", "hello:2");
  Json started = fleet_->StartRollout(to, {Vm(3)}, {"--swap-order", "break-before-make"});
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to exit: the swap sits in stopped/intent meanwhile.
  ASSERT_NO_FATAL_FAILURE(KillDaemonAtThenFinish(id, Vm(3), "stopped/intent", seconds(60)));
  Json j = fleet_->Inspect(Vm(3));
  EXPECT_EQ(j["template"], to) << j.dump();
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["app"]["healthy"], true);
  EXPECT_EQ(j["boot_id"], before["boot_id"]) << "an app swap must not reboot";
  EXPECT_EQ(fleet_->LastJournalRow(Vm(3)).Name(), "done/done");
  std::vector<std::string> steps = fleet_->JournalSteps(Vm(3), id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "rolled_back/done"), 1)
      << "the interrupted swap must have rolled back first";
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "attached/intent"), 1)
      << "only the retry attaches the new disk";
}

// vdswapd is SIGKILLed in a make-before-break swap (the daemon's default order) while the
// guest switches to the new (slow) app: both app disks are plugged and the new app is not
// yet healthy. After the restart the swap goes back (switched/done was never written): the
// old app runs again from the old disk and the new disk is released and unplugged; the
// rollout then retries the VM, which ends on the new version with one app disk, no reboot.
TEST_F(UpgradeTest, DaemonKilledWhileSwitchingSwitchesBackThenRetries) {
  UseVersion({Vm(3)}, "testos:1", "hello:1");
  Json before = fleet_->Inspect(Vm(3));

  const std::string to = fleet_->NewVersion("testos:1", "hello:slow");
  Json started = fleet_->StartRollout(to, {Vm(3)});
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to become healthy: the swap sits in switched/intent meanwhile.
  ASSERT_NO_FATAL_FAILURE(KillDaemonAtThenFinish(id, Vm(3), "switched/intent", seconds(60)));
  Json j = fleet_->Inspect(Vm(3));
  EXPECT_EQ(j["template"], to) << j.dump();
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(j["app"]["running_version"], "slow") << j.dump();
  EXPECT_EQ(j["boot_id"], before["boot_id"]) << "an app swap must not reboot";
  int app_disks = 0;
  for (const auto& [serial, volume] : j["disks"].items()) {
    app_disks += serial.rfind("vdswap-app", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(app_disks, 1) << j.dump();
  std::vector<std::string> steps = fleet_->JournalSteps(Vm(3), id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "rolled_back/done"), 1)
      << "the interrupted swap must have switched back first: " << ::testing::PrintToString(steps);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "switched/done"), 1)
      << "only the retry switches: " << ::testing::PrintToString(steps);
  EXPECT_EQ(steps.back(), "done/done") << ::testing::PrintToString(steps);
}

TEST_F(UpgradeTest, BadInputGetsClearErrorsAndExitCodes) {
  const std::string current = fleet_->NewVersion("testos:1", "hello:1");
  int rc = 0;
  fleet_->Cli({"vm", "inspect", "no-such-vm"}, &rc);
  EXPECT_EQ(rc, 3);
  fleet_->Cli({"rollout", "start", "--to", "hello:999"}, &rc);
  EXPECT_EQ(rc, 3);
  fleet_->Cli({"template", "create", "hello", "--os", "testos:1", "--app", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // exists
  fleet_->Cli({"image", "rm", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // a template uses it
  fleet_->Cli({"image", "build", "/nonexistent"}, &rc);
  EXPECT_EQ(rc, 2);
  fleet_->Cli({"host", "rm", "local"}, &rc);
  EXPECT_EQ(rc, 4);  // VMs live there
  fleet_->Cli({"vm", "create", Vm(1), "--template", current}, &rc);
  EXPECT_EQ(rc, 4);  // exists
}

}  // namespace
}  // namespace vdswap::testing
