// VmService and domains it does not own, and VMs a stopped daemon left in state creating.
#include "fleet/vm_service.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

const HostRef kH1{"h1", "fake:///", "p"};

void ExpectNotManaged(const Status& s, const std::string& vm) {
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("domain '" + vm + "' exists and is not managed by vdswap"),
            std::string::npos)
      << s.message();
}

TEST(VmServiceTest, CreateRefusesANameAForeignDomainHoldsAndLeavesItAlone) {
  FleetTestbed tb;
  tb.hv.AddForeignDomain("theirs");
  auto r = tb.vms.Create({"ok1", "theirs"}, "web:1", "h1", nullptr);
  ASSERT_FALSE(r.ok());
  ExpectNotManaged(r.status(), "theirs");
  EXPECT_FALSE(*tb.vm_table.Exists("theirs"));
  EXPECT_FALSE(*tb.vm_table.Exists("ok1")) << "refused before anything was made";
  EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kDefineAndStart}), 0U);
  auto live = tb.hv.GetState(kH1, "theirs");
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(live->exists);
  EXPECT_FALSE(live->managed);
}

TEST(VmServiceTest, ForeignDomainIsNeverDefinedOverStartedStoppedUndefinedOrHotPlugged) {
  FleetTestbed tb;
  tb.hv.AddForeignDomain("theirs");
  VmSpec spec;
  spec.name = "theirs";
  ExpectNotManaged(tb.hv.DefineAndStart(kH1, spec), "theirs");
  ExpectNotManaged(tb.hv.Start(kH1, "theirs"), "theirs");
  ExpectNotManaged(tb.hv.Shutdown(kH1, "theirs", std::chrono::seconds(1)), "theirs");
  ExpectNotManaged(tb.hv.Destroy(kH1, "theirs"), "theirs");
  ExpectNotManaged(tb.hv.DetachDisk(kH1, "theirs", kAppSerial, std::chrono::seconds(1)), "theirs");
  ExpectNotManaged(tb.hv.AttachDisk(kH1, "theirs", {kAppSerial, "/x", "raw", true}), "theirs");
  ExpectNotManaged(tb.hv.OpenAgent(kH1, "theirs").status(), "theirs");
  auto live = tb.hv.GetState(kH1, "theirs");
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(live->exists);
  EXPECT_FALSE(live->running);
  EXPECT_TRUE(live->disks.empty());
}

TEST(VmServiceTest, RmOfAVmWhoseDomainIsNoLongerOursLeavesTheDomainAndTheRecord) {
  FleetTestbed tb;
  tb.CreateVms({"a1"});
  // Someone undefined vdswap's domain and defined their own under the same name.
  ASSERT_TRUE(tb.hv.Destroy(kH1, "a1").ok());
  tb.hv.AddForeignDomain("a1");
  ExpectNotManaged(tb.vms.Remove("a1", /*delete_data=*/true), "a1");
  EXPECT_TRUE(tb.hv.GetState(kH1, "a1")->exists);
  EXPECT_TRUE(*tb.vm_table.Exists("a1"));
  EXPECT_TRUE(tb.hv.FindVolume(kH1, DataVolume("a1")).ok());
}

// A crash after the overlay was made, before the domain was defined.
TEST(VmServiceTest, ReconcileRemovesACreatingVmWithoutADomainButKeepsItsDataVolume) {
  FleetTestbed tb;
  auto t = tb.templates.Get("web:1");
  ASSERT_TRUE(t.ok());
  VmRecord vm{"c1", "h1", "web", 1, VmState::kCreating, OsOverlayVolume("c1", 1), DataVolume("c1"),
              "",   {}};
  ASSERT_TRUE(tb.vm_table.Insert(vm, 0).ok());
  ASSERT_TRUE(tb.hv.CreateBlankVolume(kH1, vm.os_volume, 1).ok());
  ASSERT_TRUE(tb.hv.CreateBlankVolume(kH1, vm.data_volume, 1).ok());

  auto settled = tb.vms.ReconcileCreating();
  ASSERT_TRUE(settled.ok()) << settled.status().ToString();
  EXPECT_EQ(*settled, 1);
  EXPECT_FALSE(*tb.vm_table.Exists("c1"));
  EXPECT_FALSE(tb.hv.FindVolume(kH1, vm.os_volume).ok()) << "the half-made overlay goes";
  EXPECT_TRUE(tb.hv.FindVolume(kH1, vm.data_volume).ok()) << "a data volume may hold data";
  tb.CreateVms({"c1"});  // the name is free again
  EXPECT_EQ(tb.vm_table.Get("c1")->state, VmState::kRunning);
}

