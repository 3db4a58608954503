// The product end to end on real libvirtd + QEMU (TCG), through the CLI and the daemon:
// app hot swaps, a broken app that rolls back, OS swaps (with their own rollback), and
// vdswapd SIGKILLed in the middle of a swap. The suite boots three VMs once; every test
// first puts the VMs it uses on the versions it starts from (UseVersion), so tests pass in
// any order and alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "tests/e2e/cli_harness.h"
#include "tests/integration/swap_journal.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

// What `hello --check` printed last ("hello 2 starts=5"): the running version and how many
// times the app has started on this VM's data disk.
struct HelloView {
  std::string version;
  int starts = -1;
};

HelloView ParseHello(const Json& vm) {
  HelloView v;
  std::string out = vm["app"].value("health_output", "");
  char version[64] = {};
  if (std::sscanf(out.c_str(), "hello %63s starts=%d", version, &v.starts) == 2) {
    v.version = version;
  }
  return v;
}

class UpgradeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    assets_ = &BuildAssets();
    daemon_ = new DaemonProcess;
    ASSERT_TRUE(daemon_->Start({"--accel", "tcg"}));
    prefix_ = "up" + std::to_string(getpid());
    pool_ = "vdswap-e2e-" + std::to_string(getpid());
    const Assets& a = *assets_;
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
    Ok({"template", "create", "hello", "--os", "testos:1", "--app", "hello:1"});
    Json created =
        Ok({"vm", "create", "--count", "3", "--prefix", prefix_, "--template", "hello:1"});
    EXPECT_EQ(created["vms"].size(), 3u) << created.dump();
  }
  static void TearDownTestSuite() {
    for (int i = 1; i <= 3; ++i) {
      Cli({"vm", "rm", "--delete-data", Vm(i)});
    }
    Cli({"host", "rm", "local"});
    RemovePool({"local", "qemu:///system", pool_});
    delete daemon_;
  }
  void SetUp() override {
    ASSERT_NE(daemon_, nullptr);
    // A test that failed mid-way may have left the daemon dead.
    if (!Answers()) {
      ASSERT_TRUE(daemon_->Restart());
    }
  }

  static std::string Vm(int i) { return prefix_ + "-" + std::to_string(i); }
  static bool Answers() {
    int rc = -1;
    Cli({"status"}, &rc);
    return rc == 0;
  }
  static Json Cli(std::vector<std::string> args, int* rc = nullptr) {
    return RunJson(*daemon_, std::move(args), rc);
  }
  static Json Ok(const std::vector<std::string>& args) {
    int rc = -1;
    Json j = Cli(args, &rc);
    std::string cmd;
    for (const auto& a : args) {
      cmd += a + " ";
    }
    EXPECT_EQ(rc, 0) << cmd << ": " << j.dump();
    return j;
  }
  static Json Inspect(const std::string& vm) { return Ok({"vm", "inspect", vm}); }
  // A rollout in the daemon's default swap order unless `order` names one.
  static Json StartRollout(const std::string& to, const std::vector<std::string>& vms,
                           const std::string& order = "") {
    std::string list;
    for (const auto& v : vms) {
      list += (list.empty() ? "" : ",") + v;
    }
    std::vector<std::string> args = {"rollout", "start", "--to", to, "--vms", list};
    if (!order.empty()) {
      args.insert(args.end(), {"--swap-order", order});
    }
    return Ok(args);
  }
  static Json Watch(const Json& started) {
    int rc;
    return Cli({"rollout", "status", std::to_string(started.value("id", 0)), "--watch", "--vms"},
               &rc);
  }
  static Json Rollout(const std::string& to, const std::vector<std::string>& vms) {
    return Watch(StartRollout(to, vms));
  }
  // A new version of template hello with this OS and app; returns its ref ("hello:7").
  static std::string NewVersion(const std::string& os, const std::string& app) {
    Json t = Ok({"template", "update", "hello", "--os", os, "--app", app});
    return t.value("ref", "");
  }
  // Puts `vms` on a new template version with `os` and `app`, running and healthy, whatever
  // earlier tests left: a VM that is not running or not healthy is created anew.
  static std::string UseVersion(const std::vector<std::string>& vms, const std::string& os,
                                const std::string& app) {
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
      Json r = Rollout(ref, healthy);
      EXPECT_EQ(r["state"], "succeeded") << "setting up " << ref << ": " << r.dump();
    }
    for (const auto& vm : vms) {
      Json j = Inspect(vm);
      EXPECT_EQ(j["template"], ref) << j.dump();
      EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    }
    return ref;
  }
  // The OS image ("testos:1" or "testos:2") of the template version `vm` runs, so an OS
  // swap test can swap to the other one without first swapping back.
  static std::string CurrentOs(const std::string& vm) {
    Json t = Ok({"template", "inspect", Inspect(vm).value("template", "")});
    for (const char* os : {"testos:1", "testos:2"}) {
      if (Ok({"image", "inspect", os})["digest"] == t["os"]) {
        return os;
      }
    }
    ADD_FAILURE() << vm << " runs neither testos:1 nor testos:2: " << t.dump();
    return "testos:1";
  }
  static std::string OtherOs(const std::string& os) {
    return os == "testos:1" ? "testos:2" : "testos:1";
  }
  // Polls the journal until the last row of one of `vms` is `step/phase`; returns that VM,
  // or "" at the deadline.
  static std::string AwaitJournal(const std::vector<std::string>& vms, const std::string& want,
                                  std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& vm : vms) {
        auto rows = ReadSwapJournal(daemon_->state_dir(), vm);
        if (rows.ok() && !rows->empty() && rows->back().Name() == want) {
          return vm;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }
  static JournalRow LastJournalRow(const std::string& vm) {
    auto rows = ReadSwapJournal(daemon_->state_dir(), vm);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() && !rows->empty() ? rows->back() : JournalRow{};
  }
  static std::vector<std::string> JournalSteps(const std::string& vm, int64_t rollout_id) {
    std::vector<std::string> steps;
    auto rows = ReadSwapJournal(daemon_->state_dir(), vm);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    for (const auto& r : rows.ok() ? *rows : std::vector<JournalRow>{}) {
      if (r.rollout_id == rollout_id) {
        steps.push_back(r.Name());
      }
    }
    return steps;
  }

  static inline const Assets* assets_;
  static inline DaemonProcess* daemon_;
  static inline std::string prefix_;
  static inline std::string pool_;
};

