// Rollouts on real libvirtd + QEMU (TCG) through the CLI: six VMs of the test OS moved
// `--canary 1 --batch 2`. A good version succeeds with per-VM downtime and no reboot; a
// broken one with `--on-failure rollback` leaves every VM it touched back on the old
// version; a rollout whose daemon is SIGKILLed with swaps in flight completes after the
// restart with every count intact. The suite boots its VMs once; each test first puts
// them on the version it starts from (UseVersion).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "tests/integration/cli_fleet.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

constexpr int kVms = 6;

class RolloutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fleet_ = new CliFleet;
    prefix_ = "ro" + std::to_string(getpid());
    ASSERT_TRUE(fleet_->SetUp("ro"));
    Json created = fleet_->Ok({"vm", "create", "--count", std::to_string(kVms), "--prefix", prefix_,
                               "--template", "hello:1"});
    EXPECT_EQ(created["vms"].size(), static_cast<size_t>(kVms)) << created.dump();
  }
  static void TearDownTestSuite() {
    fleet_->TearDown(All());
    delete fleet_;
  }
  void SetUp() override { fleet_->EnsureDaemon(); }

  static std::string Vm(int i) { return prefix_ + "-" + std::to_string(i); }
  static std::vector<std::string> All() {
    std::vector<std::string> vms;
    for (int i = 1; i <= kVms; ++i) {
      vms.push_back(Vm(i));
    }
    return vms;
  }
  static std::map<std::string, Json> InspectAll() {
    std::map<std::string, Json> out;
    for (const auto& vm : All()) {
      out[vm] = fleet_->Inspect(vm);
    }
    return out;
  }
  // The rollout's VM entry for `vm`.
  static Json VmEntry(const Json& rollout, const std::string& vm) {
    for (const auto& v : rollout["vms"]) {
      if (v["vm"] == vm) return v;
    }
    ADD_FAILURE() << vm << " is not in " << rollout.dump();
    return Json::object();
  }
  // Starts a rollout of every VM to `to`: one canary watched for 1 s, then two VMs at a
  // time, break-before-make.
  static Json StartCanaryThenPairs(const std::string& to) {
    return fleet_->StartRollout(to, All(),
                                {"--canary", "1", "--canary-wait", "1s", "--batch", "2",
                                 "--swap-order", "break-before-make"});
  }
  static int Count(const Json& rollout, const std::string& state) {
    return rollout["counts"].value(state, 0);
  }
  static int SumOfCounts(const Json& rollout) {
    int sum = 0;
    for (const auto& [state, n] : rollout["counts"].items()) {
      sum += n.get<int>();
    }
    return sum;
  }
  static int Occurrences(const std::vector<std::string>& steps, const std::string& step) {
    return static_cast<int>(std::count(steps.begin(), steps.end(), step));
  }

  static inline CliFleet* fleet_;
  static inline std::string prefix_;
};

// hello:1 -> hello:2, one canary then two at a time: every VM on v2 with its downtime
// recorded, the same boot, the start counter on its data disk one higher.
TEST_F(RolloutTest, CanaryThenBatchesMovesEveryVm) {
  fleet_->UseVersion(All(), "testos:1", "hello:1");
  auto before = InspectAll();
  const std::string to = fleet_->NewVersion("testos:1", "hello:2");

  Json started = StartCanaryThenPairs(to);
  Json r = fleet_->Watch(started.value("id", 0));
  ASSERT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(Count(r, "done"), kVms) << r.dump();
  EXPECT_EQ(SumOfCounts(r), kVms) << r.dump();
  // Canary first: it ended before any other VM started.
  const Json canary = VmEntry(r, Vm(1));
  for (const auto& vm : All()) {
    const Json v = VmEntry(r, vm);
    EXPECT_EQ(v["state"], "done") << r.dump();
    ASSERT_TRUE(v["downtime_ms"].is_number()) << "no downtime recorded: " << v.dump();
    EXPECT_GE(v["downtime_ms"].get<int64_t>(), 0) << v.dump();
    if (vm != Vm(1)) {
      EXPECT_GE(v["started_at_ms"].get<int64_t>(), canary["finished_at_ms"].get<int64_t>())
          << vm << " started before the canary ended: " << r.dump();
    }
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], to) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    HelloView old_app = ParseHello(before[vm]), app = ParseHello(j);
    EXPECT_EQ(app.version, "2") << j.dump();
    EXPECT_EQ(app.starts, old_app.starts + 1) << "one start, on the same data disk: " << j.dump();
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << "an app swap must not reboot";
  }
  // Never more than two in flight: the swaps' [start, end] intervals overlap at most twice.
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& v : r["vms"]) {
    edges.emplace_back(v["started_at_ms"].get<int64_t>(), 1);
    edges.emplace_back(v["finished_at_ms"].get<int64_t>(), -1);
  }
  std::sort(edges.begin(), edges.end());
  int in_flight = 0, most = 0;
  for (const auto& e : edges) {
    in_flight += e.second;
    most = std::max(most, in_flight);
  }
  EXPECT_LE(most, 2) << r.dump();
  std::printf("[measure] 6-VM rollout: downtime p50 %s ms, max %s ms; %d swaps at once\n",
              r["downtime_ms"]["p50"].dump().c_str(), r["downtime_ms"]["max"].dump().c_str(), most);
}

