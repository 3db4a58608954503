#include "rollout/rollout_engine.h"

#include <gtest/gtest.h>

#include <thread>

#include "fleet/fleet_testbed.h"

namespace vdswap::testing {
namespace {

TEST(RolloutEngineTest, MovesEveryVmAndReportsDowntime) {
  FleetTestbed tb;
  tb.CreateVms({"a", "b", "c"});
  RolloutEngine engine(*tb.db, *tb.vms, *tb.templates, *tb.swapper);
  auto id = engine.Start("web:2", {});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  engine.Wait(*id);
  auto r = engine.Get(*id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["state"], "succeeded") << r->dump();
  ASSERT_EQ((*r)["vms"].size(), 3u);
  for (const auto& v : (*r)["vms"]) {
    EXPECT_EQ(v["state"], "done");
    EXPECT_TRUE(v["downtime_ms"].is_number());
  }
  EXPECT_TRUE((*r)["downtime_ms"].contains("p95"));
  EXPECT_EQ(engine.Start("web:2", {}).status().code(), Code::kInvalidArgument);  // nothing to do
}

TEST(RolloutEngineTest, StopsAtFirstFailureAfterRollingItBack) {
  FleetTestbed tb;
  tb.CreateVms({"a", "b", "c"});
  RolloutEngine engine(*tb.db, *tb.vms, *tb.templates, *tb.swapper);
  auto id = engine.Start("web:3", {});  // unhealthy app
  ASSERT_TRUE(id.ok());
  engine.Wait(*id);
  auto r = engine.Get(*id);
  EXPECT_EQ((*r)["state"], "failed");
  EXPECT_EQ((*r)["vms"][0]["state"], "rolled_back");
  EXPECT_EQ((*r)["vms"][1]["state"], "skipped");
  EXPECT_EQ((*r)["vms"][2]["state"], "skipped");
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb.vms->Get(vm)->version, 1);
}

TEST(RolloutEngineTest, ShutdownPausesAndTheNextEngineContinues) {
  FleetTestbed tb;
  tb.CreateVms({"a", "b", "c"});
  // The fake's latency passes on virtual time, so a real 200 ms pause keeps the first
  // swap in flight while the engine is destroyed.
  tb.swapper->SetCrashHook([](const std::string& step, const std::string& phase) {
    if (step == "attached" && phase == "intent") {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  });
  int64_t id;
  {
    RolloutEngine engine(*tb.db, *tb.vms, *tb.templates, *tb.swapper);
    auto started = engine.Start("web:2", {});
    ASSERT_TRUE(started.ok());
    id = *started;
  }  // destroyed mid-rollout: the VM in flight finishes, the rest wait
  EXPECT_EQ((*tb.db->Query("SELECT state FROM rollouts WHERE id = ?1", {id}))[0].Text(0),
            "running");
  RolloutEngine next(*tb.db, *tb.vms, *tb.templates, *tb.swapper);
  ASSERT_TRUE(next.ResumeAll().ok());
  next.Wait(id);
  EXPECT_EQ((*next.Get(id))["state"], "succeeded");
  for (const char* vm : {"a", "b", "c"}) EXPECT_EQ(tb.vms->Get(vm)->version, 2);
}

TEST(RolloutEngineTest, RefusesUnknownVmsAndTemplates) {
  FleetTestbed tb;
  tb.CreateVms({"a"});
  RolloutEngine engine(*tb.db, *tb.vms, *tb.templates, *tb.swapper);
  EXPECT_EQ(engine.Start("web:9", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(engine.Start("web:2", {"ghost"}).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace vdswap::testing