// hello:1 -> hello:2 on two VMs: a new app disk hot-swapped, no reboot, the counter kept.
TEST_F(UpgradeTest, AppHotSwapKeepsDataWithoutReboot) {
  const std::vector<std::string> vms = {Vm(1), Vm(3)};
  UseVersion(vms, "testos:1", "hello:1");
  std::map<std::string, Json> before;
  for (const auto& vm : vms) {
    before[vm] = Inspect(vm);
  }

  const std::string to = NewVersion("testos:1", "hello:2");
  Json r = Rollout(to, vms);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  for (const auto& v : r["vms"]) {
    EXPECT_TRUE(v["downtime_ms"].is_number()) << r.dump();
  }
  for (const auto& vm : vms) {
    Json j = Inspect(vm);
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
    before[vm] = Inspect(vm);
  }

  Json r = Rollout(NewVersion("testos:1", "hello:3-broken"), vms);
  // A paused rollout keeps its VMs (another rollout is refused them): end it here, so the
  // other tests start from VMs no rollout holds.
  Ok({"rollout", "abort", std::to_string(r.value("id", 0))});
  EXPECT_EQ(r["state"], "paused") << r.dump();
  ASSERT_EQ(r["vms"].size(), 2u) << r.dump();
  EXPECT_EQ(r["vms"][0]["vm"], Vm(1));
  EXPECT_EQ(r["vms"][0]["state"], "rolled_back");
  EXPECT_NE(r["vms"][0].value("error", "").find("health check"), std::string::npos) << r.dump();
  EXPECT_EQ(r["vms"][1]["state"], "pending");
  for (const auto& vm : vms) {
    Json j = Inspect(vm);
    EXPECT_EQ(j["template"], from) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true);
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]);
    HelloView old_app = ParseHello(before[vm]), app = ParseHello(j);
    EXPECT_EQ(app.version, "2") << j.dump();
    // The rolled-back VM started the broken app once and hello 2 again; the other none.
    EXPECT_EQ(app.starts, old_app.starts + (vm == Vm(1) ? 2 : 0)) << j.dump();
  }
  EXPECT_NE(Inspect(Vm(1)).value("last_error", "").find("health check"), std::string::npos);
}

