#include "fleet/image_distributor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include "core/sha256.h"
#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

// Forwards to a FakeHypervisor; each upload announces itself and then waits until the
// test's condition holds (or a deadline passes, recorded as a timeout), so a test can
// prove two uploads were in progress at once.
class GatedUploads : public Hypervisor {
 public:
  explicit GatedUploads(FakeHypervisor& hv) : hv_(hv) {}

  // Uploads wait until `n` uploads have started, at most `deadline` (real time).
  void HoldUntilStarted(int n, std::chrono::milliseconds deadline) {
    hold_until_ = n;
    deadline_ = deadline;
  }
  int started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  bool timed_out() {
    std::lock_guard lock(mu_);
    return timed_out_;
  }

  Result<uint64_t> UploadVolume(const HostRef& host, const std::string& volume,
                                const std::string& local_path, const ProgressFn& p) override {
    {
      std::unique_lock lock(mu_);
      ++started_;
      cv_.notify_all();
      if (!cv_.wait_for(lock, deadline_, [&] { return started_ >= hold_until_; })) {
        timed_out_ = true;
      }
    }
    return hv_.UploadVolume(host, volume, local_path, p);
  }
  Result<std::string> EnsurePool(const HostRef& h) override { return hv_.EnsurePool(h); }
  Result<std::string> FindVolume(const HostRef& h, const std::string& v) override {
    return hv_.FindVolume(h, v);
  }
  Result<std::string> CreateOverlay(const HostRef& h, const std::string& v, const std::string& b,
                                    const std::string& f) override {
    return hv_.CreateOverlay(h, v, b, f);
  }
  Result<std::string> CreateBlankVolume(const HostRef& h, const std::string& v,
                                        uint64_t n) override {
    return hv_.CreateBlankVolume(h, v, n);
  }
  Result<std::vector<std::string>> VolumeUsers(const HostRef& h, const std::string& v) override {
    return hv_.VolumeUsers(h, v);
  }
  Status DeleteVolume(const HostRef& h, const std::string& v) override {
    return hv_.DeleteVolume(h, v);
  }
  Result<std::string> VolumeSha256(const HostRef& h, const std::string& v) override {
    return hv_.VolumeSha256(h, v);
  }
  Status DefineAndStart(const HostRef& h, const VmSpec& s) override {
    return hv_.DefineAndStart(h, s);
  }
  Status Start(const HostRef& h, const std::string& vm) override { return hv_.Start(h, vm); }
  Status Shutdown(const HostRef& h, const std::string& vm, std::chrono::milliseconds g) override {
    return hv_.Shutdown(h, vm, g);
  }
  Status Destroy(const HostRef& h, const std::string& vm) override { return hv_.Destroy(h, vm); }
  Result<VmLiveState> GetState(const HostRef& h, const std::string& vm) override {
    return hv_.GetState(h, vm);
  }
  Status DetachDisk(const HostRef& h, const std::string& vm, const std::string& s,
                    std::chrono::milliseconds t) override {
    return hv_.DetachDisk(h, vm, s, t);
  }
  Status AttachDisk(const HostRef& h, const std::string& vm, const DiskSpec& d) override {
    return hv_.AttachDisk(h, vm, d);
  }
  Status CheckNetwork(const HostRef& h, const std::string& n) override {
    return hv_.CheckNetwork(h, n);
  }
  Result<std::vector<InterfaceAddresses>> LeasedAddresses(const HostRef& h,
                                                          const std::string& vm) override {
    return hv_.LeasedAddresses(h, vm);
  }
  Result<std::string> ConsoleLog(const HostRef& h, const std::string& vm, uint64_t n) override {
    return hv_.ConsoleLog(h, vm, n);
  }
  Result<std::unique_ptr<AgentChannel>> OpenAgent(const HostRef& h,
                                                  const std::string& vm) override {
    return hv_.OpenAgent(h, vm);
  }

 private:
  FakeHypervisor& hv_;
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  int hold_until_ = 0;
  std::chrono::milliseconds deadline_{0};
  bool timed_out_ = false;
};

