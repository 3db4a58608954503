// The product end to end on real libvirtd + QEMU (TCG), through the CLI and the daemon:
// hello:1 on three VMs, an app hot swap to hello:2, a broken hello:3 that rolls back, and
// an OS swap to hello:4 (with its own rollback). Every VM keeps its data.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/e2e/cli_harness.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

class UpgradeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    assets_ = &BuildAssets();
    daemon_ = new DaemonProcess;
    ASSERT_TRUE(daemon_->Start({"--accel", "tcg"}));
    prefix_ = "up" + std::to_string(getpid());
    pool_ = "vdswap-e2e-" + std::to_string(getpid());
  }
  static void TearDownTestSuite() {
    for (int i = 1; i <= 3; ++i) Cli({"vm", "rm", "--delete-data", Vm(i)});
    Cli({"host", "rm", "local"});
    RemovePool({"local", "qemu:///system", pool_});
    delete daemon_;
  }
  static std::string Vm(int i) { return prefix_ + "-" + std::to_string(i); }
  static Json Cli(std::vector<std::string> args, int* rc = nullptr) {
    return RunJson(*daemon_, std::move(args), rc);
  }
  static Json Ok(std::vector<std::string> args) {
    int rc = -1;
    Json j = Cli(args, &rc);
    EXPECT_EQ(rc, 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << j.dump();
    return j;
  }
  static Json Rollout(const std::string& to, const std::string& vms = "") {
    std::vector<std::string> args = {"rollout", "start", "--to", to};
    if (!vms.empty()) args.insert(args.end(), {"--vms", vms});
    Json started = Ok(args);
    int rc;
    return Cli({"rollout", "status", std::to_string(started.value("id", 0)), "--watch"}, &rc);
  }

  static inline const Assets* assets_;
  static inline DaemonProcess* daemon_;
  static inline std::string prefix_;
  static inline std::string pool_;
};

TEST_F(UpgradeTest, AppHotSwapBrokenRollbackAndOsSwap) {
  const Assets& a = *assets_;
  for (const auto& [dir, version] : {std::pair{a.os_dir, "1"}, std::pair{a.os2_dir, "2"}}) {
    Json os = Ok({"image", "import-os", dir + "/os.img", "--kernel", dir + "/vmlinuz", "--initrd",
                  dir + "/initrd.img", "--cmdline", a.cmdline, "--name", "testos"});
    EXPECT_EQ(os["version"], version);
  }
  for (const char* v : {"1", "2", "broken"}) {
    Json img = Ok({"image", "build", a.hello_dir + "/hello-" + v});
    EXPECT_EQ(img["name"], "hello");
  }
  Ok({"host", "add", "local", "--uri", "qemu:///system", "--pool", pool_});
  Ok({"template", "create", "hello", "--os", "testos:1", "--app", "hello:1"});

  Json created = Ok({"vm", "create", "--count", "3", "--prefix", prefix_, "--template", "hello:1"});
  ASSERT_EQ(created["vms"].size(), 3u);
  std::map<std::string, std::string> boot_ids;
  for (int i = 1; i <= 3; ++i) {
    Json vm = Ok({"vm", "inspect", Vm(i)});
    EXPECT_EQ(vm["app"]["health_output"], "hello 1 starts=1");
    boot_ids[Vm(i)] = vm["boot_id"];
  }

  // hello:2, a new app disk: hot-swapped, no reboot, counter kept.
  Ok({"template", "update", "hello", "--app", "hello:2"});
  Json r2 = Rollout("hello:2");
  EXPECT_EQ(r2["state"], "succeeded") << r2.dump();
  for (const auto& v : r2["vms"]) EXPECT_TRUE(v["downtime_ms"].is_number());
  for (int i = 1; i <= 3; ++i) {
    Json vm = Ok({"vm", "inspect", Vm(i)});
    EXPECT_EQ(vm["template"], "hello:2");
    EXPECT_EQ(vm["app"]["version"], "2");
    EXPECT_EQ(vm["app"]["healthy"], true);
    EXPECT_EQ(vm["app"]["health_output"], "hello 2 starts=2");
    EXPECT_EQ(vm["boot_id"], boot_ids[Vm(i)]) << "an app swap must not reboot";
  }
  std::printf("[measure] app swap downtime p50 %s ms, max %s ms over 3 VMs\n",
              r2["downtime_ms"]["p50"].dump().c_str(), r2["downtime_ms"]["max"].dump().c_str());

  // hello:3, broken: the first VM fails its health check and rolls back; the rest wait.
  Ok({"template", "update", "hello", "--app", "hello:3-broken"});
  Json r3 = Rollout("hello:3");
  EXPECT_EQ(r3["state"], "failed");
  EXPECT_EQ(r3["vms"][0]["state"], "rolled_back");
  EXPECT_NE(r3["vms"][0]["error"].get<std::string>().find("health check"), std::string::npos);
  EXPECT_EQ(r3["vms"][1]["state"], "skipped");
  Json vm1 = Ok({"vm", "inspect", Vm(1)});
  EXPECT_EQ(vm1["template"], "hello:2");
  EXPECT_EQ(vm1["app"]["healthy"], true);
  EXPECT_NE(vm1["last_error"].get<std::string>().find("health check"), std::string::npos);
  EXPECT_EQ(vm1["app"]["health_output"], "hello 2 starts=4");  // 1 boot, swap, broken, back
  EXPECT_EQ(vm1["boot_id"], boot_ids[Vm(1)]);

  // hello:4, a new OS image with the same app: one reboot, data kept.
  Ok({"template", "update", "hello", "--os", "testos:2", "--app", "hello:2"});
  Json r4 = Rollout("hello:4", Vm(2));
  EXPECT_EQ(r4["state"], "succeeded") << r4.dump();
  Json vm2 = Ok({"vm", "inspect", Vm(2)});
  EXPECT_EQ(vm2["template"], "hello:4");
  EXPECT_NE(vm2["boot_id"], boot_ids[Vm(2)]) << "an OS swap reboots once";
  EXPECT_EQ(vm2["app"]["health_output"], "hello 2 starts=3");
  std::printf("[measure] OS swap downtime %s ms\n", r4["vms"][0]["downtime_ms"].dump().c_str());

  // hello:5: back to OS 1 with the broken app: the OS swap fails and restores OS 2.
  Ok({"template", "update", "hello", "--os", "testos:1", "--app", "hello:3-broken"});
  Json r5 = Rollout("hello:5", Vm(2));
  EXPECT_EQ(r5["state"], "failed");
  EXPECT_EQ(r5["vms"][0]["state"], "rolled_back") << r5.dump();
  vm2 = Ok({"vm", "inspect", Vm(2)});
  EXPECT_EQ(vm2["template"], "hello:4");
  EXPECT_EQ(vm2["app"]["healthy"], true);
  EXPECT_NE(vm2["disks"]["vdswap-os"].get<std::string>().find("-os-v4"), std::string::npos);
}

