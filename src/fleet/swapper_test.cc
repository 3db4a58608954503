#include "fleet/swapper.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

using Op = FakeHypervisor::Op;

const HostRef kH1{"h1", "fake:///", "p"};
constexpr SwapOrder kBbm = SwapOrder::kBreakBeforeMake;

std::string Basename(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// What the VM is now, as the store and the hypervisor see it.
struct Observed {
  int64_t version = 0;
  VmState state = VmState::kFailed;
  std::string os_volume;  // recorded
  bool running = false;
  // Attached, by volume name ("" when none); app disks of both slots joined by "+".
  std::string app_disk, os_disk;
  bool data_attached = false;
};

Observed Observe(FleetTestbed& tb, const std::string& vm = "vm1") {
  Observed o;
  auto rec = tb.vms.Get(vm);
  EXPECT_TRUE(rec.ok());
  o.version = rec->version;
  o.state = rec->state;
  o.os_volume = rec->os_volume;
  auto live = tb.hv.GetState(kH1, vm);
  EXPECT_TRUE(live.ok());
  o.running = live->running;
  for (const char* serial : {kAppSerial, kAppSerialB}) {
    if (const DiskSpec* d = live->Disk(serial)) {
      o.app_disk += (o.app_disk.empty() ? "" : "+") + Basename(d->path);
    }
  }
  if (const DiskSpec* d = live->Disk(kOsSerial)) o.os_disk = Basename(d->path);
  o.data_attached = live->Disk(kDataSerial) != nullptr;
  return o;
}

// The store and the hypervisor agree on version `version` (OS overlay of `os_version`),
// and the guest runs the app of that version.
void ExpectConsistentAt(FleetTestbed& tb, int64_t version, int64_t os_version) {
  Observed o = Observe(tb);
  EXPECT_EQ(o.version, version);
  EXPECT_EQ(o.state, VmState::kRunning);
  EXPECT_TRUE(o.running);
  EXPECT_EQ(o.app_disk, tb.AppVolume(version));
  EXPECT_EQ(o.os_disk, OsOverlayVolume("vm1", os_version));
  EXPECT_EQ(o.os_volume, OsOverlayVolume("vm1", os_version));
  EXPECT_TRUE(o.data_attached);
  EXPECT_EQ(tb.hv.Guest("vm1").app_state, AppState::kRunning);
  EXPECT_EQ(tb.hv.Guest("vm1").app_version, tb.AppVolume(version));
}

class SwapperTest : public ::testing::Test {
 protected:
  void SetUp() override { tb_.CreateVms({"vm1"}); }

  // Swaps vm1 to web:`version` in the daemon's default order; break-before-make tests say so.
  Result<SwapOutcome> SwapTo(int64_t version, SwapOrder order = SwapOrder::kMakeBeforeBreak) {
    auto t = tb_.templates.Get("web:" + std::to_string(version));
    EXPECT_TRUE(t.ok());
    return tb_.swapper.Swap("vm1", *t, 0, nullptr, order);
  }
  // How many calls the fake hypervisor got that match `want` (FakeHypervisor::Call).
  size_t Count(const FakeHypervisor::Call& want) { return tb_.hv.CountCalls(want); }
  bool DataDiskEverDetached() { return Count({Op::kDetach, "", "vm1", kDataSerial}) > 0; }

  FleetTestbed tb_;
};

TEST_F(SwapperTest, AppSwapHotSwapsWithoutReboot) {
  std::string boot = tb_.hv.Guest("vm1").boot_id;
  auto out = SwapTo(2, kBbm);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kDone);
  EXPECT_GE(out->downtime_ms, 0);
  ExpectConsistentAt(tb_, 2, 1);
  EXPECT_EQ(tb_.hv.Guest("vm1").boot_id, boot);
  EXPECT_EQ(tb_.hv.Guest("vm1").starts, 2);
  EXPECT_EQ(Count({Op::kDefineAndStart}), 1u);  // only the create
  EXPECT_EQ(Count({Op::kAttach, "", "vm1", kAppSerial, tb_.AppVolume(2)}), 1u);
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, UnhealthyAppRollsBack) {
  auto out = SwapTo(3, kBbm);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kRolledBack);
  EXPECT_FALSE(out->error.empty());
  ExpectConsistentAt(tb_, 1, 1);
  EXPECT_EQ(tb_.vms.Get("vm1")->last_error, out->error);
  // v3 was attached and started, then v1 attached again.
  EXPECT_EQ(Count({Op::kAttach, "", "vm1", kAppSerial, tb_.AppVolume(3)}), 1u);
  EXPECT_EQ(Count({Op::kAttach, "", "vm1", kAppSerial, tb_.AppVolume(1)}), 1u);
}

