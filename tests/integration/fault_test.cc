// Faults injected into real swaps on libvirtd + QEMU (TCG), through the CLI: an app that
// outlives its stop timeout, a guest frozen while its app stops, QEMU killed mid-swap,
// libvirtd restarted mid-rollout, a host pool that fills up during an upload and an image
// volume corrupted on the host. (A guest that never releases an unplugged disk cannot be
// staged from the host here: libvirt serializes a suspend behind the detach it waits on,
// so the detach deadline is tested on the fake, fleet/swapper_test.cc.)
// Each test ends in the state docs/operations.md ("Failure modes") documents, with a
// clear message, the data disk attached and its start counter continuing. One VM; each
// test first puts it on the version it starts from (UseVersion).
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/command_runner.h"
#include "core/files.h"
#include "core/sha256.h"
#include "tests/integration/cli_fleet.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

// Rows of host_images for `host` in the daemon's database (read-only), or -1.
int64_t HostImageRows(const std::string& state_dir, const std::string& host) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((state_dir + "/vdswap.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM host_images WHERE host = ?1", -1, &stmt,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(stmt, 1, host.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

class FaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fleet_ = new CliFleet;
    vm_ = "ft" + std::to_string(getpid());
    ASSERT_TRUE(fleet_->SetUp("ft"));
    // hello:stubborn: the slow build (3 s to exit after SIGTERM) with a stop timeout of
    // 1 s, i.e. an app that does not stop when asked: the agent must SIGKILL it.
    auto dir = TempDir::Create("/tmp", "vdswap-stubborn");
    ASSERT_TRUE(dir.ok());
    stubborn_dir_ = new TempDir(std::move(*dir));
    const std::string tree = stubborn_dir_->path() + "/hello-stubborn";
    std::filesystem::create_directories(tree + "/bin");
    std::filesystem::copy_file(BuildAssets().hello_dir + "/hello-slow/bin/hello",
                               tree + "/bin/hello");
    std::ofstream(tree + "/vdswap.json") << R"({
  "name": "hello", "version": "stubborn",
  "start": ["/bin/hello", "--port", "8080"],
  "stop": {"signal": "TERM", "timeout_s": 1},
  "health": {"exec": ["/bin/hello", "--check"], "interval_ms": 200, "timeout_s": 15},
  "requires": {"os_id": "vdswap-testos", "arch": "x86_64"}
})";
    fleet_->Ok({"image", "build", tree});
    fleet_->Ok({"vm", "create", vm_, "--template", "hello:1"});
    conn_ = virConnectOpen("qemu:///system");
    ASSERT_NE(conn_, nullptr);
  }
  static void TearDownTestSuite() {
    if (conn_ != nullptr) virConnectClose(conn_);
    fleet_->TearDown({vm_});
    delete fleet_;
    delete stubborn_dir_;
  }
  void SetUp() override { fleet_->EnsureDaemon(); }

  // Suspends (freezes) or resumes the VM's vCPUs through libvirt directly: faster than a
  // virsh process, for faults that must land inside a short step.
  static bool Freeze(bool frozen) {
    virDomainPtr dom = virDomainLookupByName(conn_, vm_.c_str());
    if (dom == nullptr) return false;
    int rc = frozen ? virDomainSuspend(dom) : virDomainResume(dom);
    virDomainFree(dom);
    return rc == 0;
  }
  // The rollout's only VM entry.
  static Json OnlyVm(const Json& rollout) {
    EXPECT_EQ(rollout["vms"].size(), 1u) << rollout.dump();
    return rollout["vms"].empty() ? Json::object() : rollout["vms"][0];
  }
  // The data disk is the one the VM was created with, and the app's start counter on it
  // continued from `before` by `more` starts.
  static void ExpectDataKept(const Json& before, const Json& now, int more) {
    EXPECT_EQ(now["disks"]["vdswap-data"], before["disks"]["vdswap-data"]) << now.dump();
    EXPECT_EQ(ParseHello(now).starts, ParseHello(before).starts + more) << now.dump();
  }
  static int64_t Id(const Json& started) { return started.value("id", 0); }

  static inline CliFleet* fleet_;
  static inline std::string vm_;
  static inline TempDir* stubborn_dir_;
  static inline virConnectPtr conn_;
};

const std::vector<std::string> kBbm = {"--swap-order", "break-before-make"};

// The old app ignores SIGTERM past its stop timeout: the agent SIGKILLs it and the swap
// goes on.
TEST_F(FaultTest, AppThatDoesNotStopIsKilledAndTheSwapProceeds) {
  fleet_->UseVersion({vm_}, "testos:1", "hello:stubborn");
  Json before = fleet_->Inspect(vm_);
  const std::string to = fleet_->NewVersion("testos:1", "hello:2");
  auto t0 = std::chrono::steady_clock::now();
  Json r = fleet_->Watch(Id(fleet_->StartRollout(to, {vm_}, kBbm)));
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  Json j = fleet_->Inspect(vm_);
  EXPECT_EQ(j["template"], to);
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(ParseHello(j).version, "2") << j.dump();
  EXPECT_EQ(j["boot_id"], before["boot_id"]);
  ExpectDataKept(before, j, 1);
  std::printf(
      "[measure] swap from an app killed at its 1 s stop timeout: downtime %s ms, %lld ms "
      "in all\n",
      OnlyVm(r)["downtime_ms"].dump().c_str(),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count()));
}

