// A real distro guest end to end on real libvirtd + QEMU (TCG), through the CLI and the
// daemon: a Debian 12 systemd OS image from guest/debian/build (the vdswap-guest package
// installed by dpkg -i, started by its udev rule) runs hello:1; an app hot swap to hello:2
// keeps the boot and the data; an OS swap to a second Debian image version reboots once
// and keeps the data; a stop powers the guest off gracefully.
//
// The images are cached in BUILD_DIR/debian-image between runs (keyed by the guest
// package and the recipe); the first run bootstraps Debian from its archive.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/files.h"
#include "core/sha256.h"
#include "tests/e2e/cli_harness.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Builds (or reuses) the Debian image version `version` into BUILD_DIR/debian-image/vV.
// Returns the directory, or "" on failure (with the test failed).
std::string DebianImage(const std::string& deb, const std::string& version) {
  std::string out = std::string(BUILD_DIR) + "/debian-image/v" + version;
  std::string recipe = std::string(SOURCE_DIR) + "/guest/debian/build";
  auto deb_hash = Sha256::OfFile(deb);
  auto recipe_hash = Sha256::OfFile(recipe);
  EXPECT_TRUE(deb_hash.ok() && recipe_hash.ok()) << deb;
  if (!deb_hash.ok() || !recipe_hash.ok()) return "";
  std::string key = *deb_hash + " " + *recipe_hash + " " + version + "\n";
  auto stamp = ReadFile(out + "/stamp");
  if (stamp.ok() && *stamp == key && access((out + "/os.img").c_str(), R_OK) == 0) return out;
  SubprocessRunner runner;
  auto start = Clock::now();
  auto built = runner.RunOk({recipe, out, "--version", version, "--deb", deb, "--cache",
                             std::string(BUILD_DIR) + "/cache/debian"},
                            {.timeout = std::chrono::minutes(20)});
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  if (!built.ok()) return "";
  std::printf("[measure] guest/debian/build v%s: %.0f s\n", version.c_str(), SecondsSince(start));
  EXPECT_TRUE(WriteFileAtomic(out + "/stamp", key).ok());
  return out;
}

class DebianTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SubprocessRunner runner;
    auto pkg = runner.RunOk(
        {std::string(SOURCE_DIR) + "/scripts/package", "--build-dir", BUILD_DIR, "--no-lintian"},
        {.timeout = std::chrono::minutes(20)});
    ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
    std::printf("%s", pkg->out.c_str());
    auto version = ReadFile(std::string(BUILD_DIR) + "/pkg/version");
    ASSERT_TRUE(version.ok()) << version.status().ToString();
    std::string v = *version;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    deb_ = std::string(BUILD_DIR) + "/pkg/vdswap-guest_" + v + "_amd64.deb";
    os1_ = DebianImage(deb_, "1");
    os2_ = DebianImage(deb_, "2");
    ASSERT_FALSE(os1_.empty() || os2_.empty());
    auto cmdline = ReadFile(os1_ + "/cmdline");
    ASSERT_TRUE(cmdline.ok());
    cmdline_ = *cmdline;
    while (!cmdline_.empty() && cmdline_.back() == '\n') cmdline_.pop_back();

    // hello's trees, with manifests that ask for Debian instead of the test OS.
    auto dir = TempDir::Create("/tmp", "vdswap-debian-test");
    ASSERT_TRUE(dir.ok());
    hello_dir_ = dir->Release();
    auto hello = runner.RunOk({std::string(SOURCE_DIR) + "/examples/hello/build", hello_dir_,
                               "--bin-dir", std::string(BUILD_DIR) + "/examples/hello"});
    ASSERT_TRUE(hello.ok()) << hello.status().ToString();
    for (const char* v : {"1", "2"}) {
      std::string path = hello_dir_ + "/hello-" + v + "/vdswap.json";
      auto text = ReadFile(path);
      ASSERT_TRUE(text.ok());
      std::string s = *text;
      auto at = s.find("\"vdswap-testos\"");
      ASSERT_NE(at, std::string::npos);
      s.replace(at, 15, "\"debian\", \"os_version\": \"12\"");
      ASSERT_TRUE(WriteFileAtomic(path, s).ok());
    }

    daemon_ = new DaemonProcess;
    ASSERT_TRUE(daemon_->Start({"--accel", "tcg"}));
    vm_ = "deb" + std::to_string(getpid()) + "-1";
    pool_ = "vdswap-deb-" + std::to_string(getpid());
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      Cli({"vm", "rm", "--delete-data", vm_});
      Cli({"host", "rm", "local"});
      RemovePool({"local", "qemu:///system", pool_});
      delete daemon_;
    }
    if (!hello_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(hello_dir_, ec);
    }
  }
  static Json Cli(std::vector<std::string> args, int* rc = nullptr) {
    return RunJson(*daemon_, std::move(args), rc);
  }
  static Json Ok(std::vector<std::string> args) {
    int rc = -1;
    Json j = Cli(args, &rc);
    EXPECT_EQ(rc, 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << j.dump();
    return j;
  }
  static Json Rollout(const std::string& to) {
    Json started = Ok({"rollout", "start", "--to", to, "--vms", vm_});
    int rc;
    return Cli({"rollout", "status", std::to_string(started.value("id", 0)), "--watch", "--vms"},
               &rc);
  }

  // Waits (deadline 120 s) until the VM's first NIC has a DHCP lease; returns
  // {mac, address}, with the test failed when none came.
  static std::pair<std::string, std::string> WaitForLease() {
    auto deadline = Clock::now() + std::chrono::seconds(120);
    Json nic;
    while (Clock::now() < deadline) {
      Json vm = Ok({"vm", "inspect", vm_});
      if (vm["interfaces"].is_array() && !vm["interfaces"].empty()) nic = vm["interfaces"][0];
      if (nic.is_object() && !nic["addresses"].empty()) {
        return {nic.value("mac", ""), nic["addresses"][0].get<std::string>()};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "no DHCP lease within 120 s: " << nic.dump();
    return {};
  }
  // One ping from the host to `address`.
  static bool Pings(const std::string& address) {
    SubprocessRunner runner;
    return runner.RunOk({"ping", "-c", "1", "-W", "3", address}).ok();
  }

  // What hello answers over HTTP on `address`:8080 ("" when it does not).
  static std::string Fetch(const std::string& address) {
    SubprocessRunner runner;
    auto out = runner.RunOk({"curl", "-s", "--max-time", "5", "http://" + address + ":8080/"});
    return out.ok() ? out->out : "";
  }

  static inline std::string deb_, os1_, os2_, cmdline_, hello_dir_, vm_, pool_;
  static inline DaemonProcess* daemon_;
};

TEST_F(DebianTest, BootsHealthyThenSwapsAppWithoutRebootAndOsWithOne) {
  for (const auto& [dir, version] : {std::pair{os1_, "1"}, std::pair{os2_, "2"}}) {
    Json os =
        Ok({"image", "import-os", dir + "/os.img", "--kernel", dir + "/vmlinuz", "--initrd",
            dir + "/initrd.img", "--cmdline", cmdline_, "--name", "debian", "--version", version});
    EXPECT_EQ(os["version"], version);
  }
  for (const char* v : {"1", "2"}) {
    Json img = Ok({"image", "build", hello_dir_ + "/hello-" + v});
    EXPECT_EQ(img["name"], "hello");
  }
  Ok({"host", "add", "local", "--uri", "qemu:///system", "--pool", pool_});
  Ok({"template", "create", "hdeb", "--os", "debian:1", "--app", "hello:1", "--memory", "512M"});

  auto start = Clock::now();
  Ok({"vm", "create", vm_, "--template", "hdeb:1"});
  std::printf("[measure] Debian 12 vm create to healthy: %.1f s\n", SecondsSince(start));
  Json vm = Ok({"vm", "inspect", vm_});
  EXPECT_EQ(vm["state"], "running") << vm.dump();
  EXPECT_EQ(vm["app"]["healthy"], true) << vm.dump();
  EXPECT_EQ(vm["app"]["health_output"], "hello 1 starts=1") << vm.dump();
  const std::string boot_id = vm["boot_id"];
  ASSERT_FALSE(boot_id.empty());

  // Its NIC on libvirt's default network: a MAC chosen once, a DHCP lease, reachable.
  const auto [mac, address] = WaitForLease();
  ASSERT_FALSE(address.empty());
  EXPECT_EQ(vm["interfaces"][0]["network"], "default") << vm.dump();
  EXPECT_EQ(mac.rfind("52:54:00:", 0), 0u) << mac;
  EXPECT_TRUE(Pings(address)) << address;
  EXPECT_EQ(Fetch(address), "hello 1 starts=1\n");  // the app, over TCP from the host
  std::printf("[measure] Debian VM %s has %s (MAC %s)\n", vm_.c_str(), address.c_str(),
              mac.c_str());

  // An app hot swap: systemd's shared mounts and /dev's submounts must not get in the way.
  Ok({"template", "update", "hdeb", "--app", "hello:2"});
  Json r2 = Rollout("hdeb:2");
  EXPECT_EQ(r2["state"], "succeeded") << r2.dump();
  vm = Ok({"vm", "inspect", vm_});
  EXPECT_EQ(vm["template"], "hdeb:2");
  EXPECT_EQ(vm["app"]["version"], "2");
  EXPECT_EQ(vm["app"]["health_output"], "hello 2 starts=2") << vm.dump();
  EXPECT_EQ(vm["boot_id"], boot_id) << "an app swap must not reboot";
  EXPECT_EQ(Fetch(address), "hello 2 starts=2\n");
  std::printf("[measure] Debian app swap downtime %s ms\n",
              r2["vms"][0]["downtime_ms"].dump().c_str());

  // An OS swap to the second image version: one reboot, the data disk kept.
  Ok({"template", "update", "hdeb", "--os", "debian:2", "--app", "hello:2"});
  start = Clock::now();
  Json r3 = Rollout("hdeb:3");
  double os_swap_s = SecondsSince(start);
  EXPECT_EQ(r3["state"], "succeeded") << r3.dump();
  vm = Ok({"vm", "inspect", vm_});
  EXPECT_EQ(vm["template"], "hdeb:3");
  EXPECT_EQ(vm["app"]["healthy"], true) << vm.dump();
  EXPECT_EQ(vm["app"]["health_output"], "hello 2 starts=3") << vm.dump();
  EXPECT_NE(vm["boot_id"], boot_id) << "an OS swap reboots once";
  std::printf("[measure] Debian OS swap downtime %s ms (rollout %.1f s)\n",
              r3["vms"][0]["downtime_ms"].dump().c_str(), os_swap_s);
  // The same NIC after the reboot: same MAC, so the same lease and address.
  const auto [mac_after, address_after] = WaitForLease();
  EXPECT_EQ(mac_after, mac);
  EXPECT_EQ(address_after, address);
  EXPECT_TRUE(Pings(address_after)) << address_after;
  EXPECT_EQ(Fetch(address_after), "hello 2 starts=3\n");

  // A graceful power-off: the ACPI button reaches the agent (or systemd), which stops the
  // app before the data disk is unmounted; the host forces a VM off only after 60 s.
  start = Clock::now();
  Ok({"vm", "stop", vm_});
  double stop_s = SecondsSince(start);
  std::printf("[measure] Debian vm stop (graceful power-off): %.1f s\n", stop_s);
  EXPECT_LT(stop_s, 45) << "the guest did not power off by itself";
  Ok({"vm", "start", vm_});
  vm = Ok({"vm", "inspect", vm_});
  EXPECT_EQ(vm["app"]["health_output"], "hello 2 starts=4") << vm.dump();
}

}  // namespace
}  // namespace vdswap::testing
