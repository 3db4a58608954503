#include "rollout/rollout_engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

// Holds a swap at one journal write until the test releases it: a VM provably in flight.
class SwapLatch {
 public:
  // Installs itself as `swapper`'s crash hook, holding the first swap at (step, phase).
  SwapLatch(Swapper& swapper, SwapStep step, SwapPhase phase) {
    swapper.SetCrashHook([this, step, phase](SwapStep s, SwapPhase p) {
      if (s != step || p != phase) return false;
      std::unique_lock lock(mu_);
      if (used_) return false;
      used_ = true;
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
      return false;
    });
  }
  // True once a swap is held; false when none got there within `timeout` (real time: the
  // rollout runs on its own thread).
  bool AwaitHeld(seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool used_ = false, held_ = false, released_ = false;
};

class RolloutEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<RolloutEngine> NewEngine() { return tb_.NewRolloutEngine(tb_.swapper); }
  RolloutVmState VmStateIn(int64_t id, size_t i) { return store_.Get(id)->vms.at(i).state; }

  FleetTestbed tb_;
  RolloutStore& store_ = tb_.rollout_store;
};

TEST_F(RolloutEngineTest, MovesEveryVmAndReportsDowntime) {
  tb_.CreateVms({"a", "b", "c"});
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  engine->Wait(*id);
  auto r = engine->Get(*id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, RolloutState::kSucceeded) << r->error;
  ASSERT_EQ(r->vms.size(), 3u);
  for (const auto& v : r->vms) {
    EXPECT_EQ(v.state, RolloutVmState::kDone);
    EXPECT_TRUE(v.downtime_ms.has_value());
    EXPECT_EQ(tb_.vms.Get(v.vm)->version, 2);
  }
  EXPECT_EQ(engine->Start("web:2", {}).status().code(), Code::kInvalidArgument);  // nothing to do
}

TEST_F(RolloutEngineTest, ByDefaultPausesAtTheFirstFailureAfterRollingItBack) {
  tb_.CreateVms({"a", "b", "c"});
  auto engine = NewEngine();
  auto id = engine->Start("web:3", {});  // unhealthy app
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kPaused);
  EXPECT_NE(r->error.find("failure budget exceeded"), std::string::npos) << r->error;
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kRolledBack);
  EXPECT_EQ(r->vms[1].state, RolloutVmState::kPending);
  EXPECT_EQ(r->vms[2].state, RolloutVmState::kPending);
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb_.vms.Get(vm)->version, 1);
}

TEST_F(RolloutEngineTest, ShutdownFinishesTheVmInFlightAndTheNextEngineContinues) {
  tb_.CreateVms({"a", "b", "c"});
  SwapLatch latch(tb_.swapper, SwapStep::kPrepared, SwapPhase::kDone);
  auto engine = NewEngine();
  auto started = engine->Start("web:2", {});
  ASSERT_TRUE(started.ok());
  int64_t id = *started;
  ASSERT_TRUE(latch.AwaitHeld(seconds(30))) << "no swap reached the latch";
  // Provably in flight: "a" is mid-swap (the new app disk prepared beside the old), b and c
  // wait.
  EXPECT_EQ(tb_.vms.Get("a")->state, VmState::kSwapping);
  EXPECT_EQ(VmStateIn(id, 0), RolloutVmState::kSwapping);
  EXPECT_EQ(VmStateIn(id, 1), RolloutVmState::kPending);
  EXPECT_NE(tb_.hv.GetState({"h1", "fake:///", "p"}, "a")->Disk(kAppSerialB), nullptr);
  engine->Shutdown();
  latch.Release();
  engine.reset();  // joins: "a" finishes, b and c stay pending
  EXPECT_EQ(store_.Get(id)->state, RolloutState::kRunning);
  EXPECT_EQ(VmStateIn(id, 0), RolloutVmState::kDone);
  EXPECT_EQ(VmStateIn(id, 1), RolloutVmState::kPending);
  EXPECT_EQ(tb_.vms.Get("a")->version, 2);
  EXPECT_EQ(tb_.vms.Get("b")->version, 1);

  auto next = NewEngine();
  ASSERT_TRUE(next->ResumeAll().ok());
  next->Wait(id);
  EXPECT_EQ(next->Get(id)->state, RolloutState::kSucceeded);
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb_.vms.Get(vm)->version, 2);
}

