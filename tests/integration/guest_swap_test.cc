// Real libvirtd + QEMU (TCG): the test OS boots, its agent answers on the channel, and an
// app disk is hot-swapped under a running guest.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <thread>

#include "core/files.h"
#include "hypervisor/agent_client.h"
#include "image/app_image_builder.h"
#include "image/image_store.h"
#include "libvirt/libvirt_hypervisor.h"
#include "store/db.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The suite boots one VM (test OS, hello-1 on its app disk) once; every test first brings
// it to the state it starts from (Running, OnApp), so tests pass in any order and alone.
class GuestSwapTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    assets_ = &BuildAssets();
    auto state = TempDir::Create("/tmp", "vdswap-it");
    ASSERT_TRUE(state.ok());
    state_dir_ = state->Release();
    db_ = std::move(Db::Open(":memory:")).value();
    images_ = new ImageStore(*db_, state_dir_);
    hv_ = new LibvirtHypervisor(Accel::kTcg);
    host_ = {"local", "qemu:///system", "vdswap-it-" + std::to_string(getpid())};

    SystemClock clock;
    AppImageBuilder builder(*images_, runner_, clock);
    auto app1 = builder.Build({assets_->hello_dir + "/hello-1", ""}, nullptr);
    auto app2 = builder.Build({assets_->hello_dir + "/hello-2", ""}, nullptr);
    ASSERT_TRUE(app1.ok() && app2.ok()) << app1.status().ToString();
    ASSERT_TRUE(hv_->EnsurePool(host_).ok());
    std::string os = Upload("os.img", assets_->os_dir + "/os.img");
    std::string kernel = Upload("vmlinuz", assets_->os_dir + "/vmlinuz");
    std::string initrd = Upload("initrd.img", assets_->os_dir + "/initrd.img");
    v1_ = Upload("app-1.erofs", app1->disk_path());
    v2_ = Upload("app-2.erofs", app2->disk_path());
    auto overlay = hv_->CreateOverlay(host_, "vm-os.qcow2", os, "raw");
    ASSERT_TRUE(overlay.ok()) << overlay.status().ToString();
    auto data = hv_->CreateBlankVolume(host_, "vm-data.qcow2", 256ull << 20);
    ASSERT_TRUE(data.ok()) << data.status().ToString();

    VmSpec spec;
    spec.name = kVm;
    spec.kernel = kernel;
    spec.initrd = initrd;
    spec.cmdline = assets_->cmdline;
    spec.os = {kOsSerial, *overlay, "qcow2", false};
    spec.app = {kAppSerial, v1_, "raw", true};
    spec.data = {kDataSerial, *data, "qcow2", false};
    auto boot_start = std::chrono::steady_clock::now();
    Status defined = hv_->DefineAndStart(host_, spec);
    ASSERT_TRUE(defined.ok()) << defined.ToString();
    auto hello = WaitForAgent(*hv_, host_, kVm, seconds(120));
    ASSERT_TRUE(hello.ok()) << hello.status().ToString();
    std::printf("[measure] boot to agent hello: %lld ms\n",
                static_cast<long long>(MsSince(boot_start)));
  }
  static void TearDownTestSuite() {
    hv_->Destroy(host_, kVm).IgnoreError();
    RemovePool(host_);
    delete hv_;
  }

  static std::string Upload(const std::string& volume, const std::string& local) {
    auto n = hv_->UploadVolume(host_, volume, local, nullptr);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return *hv_->FindVolume(host_, volume);
  }
  // Boots the VM if it is shut off and waits for its agent; returns the agent's hello.
  static HelloReply Running() {
    auto state = hv_->GetState(host_, kVm);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    if (state.ok() && !state->running) {
      Status started = hv_->Start(host_, kVm);
      EXPECT_TRUE(started.ok()) << started.ToString();
    }
    auto hello = WaitForAgent(*hv_, host_, kVm, seconds(120));
    EXPECT_TRUE(hello.ok()) << hello.status().ToString();
    return hello.ok() ? *hello : HelloReply{};
  }
  // Makes `volume` the VM's app disk with its app running and healthy; returns app.start's
  // answer. REQUIRES: the VM runs.
  static AppStatus OnApp(AgentClient& agent, const std::string& volume) {
    auto state = hv_->GetState(host_, kVm);
    EXPECT_TRUE(state.ok());
    const DiskSpec* app = state.ok() ? state->Disk(kAppSerial) : nullptr;
    if (app == nullptr || app->path != volume) {
      EXPECT_TRUE(agent.StopApp(seconds(30)).ok());
      if (app != nullptr) {
        Status detached = hv_->DetachDisk(host_, kVm, kAppSerial, seconds(30));
        EXPECT_TRUE(detached.ok()) << detached.ToString();
      }
      Status attached = hv_->AttachDisk(host_, kVm, {kAppSerial, volume, "raw", true});
      EXPECT_TRUE(attached.ok()) << attached.ToString();
    }
    auto started = agent.StartApp({}, seconds(60));
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    return started.ok() ? *started : AppStatus{};
  }
  // The start counter in hello's health output ("hello 1 starts=4" -> 4), or -1.
  static int Starts(const AppStatus& app) {
    const std::string& out = app.health_output;
    auto at = out.find("starts=");
    return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 7);
  }

  static constexpr char kVm[] = "vdswap-it-vm";
  static inline const Assets* assets_;
  static inline std::string state_dir_;
  static inline SubprocessRunner runner_;
  static inline std::unique_ptr<Db> db_;
  static inline ImageStore* images_;
  static inline LibvirtHypervisor* hv_;
  static inline HostRef host_;
  static inline std::string v1_, v2_;  // paths of the hello-1 and hello-2 app volumes
};

