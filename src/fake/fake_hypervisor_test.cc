#include "fake/fake_hypervisor.h"

#include <gtest/gtest.h>

#include "hypervisor/agent_client.h"

namespace vdswap {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Op = FakeHypervisor::Op;

// A running VM on the fake, and the real agent inside it reached through AgentClient.
class FakeHypervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VmSpec spec;
    spec.name = "vm1";
    spec.os = {kOsSerial, kPool + "/vm1-os.qcow2", "qcow2", false};
    spec.app = {kAppSerial, kPool + "/app-1.erofs", "raw", true};
    spec.data = {kDataSerial, kPool + "/vm1-data.qcow2", "qcow2", false};
    ASSERT_TRUE(hv_.DefineAndStart(host_, spec).ok());
  }

  AgentClient Agent() {
    auto agent = AgentClient::Open(hv_, host_, "vm1");
    EXPECT_TRUE(agent.ok()) << agent.status().ToString();
    return std::move(agent).value();
  }
  // Stops the app and puts the app volume `volume` in place of the attached one.
  void SwapAppDisk(const std::string& volume) {
    auto stopped = Agent().StopApp(seconds(30));
    ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
    ASSERT_TRUE(hv_.DetachDisk(host_, "vm1", kAppSerial, seconds(30)).ok());
    ASSERT_TRUE(hv_.AttachDisk(host_, "vm1", {kAppSerial, kPool + "/" + volume, "raw", true}).ok());
  }

  const std::string kPool = "/fake/h1/p";
  FakeClock clock_;
  FakeHypervisor hv_{clock_};
  HostRef host_{"h1", "fake:///", "p"};
};

TEST_F(FakeHypervisorTest, BootStartsTheAppOfTheAttachedDisk) {
  FakeHypervisor::GuestView guest = hv_.Guest("vm1");
  EXPECT_EQ(guest.app_state, AppState::kRunning);
  EXPECT_EQ(guest.app_version, "app-1.erofs");
  EXPECT_EQ(guest.starts, 1);
  EXPECT_EQ(guest.boot_id, "boot-1");
  auto hello = Agent().Hello(seconds(5));
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->boot_id, "boot-1");
  EXPECT_EQ(hello->os_id, "vdswap-testos");
  auto status = Agent().GetStatus(seconds(5));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(status->data_mounted);
  EXPECT_TRUE(status->app.healthy);
}

TEST_F(FakeHypervisorTest, StartAfterAnAppDiskSwapRunsTheNewVersion) {
  hv_.SetLatency(Op::kAttach, milliseconds(700));
  SwapAppDisk("app-2.erofs");
  EXPECT_EQ(hv_.Guest("vm1").app_state, AppState::kStopped);
  auto started = Agent().StartApp({}, seconds(60));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->version, "app-2.erofs");
  EXPECT_EQ(started->state, AppState::kRunning);
  // The guest measured the downtime on the clock, attach latency included.
  EXPECT_GE(started->last_downtime_ms.value_or(-1), 700);
  FakeHypervisor::GuestView guest = hv_.Guest("vm1");
  EXPECT_EQ(guest.app_version, "app-2.erofs");
  EXPECT_EQ(guest.starts, 2);
  EXPECT_EQ(guest.boot_id, "boot-1");  // no reboot
}

TEST_F(FakeHypervisorTest, UnhealthyAppFailsAfterItsHealthTimeoutOnVirtualTime) {
  hv_.SetUnhealthyApp("app-2.erofs");
  SwapAppDisk("app-2.erofs");
  Clock::TimePoint before = clock_.Now();
  auto real_before = std::chrono::steady_clock::now();
  auto started = Agent().StartApp({}, seconds(60));
  EXPECT_EQ(started.status().code(), Code::kInternal);
  EXPECT_NE(started.status().message().find("agent of vm 'vm1': health check did not pass "
                                            "within 15 s"),
            std::string::npos)
      << started.status().message();
  EXPECT_GE(clock_.Now() - before, seconds(15));
  EXPECT_LT(std::chrono::steady_clock::now() - real_before, seconds(5));  // nothing slept
  EXPECT_EQ(hv_.Guest("vm1").app_state, AppState::kFailed);
}

TEST_F(FakeHypervisorTest, StartWithoutAnAppDiskIsNotFoundAfterWaitingForIt) {
  ASSERT_TRUE(Agent().StopApp(seconds(30)).ok());
  ASSERT_TRUE(hv_.DetachDisk(host_, "vm1", kAppSerial, seconds(30)).ok());
  Clock::TimePoint before = clock_.Now();
  auto started = Agent().StartApp({2500}, seconds(60));
  EXPECT_EQ(started.status().code(), Code::kNotFound);
  EXPECT_EQ(clock_.Now() - before, milliseconds(2500));
}

TEST_F(FakeHypervisorTest, InjectedFaultsNeverReachTheAgent) {
  hv_.FailNext(Op::kAppStop, Internal("injected"));
  EXPECT_EQ(Agent().StopApp(seconds(30)).status().code(), Code::kInternal);
  EXPECT_EQ(hv_.Guest("vm1").app_state, AppState::kRunning);
  hv_.HangNext(Op::kAppStop);
  auto hung = Agent().StopApp(seconds(30));
  EXPECT_EQ(hung.status().code(), Code::kUnavailable);
  EXPECT_NE(hung.status().message().find("no answer"), std::string::npos);
  EXPECT_EQ(hv_.Guest("vm1").app_state, AppState::kRunning);
  hv_.FailNext(Op::kOpenAgent, Unavailable("injected"));
  EXPECT_EQ(AgentClient::Open(hv_, host_, "vm1").status().code(), Code::kUnavailable);
  EXPECT_TRUE(Agent().StopApp(seconds(30)).ok());  // one fault each
}

TEST_F(FakeHypervisorTest, ShutdownStopsTheAppAndARebootStartsItAgain) {
  ASSERT_TRUE(hv_.Shutdown(host_, "vm1", seconds(60)).ok());
  EXPECT_FALSE(hv_.GetState(host_, "vm1")->running);
  EXPECT_EQ(hv_.Guest("vm1").app_state, std::nullopt);
  EXPECT_EQ(AgentClient::Open(hv_, host_, "vm1").status().code(), Code::kUnavailable);
  ASSERT_TRUE(hv_.Start(host_, "vm1").ok());
  FakeHypervisor::GuestView guest = hv_.Guest("vm1");
  EXPECT_EQ(guest.boot_id, "boot-2");
  EXPECT_EQ(guest.app_state, AppState::kRunning);
  EXPECT_EQ(guest.starts, 2);  // counted over the VM's life
}

TEST_F(FakeHypervisorTest, TheShutdownRequestPowersTheVmOff) {
  auto off = Agent().Shutdown(seconds(30));
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_TRUE(off->powering_off);
  EXPECT_FALSE(hv_.GetState(host_, "vm1")->running);
}

TEST_F(FakeHypervisorTest, LatencyPassesOnTheClock) {
  hv_.SetLatency(Op::kDetach, seconds(30));
  Clock::TimePoint before = clock_.Now();
  ASSERT_TRUE(hv_.DetachDisk(host_, "vm1", kDataSerial, seconds(60)).ok());
  EXPECT_EQ(clock_.Now() - before, seconds(30));
  EXPECT_TRUE(hv_.Calls().back().Matches({Op::kDetach, "h1", "vm1", kDataSerial}));
}

}  // namespace
}  // namespace vdswap