TEST(ImageDistributorTest, UploadsToDifferentHostsRunInParallel) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  GatedUploads gated(tb.hv);
  // Each upload waits until the other one has started.
  gated.HoldUntilStarted(2, std::chrono::seconds(10));
  ImageDistributor distributor(tb.host_images, gated, tb.clock);
  HostRef h1{"h1", "fake:///", "p"}, h2{"h2", "fake:///", "q"};
  Status s1, s2;
  std::thread t1([&] { s1 = distributor.Ensure(h1, *app, nullptr).status(); });
  std::thread t2([&] { s2 = distributor.Ensure(h2, *app, nullptr).status(); });
  t1.join();
  t2.join();
  EXPECT_TRUE(s1.ok()) << s1.ToString();
  EXPECT_TRUE(s2.ok()) << s2.ToString();
  EXPECT_EQ(gated.started(), 2);
  EXPECT_FALSE(gated.timed_out()) << "one upload waited for the other: uploads are serialized";
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), app->size_bytes);
  EXPECT_EQ(tb.hv.UploadedBytes("h2"), app->size_bytes);
}

TEST(ImageDistributorTest, OneImageGoesToOneHostOnceUnderConcurrency) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  GatedUploads gated(tb.hv);
  // An upload waits for a second one to start: with a correct (host, digest) lock that
  // never happens (the wait ends at its deadline), without one several threads upload.
  gated.HoldUntilStarted(2, std::chrono::milliseconds(300));
  ImageDistributor distributor(tb.host_images, gated, tb.clock);
  HostRef h1{"h1", "fake:///", "p"};
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = distributor.Ensure(h1, *app, nullptr).status(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(gated.started(), 1);
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), app->size_bytes);
}

TEST(ImageDistributorTest, UploadsOncePerHost) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  HostRef h1{"h1", "fake:///", "p"}, h2{"h2", "fake:///", "q"};
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  uint64_t once = tb.hv.UploadedBytes("h1");
  EXPECT_EQ(once, app->size_bytes);
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), once);  // nothing the second time
  ASSERT_TRUE(tb.distributor.Ensure(h2, *app, nullptr).ok());
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
  auto app = tb.images.Resolve("web:1");
  HostRef h1{"h1", "fake:///", "p"};
  tb.hv.FailNext(FakeHypervisor::Op::kUpload, Unavailable("connection reset"));
  EXPECT_FALSE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(*tb.host_images.Count(), 0);
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(*tb.host_images.Count(), 1);
}

TEST(ImageDistributorTest, CorruptRecordedVolumeIsUploadedAgain) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  HostRef h1{"h1", "fake:///", "p"};
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), app->size_bytes) << "an intact volume is not re-sent";

  tb.hv.CorruptVolume(h1, ImageDistributor::DiskVolume(*app));
  tb.distributor.Recheck(app->digest);  // as a rollout to web:1 does when it starts
  std::vector<std::string> messages;
  auto again = tb.distributor.Ensure(
      h1, *app, [&](const Json& e) { messages.push_back(e.value("message", "")); });
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), 2 * app->size_bytes) << "the corrupt volume was used";
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find("is corrupt"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find(ImageDistributor::DiskVolume(*app)), std::string::npos);
  auto sha = tb.hv.VolumeSha256(h1, ImageDistributor::DiskVolume(*app));
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, *Sha256::OfFile(app->disk_path()));
  EXPECT_EQ(*tb.host_images.Count(), 1);
}

TEST(ImageDistributorTest, ARecordedVolumeIsReadBackOnceUntilARecheck) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  HostRef h1{"h1", "fake:///", "p"};
  const FakeHypervisor::Call read_back{FakeHypervisor::Op::kVolumeSha256, "h1", "", "",
                                       ImageDistributor::DiskVolume(*app)};
  auto reads = [&] { return tb.hv.CountCalls(read_back); };
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(reads(), 0) << "a volume just uploaded is not read back";
  tb.distributor.Recheck(app->digest);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(reads(), 1) << "checked once after the recheck, not on every use";
  tb.hv.CorruptVolume(h1, ImageDistributor::DiskVolume(*app));
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), app->size_bytes) << "no check without a recheck";
}