TEST_F(GuestSwapTest, BootsAndTheAgentAnswers) {
  HelloReply hello = Running();
  EXPECT_EQ(hello.os_id, "vdswap-testos");
  EXPECT_FALSE(hello.boot_id.empty());
}

TEST_F(GuestSwapTest, HotSwapsTheAppDisk) {
  std::string boot_id = Running().boot_id;
  auto opened = AgentClient::Open(*hv_, host_, kVm);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  AgentClient& agent = *opened;
  AppStatus started = OnApp(agent, v1_);
  ASSERT_EQ(started.version, "1") << started.health_output;
  const int starts = Starts(started);
  ASSERT_GT(starts, 0) << started.health_output;
  // Restart it once to bump its counter.
  auto stopped = agent.StopApp(seconds(30));
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->was_running);
  auto restarted = agent.StartApp({}, seconds(60));
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  EXPECT_EQ(restarted->health_output, "hello 1 starts=" + std::to_string(starts + 1));

  // The swap: stop, detach, attach, start.
  auto swap_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(agent.StopApp(seconds(30)).ok());
  auto detach_start = std::chrono::steady_clock::now();
  Status detached = hv_->DetachDisk(host_, kVm, kAppSerial, seconds(30));
  ASSERT_TRUE(detached.ok()) << detached.ToString();
  int64_t detach_ms = MsSince(detach_start);
  auto state = hv_->GetState(host_, kVm);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->Disk(kAppSerial), nullptr);
  ASSERT_NE(state->Disk(kDataSerial), nullptr);  // never touched
  ASSERT_TRUE(hv_->AttachDisk(host_, kVm, {kAppSerial, v2_, "raw", true}).ok());
  auto swapped = agent.StartApp({}, seconds(60));
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  int64_t swap_ms = MsSince(swap_start);
  EXPECT_EQ(swapped->version, "2");
  EXPECT_EQ(swapped->state, AppState::kRunning);
  EXPECT_TRUE(swapped->healthy);
  // The counter is kept on the data disk.
  EXPECT_EQ(swapped->health_output, "hello 2 starts=" + std::to_string(starts + 2));
  ASSERT_TRUE(swapped->last_downtime_ms.has_value());
  int64_t downtime_ms = *swapped->last_downtime_ms;

  auto after = agent.Hello(seconds(5));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->boot_id, boot_id);  // no reboot
  auto health = agent.CheckHealth(seconds(10));
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_TRUE(health->healthy);
  auto status = agent.GetStatus(seconds(5));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(status->data_mounted);
  EXPECT_EQ(status->app.version, "2");
  // The persistent definition has the new disk too: a reboot keeps the swap.
  state = hv_->GetState(host_, kVm);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->Disk(kAppSerial)->path, v2_);

  std::printf("[measure] detach confirmed: %lld ms\n", static_cast<long long>(detach_ms));
  std::printf("[measure] app swap host wall: %lld ms, guest downtime stop->healthy: %lld ms\n",
              static_cast<long long>(swap_ms), static_cast<long long>(downtime_ms));
}

