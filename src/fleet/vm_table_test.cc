#include "fleet/vm_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

VmRecord Vm(const std::string& name) {
  VmRecord vm{name, "h1", "web", 1, VmState::kRunning, name + "-os", name + "-data", ""};
  vm.nics = {{"default", ""}};
  return vm;
}

// Walks every page of `limit` VMs; `between` runs after each page.
std::vector<std::string> Walk(VmTable& table, int64_t limit,
                              const std::function<void(int)>& between = nullptr) {
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0;; ++page) {
    auto vms = table.ListPage(after, limit);
    EXPECT_TRUE(vms.ok()) << vms.status().ToString();
    if (!vms.ok() || vms->empty()) break;
    EXPECT_LE(static_cast<int64_t>(vms->size()), limit);
    for (const auto& v : *vms) {
      EXPECT_EQ(v.nics.size(), 1U) << v.name;  // each page has its VMs' NICs, no others
      seen.push_back(v.name);
    }
    after = vms->back().name;
    if (between) between(page);
  }
  return seen;
}

TEST(VmTablePagingTest, PagesListEveryVmExactlyOnceInNameOrder) {
  FleetTestbed tb;
  std::vector<std::string> names;
  for (int i = 0; i < 23; ++i) names.push_back("vm-" + std::to_string(100 + i));
  std::vector<std::string> shuffled = names;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  for (const auto& n : shuffled) ASSERT_TRUE(tb.vm_table.Insert(Vm(n), 0).ok());
  for (int64_t limit : {1, 5, 23, 100}) EXPECT_EQ(Walk(tb.vm_table, limit), names) << limit;
}

TEST(VmTablePagingTest, VmsAddedOrRemovedDuringAWalkNeverRepeatOthers) {
  FleetTestbed tb;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(tb.vm_table.Insert(Vm("vm-" + std::to_string(10 + i)), 0).ok());
  }
  std::vector<std::string> seen = Walk(tb.vm_table, 4, [&](int page) {
    if (page != 0) return;
    ASSERT_TRUE(tb.vm_table.Insert(Vm("vm-0"), 0).ok());   // before the cursor: not seen
    ASSERT_TRUE(tb.vm_table.Insert(Vm("vm-99"), 0).ok());  // after it: seen once
    ASSERT_TRUE(tb.vm_table.Delete("vm-15").ok());         // not reached yet: gone
  });
  std::vector<std::string> want;
  for (int i = 0; i < 12; ++i) {
    if (i != 5) want.push_back("vm-" + std::to_string(10 + i));
  }
  want.push_back("vm-99");
  EXPECT_EQ(seen, want);
}

}  // namespace
}  // namespace vdswap::testing