TEST_F(RolloutEngineTest, WaitForChangeWakesOnEveryStepOfTheRollout) {
  tb_.CreateVms({"a"});
  SwapLatch latch(tb_.swapper, SwapStep::kChecked, SwapPhase::kIntent);
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  uint64_t seen = engine->Version(*id);  // created, then "a" swapping
  EXPECT_GE(seen, 2u);
  EXPECT_EQ(engine->WaitForChange(*id, seen, std::chrono::milliseconds(0)), seen);
  latch.Release();
  // Each wait returns as soon as something changed; the last change is the end.
  while (engine->Get(*id)->state == RolloutState::kRunning) {
    uint64_t now = engine->WaitForChange(*id, seen, seconds(30));
    ASSERT_GT(now, seen) << "no change within 30 s";
    seen = now;
  }
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded);
}

TEST_F(RolloutEngineTest, RefusesUnknownVmsTemplatesAndBusyVms) {
  tb_.CreateVms({"a"});
  SwapLatch latch(tb_.swapper, SwapStep::kChecked, SwapPhase::kIntent);
  auto engine = NewEngine();
  EXPECT_EQ(engine->Start("web:9", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(engine->Start("web:2", {"ghost"}).status().code(), Code::kNotFound);
  ASSERT_TRUE(engine->Start("web:2", {}).ok());
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  EXPECT_EQ(engine->Start("web:2", {"a"}).status().code(), Code::kFailedPrecondition);
  latch.Release();
}

RolloutPolicy Policy(int64_t batch, int64_t per_host) {
  RolloutPolicy p;
  p.batch = Amount{batch, false};
  p.max_per_host = per_host;
  return p;
}

// Records, at every journal write of any swap, how many VMs are swapping in all and per
// host (the VM table's view): the most ever seen. The first `hold` swaps wait at their
// first write until Release, so the first wave provably overlaps.
struct ConcurrencyProbe {
  ConcurrencyProbe(FleetTestbed& tb, int hold) : tb(tb), hold(hold) {
    tb.swapper.SetCrashHook([this](SwapStep step, SwapPhase phase) {
      auto vms = this->tb.vm_table.List();
      if (!vms.ok()) return false;
      int64_t total = 0;
      std::map<std::string, int64_t> by_host;
      for (const auto& v : *vms) {
        if (v.state != VmState::kSwapping) continue;
        ++total;
        ++by_host[v.host];
      }
      std::unique_lock lock(mu);
      max_total = std::max(max_total, total);
      for (const auto& [host, n] : by_host) max_per_host = std::max(max_per_host, n);
      if (step == SwapStep::kChecked && phase == SwapPhase::kIntent && held < this->hold) {
        ++held;
        cv.notify_all();
        cv.wait(lock, [this] { return released; });
      }
      return false;
    });
  }
  // True once `hold` swaps wait; false after `timeout` (real time: swaps run on threads).
  bool AwaitHeld(seconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return held == hold; });
  }
  void Release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  FleetTestbed& tb;
  const int hold;
  std::mutex mu;
  std::condition_variable cv;
  int held = 0;
  bool released = false;
  int64_t max_total = 0, max_per_host = 0;
};

TEST_F(RolloutEngineTest, BatchAndPerHostLimitsAreNeverExceeded) {
  tb_.CreateVms({"a1", "a2", "a3", "a4", "a5"});
  ASSERT_TRUE(tb_.vms.Create({"b1", "b2", "b3", "b4", "b5"}, "web:1", "h2", nullptr).ok());
  ConcurrencyProbe probe(tb_, /*hold=*/3);
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, Policy(3, 2));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(probe.AwaitHeld(seconds(30))) << "three swaps never ran at once";
  probe.Release();
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded) << engine->Get(*id)->error;
  EXPECT_EQ(probe.max_total, 3);
  EXPECT_EQ(probe.max_per_host, 2);
  auto all = tb_.vm_table.List();
  ASSERT_TRUE(all.ok());
  for (const auto& v : *all) EXPECT_EQ(v.version, 2) << v.name;
}