TEST(VmServiceTest, FailedCreateLeavesTheVmFailedWithTheReason) {
  FleetTestbed tb;
  for (auto op : {FakeHypervisor::Op::kCreateVolume, FakeHypervisor::Op::kDefineAndStart,
                  FakeHypervisor::Op::kOpenAgent}) {
    tb.hv.FailNext(op, Internal("injected failure"));
    std::string name = "vm" + std::to_string(static_cast<int>(op));
    auto out = tb.vms.Create({name}, "web:1", "h1", nullptr);
    if (op == FakeHypervisor::Op::kOpenAgent) {
      // The agent is polled until the deadline: one failed open is retried.
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      continue;
    }
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("injected failure"), std::string::npos);
    EXPECT_EQ(tb.vms.Get(name)->state, VmState::kFailed);
    EXPECT_NE(tb.vms.Get(name)->last_error.find("injected failure"), std::string::npos);
    ASSERT_TRUE(tb.vms.Remove(name, true).ok());
  }
  EXPECT_EQ(tb.vms.Create({"Bad Name"}, "web:1", "h1", nullptr).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(tb.vms.Create({"x"}, "nope:1", "h1", nullptr).status().code(), Code::kNotFound);
}

TEST(VmServiceTest, AgentRetryWaitsOnTheClockNotInRealTime) {
  FleetTestbed tb;
  tb.hv.FailNext(FakeHypervisor::Op::kOpenAgent, Unavailable("not up yet"));
  auto before = tb.clock.Now();
  auto out = tb.vms.Create({"a"}, "web:1", "h1", nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // One failed open, one retry after 250 ms of virtual time.
  EXPECT_EQ(tb.clock.MsSince(before), 250);
  EXPECT_EQ(tb.vms.Get("a")->state, VmState::kRunning);
}

TEST(ImageDistributorTest, VolumeDeletedBehindOurBackIsUploadedAgain) {
  FleetTestbed tb;
  auto app = tb.images.Resolve("web:1");
  HostRef h1{"h1", "fake:///", "p"};
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  ASSERT_TRUE(tb.hv.DeleteVolume(h1, ImageDistributor::DiskVolume(*app)).ok());
  ASSERT_TRUE(tb.distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), 2 * app->size_bytes);
}

}  // namespace
}  // namespace vdswap::testing

namespace vdswap::testing {
namespace {

TEST(VolumeMismatchTest, ComparesContentOnly) {
  EXPECT_EQ(VolumeMismatch("volume 'v'", "ab12", "ab12"), "");
  std::string m = VolumeMismatch("volume 'v'", "ab12", "cd34");
  EXPECT_NE(m.find("volume 'v' is corrupt"), std::string::npos) << m;
  EXPECT_NE(m.find("cd34"), std::string::npos) << m;
}

// Images over the inline limit (here: every image) are checked in the background, by
// content: the swap that asked goes on, and a volume found corrupt is replaced by the next.
TEST(ImageDistributorTest, LargeImagesAreCheckedByContentInTheBackground) {
  FleetTestbed tb;
  ImageDistributor distributor(
      tb.host_images, tb.hv, tb.clock,
      {.inline_check_limit = 0, .background_check_every = std::chrono::seconds(3600)});
  auto app = tb.images.Resolve("web:1");
  ASSERT_TRUE(app.ok());
  HostRef h1{"h1", "fake:///", "p"};
  const std::string volume = ImageDistributor::DiskVolume(*app);
  ASSERT_TRUE(distributor.Ensure(h1, *app, nullptr).ok());
  // Rechecks within the interval cost nothing: the volume is not read back.
  distributor.Recheck(app->digest);
  ASSERT_TRUE(distributor.Ensure(h1, *app, nullptr).ok());
  distributor.WaitForBackgroundChecks();
  EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kVolumeSha256, "h1", "", "", volume}), 0U);

  tb.hv.CorruptVolume(h1, volume);
  tb.clock.Advance(std::chrono::hours(2));
  distributor.Recheck(app->digest);
  ASSERT_TRUE(distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), app->size_bytes) << "the check does not hold up the use";
  distributor.WaitForBackgroundChecks();
  EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kVolumeSha256, "h1", "", "", volume}), 1U);
  auto recorded = tb.host_images.Find("h1", app->digest, volume);
  ASSERT_TRUE(recorded.ok() && *recorded);
  EXPECT_NE((*recorded)->mismatch.find("is corrupt"), std::string::npos);

  ASSERT_TRUE(distributor.Ensure(h1, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), 2 * app->size_bytes) << "unused: replaced in place";
  EXPECT_EQ(*tb.hv.VolumeSha256(h1, volume), app->digest);
  EXPECT_EQ((*tb.host_images.Find("h1", app->digest, volume))->mismatch, "");
}

