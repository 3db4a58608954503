#include "fleet/swapper.h"

#include <gtest/gtest.h>

#include "fleet/fleet_testbed.h"

namespace vdswap::testing {
namespace {

using Op = FakeHypervisor::Op;

class SwapperTest : public ::testing::Test {
 protected:
  void SetUp() override { tb_.CreateVms({"vm1"}); }

  Result<SwapOutcome> SwapTo(int64_t version) {
    auto t = tb_.templates->Get("web:" + std::to_string(version));
    EXPECT_TRUE(t.ok());
    return tb_.swapper->Swap("vm1", *t, 0, nullptr);
  }
  int64_t Version() { return tb_.vms->Get("vm1")->version; }
  // The store and the hypervisor agree on one version, and the app runs.
  void ExpectConsistentAt(int64_t version) {
    EXPECT_EQ(Version(), version);
    auto live = tb_.hv.GetState({"h1", "fake:///", "p"}, "vm1");
    ASSERT_TRUE(live.ok());
    ASSERT_NE(live->Disk(kAppSerial), nullptr);
    EXPECT_NE(live->Disk(kAppSerial)->path.find(tb_.AppVolume(version)), std::string::npos);
    EXPECT_NE(live->Disk(kDataSerial), nullptr);
    EXPECT_EQ(tb_.hv.Guest("vm1").app_state, "running");
    EXPECT_EQ(tb_.hv.Guest("vm1").app_version, tb_.AppVolume(version));
  }
  bool DataDiskEverDetached() {
    for (const auto& l : tb_.hv.Log()) {
      if (l.find("detach") == 0 && l.find(kDataSerial) != std::string::npos) return true;
    }
    return false;
  }

  FleetTestbed tb_;
};

TEST_F(SwapperTest, AppSwapHotSwapsWithoutReboot) {
  std::string boot = tb_.hv.Guest("vm1").boot_id;
  auto out = SwapTo(2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->state, "done");
  EXPECT_GE(out->downtime_ms, 0);
  ExpectConsistentAt(2);
  EXPECT_EQ(tb_.hv.Guest("vm1").boot_id, boot);
  EXPECT_EQ(tb_.hv.Guest("vm1").starts, 2);
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, UnhealthyAppRollsBack) {
  auto out = SwapTo(3);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state, "rolled_back");
  EXPECT_NE(out->error.find("health check did not pass"), std::string::npos) << out->error;
  ExpectConsistentAt(1);
  EXPECT_EQ(tb_.vms->Get("vm1")->last_error, out->error);
}

TEST_F(SwapperTest, EveryStepFailureRollsBack) {
  for (Op op : {Op::kAppStop, Op::kDetach, Op::kAttach, Op::kAppStart}) {
    tb_.hv.FailNext(op, Internal("injected"));
    auto out = SwapTo(2);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->state, "rolled_back");
    ExpectConsistentAt(1);
  }
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, SilentAgentRollsBack) {
  tb_.hv.HangNext(Op::kAppStart);
  auto out = SwapTo(2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state, "rolled_back");
  EXPECT_NE(out->error.find("no answer"), std::string::npos);
  ExpectConsistentAt(1);
}

TEST_F(SwapperTest, FailedRollbackLeavesVmFailedWithBothReasons) {
  tb_.hv.FailNext(Op::kAttach, Internal("attach broke"));
  tb_.hv.SetUnhealthyApp(tb_.AppVolume(1));  // the old version cannot come back either
  auto out = SwapTo(3);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state, "failed");
  EXPECT_EQ(tb_.vms->Get("vm1")->state, "failed");
  EXPECT_NE(out->error.find("rollback failed"), std::string::npos);
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, OsSwapRebootsOntoANewOverlayKeepingData) {
  std::string boot = tb_.hv.Guest("vm1").boot_id;
  auto out = SwapTo(4);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->state, "done") << out->error;
  ExpectConsistentAt(4);
  EXPECT_NE(tb_.hv.Guest("vm1").boot_id, boot);
  EXPECT_EQ(tb_.vms->Get("vm1")->os_volume, OsOverlayVolume("vm1", 4));
  // The old overlay stays for rollback.
  EXPECT_TRUE(tb_.hv.FindVolume({"h1", "fake:///", "p"}, OsOverlayVolume("vm1", 1)).ok());
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, OsSwapFailureRestoresOldOverlay) {
  tb_.hv.FailNext(Op::kAppStart, Internal("not healthy on the new OS"));
  auto out = SwapTo(4);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state, "rolled_back");
  ExpectConsistentAt(1);
  auto live = tb_.hv.GetState({"h1", "fake:///", "p"}, "vm1");
  EXPECT_NE(live->Disk(kOsSerial)->path.find(OsOverlayVolume("vm1", 1)), std::string::npos);
}