TEST_F(SwapperTest, EveryStepFailureRollsBack) {
  for (Op op : {Op::kAppStop, Op::kDetach, Op::kAttach, Op::kAppStart}) {
    tb_.hv.FailNext(op, Internal("injected"));
    auto out = SwapTo(2, kBbm);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->result, SwapResult::kRolledBack);
    ExpectConsistentAt(tb_, 1, 1);
  }
  EXPECT_FALSE(DataDiskEverDetached());
}

// The host drops off as the new app starts (libvirtd restarting): the rollback cannot
// reach it at first and is tried again until it can, ending on the old version, running.
TEST_F(SwapperTest, RollbackWaitsForAnUnreachableHost) {
  tb_.hv.UnreachableAfter(Op::kAppStart, std::chrono::seconds(10));
  auto out = SwapTo(2, kBbm);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kRolledBack) << out->error;
  EXPECT_NE(out->error.find("host unreachable"), std::string::npos) << out->error;
  ExpectConsistentAt(tb_, 1, 1);
  EXPECT_EQ(tb_.vms.Get("vm1")->state, VmState::kRunning);
}

// A VM that is off (QEMU killed) while its host answers: the rollback is not retried.
TEST_F(SwapperTest, RollbackOfAVmThatIsOffFailsAtOnce) {
  tb_.hv.HangNext(Op::kAppStart);                                          // the new app
  tb_.hv.FailNext(Op::kAppStart, Unavailable("vm 'vm1' is not running"));  // the old one
  const auto t0 = tb_.clock.Now();
  auto out = SwapTo(2, kBbm);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kFailed) << out->error;
  EXPECT_LT(tb_.clock.Now() - t0, std::chrono::seconds(60));
}

TEST_F(SwapperTest, SilentAgentRollsBack) {
  tb_.hv.HangNext(Op::kAppStart);
  auto out = SwapTo(2, kBbm);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kRolledBack);
  EXPECT_EQ(tb_.vms.Get("vm1")->last_error, out->error);
  ExpectConsistentAt(tb_, 1, 1);
}

TEST_F(SwapperTest, FailedRollbackLeavesVmFailedWithBothReasons) {
  tb_.hv.FailNext(Op::kAttach, Internal("attach broke"));
  tb_.hv.SetUnhealthyApp(tb_.AppVolume(1));  // the old version cannot come back either
  auto out = SwapTo(3, kBbm);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kFailed);
  EXPECT_EQ(tb_.vms.Get("vm1")->state, VmState::kFailed);
  EXPECT_EQ(tb_.vms.Get("vm1")->version, 1);
  EXPECT_NE(out->error.find("attach broke"), std::string::npos) << out->error;
  EXPECT_NE(out->error.find("rollback failed"), std::string::npos) << out->error;
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, MakeBeforeBreakUnplugsTheOldDiskOnlyAfterTheNewAppIsHealthy) {
  std::string boot = tb_.hv.Guest("vm1").boot_id;
  auto out = SwapTo(2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kDone) << out->error;
  ExpectConsistentAt(tb_, 2, 1);
  EXPECT_EQ(tb_.hv.Guest("vm1").boot_id, boot);
  int64_t attach = tb_.hv.FirstCall({Op::kAttach, "", "vm1", kAppSerialB, tb_.AppVolume(2)});
  int64_t prepare = tb_.hv.FirstCall({Op::kAppPrepare, "", "vm1", kAppSerialB});
  int64_t sw = tb_.hv.FirstCall({Op::kAppSwitch, "", "vm1", kAppSerialB});
  int64_t release = tb_.hv.FirstCall({Op::kAppRelease, "", "vm1", kAppSerial});
  int64_t detach = tb_.hv.FirstCall({Op::kDetach, "", "vm1", kAppSerial});
  ASSERT_GE(attach, 0);
  EXPECT_LT(attach, prepare);
  EXPECT_LT(prepare, sw);
  EXPECT_LT(sw, release);
  EXPECT_LT(release, detach);
  EXPECT_EQ(Count({Op::kAppStop}), 0u);
  // The next swap alternates back to the first slot.
  out = SwapTo(1);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kDone) << out->error;
  EXPECT_EQ(Count({Op::kAttach, "", "vm1", kAppSerial, tb_.AppVolume(1)}), 1u);
  EXPECT_EQ(Count({Op::kDetach, "", "vm1", kAppSerialB}), 1u);
  ExpectConsistentAt(tb_, 1, 1);
}

