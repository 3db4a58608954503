// vdswapd SIGKILLed for real (core/kill_point.h) at every journal row of a make-before-break
// swap and at each point of an image upload, several times at the same point, on real
// libvirtd + QEMU (TCG) through the local host. After each series the daemon restarts
// without the kill point: the swap must resume to its pinned end (back then retried
// before switched/done, forward from it) and libvirtd must be the process it was: vdswapd
// reaches the agent and the pool's files without libvirt streams, so its death leaves
// libvirtd nothing to trip over.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>

#include "core/sha256.h"
#include "tests/integration/cli_fleet.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

// How many times the daemon is killed at one point before it may pass it.
constexpr int kKillsPerPoint = 3;

// libvirtd's pid from its pid file, checked to be a live libvirtd (-1 otherwise).
int LibvirtdPid() {
  std::ifstream f("/run/libvirtd.pid");
  int pid = -1;
  if (!(f >> pid)) return -1;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  return comm >> name && name == "libvirtd" ? pid : -1;
}

class CrashTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fleet_ = new CliFleet;
    prefix_ = "cr" + std::to_string(getpid());
    ASSERT_TRUE(fleet_->SetUp("crash"));
    fleet_->Ok({"vm", "create", Vm(), "--template", "hello:1"});
    libvirtd_ = LibvirtdPid();
    ASSERT_GT(libvirtd_, 0) << "libvirtd is not running";
  }
  static void TearDownTestSuite() {
    unsetenv("VDSWAPD_KILL_AT");
    fleet_->EnsureDaemon();
    for (const auto& [host, vm] : upload_hosts_) {
      fleet_->Cli({"vm", "rm", "--delete-data", vm});
      fleet_->Cli({"host", "rm", host});
      RemovePool({host, "qemu:///system", fleet_->pool() + "-" + host});
    }
    fleet_->TearDown({Vm()});
    delete fleet_;
  }
  void SetUp() override {
    unsetenv("VDSWAPD_KILL_AT");
    fleet_->EnsureDaemon();
    ASSERT_FALSE(HasFailure()) << "vdswapd is down";
  }

  static std::string Vm() { return prefix_ + "-1"; }

  // Starts a rollout of `vm` to `to` by a daemon that SIGKILLs itself at `point`, then
  // restarts it with the same point kKillsPerPoint - 1 more times (each run resumes the
  // swap and may be killed at the point again), then once without it. Returns the
  // rollout's end, watched; records how often the daemon died at the point.
  static Json RolloutKilledAt(const std::string& point, const std::string& to,
                              const std::string& vm, int* kills) {
    *kills = 0;
    setenv("VDSWAPD_KILL_AT", point.c_str(), 1);
    EXPECT_TRUE(fleet_->daemon().Restart());
    const int64_t id = fleet_->StartRollout(to, {vm}).value("id", 0);
    for (int run = 0; run < kKillsPerPoint; ++run) {
      if (run > 0 && !fleet_->daemon().Restart() && fleet_->daemon().WaitForExit(seconds(0)) < 0) {
        ADD_FAILURE() << "vdswapd did not start again";
      }
      if (!DiedAtPoint(id)) break;
      ++*kills;
    }
    unsetenv("VDSWAPD_KILL_AT");
    EXPECT_TRUE(fleet_->daemon().Restart());
    EXPECT_EQ(LibvirtdPid(), libvirtd_) << "libvirtd died with vdswapd (killed at " << point << ")";
    return fleet_->Watch(id);
  }

  // Waits until the daemon dies (true: by SIGKILL) or rollout `id` ends (false).
  static bool DiedAtPoint(int64_t id) {
    auto deadline = std::chrono::steady_clock::now() + seconds(180);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = fleet_->daemon().WaitForExit(std::chrono::milliseconds(200));
      if (status >= 0) {
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
        return true;
      }
      int rc = 0;
      Json r = fleet_->Cli({"rollout", "status", std::to_string(id)}, &rc);
      if (rc == 0 && r.value("state", "") != "running") return false;
    }
    ADD_FAILURE() << "the daemon neither died nor finished rollout " << id;
    return false;
  }

  static inline CliFleet* fleet_;
  static inline std::string prefix_;
  static inline int libvirtd_ = -1;
  static inline std::vector<std::pair<std::string, std::string>> upload_hosts_;
};

// The rows of a make-before-break app swap, in the order they are written.
const std::vector<std::string> kMakeBeforeBreakRows = {
    "checked/intent",  "checked/done",  "attached/intent", "attached/done",
    "prepared/intent", "prepared/done", "switched/intent", "switched/done",
    "released/intent", "released/done", "done/done"};