// A crash after the domain was defined and started, before the record said running; and
// one whose domain is defined but off.
TEST(VmServiceTest, ReconcileRecordsACreatingVmWithItsDomainAsItsDomainIs) {
  FleetTestbed tb;
  tb.CreateVms({"up", "down"});
  ASSERT_TRUE(tb.hv.Shutdown(kH1, "down", std::chrono::seconds(1)).ok());
  for (const char* n : {"up", "down"}) {
    ASSERT_TRUE(tb.vm_table.SetState(n, VmState::kCreating, "").ok());
  }
  auto settled = tb.vms.ReconcileCreating();
  ASSERT_TRUE(settled.ok()) << settled.status().ToString();
  EXPECT_EQ(*settled, 2);
  EXPECT_EQ(tb.vm_table.Get("up")->state, VmState::kRunning);
  EXPECT_EQ(tb.vm_table.Get("down")->state, VmState::kStopped);
  EXPECT_TRUE(tb.hv.FindVolume(kH1, OsOverlayVolume("up", 1)).ok());
  EXPECT_TRUE(tb.vms.Start("down").ok());
}

TEST(VmServiceTest, ReconcileNeverTouchesAForeignDomainOfACreatingVmsName) {
  FleetTestbed tb;
  VmRecord vm{"c2", "h1", "web", 1, VmState::kCreating, OsOverlayVolume("c2", 1), DataVolume("c2"),
              "",   {}};
  ASSERT_TRUE(tb.vm_table.Insert(vm, 0).ok());
  tb.hv.AddForeignDomain("c2");
  ASSERT_TRUE(tb.vms.ReconcileCreating().ok());
  EXPECT_FALSE(*tb.vm_table.Exists("c2"));
  EXPECT_TRUE(tb.hv.GetState(kH1, "c2")->exists);
  EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kDestroy, "h1", "c2"}), 0U);
}

TEST(VmServiceTest, ReconcileLeavesOtherStatesAlone) {
  FleetTestbed tb;
  tb.CreateVms({"r1"});
  ASSERT_TRUE(tb.vm_table.SetState("r1", VmState::kFailed, "boom").ok());
  auto settled = tb.vms.ReconcileCreating();
  ASSERT_TRUE(settled.ok());
  EXPECT_EQ(*settled, 0);
  EXPECT_EQ(tb.vm_table.Get("r1")->state, VmState::kFailed);
}

// A read never cuts into an operation on the VM: while a swap holds it, inspect answers
// the record and the domain, and the live fields as busy, without calling the agent.
TEST(VmServiceTest, InspectDoesNotCallTheAgentOfAVmInASwap) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  const size_t opened = tb.hv.CountCalls({FakeHypervisor::Op::kOpenAgent});
  {
    std::lock_guard swap(tb.locks.For("vm1"));
    auto busy = tb.vms.Inspect("vm1");
    ASSERT_TRUE(busy.ok()) << busy.status().ToString();
    EXPECT_EQ(busy->agent_status.code(), Code::kUnavailable);
    EXPECT_NE(busy->agent_status.message().find("is busy"), std::string::npos);
    EXPECT_FALSE(busy->guest.has_value());
    EXPECT_TRUE(busy->live.running);
    EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kOpenAgent}), opened);
  }
  auto free = tb.vms.Inspect("vm1");
  ASSERT_TRUE(free.ok());
  EXPECT_TRUE(free->agent_status.ok()) << free->agent_status.ToString();
  EXPECT_TRUE(free->guest.has_value());
}

}  // namespace
}  // namespace vdswap::testing