TEST_F(SwapperTest, EveryOsSwapStepFailureRestoresTheOldVersion) {
  for (Op op :
       {Op::kAppStop, Op::kShutdown, Op::kCreateVolume, Op::kDefineAndStart, Op::kOpenAgent}) {
    tb_.hv.FailNext(op, Unavailable("injected"));
    auto out = SwapTo(4);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->state, "rolled_back") << out->error;
    ExpectConsistentAt(1);
    // The failed attempt's overlay is left for the next try to replace.
  }
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, UnfinishedSwapBlocksANewOne) {
  tb_.swapper->SetCrashHook(
      [](const std::string& s, const std::string&) { return s == "stopped"; });
  ASSERT_FALSE(SwapTo(2).ok());
  tb_.swapper->SetCrashHook(nullptr);
  EXPECT_EQ(SwapTo(2).status().code(), Code::kFailedPrecondition);
}

// The engine dies after each journal write of each step; a new engine resumes, and the VM
// always ends on exactly one version with its app running.
struct CrashPoint {
  int64_t to;
  std::string step, phase;
};

void PrintTo(const CrashPoint& c, std::ostream* os) {
  *os << "to v" << c.to << ", crash after '" << c.step << "' " << c.phase;
}

class SwapCrashTest : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(SwapCrashTest, ResumesToOneConsistentVersion) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  const CrashPoint& c = GetParam();
  tb.swapper->SetCrashHook([&c](const std::string& step, const std::string& phase) {
    return step == c.step && phase == c.phase;
  });
  auto t = tb.templates->Get("web:" + std::to_string(c.to));
  auto crashed = tb.swapper->Swap("vm1", *t, 0, nullptr);
  ASSERT_FALSE(crashed.ok()) << "the crash point was never reached";
  EXPECT_NE(crashed.status().message().find("injected crash"), std::string::npos);

  // A fresh engine (as after a daemon restart) over the same store and hypervisor.
  Swapper fresh(*tb.db, *tb.vms, *tb.templates, Swapper::Options{});
  auto unfinished = fresh.Unfinished();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(*unfinished, std::vector<std::string>{"vm1"});
  auto resumed = fresh.Resume("vm1");
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_TRUE(resumed->state == "done" || resumed->state == "rolled_back") << resumed->state;
  int64_t version = tb.vms->Get("vm1")->version;
  EXPECT_EQ(version, resumed->state == "done" ? c.to : 1);
  auto live = tb.hv.GetState({"h1", "fake:///", "p"}, "vm1");
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(live->running);
  ASSERT_NE(live->Disk(kAppSerial), nullptr);
  EXPECT_NE(live->Disk(kAppSerial)->path.find(tb.AppVolume(version)), std::string::npos);
  ASSERT_NE(live->Disk(kDataSerial), nullptr);
  EXPECT_EQ(tb.hv.Guest("vm1").app_state, "running");
  EXPECT_TRUE(fresh.Unfinished()->empty());
}

std::vector<CrashPoint> AllCrashPoints() {
  std::vector<CrashPoint> out;
  for (const char* step : {"checked", "stopped", "detached", "attached", "started"}) {
    for (const char* phase : {"intent", "done"}) out.push_back({2, step, phase});
  }
  for (const char* step : {"checked", "stopped", "shutdown", "overlay", "started"}) {
    for (const char* phase : {"intent", "done"}) out.push_back({4, step, phase});
  }
  // Crashes inside a rollback (web:3 never gets healthy).
  out.push_back({3, "rolling_back", "intent"});
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryJournalWrite, SwapCrashTest, ::testing::ValuesIn(AllCrashPoints()),
                         [](const ::testing::TestParamInfo<CrashPoint>& i) {
                           return "to" + std::to_string(i.param.to) + "_" + i.param.step + "_" +
                                  i.param.phase;
                         });

}  // namespace
}  // namespace vdswap::testing
