#include "fleet/image_distributor.h"

#include <gtest/gtest.h>

#include "fleet/fleet_testbed.h"

namespace vdswap::testing {
namespace {

TEST(ImageDistributorTest, UploadsOncePerHost) {
  FleetTestbed tb;
  auto app = tb.images->Resolve("web:1");
  ASSERT_TRUE(app.ok());
  HostRef h1{"h1", "fake:///", "p"}, h2{"h2", "fake:///", "q"};
  ASSERT_TRUE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  uint64_t once = tb.hv.UploadedBytes("h1");
  EXPECT_EQ(once, app->size_bytes);
  ASSERT_TRUE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), once);  // nothing the second time
  ASSERT_TRUE(tb.distributor->Ensure(h2, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h2"), once);
}

TEST(ImageDistributorTest, SecondVmOnAHostUploadsNothing) {
  FleetTestbed tb;
  tb.CreateVms({"a"});
  uint64_t after_first = tb.hv.UploadedBytes("h1");
  EXPECT_GT(after_first, 0u);
  tb.CreateVms({"b"});
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), after_first);
}

TEST(ImageDistributorTest, FailedUploadIsNotRecordedAndIsRedone) {
  FleetTestbed tb;
  auto app = tb.images->Resolve("web:1");
  HostRef h1{"h1", "fake:///", "p"};
  tb.hv.FailNext(FakeHypervisor::Op::kUpload, Unavailable("connection reset"));
  EXPECT_FALSE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  EXPECT_TRUE(tb.db->Query("SELECT * FROM host_images")->empty());
  ASSERT_TRUE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.db->Query("SELECT * FROM host_images")->size(), 1u);
}

TEST(VmServiceTest, FailedCreateLeavesTheVmFailedWithTheReason) {
  FleetTestbed tb;
  for (auto op : {FakeHypervisor::Op::kCreateVolume, FakeHypervisor::Op::kDefineAndStart,
                  FakeHypervisor::Op::kOpenAgent}) {
    tb.hv.FailNext(op, Internal("injected failure"));
    std::string name = "vm" + std::to_string(static_cast<int>(op));
    auto out = tb.vms->Create({name}, "web:1", "h1", nullptr);
    if (op == FakeHypervisor::Op::kOpenAgent) {
      // The agent is polled until the deadline: one failed open is retried.
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      continue;
    }
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("injected failure"), std::string::npos);
    EXPECT_EQ(tb.vms->Get(name)->state, "failed");
    EXPECT_NE(tb.vms->Get(name)->last_error.find("injected failure"), std::string::npos);
    ASSERT_TRUE(tb.vms->Remove(name, true).ok());
  }
  EXPECT_EQ(tb.vms->Create({"Bad Name"}, "web:1", "h1", nullptr).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(tb.vms->Create({"x"}, "nope:1", "h1", nullptr).status().code(), Code::kNotFound);
}

TEST(ImageDistributorTest, VolumeDeletedBehindOurBackIsUploadedAgain) {
  FleetTestbed tb;
  auto app = tb.images->Resolve("web:1");
  HostRef h1{"h1", "fake:///", "p"};
  ASSERT_TRUE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  ASSERT_TRUE(tb.hv.DeleteVolume(h1, ImageDistributor::DiskVolume(*app)).ok());
  ASSERT_TRUE(tb.distributor->Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), 2 * app->size_bytes);
}

}  // namespace
}  // namespace vdswap::testing
