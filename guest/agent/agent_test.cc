#include "guest/agent/agent.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "guest/agent/fake_guest_env.h"

namespace vdswap::guest {
namespace {

// The hello app of `version` as its manifest says.
AppManifest HelloApp(const std::string& version) {
  AppManifest m;
  m.name = "hello";
  m.version = version;
  m.start = {"/bin/hello"};
  m.health.exec = {"/bin/hello", "--check"};
  m.health.interval_ms = 200;
  m.health.timeout_s = 5;
  m.stop.timeout_s = 2;
  m.requirements.os_id = "vdswap-testos";
  return m;
}

// hello serving on held sockets, probed over HTTP by the agent (no exec check).
AppManifest SocketApp(const std::string& version, std::vector<AppManifest::Socket> sockets) {
  AppManifest m = HelloApp(version);
  m.health.exec.clear();
  m.health.http = *ParseHttpUrl("http://127.0.0.1:8080/healthz");
  m.sockets = std::move(sockets);
  return m;
}

AppManifest::Socket Sock(const std::string& name, const std::string& listen) {
  return {name, *ParseSocketAddress(listen)};
}

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() {
    env_.PlugDisk(kDataSerial, "/dev/vdc");
    env_.PlugDisk(kAppSerial, "/dev/vdb");
  }