// A new OS image with the same app: one reboot, data kept. (It swaps to whichever test OS
// the VM does not run, so that its setup is never an OS swap of its own.)
TEST_F(UpgradeTest, OsSwapRebootsOnceAndKeepsData) {
  const std::string os = CurrentOs(Vm(2));
  UseVersion({Vm(2)}, os, "hello:2");
  Json before = Inspect(Vm(2));

  const std::string to = NewVersion(OtherOs(os), "hello:2");
  Json r = Rollout(to, {Vm(2)});
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  Json j = Inspect(Vm(2));
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
  Json before = Inspect(Vm(2));

  Json r = Rollout(NewVersion(OtherOs(os), "hello:3-broken"), {Vm(2)});
  EXPECT_EQ(r["state"], "failed") << r.dump();
  EXPECT_EQ(r["vms"][0]["state"], "rolled_back") << r.dump();
  Json j = Inspect(Vm(2));
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
    before[vm] = Inspect(vm);
  }

  const std::string to = NewVersion("testos:1", "hello:slow");
  Json started = StartRollout(to, vms, "break-before-make");
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to become healthy: the swap sits in started/intent meanwhile.
  const std::string killed = AwaitJournal(vms, "started/intent", seconds(120));
  ASSERT_EQ(killed, Vm(1)) << "the first VM never reached started/intent";
  daemon_->Kill();
  JournalRow last = LastJournalRow(killed);
  ASSERT_EQ(last.Name(), "started/intent") << "the kill landed after the swap finished";
  EXPECT_EQ(last.rollout_id, id);

  ASSERT_TRUE(daemon_->Restart());
  Json r = Watch(started);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  for (const auto& v : r["vms"]) {
    EXPECT_EQ(v["state"], "done") << r.dump();
  }
  for (const auto& vm : vms) {
    Json j = Inspect(vm);
    EXPECT_EQ(j["template"], to) << j.dump();
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["app"]["healthy"], true);
    EXPECT_EQ(j["app"]["running_version"], "slow");
    HelloView app = ParseHello(j);
    EXPECT_EQ(app.version, "slow") << j.dump();
    EXPECT_EQ(app.starts, ParseHello(before[vm]).starts + 1) << "exactly one start: " << j.dump();
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << "resuming must not reboot";
    EXPECT_EQ(LastJournalRow(vm).Name(), "done/done");
  }
  std::vector<std::string> steps = JournalSteps(killed, id);
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
  Json before = Inspect(Vm(3));

  const std::string to = NewVersion("testos:1", "hello:2");
  Json started = StartRollout(to, {Vm(3)}, "break-before-make");
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to exit: the swap sits in stopped/intent meanwhile.
  ASSERT_EQ(AwaitJournal({Vm(3)}, "stopped/intent", seconds(60)), Vm(3))
      << "the VM never reached stopped/intent";
  daemon_->Kill();
  ASSERT_EQ(LastJournalRow(Vm(3)).Name(), "stopped/intent") << "the kill landed too late";

  ASSERT_TRUE(daemon_->Restart());
  Json r = Watch(started);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  ASSERT_EQ(r["vms"].size(), 1u) << r.dump();
  EXPECT_EQ(r["vms"][0]["state"], "done") << r.dump();
  Json j = Inspect(Vm(3));
  EXPECT_EQ(j["template"], to) << j.dump();
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["app"]["healthy"], true);
  EXPECT_EQ(j["boot_id"], before["boot_id"]) << "an app swap must not reboot";
  EXPECT_EQ(LastJournalRow(Vm(3)).Name(), "done/done");
  std::vector<std::string> steps = JournalSteps(Vm(3), id);
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
  Json before = Inspect(Vm(3));

  const std::string to = NewVersion("testos:1", "hello:slow");
  Json started = StartRollout(to, {Vm(3)});
  const int64_t id = started.value("id", 0);
  // hello:slow takes ~3 s to become healthy: the swap sits in switched/intent meanwhile.
  ASSERT_EQ(AwaitJournal({Vm(3)}, "switched/intent", seconds(60)), Vm(3))
      << "the VM never reached switched/intent";
  daemon_->Kill();
  ASSERT_EQ(LastJournalRow(Vm(3)).Name(), "switched/intent") << "the kill landed too late";

  ASSERT_TRUE(daemon_->Restart());
  Json r = Watch(started);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  ASSERT_EQ(r["vms"].size(), 1u) << r.dump();
  EXPECT_EQ(r["vms"][0]["state"], "done") << r.dump();
  Json j = Inspect(Vm(3));
  EXPECT_EQ(j["template"], to) << j.dump();
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(j["app"]["running_version"], "slow") << j.dump();
  EXPECT_EQ(j["boot_id"], before["boot_id"]) << "an app swap must not reboot";
  int app_disks = 0;
  for (const auto& [serial, volume] : j["disks"].items()) {
    app_disks += serial.rfind("vdswap-app", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(app_disks, 1) << j.dump();
  std::vector<std::string> steps = JournalSteps(Vm(3), id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "rolled_back/done"), 1)
      << "the interrupted swap must have switched back first: " << ::testing::PrintToString(steps);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "switched/done"), 1)
      << "only the retry switches: " << ::testing::PrintToString(steps);
  EXPECT_EQ(steps.back(), "done/done") << ::testing::PrintToString(steps);
}

TEST_F(UpgradeTest, BadInputGetsClearErrorsAndExitCodes) {
  const std::string current = NewVersion("testos:1", "hello:1");
  int rc = 0;
  Cli({"vm", "inspect", "no-such-vm"}, &rc);
  EXPECT_EQ(rc, 3);
  Cli({"rollout", "start", "--to", "hello:999"}, &rc);
  EXPECT_EQ(rc, 3);
  Cli({"template", "create", "hello", "--os", "testos:1", "--app", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // exists
  Cli({"image", "rm", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // a template uses it
  Cli({"image", "build", "/nonexistent"}, &rc);
  EXPECT_EQ(rc, 2);
  Cli({"host", "rm", "local"}, &rc);
  EXPECT_EQ(rc, 4);  // VMs live there
  Cli({"vm", "create", Vm(1), "--template", current}, &rc);
  EXPECT_EQ(rc, 4);  // exists
}

}  // namespace
}  // namespace vdswap::testing