TEST_F(RolloutEngineTest, CanariesGoFirstThenThePauseWaitsForResume) {
  tb_.CreateVms({"a", "b", "c", "d"});
  RolloutPolicy p = Policy(2, 2);
  p.canary = Amount{1, false};
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, p);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kPaused);
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kDone);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(r->vms[i].state, RolloutVmState::kPending);
  EXPECT_EQ(engine->Start("web:2", {"b"}).status().code(), Code::kFailedPrecondition)
      << "a paused rollout still holds its VMs";
  ASSERT_TRUE(engine->Resume(*id).ok());
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded);
  for (const char* vm : {"a", "b", "c", "d"}) EXPECT_EQ(tb_.vms.Get(vm)->version, 2);
}

TEST_F(RolloutEngineTest, CanaryWaitContinuesOnItsOwn) {
  tb_.CreateVms({"a", "b", "c"});
  RolloutPolicy p = Policy(2, 2);
  p.canary = Amount{1, false};
  p.canary_wait = std::chrono::minutes(5);  // virtual time
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, p);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded);
}

TEST_F(RolloutEngineTest, ExceededFailureBudgetRollsBackExactlyTheMovedVms) {
  tb_.CreateVms({"a", "b", "c", "d"});
  std::atomic<int> attaches{0};
  tb_.swapper.SetCrashHook([this, &attaches](SwapStep step, SwapPhase phase) {
    // The third VM's new app disk does not attach.
    if (step == SwapStep::kAttached && phase == SwapPhase::kIntent && ++attaches == 3) {
      tb_.hv.FailNext(FakeHypervisor::Op::kAttach, Internal("injected attach failure"));
    }
    return false;
  });
  RolloutPolicy p = Policy(1, 2);
  p.on_failure = OnFailure::kRollback;
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, p);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kRolledBack) << r->error;
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kReverted);
  EXPECT_EQ(r->vms[1].state, RolloutVmState::kReverted);
  EXPECT_EQ(r->vms[2].state, RolloutVmState::kRolledBack);
  EXPECT_EQ(r->vms[3].state, RolloutVmState::kSkipped);
  for (const char* vm : {"a", "b", "c", "d"}) EXPECT_EQ(tb_.vms.Get(vm)->version, 1) << vm;
  // d was never touched: one create attach only (the swap log names every VM it moved).
  EXPECT_EQ(tb_.hv.CountCalls({FakeHypervisor::Op::kAttach, "", "d"}), 0U);
}

TEST_F(RolloutEngineTest, PauseLetsTheSwapInFlightFinishAndResumeContinues) {
  tb_.CreateVms({"a", "b", "c"});
  SwapLatch latch(tb_.swapper, SwapStep::kPrepared, SwapPhase::kDone);
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  ASSERT_TRUE(engine->Pause(*id).ok());
  EXPECT_EQ(engine->Pause(*id).code(), Code::kFailedPrecondition);
  latch.Release();
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kPaused);
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kDone);
  EXPECT_EQ(r->vms[1].state, RolloutVmState::kPending);
  ASSERT_TRUE(engine->Resume(*id).ok());
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded);
  EXPECT_EQ(engine->Resume(*id).code(), Code::kFailedPrecondition);
  EXPECT_EQ(engine->Abort(*id).code(), Code::kFailedPrecondition);
}

TEST_F(RolloutEngineTest, AbortFinishesTheSwapInFlightAndSkipsTheRest) {
  tb_.CreateVms({"a", "b", "c"});
  SwapLatch latch(tb_.swapper, SwapStep::kPrepared, SwapPhase::kDone);
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  ASSERT_TRUE(engine->Abort(*id).ok());
  latch.Release();
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kAborted);
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kDone);
  EXPECT_EQ(r->vms[1].state, RolloutVmState::kSkipped);
  EXPECT_EQ(r->vms[2].state, RolloutVmState::kSkipped);
  EXPECT_EQ(tb_.vms.Get("a")->version, 2);
  EXPECT_EQ(tb_.vms.Get("b")->version, 1);
}