  Json Call(const std::string& line) {
    auto j = Json::parse(agent_.HandleLine(line), nullptr, false);
    EXPECT_FALSE(j.is_discarded());
    return j;
  }
  Json Op(const std::string& op) { return Call(R"({"id":1,"op":")" + op + R"("})"); }
  // Simulates a hot swap of the app disk.
  void PutApp(const std::string& version) { env_.PutApp("/dev/vdb", HelloApp(version)); }
  void PutApp(AppManifest m) { env_.PutApp("/dev/vdb", std::move(m)); }
  int64_t Logs(const std::string& prefix) {
    return std::count_if(env_.log().begin(), env_.log().end(),
                         [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  }
  int64_t Spawns(const std::string& version) {
    return std::count(env_.log().begin(), env_.log().end(), "spawn " + version);
  }
  bool Logged(const std::string& line) {
    return std::find(env_.log().begin(), env_.log().end(), line) != env_.log().end();
  }

  FakeClock clock_;
  FakeGuestEnv env_{clock_, "boot-1"};
  Agent agent_{env_};
};

TEST_F(AgentTest, BootMountsDataAndStartsTheApp) {
  PutApp("1");
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
  Json st = Op("status");
  EXPECT_EQ(st["result"]["app"]["version"], "1");
  EXPECT_EQ(st["result"]["app"]["healthy"], true);
  EXPECT_EQ(st["result"]["data_mounted"], true);
  EXPECT_EQ(env_.log()[0], "mount data /dev/vdc");
}

TEST_F(AgentTest, SwapStopsUnmountsThenStartsNewVersionAndMeasuresDowntime) {
  PutApp("1");
  agent_.Boot();
  Json stop = Call(R"({"id":"a","op":"app.stop"})");
  EXPECT_EQ(stop["id"], "a");
  EXPECT_EQ(stop["ok"], true);
  EXPECT_EQ(env_.log().back(), "unmount app");
  EXPECT_EQ(env_.running_processes(), 0u);

  PutApp("2");                                     // the host swapped the disk
  clock_.Advance(std::chrono::milliseconds(700));  // detach + attach
  Json start = Op("app.start");
  ASSERT_EQ(start["ok"], true) << start.dump();
  EXPECT_EQ(start["result"]["version"], "2");
  EXPECT_EQ(start["result"]["healthy"], true);
  EXPECT_GE(start["result"]["last_downtime_ms"].get<int64_t>(), 700);
}

TEST_F(AgentTest, EveryOpIsIdempotent) {
  PutApp("1");
  agent_.Boot();
  int64_t spawns_before = Spawns("1");
  EXPECT_EQ(Op("app.start")["ok"], true);  // already running: no second process
  EXPECT_EQ(Spawns("1"), spawns_before);
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_EQ(Op("app.stop")["result"]["was_running"], false);
}

TEST_F(AgentTest, StopEscalatesToKillAfterTimeout) {
  PutApp("1");
  agent_.Boot();
  env_.SetIgnoresTerm(true);
  int64_t before = env_.NowMs();
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_TRUE(Logged("kill KILL"));
  EXPECT_GE(env_.NowMs() - before, 2000);  // waited the manifest's stop.timeout_s first
}

TEST_F(AgentTest, UnhealthyStartFailsWithHealthOutput) {
  PutApp("1");
  agent_.Boot();
  Op("app.stop");
  env_.SetHealthy("1", false);
  int64_t before = env_.NowMs();
  Json start = Op("app.start");
  EXPECT_EQ(start["ok"], false);
  EXPECT_NE(start["error"]["message"].get<std::string>().find("health check did not pass"),
            std::string::npos);
  EXPECT_GE(env_.NowMs() - before, 5000);  // the manifest's health.timeout_s
  EXPECT_EQ(agent_.state(), Agent::AppState::kFailed);
  // The host rolls back: stop works on a failed app.
  EXPECT_EQ(Op("app.stop")["ok"], true);
}

TEST_F(AgentTest, WaitsForHealthWhileTheAppWarmsUp) {
  PutApp("1");
  env_.FailNextHealthChecks(3);
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
}

TEST_F(AgentTest, RefusesAppWhoseRequirementsDoNotMatch) {
  PutApp("1");
  env_.SetOsRelease({{"ID", "debian"}, {"VERSION_ID", "12"}});
  agent_.Boot();
  Json start = Op("app.start");
  EXPECT_EQ(start["ok"], false);
  EXPECT_EQ(start["error"]["code"], "failed_precondition");
  EXPECT_EQ(env_.log().back(), "unmount app");
}

TEST_F(AgentTest, MissingAppDiskIsNotFound) {
  env_.UnplugDisk(kAppSerial);
  agent_.Boot();
  Json start = Op("app.start");
  EXPECT_EQ(start["error"]["code"], "not_found");
}

TEST_F(AgentTest, RestartsAnAppThatDiesWithBackoff) {
  PutApp("1");
  agent_.Boot();
  env_.CrashApps();
  agent_.Tick();
  EXPECT_EQ(agent_.state(), Agent::AppState::kStarting);
  clock_.Advance(std::chrono::milliseconds(600));
  agent_.Tick();
  EXPECT_EQ(Op("status")["result"]["app"]["restarts"], 1);
  EXPECT_EQ(env_.running_processes(), 1u);
}

TEST_F(AgentTest, MalformedRequestsGetErrorsAndTheAgentKeepsServing) {
  PutApp("1");
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
  PutApp("1");
  agent_.Boot();
  EXPECT_EQ(Op("shutdown")["ok"], true);
  EXPECT_TRUE(agent_.shutting_down());
  EXPECT_EQ(env_.running_processes(), 0u);
}

TEST_F(AgentTest, StartWithAMistypedFieldIsRefusedNamingTheField) {
  PutApp("1");
  agent_.Boot();
  Op("app.stop");
  Json start = Call(R"({"id":2,"op":"app.start","wait_disk_ms":"soon"})");
  EXPECT_EQ(start["error"]["code"], "invalid_argument");
  EXPECT_EQ(start["error"]["message"],
            "app.start request: field 'wait_disk_ms' must be an integer");
  EXPECT_EQ(agent_.state(), Agent::AppState::kStopped);  // nothing was started
}

TEST_F(AgentTest, StartWaitsForAHotPluggedAppDiskAsLongAsAsked) {
  env_.UnplugDisk(kAppSerial);
  agent_.Boot();
  int64_t before = env_.NowMs();
  Json start = Call(R"({"id":2,"op":"app.start","wait_disk_ms":3000})");
  EXPECT_EQ(start["error"]["code"], "not_found");
  EXPECT_EQ(env_.NowMs() - before, 3000);
}

TEST_F(AgentTest, HealthRunsOneCheckAndNeedsARunningApp) {
  EXPECT_EQ(Op("app.health")["error"]["code"], "failed_precondition");
  PutApp("1");
  agent_.Boot();
  Json health = Op("app.health");
  EXPECT_EQ(health["result"]["healthy"], true);
  EXPECT_EQ(health["result"]["output"], "hello 1");
}

TEST_F(AgentTest, EveryReplyDecodesAsItsProtocolType) {
  PutApp("1");
  agent_.Boot();
  auto result = [this](AgentOp op) {
    auto reply = DecodeReply(agent_.HandleLine(EncodeRequest(7, op, nullptr)));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(reply->id, 7);
    EXPECT_TRUE(reply->result.ok()) << reply->result.status().ToString();
    return *reply->result;
  };
  auto hello = FromJson<HelloReply>(result(AgentOp::kHello));
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->os_version_id, "1");
  auto status = FromJson<StatusReply>(result(AgentOp::kStatus));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->app.state, AppState::kRunning);
  EXPECT_EQ(status->app.version, "1");
  EXPECT_TRUE(FromJson<HealthReply>(result(AgentOp::kAppHealth)).ok());
  auto stop = FromJson<StopReply>(result(AgentOp::kAppStop));
  ASSERT_TRUE(stop.ok()) << stop.status().ToString();
  EXPECT_TRUE(stop->was_running);
  auto start = FromJson<AppStatus>(result(AgentOp::kAppStart));
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  EXPECT_TRUE(start->healthy);
  EXPECT_TRUE(FromJson<ShutdownReply>(result(AgentOp::kShutdown)).ok());
}

TEST_F(AgentTest, AnHttpProbeAloneIsAProbe) {
  PutApp(SocketApp("1", {}));
  env_.SetHealthy("1", false);
  agent_.Boot();
  // Without the probe counted, a running app would pass as healthy.
  EXPECT_EQ(agent_.state(), Agent::AppState::kFailed);
  EXPECT_EQ(Op("app.health")["result"]["healthy"], false);
}

TEST_F(AgentTest, ProbesThatHangTimeOutAndFailTheStart) {
  PutApp(SocketApp("1", {}));
  env_.SetProbesHang(true);
  int64_t before = env_.NowMs();
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kFailed);
  Json st = Op("status");
  EXPECT_NE(st["result"]["app"]["error"].get<std::string>().find("timed out"), std::string::npos)
      << st.dump();
  // Gave up at the manifest's health.timeout_s, not one hung probe later than that plus more.
  EXPECT_GE(env_.NowMs() - before, 5000);
  EXPECT_LT(env_.NowMs() - before, 5000 + 1000 + 10000);
}