// The guest freezes (vCPUs paused) for 5 s while its app is stopping: the agent's reply
// comes late but within the deadline, and the swap completes.
TEST_F(FaultTest, GuestFrozenDuringStopCompletesTheSwap) {
  fleet_->UseVersion({vm_}, "testos:1", "hello:slow");
  Json before = fleet_->Inspect(vm_);
  const std::string to = fleet_->NewVersion("testos:1", "hello:2");
  Json started = fleet_->StartRollout(to, {vm_}, kBbm);
  ASSERT_EQ(fleet_->AwaitJournal({vm_}, "stopped/intent", seconds(120)), vm_);
  ASSERT_TRUE(Freeze(true));
  std::this_thread::sleep_for(seconds(5));  // the fault's duration, not a synchronisation
  ASSERT_TRUE(Freeze(false));
  Json r = fleet_->Watch(Id(started));
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  Json j = fleet_->Inspect(vm_);
  EXPECT_EQ(j["template"], to);
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(j["boot_id"], before["boot_id"]);
  ExpectDataKept(before, j, 1);
}

// QEMU is SIGKILLed while the new (slow) app is starting: the swap fails with a message
// naming the VM, the VM is reported failed, and `vm start` boots it on the old version
// with its data disk.
TEST_F(FaultTest, QemuKilledMidSwapFailsClearlyAndKeepsTheData) {
  const std::string from = fleet_->UseVersion({vm_}, "testos:1", "hello:1");
  Json before = fleet_->Inspect(vm_);
  const std::string to = fleet_->NewVersion("testos:1", "hello:slow");
  Json started = fleet_->StartRollout(to, {vm_}, kBbm);
  ASSERT_EQ(fleet_->AwaitJournal({vm_}, "started/intent", seconds(120)), vm_);
  const int pid = QemuPid(vm_);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  Json r = fleet_->Watch(Id(started));
  fleet_->Cli({"rollout", "abort", std::to_string(Id(started))});
  const Json v = OnlyVm(r);
  EXPECT_EQ(v["state"], "failed") << r.dump();
  EXPECT_NE(v.value("error", "").find(vm_), std::string::npos) << r.dump();
  std::printf("[info] QEMU killed: rollout %s, vm error: %s\n", r.value("state", "").c_str(),
              v.value("error", "").c_str());
  Json failed = fleet_->Inspect(vm_);
  EXPECT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_EQ(failed["template"], from) << failed.dump();
  EXPECT_FALSE(failed.value("last_error", "").empty()) << failed.dump();

  fleet_->Ok({"vm", "start", vm_});
  Json j = fleet_->Inspect(vm_);
  EXPECT_EQ(j["state"], "running") << j.dump();
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(ParseHello(j).version, "1") << j.dump();
  EXPECT_EQ(j["disks"]["vdswap-data"], before["disks"]["vdswap-data"]) << j.dump();
  // What the guest had not written back when QEMU died is lost, as in a power cut (the
  // app does not sync its counter): the counter may be behind, never ahead.
  const int starts = ParseHello(j).starts;
  EXPECT_GE(starts, 1) << j.dump();
  EXPECT_LE(starts, ParseHello(before).starts + 2) << j.dump();
  std::printf("[info] start counter %d before the kill, %d after the restart\n",
              ParseHello(before).starts, starts);
}

