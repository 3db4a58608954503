#include "guest/agent/agent.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>

namespace vdswap::guest {
namespace {

// A simulated guest: virtual time, disks by serial, processes that obey signals, and a
// log of what the agent did.
class FakeEnv : public GuestEnv {
 public:
  std::map<std::string, std::string> disks = {{"vdswap-data", "/dev/vdc"},
                                              {"vdswap-app", "/dev/vdb"}};
  std::map<std::string, AppManifest> app_on_device;
  bool blank_data = false;
  bool ignores_term = false;  // the app needs SIGKILL
  bool healthy = true;
  int unhealthy_checks = 0;  // the first N checks fail
  std::set<pid_t> alive;
  std::vector<std::string> log;
  int64_t now = 1000;
  pid_t next_pid = 100;
  OsRelease os = {{"ID", "vdswap-testos"}, {"VERSION_ID", "1"}};

  Result<std::string> FindDisk(const std::string& serial, std::chrono::milliseconds) override {
    auto it = disks.find(serial);
    if (it == disks.end()) return NotFound("no disk with serial '" + serial + "'");
    return it->second;
  }
  Status MountData(const std::string& dev) override {
    log.push_back((blank_data ? "format+mount data " : "mount data ") + dev);
    return Status::Ok();
  }
  Result<AppManifest> MountApp(const std::string& dev) override {
    auto it = app_on_device.find(dev);
    if (it == app_on_device.end())
      return InvalidArgument("manifest: /vdswap.json is not valid JSON");
    log.push_back("mount app " + dev);
    return it->second;
  }
  Status UnmountApp() override {
    log.push_back("unmount app");
    return Status::Ok();
  }
  Result<pid_t> Spawn(const AppManifest& m) override {
    pid_t pid = next_pid++;
    alive.insert(pid);
    log.push_back("spawn " + m.version);
    return pid;
  }
  void Kill(pid_t pid, int sig) override {
    log.push_back("kill " + std::string(sig == SIGKILL ? "KILL" : "TERM"));
    if (sig == SIGKILL || !ignores_term) alive.erase(pid);
  }
  bool Reaped(pid_t pid) override { return alive.count(pid) == 0; }
  HealthResult CheckHealth(const AppManifest& m, std::chrono::milliseconds) override {
    now += 5;
    if (unhealthy_checks > 0) {
      --unhealthy_checks;
      return {false, "starting"};
    }
    return {healthy, "hello " + m.version};
  }
  int64_t NowMs() override { return now; }
  void SleepMs(int64_t ms) override { now += ms; }
  OsRelease ReadOsRelease() override { return os; }
  std::string Arch() override { return "x86_64"; }
  std::string BootId() override { return "boot-1"; }
  void PowerOff() override { log.push_back("poweroff"); }

  // Simulates a hot swap of the app disk.
  void PutApp(const std::string& version) {
    AppManifest m;
    m.name = "hello";
    m.version = version;
    m.start = {"/bin/hello"};
    m.health.exec = {"/bin/hello", "--check"};
    m.health.interval_ms = 200;
    m.health.timeout_s = 5;
    m.stop.timeout_s = 2;
    m.requirements.os_id = "vdswap-testos";
    app_on_device["/dev/vdb"] = m;
  }
};

class AgentTest : public ::testing::Test {
 protected:
  Json Call(const std::string& line) {
    auto j = Json::parse(agent_.HandleLine(line), nullptr, false);
    EXPECT_FALSE(j.is_discarded());
    return j;
  }
  Json Op(const std::string& op) { return Call(R"({"id":1,"op":")" + op + R"("})"); }