TEST_F(AgentTest, PassesHeldSocketsAsFdsThreeOnWithSystemdEnvironment) {
  PutApp(SocketApp("1", {Sock("http", "0.0.0.0:8080"), Sock("admin", "unix:/run/hello.sock")}));
  agent_.Boot();
  ASSERT_EQ(agent_.state(), Agent::AppState::kRunning);
  EXPECT_EQ(env_.listening().size(), 2u);
  EXPECT_EQ(env_.last_spawn_fds(), (std::vector<int>{20, 21}));
  int pid = Op("status")["result"]["app"]["pid"];
  EXPECT_EQ(env_.last_spawn_env(),
            (std::vector<std::string>{"LISTEN_FDS=2", "LISTEN_PID=" + std::to_string(pid),
                                      "LISTEN_FDNAMES=http:admin"}));
  EXPECT_TRUE(Logged("listen 0.0.0.0:8080 fd 20"));
  EXPECT_TRUE(Logged("listen unix:/run/hello.sock fd 21"));
}

TEST_F(AgentTest, HeldSocketSurvivesARestartAndAStop) {
  PutApp(SocketApp("1", {Sock("http", "0.0.0.0:8080")}));
  agent_.Boot();
  env_.CrashApps();
  agent_.Tick();
  clock_.Advance(std::chrono::milliseconds(600));
  agent_.Tick();
  ASSERT_EQ(env_.spawns(), 2);
  EXPECT_EQ(env_.last_spawn_fds(), (std::vector<int>{20}));
  EXPECT_EQ(Op("app.stop")["ok"], true);
  // Stopped and unmounted, the socket is still held: clients wait in its backlog.
  EXPECT_EQ(env_.listening().size(), 1u);
  EXPECT_EQ(Logs("listen "), 1);
  EXPECT_EQ(Logs("close "), 0);
}