TEST_F(RolloutEngineTest, UndoMovesTheMovedVmsBack) {
  tb_.CreateVms({"a", "b", "c"});
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {"a", "b"});
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto undo = engine->Undo(*id);
  ASSERT_TRUE(undo.ok()) << undo.status().ToString();
  engine->Wait(*undo);
  auto r = engine->Get(*undo);
  EXPECT_EQ(r->state, RolloutState::kSucceeded) << r->error;
  ASSERT_EQ(r->vms.size(), 2u);
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb_.vms.Get(vm)->version, 1) << vm;
  EXPECT_EQ(engine->Undo(*undo).status().code(), Code::kOk);  // undoing the undo moves them again
  EXPECT_EQ(engine->Undo(99).status().code(), Code::kNotFound);
}

TEST_F(RolloutEngineTest, MaxActionAppRefusesARolloutThatNeedsAnOsSwap) {
  tb_.CreateVms({"a"});
  RolloutPolicy p;
  p.max_action = MaxAction::kApp;
  auto engine = NewEngine();
  auto refused = engine->Start("web:4", {}, p);  // OS 2
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("OS swap"), std::string::npos);
  EXPECT_TRUE(engine->Start("web:2", {}, p).ok());  // app only
}

// The engine dies (Shutdown from inside a swap's journal write, which then stops as the
// process would) at a random write; a new engine on the same store resumes. Every VM ends
// on the new version and the rollout succeeds with every VM counted done.
TEST(RolloutEngineCrashTest, KilledAtRandomMomentsEveryRolloutEndsOnOneVersion) {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FleetTestbed tb;
    tb.CreateVms({"a1", "a2", "a3"});
    ASSERT_TRUE(tb.vms.Create({"b1", "b2", "b3"}, "web:1", "h2", nullptr).ok());
    std::mt19937 rng(seed);
    const int kill_at = std::uniform_int_distribution<int>(1, 50)(rng);
    std::atomic<int> writes{0};
    std::atomic<RolloutEngine*> victim{nullptr};
    tb.swapper.SetCrashHook([&](SwapStep, SwapPhase) {
      if (++writes != kill_at) return false;
      if (RolloutEngine* e = victim.load()) e->Shutdown();
      return true;
    });
    auto engine = tb.NewRolloutEngine(tb.swapper);
    victim = engine.get();
    auto id = engine->Start("web:2", {}, Policy(3, 2));
    ASSERT_TRUE(id.ok());
    engine->Wait(*id);
    engine.reset();

    auto swapper = tb.NewSwapper(tb.journal);
    auto next = tb.NewRolloutEngine(*swapper);
    ASSERT_TRUE(next->ResumeAll().ok());
    next->Wait(*id);
    auto r = next->Get(*id);
    EXPECT_EQ(r->state, RolloutState::kSucceeded) << r->error;
    for (const auto& v : r->vms) EXPECT_EQ(v.state, RolloutVmState::kDone) << v.vm;
    auto all = tb.vm_table.List();
    ASSERT_TRUE(all.ok());
    for (const auto& v : *all) {
      EXPECT_EQ(v.version, 2) << v.name;
      EXPECT_EQ(v.state, VmState::kRunning) << v.name;
    }
  }
}

TEST_F(RolloutEngineTest, MinReadyFailsAVmWhoseAppTurnsUnhealthyAfterTheSwap) {
  tb_.CreateVms({"a", "b"});
  const std::string v2 = tb_.AppVolume(2);
  tb_.swapper.SetCrashHook([this, v2](SwapStep step, SwapPhase phase) {
    // The app passes its start-up check, then turns unhealthy.
    if (step == SwapStep::kDone && phase == SwapPhase::kDone) tb_.hv.SetUnhealthyApp(v2);
    return false;
  });
  RolloutPolicy p;
  p.min_ready = std::chrono::seconds(30);
  p.on_failure = OnFailure::kRollback;
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, p);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto r = engine->Get(*id);
  EXPECT_EQ(r->state, RolloutState::kRolledBack) << r->error;
  EXPECT_NE(r->vms[0].error.find("--min-ready 30s"), std::string::npos) << r->vms[0].error;
  EXPECT_EQ(r->vms[0].state, RolloutVmState::kReverted);
  EXPECT_EQ(r->vms[1].state, RolloutVmState::kSkipped);
  EXPECT_EQ(tb_.vms.Get("a")->version, 1);
}