// hello:2 -> hello:3-broken with --on-failure rollback and one failure tolerated: the
// canary and the first batch fail their health check, the budget is exceeded, and the
// rollout ends rolled_back. Every VM it touched is back on hello 2 (started twice more:
// the broken app, then hello 2 again); the VMs it never reached were not touched.
TEST_F(RolloutTest, BrokenVersionRollsBackExactlyTheMovedVms) {
  const std::string from = fleet_->UseVersion(All(), "testos:1", "hello:2");
  auto before = InspectAll();
  const std::string to = fleet_->NewVersion("testos:1", "hello:3-broken");

  Json started = fleet_->StartRollout(
      to, All(),
      {"--canary", "1", "--canary-wait", "1s", "--batch", "2", "--max-failures", "1",
       "--on-failure", "rollback", "--swap-order", "break-before-make"});
  const int64_t id = started.value("id", 0);
  Json r = fleet_->Watch(id);
  EXPECT_EQ(r["state"], "rolled_back") << r.dump();
  EXPECT_EQ(SumOfCounts(r), kVms) << r.dump();
  int touched = 0;
  for (const auto& vm : All()) {
    const Json v = VmEntry(r, vm);
    const std::vector<std::string> steps = fleet_->JournalSteps(vm, id);
    const bool moved = Occurrences(steps, "attached/done") > 0;
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], from) << j.dump();
    EXPECT_EQ(j["state"], "running") << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    EXPECT_EQ(ParseHello(j).version, "2") << j.dump();
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << j.dump();
    if (moved) {
      ++touched;
      EXPECT_EQ(v["state"], "rolled_back") << r.dump();
      EXPECT_NE(v.value("error", "").find("health check"), std::string::npos) << v.dump();
      EXPECT_EQ(ParseHello(j).starts, ParseHello(before[vm]).starts + 2) << j.dump();
    } else {
      EXPECT_TRUE(steps.empty()) << vm << " was touched: " << v.dump();
      EXPECT_NE(v["state"], "done") << v.dump();
      EXPECT_EQ(ParseHello(j).starts, ParseHello(before[vm]).starts) << j.dump();
    }
  }
  // The canary, then the first batch of two: the second failure exceeded the budget.
  EXPECT_EQ(touched, 3) << r.dump();
  EXPECT_EQ(Count(r, "rolled_back"), 3) << r.dump();
}