TEST_F(AgentTest, SwapKeepsSameSocketsOpensNewOnesAndClosesDroppedOnes) {
  PutApp(SocketApp("1", {Sock("http", "0.0.0.0:8080"), Sock("old", "127.0.0.1:9000")}));
  agent_.Boot();
  Op("app.stop");
  // Version 2 keeps http, drops old, and takes old's port under a new name.
  PutApp(SocketApp("2", {Sock("metrics", "127.0.0.1:9000"), Sock("http", "0.0.0.0:8080")}));
  Json start = Op("app.start");
  ASSERT_EQ(start["ok"], true) << start.dump();
  EXPECT_EQ(Logs("listen 0.0.0.0:8080"), 1);
  EXPECT_TRUE(Logged("close fd 21 127.0.0.1:9000"));
  EXPECT_TRUE(Logged("listen 127.0.0.1:9000 fd 22"));
  EXPECT_EQ(env_.last_spawn_fds(), (std::vector<int>{22, 20}));  // manifest order
  EXPECT_EQ(env_.last_spawn_env()[2], "LISTEN_FDNAMES=metrics:http");
}

TEST_F(AgentTest, ASocketThatCannotBeBoundFailsTheStartNamingIt) {
  env_.SetAddressInUse("0.0.0.0:8080");
  PutApp(SocketApp("1", {Sock("http", "0.0.0.0:8080")}));
  agent_.Boot();
  Json start = Op("app.start");
  EXPECT_EQ(start["error"]["code"], "unavailable");
  EXPECT_NE(start["error"]["message"].get<std::string>().find("socket 'http'"), std::string::npos)
      << start.dump();
  EXPECT_EQ(env_.spawns(), 0);
}

TEST_F(AgentTest, DrainTimeComesBeforeTheStopDeadline) {
  AppManifest m = HelloApp("1");
  m.stop.drain_s = 3;
  PutApp(m);
  agent_.Boot();
  env_.SetIgnoresTerm(true);
  int64_t before = env_.NowMs();
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_TRUE(Logged("kill KILL"));
  EXPECT_GE(env_.NowMs() - before, 5000);  // drain_s 3 + timeout_s 2
}

Json Slot(Agent& agent, const std::string& op, const std::string& serial) {
  auto j =
      Json::parse(agent.HandleLine(R"({"id":1,"op":")" + op + R"(","serial":")" + serial + R"("})"),
                  nullptr, false);
  EXPECT_FALSE(j.is_discarded());
  return j;
}

TEST_F(AgentTest, MakeBeforeBreakPreparesBesideTheRunningAppThenSwitches) {
  PutApp(SocketApp("1", {Sock("http", "0.0.0.0:8080")}));
  agent_.Boot();
  env_.PlugDisk(kAppSerialB, "/dev/vdd");
  env_.PutApp("/dev/vdd", SocketApp("2", {Sock("http", "0.0.0.0:8080")}));
  Json prep = Slot(agent_, "app.prepare", kAppSerialB);
  ASSERT_EQ(prep["ok"], true) << prep.dump();
  EXPECT_EQ(prep["result"]["version"], "2");
  EXPECT_EQ(env_.running_processes(), 1u);  // the old app still serves
  EXPECT_EQ(env_.log().back(), "mount app /dev/vdd vdswap-app-b");

  clock_.Advance(std::chrono::milliseconds(5000));  // preparing is not downtime
  Json sw = Slot(agent_, "app.switch", kAppSerialB);
  ASSERT_EQ(sw["ok"], true) << sw.dump();
  EXPECT_EQ(sw["result"]["version"], "2");
  EXPECT_LT(sw["result"]["last_downtime_ms"].get<int64_t>(), 1000);
  EXPECT_EQ(env_.log().back(), "spawn 2 vdswap-app-b");
  EXPECT_EQ(env_.last_spawn_fds(), (std::vector<int>{20}));  // the same held socket
  EXPECT_EQ(Logs("unmount app"), 0);  // the old slot stays mounted for a switch back
  // The old slot cannot be released while active; the new one can never be released.
  EXPECT_EQ(Slot(agent_, "app.release", kAppSerialB)["error"]["code"], "failed_precondition");
  EXPECT_EQ(Slot(agent_, "app.release", kAppSerial)["ok"], true);
  EXPECT_EQ(env_.log().back(), "unmount app");
  EXPECT_EQ(Slot(agent_, "app.release", kAppSerial)["ok"], true);  // idempotent
}

