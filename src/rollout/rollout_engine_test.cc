#include "rollout/rollout_engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

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
  std::unique_ptr<RolloutEngine> NewEngine() {
    return std::make_unique<RolloutEngine>(store_, *tb_.vm_table, *tb_.templates, *tb_.hosts,
                                           *tb_.swapper, *tb_.agent, tb_.clock);
  }
  RolloutVmState VmStateIn(int64_t id, size_t i) { return store_.Get(id)->vms.at(i).state; }

  FleetTestbed tb_;
  RolloutStore store_{*tb_.db};
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
    EXPECT_EQ(tb_.vms->Get(v.vm)->version, 2);
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
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb_.vms->Get(vm)->version, 1);
}

TEST_F(RolloutEngineTest, ShutdownFinishesTheVmInFlightAndTheNextEngineContinues) {
  tb_.CreateVms({"a", "b", "c"});
  SwapLatch latch(*tb_.swapper, SwapStep::kDetached, SwapPhase::kDone);
  auto engine = NewEngine();
  auto started = engine->Start("web:2", {});
  ASSERT_TRUE(started.ok());
  int64_t id = *started;
  ASSERT_TRUE(latch.AwaitHeld(seconds(30))) << "no swap reached the latch";
  // Provably in flight: "a" is mid-swap (app disk detached), b and c wait.
  EXPECT_EQ(tb_.vms->Get("a")->state, VmState::kSwapping);
  EXPECT_EQ(VmStateIn(id, 0), RolloutVmState::kSwapping);
  EXPECT_EQ(VmStateIn(id, 1), RolloutVmState::kPending);
  EXPECT_EQ(tb_.hv.GetState({"h1", "fake:///", "p"}, "a")->Disk(kAppSerial), nullptr);
  engine->Shutdown();
  latch.Release();
  engine.reset();  // joins: "a" finishes, b and c stay pending
  EXPECT_EQ(store_.Get(id)->state, RolloutState::kRunning);
  EXPECT_EQ(VmStateIn(id, 0), RolloutVmState::kDone);
  EXPECT_EQ(VmStateIn(id, 1), RolloutVmState::kPending);
  EXPECT_EQ(tb_.vms->Get("a")->version, 2);
  EXPECT_EQ(tb_.vms->Get("b")->version, 1);

  auto next = NewEngine();
  ASSERT_TRUE(next->ResumeAll().ok());
  next->Wait(id);
  EXPECT_EQ(next->Get(id)->state, RolloutState::kSucceeded);
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb_.vms->Get(vm)->version, 2);
}

TEST_F(RolloutEngineTest, WaitForChangeWakesOnEveryStepOfTheRollout) {
  tb_.CreateVms({"a"});
  SwapLatch latch(*tb_.swapper, SwapStep::kChecked, SwapPhase::kIntent);
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
  SwapLatch latch(*tb_.swapper, SwapStep::kChecked, SwapPhase::kIntent);
  auto engine = NewEngine();
  EXPECT_EQ(engine->Start("web:9", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(engine->Start("web:2", {"ghost"}).status().code(), Code::kNotFound);
  ASSERT_TRUE(engine->Start("web:2", {}).ok());
  ASSERT_TRUE(latch.AwaitHeld(seconds(30)));
  EXPECT_EQ(engine->Start("web:2", {"a"}).status().code(), Code::kFailedPrecondition);
  latch.Release();
}

TEST_F(RolloutEngineTest, RemovingAVmDropsItsRolloutRows) {
  tb_.CreateVms({"a", "b"});
  auto engine = NewEngine();
  auto id = engine->Start("web:2", {});
  ASSERT_TRUE(id.ok());
  engine->Wait(*id);
  ASSERT_TRUE(tb_.vms->Remove("a", true).ok());
  auto r = store_.Get(*id);
  ASSERT_EQ(r->vms.size(), 1u);
  EXPECT_EQ(r->vms[0].vm, "b");
}

}  // namespace
}  // namespace vdswap::testing