// libvirtd restarts (as a package upgrade does) while the old app stops: the agent channel
// is lost with it, the swap rolls back (retrying while libvirtd is away) and the VM ends
// running its old app, as its record says; the daemon reconnects for the next calls.
TEST_F(FaultTest, LibvirtdRestartedMidRolloutEndsConsistently) {
  fleet_->UseVersion({vm_}, "testos:1", "hello:slow");
  Json before = fleet_->Inspect(vm_);
  const std::string to = fleet_->NewVersion("testos:1", "hello:2");
  Json started = fleet_->StartRollout(to, {vm_}, kBbm);
  ASSERT_EQ(fleet_->AwaitJournal({vm_}, "stopped/intent", seconds(120)), vm_);
  auto pid = ReadFile("/run/libvirtd.pid");
  ASSERT_TRUE(pid.ok()) << "libvirtd is not run by scripts/services here";
  virConnectClose(conn_);
  ASSERT_EQ(kill(std::atoi(pid->c_str()), SIGTERM), 0);
  SubprocessRunner runner;
  // scripts/services starts libvirtd again once the old one is gone.
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (kill(std::atoi(pid->c_str()), 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto up = runner.RunOk({std::string(SOURCE_DIR) + "/scripts/services"});
  conn_ = virConnectOpen("qemu:///system");
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  Json r = fleet_->Watch(Id(started));
  fleet_->Cli({"rollout", "abort", std::to_string(Id(started))});
  const Json v = OnlyVm(r);
  std::printf("[info] libvirtd restarted: rollout %s, vm %s: %s\n", r.value("state", "").c_str(),
              v.value("state", "").c_str(), v.value("error", "").c_str());
  // The swap either finished or rolled back; either way the rollout ended, and the lost
  // channel was noticed at once rather than at the 90 s stop deadline.
  EXPECT_TRUE(v["state"] == "done" || v["state"] == "rolled_back") << r.dump();
  EXPECT_LT(v.value("finished_at_ms", int64_t{0}) - v.value("started_at_ms", int64_t{0}), 80000)
      << r.dump();
  Json j = fleet_->Inspect(vm_);
  EXPECT_EQ(j["state"], "running") << j.dump();
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  // One version: the one the VM's record names.
  const bool moved = v["state"] == "done";
  EXPECT_EQ(ParseHello(j).version, moved ? "2" : "slow") << j.dump();
  EXPECT_EQ(j["template"], moved ? to : before["template"].get<std::string>()) << j.dump();
  EXPECT_EQ(j["boot_id"], before["boot_id"]);
  EXPECT_EQ(j["disks"]["vdswap-data"], before["disks"]["vdswap-data"]) << j.dump();
}

// A host whose pool fills up during the OS image's upload: the create fails naming the
// volume and the host, no partial volume stays in the pool and nothing is recorded.
TEST_F(FaultTest, PoolFullDuringUploadFailsCleanly) {
  const std::string pool = "vdswap-ftfull-" + std::to_string(getpid());
  const std::string dir = "/var/lib/libvirt/images/vdswap-" + pool;
  std::filesystem::create_directories(dir);
  // 32 MiB: the 64 MiB test OS does not fit.
  ASSERT_EQ(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=32m,mode=0755"), 0)
      << std::strerror(errno);
  fleet_->Ok({"host", "add", "small", "--uri", "qemu:///system", "--pool", pool});
  const std::string name = vm_ + "-full";
  int rc = 0;
  fleet_->Cli({"vm", "create", name, "--template", "hello:1", "--host", "small"}, &rc);
  Json failed = fleet_->Cli({"vm", "inspect", name});
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    left.push_back(e.path().filename());
  }
  const int64_t recorded = HostImageRows(fleet_->daemon().state_dir(), "small");
  fleet_->Cli({"vm", "rm", "--delete-data", name});
  fleet_->Cli({"host", "rm", "small"});
  RemovePool({"small", "qemu:///system", pool});
  umount(dir.c_str());
  std::filesystem::remove_all(dir);

  EXPECT_EQ(rc, 1);
  const std::string error = failed.value("last_error", "");
  EXPECT_NE(error.find("os-"), std::string::npos) << failed.dump();
  EXPECT_NE(error.find("space"), std::string::npos) << failed.dump();
  EXPECT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_EQ(recorded, 0) << "an image was recorded on the full host";
  for (const auto& f : left) {
    EXPECT_EQ(f.rfind("os-", 0), std::string::npos) << "partial volume left: " << f;
  }
  std::printf("[info] pool full: %s\n", error.c_str());
}

// An app image volume whose bytes changed on the host after its upload: the swap sees the
// digest differ before attaching it, uploads it again and goes on with the right bytes.
TEST_F(FaultTest, CorruptedImageOnTheHostIsDetectedAndUploadedAgain) {
  fleet_->UseVersion({vm_}, "testos:1", "hello:1");
  fleet_->UseVersion({vm_}, "testos:1", "hello:2");
  Json before = fleet_->Inspect(vm_);
  std::string digest = fleet_->Ok({"image", "inspect", "hello:1"}).value("digest", "");
  if (digest.rfind("sha256:", 0) == 0) digest = digest.substr(7);
  ASSERT_GE(digest.size(), 16u);
  std::string pool_dir;
  std::string xml;
  ASSERT_EQ(Virsh({"pool-dumpxml", fleet_->pool()}, &xml), 0);
  pool_dir = xml.substr(xml.find("<path>") + 6, xml.find("</path>") - xml.find("<path>") - 6);
  const std::string volume = pool_dir + "/app-" + digest.substr(0, 16) + ".erofs";
  auto good = Sha256::OfFile(volume);
  ASSERT_TRUE(good.ok()) << volume;
  {
    // Flip 4 KiB in the middle of the image.
    std::fstream f(volume, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    std::string block(4096, '\0');
    f.seekg(size / 2);
    f.read(block.data(), static_cast<std::streamsize>(block.size()));
    for (auto& c : block) c = static_cast<char>(~c);
    f.seekp(size / 2);
    f.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  ASSERT_NE(*Sha256::OfFile(volume), *good);

  const std::string to = fleet_->NewVersion("testos:1", "hello:1");
  Json r = fleet_->Watch(Id(fleet_->StartRollout(to, {vm_}, kBbm)));
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(*Sha256::OfFile(volume), *good) << "the corrupt volume was not replaced";
  Json j = fleet_->Inspect(vm_);
  EXPECT_EQ(j["template"], to);
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  EXPECT_EQ(ParseHello(j).version, "1") << j.dump();
  ExpectDataKept(before, j, 1);
}

}  // namespace
}  // namespace vdswap::testing