TEST_F(SwapperTest, MakeBeforeBreakRollsBackBySwitchingBackWithoutHotPlug) {
  auto out = SwapTo(3);  // web:3 never gets healthy
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kRolledBack);
  ExpectConsistentAt(tb_, 1, 1);
  EXPECT_EQ(Count({Op::kAppSwitch, "", "vm1", kAppSerialB}), 1u);
  EXPECT_EQ(Count({Op::kAppSwitch, "", "vm1", kAppSerial}), 1u);  // the switch back
  EXPECT_EQ(Count({Op::kDetach, "", "vm1", kAppSerialB}), 1u);    // the new disk went
  EXPECT_EQ(Count({Op::kDetach, "", "vm1", kAppSerial}), 0u);     // and only it
  EXPECT_EQ(Count({Op::kAttach, "", "vm1", kAppSerial, tb_.AppVolume(1)}), 0u);  // no re-plug
}

TEST_F(SwapperTest, EveryMakeBeforeBreakStepFailureRollsBack) {
  for (Op op : {Op::kAttach, Op::kAppPrepare, Op::kAppSwitch, Op::kAppRelease}) {
    tb_.hv.FailNext(op, Internal("injected"));
    auto out = SwapTo(2);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->result, SwapResult::kRolledBack) << "failing " << static_cast<int>(op);
    ExpectConsistentAt(tb_, 1, 1);
  }
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, OsSwapRebootsOntoANewOverlayKeepingData) {
  std::string boot = tb_.hv.Guest("vm1").boot_id;
  uint64_t uploaded = tb_.hv.UploadedBytes("h1");
  auto out = SwapTo(4);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kDone) << out->error;
  ExpectConsistentAt(tb_, 4, 4);
  EXPECT_NE(tb_.hv.Guest("vm1").boot_id, boot);
  // The old overlay stays for rollback.
  EXPECT_TRUE(tb_.hv.FindVolume(kH1, OsOverlayVolume("vm1", 1)).ok());
  // Only what h1 lacked (OS 2, app 2) was uploaded, once.
  auto calls = tb_.hv.Calls();
  EXPECT_EQ(std::count_if(calls.begin(), calls.end(),
                          [](const FakeHypervisor::Call& c) {
                            return c.op == Op::kUpload && c.host == "h1" &&
                                   c.volume.rfind("os-", 0) == 0;
                          }),
            2);  // OS 1 at create, OS 2 now
  EXPECT_GT(tb_.hv.UploadedBytes("h1"), uploaded);
  EXPECT_FALSE(DataDiskEverDetached());
}

TEST_F(SwapperTest, OsSwapFailureRestoresOldOverlay) {
  tb_.hv.FailNext(Op::kAppStart, Internal("not healthy on the new OS"));
  auto out = SwapTo(4);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, SwapResult::kRolledBack);
  ExpectConsistentAt(tb_, 1, 1);
}

TEST_F(SwapperTest, EveryOsSwapStepFailureRestoresTheOldVersion) {
  for (Op op :
       {Op::kAppStop, Op::kShutdown, Op::kCreateVolume, Op::kDefineAndStart, Op::kOpenAgent}) {
    tb_.hv.FailNext(op, Unavailable("injected"));
    auto out = SwapTo(4);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->result, SwapResult::kRolledBack) << out->error;
    ExpectConsistentAt(tb_, 1, 1);
    // The failed attempt's overlay is left for the next try to replace.
  }
  EXPECT_FALSE(DataDiskEverDetached());
}

// A hostile guest's ok reply proves only what it says: a switch answered "ok" with the app
// failed is a failed switch, and the swap goes back.
TEST_F(SwapperTest, AnOkReplySayingTheAppFailedRollsBack) {
  bool lied = false;  // to the first switch (to the new app), not to the switch back
  tb_.hv.SetReplyRewrite([&lied](AgentOp op, const std::string& line) -> std::string {
    if (op != AgentOp::kAppSwitch || lied) return line;
    lied = true;
    AppStatus lie;
    lie.state = AppState::kFailed;
    lie.version = "other";
    return EncodeReply(1, ToJson(lie));
  });
  auto out = SwapTo(2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kRolledBack) << out->error;
  EXPECT_NE(out->error.find("answered 'app.switch' with the app failed and not healthy"),
            std::string::npos)
      << out->error;
}