TEST_F(AgentTest, SwitchBackRollsBackWithoutAnyDisk) {
  PutApp("1");
  agent_.Boot();
  env_.PlugDisk(kAppSerialB, "/dev/vdd");
  env_.PutApp("/dev/vdd", HelloApp("2"));
  env_.SetHealthy("2", false);
  Json sw = Slot(agent_, "app.switch", kAppSerialB);  // prepares on the way
  EXPECT_EQ(sw["ok"], false);
  size_t mounts_before = static_cast<size_t>(Logs("mount app"));
  env_.UnplugDisk(kAppSerial);  // no disk is needed: slot 1 is still mounted
  Json back = Slot(agent_, "app.switch", kAppSerial);
  ASSERT_EQ(back["ok"], true) << back.dump();
  EXPECT_EQ(back["result"]["version"], "1");
  EXPECT_EQ(static_cast<size_t>(Logs("mount app")), mounts_before);
  EXPECT_EQ(env_.running_processes(), 1u);
  EXPECT_EQ(Slot(agent_, "app.release", kAppSerialB)["ok"], true);
  EXPECT_EQ(env_.log().back(), "unmount app vdswap-app-b");
}

TEST_F(AgentTest, PrepareChecksRequiresAndLeavesTheRunningAppAlone) {
  PutApp("1");
  agent_.Boot();
  AppManifest other = HelloApp("2");
  other.requirements.os_id = "debian";
  env_.PlugDisk(kAppSerialB, "/dev/vdd");
  env_.PutApp("/dev/vdd", other);
  EXPECT_EQ(Slot(agent_, "app.prepare", kAppSerialB)["error"]["code"], "failed_precondition");
  EXPECT_EQ(env_.log().back(), "unmount app vdswap-app-b");
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
  EXPECT_EQ(Slot(agent_, "app.prepare", kAppSerial)["error"]["code"], "failed_precondition");
  EXPECT_EQ(Slot(agent_, "app.prepare", "vdswap-os")["error"]["code"], "invalid_argument");
}

TEST_F(AgentTest, BootWithTwoAppDisksStartsNeitherUntilTheHostChooses) {
  PutApp("1");
  env_.PlugDisk(kAppSerialB, "/dev/vdd");
  env_.PutApp("/dev/vdd", HelloApp("2"));
  agent_.Boot();
  EXPECT_EQ(env_.spawns(), 0);
  EXPECT_EQ(Op("app.start")["error"]["code"], "failed_precondition");
  Json sw = Slot(agent_, "app.switch", kAppSerialB);
  ASSERT_EQ(sw["ok"], true) << sw.dump();
  EXPECT_EQ(sw["result"]["version"], "2");
}

TEST_F(AgentTest, StartFindsTheAppInTheSecondSlot) {
  env_.UnplugDisk(kAppSerial);
  env_.PlugDisk(kAppSerialB, "/dev/vdd");
  env_.PutApp("/dev/vdd", HelloApp("2"));
  agent_.Boot();
  EXPECT_EQ(agent_.state(), Agent::AppState::kRunning);
  EXPECT_EQ(env_.log().back(), "spawn 2 vdswap-app-b");
  EXPECT_EQ(Op("app.stop")["ok"], true);
  EXPECT_EQ(env_.log().back(), "unmount app vdswap-app-b");
}

TEST_F(AgentTest, ReadyNotificationIsHealthyAtOnce) {
  AppManifest m = HelloApp("1");
  m.health.interval_ms = 1000;
  PutApp(m);
  env_.SetNotifiesReady("1");
  env_.FailNextHealthChecks(1000);  // the probe alone would never pass
  agent_.Boot();
  ASSERT_EQ(agent_.state(), Agent::AppState::kRunning);
  EXPECT_EQ(Op("status")["result"]["app"]["health_output"], "READY=1");
}

}  // namespace
}  // namespace vdswap::guest