// A good version with one VM that cannot be swapped (stopped): the others move, the
// stopped one fails last, and --on-failure rollback swaps every moved VM back to its
// version: exactly the VMs the rollout moved are reverted, all end on the old version.
TEST_F(RolloutTest, FailureAfterMovesRevertsTheMovedVms) {
  const std::string from = fleet_->UseVersion(All(), "testos:1", "hello:2");
  auto before = InspectAll();
  const std::string to = fleet_->NewVersion("testos:1", "hello:1");
  fleet_->Ok({"vm", "stop", Vm(kVms)});

  Json started =
      fleet_->StartRollout(to, All(),
                           {"--canary", "1", "--canary-wait", "1s", "--batch", "2", "--on-failure",
                            "rollback", "--swap-order", "break-before-make"});
  Json r = fleet_->Watch(started.value("id", 0));
  fleet_->Ok({"vm", "start", Vm(kVms)});
  EXPECT_EQ(r["state"], "rolled_back") << r.dump();
  EXPECT_EQ(SumOfCounts(r), kVms) << r.dump();
  EXPECT_EQ(Count(r, "reverted"), kVms - 1) << r.dump();
  EXPECT_EQ(VmEntry(r, Vm(kVms))["state"], "failed") << r.dump();
  EXPECT_NE(VmEntry(r, Vm(kVms)).value("error", "").find("not running"), std::string::npos)
      << r.dump();
  for (int i = 1; i < kVms; ++i) {
    Json j = fleet_->Inspect(Vm(i));
    EXPECT_EQ(j["template"], from) << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    EXPECT_EQ(ParseHello(j).version, "2") << j.dump();
    // Moved to hello 1, then back to hello 2: two starts, no reboot.
    EXPECT_EQ(ParseHello(j).starts, ParseHello(before[Vm(i)]).starts + 2) << j.dump();
    EXPECT_EQ(j["boot_id"], before[Vm(i)]["boot_id"]) << j.dump();
  }
  Json stopped = fleet_->Inspect(Vm(kVms));
  EXPECT_EQ(stopped["template"], from) << stopped.dump();
}

// vdswapd is SIGKILLed while two VMs are in flight (hello:slow takes ~3 s to stop and ~3 s
// to become healthy, so swaps are provably mid-step) and restarted: the rollout completes,
// its counts add up to six, all done, every VM on the new version, and each VM's app
// started exactly as often as its journal says it was started.
TEST_F(RolloutTest, DaemonKilledMidRolloutCompletesWithCountsIntact) {
  fleet_->UseVersion(All(), "testos:1", "hello:slow");
  auto before = InspectAll();
  const std::string to = fleet_->NewVersion("testos:1", "hello:2");

  Json started = StartCanaryThenPairs(to);
  const int64_t id = started.value("id", 0);
  // Wait for the first batch after the canary: two VMs with swaps in flight, past their
  // checks, between stopping the old app and the new one's health.
  const std::set<std::string> kMidSwap = {"stopped/intent", "stopped/done",    "detached/intent",
                                          "detached/done",  "attached/intent", "attached/done",
                                          "started/intent"};
  auto deadline = std::chrono::steady_clock::now() + seconds(180);
  std::vector<std::string> in_flight;
  while (std::chrono::steady_clock::now() < deadline) {
    in_flight.clear();
    for (int i = 2; i <= kVms; ++i) {
      const std::string step = fleet_->LastStep(Vm(i));
      if (kMidSwap.count(step) != 0) in_flight.push_back(Vm(i));
    }
    if (in_flight.size() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(in_flight.size(), 2u) << "never two swaps in flight";
  fleet_->daemon().Kill();
  for (const auto& vm : in_flight) {
    const std::string step = fleet_->LastStep(vm);
    EXPECT_NE(step, "done/done") << vm << ": the kill landed after its swap";
    std::printf("[info] killed with %s at %s\n", vm.c_str(), step.c_str());
  }
  ASSERT_TRUE(fleet_->daemon().Restart());

  Json r = fleet_->Watch(id);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(SumOfCounts(r), kVms) << r.dump();
  EXPECT_EQ(Count(r, "done"), kVms) << r.dump();
  EXPECT_TRUE(r["in_flight"].empty()) << r.dump();
  for (const auto& vm : All()) {
    Json j = fleet_->Inspect(vm);
    EXPECT_EQ(j["template"], to) << j.dump();
    EXPECT_EQ(j["state"], "running") << j.dump();
    EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
    EXPECT_EQ(ParseHello(j).version, "2") << j.dump();
    EXPECT_EQ(j["boot_id"], before[vm]["boot_id"]) << "no reboot: " << j.dump();
    EXPECT_EQ(fleet_->LastStep(vm), "done/done");
    // Each started/done is one start of the new app; each rolled_back/done one restart of
    // the old one (an interrupted swap goes back, then is retried). Nothing else starts it.
    const std::vector<std::string> steps = fleet_->JournalSteps(vm, id);
    const int expected = Occurrences(steps, "done/done") + Occurrences(steps, "rolled_back/done");
    EXPECT_EQ(Occurrences(steps, "done/done"), 1) << vm << " finished twice";
    EXPECT_EQ(ParseHello(j).starts, ParseHello(before[vm]).starts + expected)
        << vm << " started more often than its journal says: " << j.dump();
  }
}

}  // namespace
}  // namespace vdswap::testing