  FakeEnv env_;
  Agent agent_{env_};
};

TEST_F(AgentTest, BootMountsDataAndStartsTheApp) {
  env_.PutApp("1");
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
  Json st = Op("status");
  EXPECT_EQ(st["result"]["app"]["version"], "1");
  EXPECT_EQ(st["result"]["app"]["healthy"], true);
  EXPECT_EQ(st["result"]["data_mounted"], true);
  EXPECT_EQ(env_.log[0], "mount data /dev/vdc");
}

TEST_F(AgentTest, SwapStopsUnmountsThenStartsNewVersionAndMeasuresDowntime) {
  env_.PutApp("1");
  agent_.Boot();
  Json stop = Call(R"({"id":"a","op":"app.stop"})");
  EXPECT_EQ(stop["id"], "a");
  EXPECT_EQ(stop["ok"], true);
  EXPECT_EQ(env_.log.back(), "unmount app");
  EXPECT_TRUE(env_.alive.empty());

  env_.PutApp("2");  // the host swapped the disk
  env_.now += 700;   // detach + attach
  Json start = Op("app.start");
  ASSERT_EQ(start["ok"], true) << start.dump();
  EXPECT_EQ(start["result"]["version"], "2");
  EXPECT_EQ(start["result"]["healthy"], true);
  EXPECT_GE(start["result"]["last_downtime_ms"].get<int64_t>(), 700);
}

TEST_F(AgentTest, EveryOpIsIdempotent) {
  env_.PutApp("1");
  agent_.Boot();
  size_t spawns_before = std::count(env_.log.begin(), env_.log.end(), "spawn 1");
  EXPECT_EQ(Op("app.start")["ok"], true);  // already running: no second process
  EXPECT_EQ(std::count(env_.log.begin(), env_.log.end(), "spawn 1"), spawns_before);
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_EQ(Op("app.stop")["result"]["was_running"], false);
}

TEST_F(AgentTest, StopEscalatesToKillAfterTimeout) {
  env_.PutApp("1");
  agent_.Boot();
  env_.ignores_term = true;
  int64_t before = env_.now;
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_NE(std::find(env_.log.begin(), env_.log.end(), "kill KILL"), env_.log.end());
  EXPECT_GE(env_.now - before, 2000);  // waited the manifest's stop.timeout_s first
}

TEST_F(AgentTest, UnhealthyStartFailsWithHealthOutput) {
  env_.PutApp("1");
  agent_.Boot();
  Op("app.stop");
  env_.healthy = false;
  Json start = Op("app.start");
  EXPECT_EQ(start["ok"], false);
  EXPECT_NE(start["error"]["message"].get<std::string>().find("health check did not pass"),
            std::string::npos);
  EXPECT_EQ(agent_.state(), Agent::AppState::kFailed);
  // The host rolls back: stop works on a failed app.
  EXPECT_EQ(Op("app.stop")["ok"], true);
}

TEST_F(AgentTest, WaitsForHealthWhileTheAppWarmsUp) {
  env_.PutApp("1");
  env_.unhealthy_checks = 3;
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
}

TEST_F(AgentTest, RefusesAppWhoseRequirementsDoNotMatch) {
  env_.PutApp("1");
  env_.os["ID"] = "debian";
  agent_.Boot();
  Json start = Op("app.start");
  EXPECT_EQ(start["ok"], false);
  EXPECT_EQ(start["error"]["code"], "failed_precondition");
  EXPECT_EQ(env_.log.back(), "unmount app");
}

TEST_F(AgentTest, MissingAppDiskIsNotFound) {
  env_.disks.erase("vdswap-app");
  agent_.Boot();
  Json start = Op("app.start");
  EXPECT_EQ(start["error"]["code"], "not_found");
}

TEST_F(AgentTest, RestartsAnAppThatDiesWithBackoff) {
  env_.PutApp("1");
  agent_.Boot();
  env_.alive.clear();  // crash
  agent_.Tick();
  EXPECT_EQ(agent_.state(), Agent::AppState::kStarting);
  env_.now += 600;
  agent_.Tick();
  EXPECT_EQ(Op("status")["result"]["app"]["restarts"], 1);
  EXPECT_EQ(env_.alive.size(), 1u);
}

TEST_F(AgentTest, MalformedRequestsGetErrorsAndTheAgentKeepsServing) {
  env_.PutApp("1");
  agent_.Boot();
  EXPECT_EQ(Call("{not json")["error"]["code"], "invalid_argument");
  EXPECT_EQ(Call("[1,2]")["error"]["code"], "invalid_argument");
  EXPECT_EQ(Call(R"({"id":3})")["error"]["message"], "request needs a string 'op'");
  Json unknown = Call(R"({"id":4,"op":"rm -rf"})");
  EXPECT_EQ(unknown["id"], 4);
  EXPECT_EQ(unknown["error"]["message"], "unknown op 'rm -rf'");
  EXPECT_EQ(Call(std::string(70000, 'x'))["error"]["message"], "request line too long");
  EXPECT_EQ(Op("hello")["ok"], true);
}

TEST_F(AgentTest, HelloReportsBootIdAndOs) {
  Json hello = Op("hello");
  EXPECT_EQ(hello["result"]["boot_id"], "boot-1");
  EXPECT_EQ(hello["result"]["os_release"]["ID"], "vdswap-testos");
}

TEST_F(AgentTest, ShutdownStopsTheAppFirst) {
  env_.PutApp("1");
  agent_.Boot();
  EXPECT_EQ(Op("shutdown")["ok"], true);
  EXPECT_TRUE(agent_.shutting_down());
  EXPECT_TRUE(env_.alive.empty());
}

}  // namespace
}  // namespace vdswap::guest