TEST_F(RolloutEngineTest, MinReadyPassesAHealthyVm) {
  tb_.CreateVms({"a"});
  RolloutPolicy p;
  p.min_ready = std::chrono::seconds(30);
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {}, p);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded) << engine->Get(*id)->error;
}

TEST_F(RolloutEngineTest, RemovingAVmDropsItsRolloutRows) {
  tb_.CreateVms({"a", "b"});
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  ASSERT_TRUE(tb_.vms.Remove("a", true).ok());
  auto r = store_.Get(*id);
  ASSERT_EQ(r->vms.size(), 1u);
  EXPECT_EQ(r->vms[0].vm, "b");
}

// The engine dies at a random journal write while it moves VMs back after the failure
// budget was exceeded; the next engine goes on rolling back: every VM the rollout moved
// ends on its old version and the rollout is rolled_back.
TEST(RolloutEngineCrashTest, KilledWhileRollingBackTheNextEngineFinishesTheRollback) {
  int killed_rolling_back = 0;
  for (unsigned seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FleetTestbed tb;
    RolloutStore& store = tb.rollout_store;
    tb.CreateVms({"a", "b", "c", "d"});
    std::mt19937 rng(seed);
    const int kill_after = std::uniform_int_distribution<int>(1, 14)(rng);
    std::atomic<int> attaches{0}, writes_after{0};
    std::atomic<bool> failed{false};
    std::atomic<RolloutEngine*> victim{nullptr};
    tb.swapper.SetCrashHook([&](SwapStep step, SwapPhase phase) {
      if (failed && ++writes_after == kill_after) {
        if (RolloutEngine* e = victim.load()) e->Shutdown();
        return true;
      }
      if (step == SwapStep::kAttached && phase == SwapPhase::kIntent && ++attaches == 3) {
        tb.hv.FailNext(FakeHypervisor::Op::kAttach, Internal("injected attach failure"));
        failed = true;
      }
      return false;
    });
    RolloutPolicy p = Policy(1, 2);
    p.on_failure = OnFailure::kRollback;
    auto engine = tb.NewRolloutEngine(tb.swapper);
    victim = engine.get();
    auto id = engine->Start("web:2", {}, p);
    ASSERT_TRUE(id.ok());
    engine->Wait(*id);
    engine.reset();
    const RolloutState at_kill = store.Get(*id)->state;
    EXPECT_TRUE(IsActive(at_kill)) << "the kill came after the end";
    killed_rolling_back += at_kill == RolloutState::kRollingBack;

    auto swapper = tb.NewSwapper(tb.journal);
    auto next = tb.NewRolloutEngine(*swapper);
    ASSERT_TRUE(next->ResumeAll().ok());
    next->Wait(*id);
    auto r = next->Get(*id);
    EXPECT_EQ(r->state, RolloutState::kRolledBack) << r->error;
    EXPECT_EQ(r->vms[0].state, RolloutVmState::kReverted);
    EXPECT_EQ(r->vms[1].state, RolloutVmState::kReverted);
    EXPECT_EQ(r->vms[3].state, RolloutVmState::kSkipped);
    for (const char* vm : {"a", "b", "c", "d"}) {
      auto rec = tb.vm_table.Get(vm);
      ASSERT_TRUE(rec.ok());
      EXPECT_EQ(rec->version, 1) << vm;
      EXPECT_EQ(rec->state, VmState::kRunning) << vm;
    }
  }
  EXPECT_GE(killed_rolling_back, 2) << "too few kills landed in the rollback itself";
}

}  // namespace
}  // namespace vdswap::testing