// Make-before-break on the real guest: the new app disk is plugged beside the old one
// (second slot, vdd), prepared while the old app runs, switched to, and only after the new
// version is healthy is the old one released and unplugged. Then back the same way to the
// first slot, and one break-before-make swap for comparison of the agent's downtime.
TEST_F(GuestSwapTest, MakeBeforeBreakUnplugsTheOldDiskOnlyAfterTheNewAppIsHealthy) {
  Running();
  auto opened = AgentClient::Open(*hv_, host_, kVm);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  AgentClient& agent = *opened;
  ASSERT_EQ(OnApp(agent, v1_).version, "1");

  auto mbb = [&](const char* from, const char* to, const std::string& volume,
                 const std::string& version) -> int64_t {
    Status attached = hv_->AttachDisk(host_, kVm, {to, volume, "raw", true});
    EXPECT_TRUE(attached.ok()) << attached.ToString();
    auto prepared = agent.PrepareApp({to}, seconds(60));
    EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
    if (!prepared.ok()) return -1;
    EXPECT_EQ(prepared->version, version);
    auto before = agent.GetStatus(seconds(5));
    EXPECT_TRUE(before.ok() && before->app.state == AppState::kRunning);  // old still serves
    auto switched = agent.SwitchApp({to}, seconds(60));
    EXPECT_TRUE(switched.ok()) << switched.status().ToString();
    if (!switched.ok()) return -1;
    EXPECT_EQ(switched->version, version);
    EXPECT_TRUE(switched->healthy);
    // Healthy on the new disk while the old one is still plugged.
    auto state = hv_->GetState(host_, kVm);
    EXPECT_TRUE(state.ok() && state->Disk(from) != nullptr && state->Disk(to) != nullptr);
    EXPECT_TRUE(agent.ReleaseApp({from}, seconds(30)).ok());
    Status detached = hv_->DetachDisk(host_, kVm, from, seconds(30));
    EXPECT_TRUE(detached.ok()) << detached.ToString();
    auto health = agent.CheckHealth(seconds(10));
    EXPECT_TRUE(health.ok() && health->healthy);
    return switched->last_downtime_ms.value_or(-1);
  };
  int64_t to_b = mbb(kAppSerial, kAppSerialB, v2_, "2");
  int64_t to_a = mbb(kAppSerialB, kAppSerial, v1_, "1");
  ASSERT_GE(to_b, 0);
  ASSERT_GE(to_a, 0);

  // Break-before-make, for comparison: stop, detach, attach, start.
  ASSERT_TRUE(agent.StopApp(seconds(30)).ok());
  ASSERT_TRUE(hv_->DetachDisk(host_, kVm, kAppSerial, seconds(30)).ok());
  ASSERT_TRUE(hv_->AttachDisk(host_, kVm, {kAppSerial, v2_, "raw", true}).ok());
  auto bbm = agent.StartApp({}, seconds(60));
  ASSERT_TRUE(bbm.ok()) << bbm.status().ToString();
  int64_t bbm_ms = bbm->last_downtime_ms.value_or(-1);
  EXPECT_LT(std::max(to_a, to_b), bbm_ms);
  std::printf(
      "[measure] agent downtime: make-before-break %lld ms and %lld ms, "
      "break-before-make %lld ms\n",
      static_cast<long long>(to_b), static_cast<long long>(to_a), static_cast<long long>(bbm_ms));
}

TEST_F(GuestSwapTest, MalformedRequestsGetErrorsAndAgentKeepsServing) {
  Running();
  virConnectPtr conn = virConnectOpen(host_.uri.c_str());
  virDomainPtr dom = virDomainLookupByName(conn, kVm);
  ASSERT_NE(dom, nullptr);
  virStreamPtr st = virStreamNew(conn, 0);
  ASSERT_EQ(virDomainOpenChannel(dom, kAgentChannel, st, VIR_DOMAIN_CHANNEL_FORCE), 0);
  std::string junk = "{this is not json\n[1,2,3]\n{\"id\":9,\"op\":\"format-disk\"}\n";
  ASSERT_EQ(virStreamSend(st, junk.data(), junk.size()), static_cast<int>(junk.size()));
  std::string got;
  char buf[4096];
  while (std::count(got.begin(), got.end(), '\n') < 3) {
    int n = virStreamRecv(st, buf, sizeof buf);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  virStreamAbort(st);
  virStreamFree(st);
  virDomainFree(dom);
  virConnectClose(conn);
  EXPECT_NE(got.find("request is not valid JSON"), std::string::npos) << got;
  EXPECT_NE(got.find("request must be a JSON object"), std::string::npos) << got;
  EXPECT_NE(got.find("unknown op 'format-disk'"), std::string::npos) << got;
  // Still serving, through the regular client.
  auto hello = WaitForAgent(*hv_, host_, kVm, seconds(10));
  EXPECT_TRUE(hello.ok()) << hello.status().ToString();
}

TEST_F(GuestSwapTest, GracefulShutdownStopsTheAppAndPowersOff) {
  Running();
  auto before = hv_->GetState(host_, kVm);
  ASSERT_TRUE(before.ok() && before->running);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(hv_->Shutdown(host_, kVm, seconds(60)).ok());
  int64_t ms = MsSince(start);
  auto state = hv_->GetState(host_, kVm);
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->running);
  EXPECT_LT(ms, 60000) << "the guest did not power off by itself";
  std::printf("[measure] graceful shutdown: %lld ms\n", static_cast<long long>(ms));
}

}  // namespace
}  // namespace vdswap::testing