TEST_F(CrashTest, KilledAtEveryRowOfAMakeBeforeBreakSwapResumesToItsPinnedEnd) {
  const std::string apps[] = {"hello:1", "hello:2"};
  for (size_t i = 0; i < kMakeBeforeBreakRows.size(); ++i) {
    const std::string& row = kMakeBeforeBreakRows[i];
    SCOPED_TRACE("killed at " + row);
    Json before = fleet_->Inspect(Vm());
    const std::string app = apps[(i + 1) % 2];
    const std::string to = fleet_->NewVersion("testos:1", app);
    int kills = 0;
    Json r = RolloutKilledAt(row, to, Vm(), &kills);
    EXPECT_GE(kills, 1) << "the daemon never reached " << row;
    std::printf("[measure] killed %d times at %s\n", kills, row.c_str());
    EXPECT_EQ(r["state"], "succeeded") << r.dump();
    Json j = fleet_->Inspect(Vm());
    EXPECT_EQ(j["template"], to) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    EXPECT_EQ(ParseHello(j).version, app.substr(app.find(':') + 1)) << j.dump();
    EXPECT_EQ(j["boot_id"], before["boot_id"]) << "an app swap must not reboot";
    int app_disks = 0;
    for (const auto& [serial, volume] : j["disks"].items()) {
      app_disks += serial.rfind("vdswap-app", 0) == 0 ? 1 : 0;
    }
    EXPECT_EQ(app_disks, 1) << j.dump();
    // The pinned end: before switched/done the interrupted swap goes back (and the
    // rollout retries the VM); from it on, forward.
    std::vector<std::string> steps = fleet_->JournalSteps(Vm(), r.value("id", 0));
    const bool forward = i >= 7;
    EXPECT_EQ(std::count(steps.begin(), steps.end(), "rolled_back/done") > 0, !forward)
        << ::testing::PrintToString(steps);
    EXPECT_EQ(std::count(steps.begin(), steps.end(), "switched/done"), 1)
        << ::testing::PrintToString(steps);
    EXPECT_EQ(steps.back(), "done/done") << ::testing::PrintToString(steps);
  }
}

// A second host on this machine (its own pool) holds a VM on hello:1 only; the rollout to
// hello:2 uploads the new app disk there, and the daemon is killed at `point` of that
// upload. The upload is redone from the start and recorded once, with the image's bytes.
void ExpectUploadSurvivesKillsAt(CliFleet& fleet, const std::string& point, const std::string& host,
                                 const std::string& vm,
                                 const std::function<Json(const std::string&, int*)>& rollout) {
  SCOPED_TRACE("killed at " + point);
  const std::string pool = fleet.pool() + "-" + host;
  fleet.Ok({"host", "add", host, "--uri", "qemu:///system", "--pool", pool});
  const std::string from = fleet.NewVersion("testos:1", "hello:1");
  fleet.Ok({"vm", "create", vm, "--template", from, "--host", host});
  int kills = 0;
  Json r = rollout(fleet.NewVersion("testos:1", "hello:2"), &kills);
  EXPECT_GE(kills, 1) << "the daemon never reached " << point;
  std::printf("[measure] killed %d times at %s\n", kills, point.c_str());
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(ParseHello(fleet.Inspect(vm)).version, "2");
  // An app image's digest is the SHA-256 of its disk's bytes.
  std::string digest = fleet.Ok({"image", "inspect", "hello:2"}).value("digest", "");
  if (digest.rfind("sha256:", 0) == 0) digest = digest.substr(7);
  std::string volume;
  ASSERT_EQ(Virsh({"vol-path", "--pool", pool, "app-" + digest.substr(0, 16) + ".erofs"}, &volume),
            0);
  volume.erase(volume.find_last_not_of(" \n") + 1);
  auto on_host = Sha256::OfFile(volume);
  ASSERT_TRUE(on_host.ok()) << on_host.status().ToString();
  EXPECT_EQ(*on_host, digest) << volume;
}

TEST_F(CrashTest, KilledDuringAnUploadRedoesItAndKeepsLibvirtd) {
  for (const std::string point : {"upload/created", "upload/written"}) {
    const std::string host = "up" + std::to_string(upload_hosts_.size() + 1);
    const std::string vm = prefix_ + "-" + host;
    upload_hosts_.emplace_back(host, vm);
    ExpectUploadSurvivesKillsAt(*fleet_, point, host, vm, [&](const std::string& to, int* kills) {
      return RolloutKilledAt(point, to, vm, kills);
    });
  }
}

}  // namespace
}  // namespace vdswap::testing