namespace vdswap::testing {
namespace {

// How many times `volume` was uploaded to `host`.
size_t Uploads(const FakeHypervisor& hv, const std::string& host, const std::string& volume) {
  return hv.CountCalls({FakeHypervisor::Op::kUpload, host, "", "", volume});
}

TEST_F(RolloutEngineTest, TargetImagesGoToEveryHostWhileTheFirstSwapRuns) {
  tb_.CreateVms({"a1", "a2"});
  ASSERT_TRUE(tb_.vms.Create({"b1", "b2"}, "web:1", "h2", nullptr).ok());
  // The first swap (a1, h1) waits before its own check step would upload anything.
  SwapLatch latch(tb_.swapper, SwapStep::kChecked, SwapPhase::kIntent);
  auto engine = NewEngine();
  engine->PrefetchWith(&tb_.disks);
  auto id = engine->Start("web:2", {});  // one VM at a time: b1 is the third swap
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  const std::string app2 = tb_.AppVolume(2);
  // The uploads run on their own threads: wait for them (a deadline, not a guess; the
  // swaps cannot move on while the first is held).
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while ((Uploads(tb_.hv, "h1", app2) == 0 || Uploads(tb_.hv, "h2", app2) == 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Uploads(tb_.hv, "h1", app2), 1U);
  EXPECT_EQ(Uploads(tb_.hv, "h2", app2), 1U) << "h2 did not get web:2 before its turn";
  latch.Release();
  engine->Wait(*id);
  EXPECT_EQ(engine->Get(*id)->state, RolloutState::kSucceeded) << engine->Get(*id)->error;
  // Once per host: the swaps found the images there.
  EXPECT_EQ(Uploads(tb_.hv, "h1", app2), 1U);
  EXPECT_EQ(Uploads(tb_.hv, "h2", app2), 1U);
}

// Records what an engine reports.
struct RecordingObserver : RolloutObserver {
  void RolloutStarted() override {
    std::lock_guard lock(mu);
    ++started;
  }
  void RolloutEnded(RolloutState state) override {
    std::lock_guard lock(mu);
    ended.push_back(state);
  }
  void SwapEnded(SwapResult result, bool os_swap, std::optional<SwapOrder> order,
                 int64_t downtime_ms) override {
    std::lock_guard lock(mu);
    swaps.push_back({result, os_swap, order, downtime_ms});
  }
  struct Swap {
    SwapResult result;
    bool os_swap;
    std::optional<SwapOrder> order;
    int64_t downtime_ms;
  };
  std::mutex mu;
  int started = 0;
  std::vector<RolloutState> ended;
  std::vector<Swap> swaps;
};

TEST_F(RolloutEngineTest, ReportsRolloutsAndSwapsToItsObserver) {
  tb_.CreateVms({"a", "b"});
  RecordingObserver seen;
  auto engine = NewEngine();
  engine->Observe(&seen);
  RolloutPolicy mbb;
  mbb.swap_order = SwapOrder::kMakeBeforeBreak;
  auto id = engine->Start("web:2", {}, mbb);
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  auto os = engine->Start("web:4", {"a"});  // OS 2: a reboot
  ASSERT_TRUE(os.ok());
  engine->Wait(*os);
  auto bad = engine->Start("web:3", {"b"});  // unhealthy: rolled back, budget exceeded
  ASSERT_TRUE(bad.ok());
  engine->Wait(*bad);

  std::lock_guard lock(seen.mu);
  EXPECT_EQ(seen.started, 3);
  EXPECT_EQ(seen.ended,
            (std::vector<RolloutState>{RolloutState::kSucceeded, RolloutState::kSucceeded,
                                       RolloutState::kFailed}));
  ASSERT_EQ(seen.swaps.size(), 4U);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(seen.swaps[i].result, SwapResult::kDone);
    EXPECT_FALSE(seen.swaps[i].os_swap);
    EXPECT_EQ(seen.swaps[i].order, SwapOrder::kMakeBeforeBreak);
    EXPECT_GE(seen.swaps[i].downtime_ms, 0);
  }
  EXPECT_EQ(seen.swaps[2].result, SwapResult::kDone);
  EXPECT_TRUE(seen.swaps[2].os_swap);
  EXPECT_EQ(seen.swaps[3].result, SwapResult::kRolledBack);
  EXPECT_FALSE(seen.swaps[3].os_swap);
}

}  // namespace
}  // namespace vdswap::testing