// A reply nested deeper than any reply is refused before it is parsed: the swap rolls
// back and the daemon goes on.
TEST_F(SwapperTest, ADeeplyNestedReplyRollsBackTheSwapNotTheDaemon) {
  bool lied = false;
  tb_.hv.SetReplyRewrite([&lied](AgentOp op, const std::string& line) -> std::string {
    if (op != AgentOp::kAppPrepare || lied) return line;
    lied = true;
    return R"({"id":1,"ok":true,"result":)" + std::string(200000, '[') + std::string(200000, ']') +
           "}";
  });
  auto out = SwapTo(2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result, SwapResult::kRolledBack) << out->error;
  EXPECT_NE(out->error.find("nests deeper than 16 levels"), std::string::npos) << out->error;
  ExpectConsistentAt(tb_, 1, 1);
}

TEST_F(SwapperTest, UnfinishedSwapBlocksANewOne) {
  tb_.swapper.SetCrashHook([](SwapStep s, SwapPhase) { return s == SwapStep::kStopped; });
  ASSERT_FALSE(SwapTo(2, kBbm).ok());
  tb_.swapper.SetCrashHook(nullptr);
  EXPECT_EQ(SwapTo(2, kBbm).status().code(), Code::kFailedPrecondition);
}

TEST_F(SwapperTest, RemovingAVmDropsItsJournal) {
  ASSERT_TRUE(SwapTo(2, kBbm).ok());
  ASSERT_TRUE(tb_.journal.Last("vm1")->has_value());
  ASSERT_TRUE(tb_.vms.Remove("vm1", true).ok());
  EXPECT_FALSE(tb_.journal.Last("vm1")->has_value());
}

// The engine dies after one journal write; a fresh engine resumes. Each crash point pins
// the direction: forward exactly when the new app disk (app swap) or the VM defined on the
// new OS overlay (OS swap) is in place at that write, back otherwise.
struct CrashPoint {
  int64_t to;
  SwapStep step;
  SwapPhase phase;
  bool forward;
  SwapOrder order = SwapOrder::kBreakBeforeMake;
  std::optional<Op> fail;  // fails once, so that the swap rolls back
};

SwapKind KindOf(const CrashPoint& c) { return KindOf(c.to == 4, c.order); }

void PrintTo(const CrashPoint& c, std::ostream* os) {
  *os << SwapOrderName(c.order) << " to v" << c.to << ", crash after '" << SwapStepName(c.step)
      << "' " << SwapPhaseName(c.phase) << ", expect " << (c.forward ? "forward" : "back");
}

class SwapCrashTest : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(SwapCrashTest, ResumesInThePinnedDirection) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  const CrashPoint& c = GetParam();
  tb.swapper.SetCrashHook(
      [&c](SwapStep step, SwapPhase phase) { return step == c.step && phase == c.phase; });
  if (c.fail) tb.hv.FailNext(*c.fail, Internal("injected"));
  auto t = tb.templates.Get("web:" + std::to_string(c.to));
  auto crashed = tb.swapper.Swap("vm1", *t, 0, nullptr, c.order);
  ASSERT_FALSE(crashed.ok()) << "the crash point was never reached";

  // A fresh engine (as after a daemon restart) over the same store and hypervisor, with
  // a fresh journal: entries the dead one held back for grouping are lost, as in a crash.
  SwapJournal journal(*tb.db);
  auto fresh = tb.NewSwapper(journal);
  auto unfinished = fresh->Unfinished();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(*unfinished, std::vector<std::string>{"vm1"});
  auto resumed = fresh->Resume("vm1");
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->result, c.forward ? SwapResult::kDone : SwapResult::kRolledBack)
      << resumed->error;
  int64_t version = c.forward ? c.to : 1;
  int64_t os_version = c.forward && c.to == 4 ? 4 : 1;
  ExpectConsistentAt(tb, version, os_version);
  EXPECT_TRUE(fresh->Unfinished()->empty());
  auto last = SwapJournal(*tb.db).Last("vm1");
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->step, c.forward ? SwapStep::kDone : SwapStep::kRolledBack);
}