// A corrupt volume that a VM uses (attached, or the backing file of an overlay) is never
// deleted: it is reported and new users get a fresh copy under a new name.
TEST(ImageDistributorTest, AVolumeInUseIsNeverDeletedNewUsersGetAFreshCopy) {
  FleetTestbed tb;
  tb.CreateVms({"a"});
  auto host = tb.hosts.Get("h1");
  ASSERT_TRUE(host.ok());
  auto t = tb.templates.Get("web:1");
  ASSERT_TRUE(t.ok());
  for (const std::string& digest : {t->app_digest, t->os_digest}) {
    auto image = tb.images.Resolve(digest);
    ASSERT_TRUE(image.ok());
    const std::string volume = ImageDistributor::DiskVolume(*image);
    auto users = tb.hv.VolumeUsers(*host, volume);
    ASSERT_TRUE(users.ok());
    EXPECT_FALSE(users->empty()) << volume << " should be in use by vm a";
    tb.hv.CorruptVolume(*host, volume);
    tb.distributor.Recheck(digest);
    std::vector<std::string> messages;
    auto on_host = tb.distributor.Ensure(
        *host, *image, [&](const Json& e) { messages.push_back(e.value("message", "")); });
    ASSERT_TRUE(on_host.ok()) << on_host.status().ToString();
    const std::string fresh =
        volume.substr(0, volume.rfind('.')) + "-2" + volume.substr(volume.rfind('.'));
    EXPECT_EQ(on_host->disk.substr(on_host->disk.rfind('/') + 1), fresh);
    EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kDeleteVolume, "h1", "", "", volume}), 0U)
        << "deleted under its users";
    EXPECT_TRUE(tb.hv.FindVolume(*host, volume).ok());
    EXPECT_TRUE(std::any_of(messages.begin(), messages.end(), [](const std::string& m) {
      return m.find("in use, kept") != std::string::npos;
    })) << ::testing::PrintToString(messages);
  }
  auto bad = tb.host_images.BadCopies("h1");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->size(), 2u);
  // The next VM is made from the fresh copies.
  tb.CreateVms({"b"});
  auto state = tb.hv.GetState(*host, "b");
  ASSERT_TRUE(state.ok());
  EXPECT_NE(state->Disk(kAppSerial)->path.find("-2.erofs"), std::string::npos);
}

// A volume of the image's name that no record names (the record was lost) and that VMs
// use is adopted when it holds the image's bytes: no second upload, nothing deleted.
TEST(ImageDistributorTest, AnUnrecordedVolumeInUseIsAdoptedWhenIntact) {
  FleetTestbed tb;
  tb.CreateVms({"a"});
  auto host = tb.hosts.Get("h1");
  auto t = tb.templates.Get("web:1");
  auto app = tb.images.Resolve(t->app_digest);
  ASSERT_TRUE(host.ok() && app.ok());
  const uint64_t uploaded = tb.hv.UploadedBytes("h1");
  ASSERT_TRUE(tb.db->Exec("DELETE FROM host_images").ok());
  ASSERT_TRUE(tb.distributor.Ensure(*host, *app, nullptr).ok());
  EXPECT_EQ(tb.hv.UploadedBytes("h1"), uploaded);
  EXPECT_EQ(tb.hv.CountCalls({FakeHypervisor::Op::kDeleteVolume, "h1", "", "",
                              ImageDistributor::DiskVolume(*app)}),
            0U);
  EXPECT_EQ(*tb.host_images.Count(), 1);
}

}  // namespace
}  // namespace vdswap::testing