// vdswapd is SIGKILLed in the middle of a rollout and restarted: the interrupted swap
// resumes and every VM ends on exactly one version, healthy, with its data.
TEST_F(UpgradeTest, DaemonKilledMidRolloutResumesConsistently) {
  Json t = Ok({"template", "update", "hello", "--os", "testos:1", "--app", "hello:1"});
  const std::string to = t["ref"];
  Json started = Ok({"rollout", "start", "--to", to, "--vms", Vm(1) + "," + Vm(3)});
  std::string id = std::to_string(started.value("id", 0));
  // Kill while the first VM is in its swap.
  for (int i = 0; i < 200; ++i) {
    Json st = Cli({"rollout", "status", id});
    if (st["vms"][0]["state"] == "swapping") break;
    usleep(20 * 1000);
  }
  usleep(300 * 1000);
  ASSERT_TRUE(daemon_->KillAndRestart());
  int rc;
  Json r = Cli({"rollout", "status", id, "--watch"}, &rc);
  ASSERT_NE(r["state"], "running") << r.dump();
  for (int i : {1, 3}) {
    Json vm = Ok({"vm", "inspect", Vm(i)});
    EXPECT_EQ(vm["state"], "running") << vm.dump();
    EXPECT_EQ(vm["app"]["healthy"], true) << vm.dump();
    // The recorded version is the one running.
    std::string want = vm["template"] == to ? "1" : "2";
    EXPECT_EQ(vm["app"]["running_version"], want) << vm.dump();
  }
  std::printf("[measure] rollout after a daemon kill ended %s: %s\n",
              r["state"].get<std::string>().c_str(), r["vms"].dump().c_str());
}

TEST_F(UpgradeTest, BadInputGetsClearErrorsAndExitCodes) {
  int rc = 0;
  Cli({"vm", "inspect", "no-such-vm"}, &rc);
  EXPECT_EQ(rc, 3);
  Cli({"rollout", "start", "--to", "hello:99"}, &rc);
  EXPECT_EQ(rc, 3);
  Cli({"template", "create", "hello", "--os", "testos:1", "--app", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // exists
  Cli({"image", "rm", "hello:1"}, &rc);
  EXPECT_EQ(rc, 4);  // a template uses it
  Cli({"image", "build", "/nonexistent"}, &rc);
  EXPECT_EQ(rc, 2);
  Cli({"host", "rm", "local"}, &rc);
  EXPECT_EQ(rc, 4);  // VMs live there
}

}  // namespace
}  // namespace vdswap::testing