std::vector<CrashPoint> AllCrashPoints() {
  using S = SwapStep;
  constexpr SwapPhase kI = SwapPhase::kIntent, kD = SwapPhase::kDone;
  constexpr SwapOrder kMbb = SwapOrder::kMakeBeforeBreak;
  return {
      // App hot swap: forward once the new app disk is attached.
      {2, S::kChecked, kI, false},
      {2, S::kChecked, kD, false},
      {2, S::kStopped, kI, false},
      {2, S::kStopped, kD, false},
      {2, S::kDetached, kI, false},
      {2, S::kDetached, kD, false},
      {2, S::kAttached, kI, false},
      {2, S::kAttached, kD, true},
      {2, S::kStarted, kI, true},
      {2, S::kStarted, kD, true},
      // OS swap: forward once the VM is defined on the new overlay (started runs that).
      {4, S::kChecked, kI, false},
      {4, S::kChecked, kD, false},
      {4, S::kStopped, kI, false},
      {4, S::kStopped, kD, false},
      {4, S::kShutdown, kI, false},
      {4, S::kShutdown, kD, false},
      {4, S::kOverlay, kI, false},
      {4, S::kOverlay, kD, false},
      {4, S::kStarted, kI, false},
      {4, S::kStarted, kD, true},
      // A crash inside a rollback (web:3 never gets healthy, the OS swap fails its first
      // health check) finishes the rollback.
      {3, S::kRollingBack, kI, false},
      {4, S::kRollingBack, kI, false, SwapOrder::kBreakBeforeMake, Op::kAppStart},
      // Make-before-break: forward once the new app was healthy (switched done); before
      // that the old disk is still in and a switch back restores it.
      {2, S::kChecked, kI, false, kMbb},
      {2, S::kChecked, kD, false, kMbb},
      {2, S::kAttached, kI, false, kMbb},
      {2, S::kAttached, kD, false, kMbb},
      {2, S::kPrepared, kI, false, kMbb},
      {2, S::kPrepared, kD, false, kMbb},
      {2, S::kSwitched, kI, false, kMbb},
      {2, S::kSwitched, kD, true, kMbb},
      {2, S::kReleased, kI, true, kMbb},
      {2, S::kReleased, kD, true, kMbb},
      {3, S::kRollingBack, kI, false, kMbb},
  };
}

// Every entry a swap of each kind writes, clean or rolled back, has its row in the crash
// table above: a new step cannot go untested unnoticed. Terminal entries end the swap and
// leave nothing to resume.
TEST(SwapCrashTableTest, HasARowForEveryEntryEverySwapKindWrites) {
  std::set<std::tuple<SwapKind, SwapStep, SwapPhase>> rows;
  for (const CrashPoint& c : AllCrashPoints()) rows.insert({KindOf(c), c.step, c.phase});
  struct Swap {
    int64_t to;
    SwapOrder order;
    std::optional<Op> fail;  // makes the swap roll back
  };
  constexpr SwapOrder kMbb = SwapOrder::kMakeBeforeBreak;
  for (const Swap& swap : {Swap{2, kBbm, {}}, Swap{3, kBbm, {}}, Swap{2, kMbb, {}},
                           Swap{3, kMbb, {}}, Swap{4, kBbm, {}}, Swap{4, kBbm, Op::kAppStart}}) {
    FleetTestbed tb;
    tb.CreateVms({"vm1"});
    if (swap.fail) tb.hv.FailNext(*swap.fail, Internal("injected"));
    const SwapKind kind =
        KindOf({swap.to, SwapStep::kChecked, SwapPhase::kIntent, false, swap.order});
    std::vector<std::pair<SwapStep, SwapPhase>> written;
    tb.swapper.SetCrashHook([&written](SwapStep step, SwapPhase phase) {
      written.emplace_back(step, phase);
      return false;
    });
    auto t = tb.templates.Get("web:" + std::to_string(swap.to));
    ASSERT_TRUE(tb.swapper.Swap("vm1", *t, 0, nullptr, swap.order).ok());
    ASSERT_FALSE(written.empty());
    for (const auto& [step, phase] : written) {
      if (JournalEntry{"vm1", 0, step, phase}.IsTerminal()) continue;
      EXPECT_TRUE(rows.count({kind, step, phase}))
          << "the crash table has no row for " << SwapKindName(kind) << " at " << SwapStepName(step)
          << "/" << SwapPhaseName(phase);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryJournalWrite, SwapCrashTest, ::testing::ValuesIn(AllCrashPoints()),
                         [](const ::testing::TestParamInfo<CrashPoint>& i) {
                           return std::string(i.param.order == SwapOrder::kMakeBeforeBreak ? "mbb_"
                                                                                           : "") +
                                  "to" + std::to_string(i.param.to) + "_" +
                                  std::string(SwapStepName(i.param.step)) + "_" +
                                  std::string(SwapPhaseName(i.param.phase));
                         });

}  // namespace
}  // namespace vdswap::testing
