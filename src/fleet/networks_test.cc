// NICs: templates name libvirt networks, VMs get one NIC per network with a MAC chosen
// once, checked before anything is created, kept across OS swaps, shown with addresses.
#include <gtest/gtest.h>

#include <algorithm>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

const HostRef kH1{"h1", "fake:///", "p"};

TEST(NetworksTest, VmsGetOneNicOnDefaultWithAStoredUniqueMac) {
  FleetTestbed tb;
  tb.CreateVms({"vm1", "vm2"});
  auto vm1 = tb.vm_table.Get("vm1");
  auto vm2 = tb.vm_table.Get("vm2");
  ASSERT_TRUE(vm1.ok() && vm2.ok());
  ASSERT_EQ(vm1->nics.size(), 1u);
  EXPECT_EQ(vm1->nics[0].network, "default");
  EXPECT_EQ(vm1->nics[0].mac.rfind("52:54:00:", 0), 0u) << vm1->nics[0].mac;
  EXPECT_NE(vm1->nics[0].mac, vm2->nics[0].mac);
  auto live = tb.hv.GetState(kH1, "vm1");
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->nics.size(), 1u);
  EXPECT_EQ(live->nics[0].mac, vm1->nics[0].mac);
  EXPECT_EQ(live->nics[0].network, "default");
}

TEST(NetworksTest, MissingOrInactiveNetworkRefusesCreateBeforeAnythingIsMade) {
  FleetTestbed tb;
  TemplateShape shape;
  shape.networks = {"backend"};
  ASSERT_TRUE(tb.templates.Create("db", "os:1", "web:1", shape).ok());

  auto missing = tb.vms.Create({"db1"}, "db", "h1", nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("network 'backend' is not defined on host 'h1'"),
            std::string::npos)
      << missing.status().message();
  tb.hv.SetNetwork("backend", false);
  auto inactive = tb.vms.Create({"db1"}, "db", "h1", nullptr);
  ASSERT_FALSE(inactive.ok());
  EXPECT_NE(inactive.status().message().find("is not active"), std::string::npos);
  EXPECT_FALSE(*tb.vm_table.Exists("db1"));
  auto calls = tb.hv.Calls();
  EXPECT_TRUE(std::none_of(calls.begin(), calls.end(), [](const FakeHypervisor::Call& c) {
    return c.vm == "db1" || c.volume.find("db1") != std::string::npos;
  })) << "no volume, no domain";

  tb.hv.SetNetwork("backend", true);
  auto created = tb.vms.Create({"db1"}, "db", "h1", nullptr);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(tb.vm_table.Get("db1")->nics.at(0).network, "backend");
}

TEST(NetworksTest, NetworkNoneMeansNoNic) {
  FleetTestbed tb;
  TemplateShape shape;
  shape.networks = {"none"};
  ASSERT_TRUE(tb.templates.Create("batch", "os:1", "web:1", shape).ok());
  ASSERT_TRUE(tb.vms.Create({"b1"}, "batch", "h1", nullptr).ok());
  EXPECT_TRUE(tb.vm_table.Get("b1")->nics.empty());
  EXPECT_TRUE(tb.hv.GetState(kH1, "b1")->nics.empty());
  auto inspected = tb.vms.Inspect("b1");
  ASSERT_TRUE(inspected.ok());
  EXPECT_TRUE(inspected->interfaces.empty());
  EXPECT_EQ(tb.vms.FirstAddress(inspected->vm), "");
}

TEST(NetworksTest, InspectShowsTheLeasedAddressOfEachNic) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  auto i = tb.vms.Inspect("vm1");
  ASSERT_TRUE(i.ok());
  ASSERT_EQ(i->interfaces.size(), 1u);
  EXPECT_EQ(i->interfaces[0].network, "default");
  EXPECT_EQ(i->interfaces[0].mac, i->vm.nics[0].mac);
  ASSERT_EQ(i->interfaces[0].addresses.size(), 1u);
  EXPECT_EQ(i->interfaces[0].addresses[0].rfind("192.168.122.", 0), 0u);
  EXPECT_EQ(tb.vms.FirstAddress(i->vm), i->interfaces[0].addresses[0]);
  // A stopped VM keeps its NICs, without addresses.
  ASSERT_TRUE(tb.vms.Stop("vm1").ok());
  i = tb.vms.Inspect("vm1");
  ASSERT_EQ(i->interfaces.size(), 1u);
  EXPECT_TRUE(i->interfaces[0].addresses.empty());
}

TEST(NetworksTest, OsSwapKeepsTheMac) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  const std::string mac = tb.vm_table.Get("vm1")->nics.at(0).mac;
  auto to = tb.templates.Get("web:4");  // os:2: an OS swap, one reboot
  ASSERT_TRUE(to.ok());
  auto out = tb.swapper.Swap("vm1", *to, 0, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->result, SwapResult::kDone) << out->error;
  auto live = tb.hv.GetState(kH1, "vm1");
  ASSERT_EQ(live->nics.size(), 1u);
  EXPECT_EQ(live->nics[0].mac, mac);
  EXPECT_EQ(tb.vm_table.Get("vm1")->nics.at(0).mac, mac);
}

TEST(NetworksTest, MacsAreUniqueAndFreedWithTheVm) {
  FleetTestbed tb;
  tb.CreateVms({"vm1"});
  VmRecord vm1 = *tb.vm_table.Get("vm1");
  VmRecord clone = vm1;
  clone.name = "vm1-clone";
  auto taken = tb.vm_table.Insert(clone, 0);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), Code::kAlreadyExists);
  EXPECT_NE(taken.status().message().find("MAC " + vm1.nics[0].mac + " is taken"),
            std::string::npos);
  EXPECT_FALSE(*tb.vm_table.Exists("vm1-clone"));  // nothing half-inserted
  ASSERT_TRUE(tb.vms.Remove("vm1", true).ok());
  EXPECT_TRUE(tb.vm_table.Insert(clone, 0).ok());
}

TEST(TemplateNetworksTest, DefaultIsOneNicAndNetworksAreFixedAtCreate) {
  FleetTestbed tb;
  EXPECT_EQ(tb.templates.Get("web:1")->networks, std::vector<std::string>{"default"});
  EXPECT_EQ(tb.templates.Get("web:4")->networks, std::vector<std::string>{"default"});
  TemplateShape change;
  change.networks = {"backend"};
  change.cpus = 2;
  auto update = tb.templates.Update("web", "", "", change);
  EXPECT_EQ(update.status().code(), Code::kInvalidArgument);
  TemplateShape bad;
  bad.networks = {"none", "default"};
  EXPECT_EQ(tb.templates.Create("x", "os:1", "web:1", bad).status().code(), Code::kInvalidArgument);
}

TEST(ParseSizeTest, RefusesSizesThatOverflow) {
  EXPECT_EQ(*ParseSize("1G"), int64_t{1} << 30);
  EXPECT_EQ(ParseSize("17179869185G").status().message(), "size '17179869185G' is too large");
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseSize("-1G").ok());
}

}  // namespace
}  // namespace vdswap::testing
