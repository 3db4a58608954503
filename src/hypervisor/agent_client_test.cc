#include "hypervisor/agent_client.h"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

namespace vdswap {
namespace {

using std::chrono::milliseconds;

// A channel that answers from a script and records every call as "op fields timeout".
class ScriptedChannel : public AgentChannel {
 public:
  ScriptedChannel(std::deque<Result<Json>>* answers, std::vector<std::string>* calls)
      : answers_(answers), calls_(calls) {}

  Result<Json> Call(AgentOp op, const Json& fields, milliseconds timeout) override {
    calls_->push_back(std::string(AgentOpName(op)) + " " + DumpJson(fields) + " " +
                      std::to_string(timeout.count()));
    if (answers_->empty()) return Unavailable("agent of vm 'vm1' did not answer");
    Result<Json> next = answers_->front();
    answers_->pop_front();
    return next;
  }

 private:
  std::deque<Result<Json>>* answers_;
  std::vector<std::string>* calls_;
};

class AgentClientTest : public ::testing::Test {
 protected:
  std::deque<Result<Json>> answers_;
  std::vector<std::string> calls_;
  AgentClient client_{std::make_unique<ScriptedChannel>(&answers_, &calls_), "vm1"};
};

TEST_F(AgentClientTest, EachCallSendsItsOpAndDecodesItsReply) {
  HelloReply hello{"0.1.0", "b-1", "x86_64", "vdswap-testos", "1"};
  AppStatus app;
  app.state = AppState::kRunning;
  app.healthy = true;
  app.version = "2";
  app.last_downtime_ms = 900;
  answers_ = {ToJson(hello),
              ToJson(StatusReply{"b-1", true, true, app}),
              ToJson(StopReply{true, true}),
              ToJson(app),
              ToJson(HealthReply{true, "ok"}),
              ToJson(ShutdownReply{true})};

  EXPECT_EQ(*client_.Hello(milliseconds(1)), hello);
  EXPECT_EQ(client_.GetStatus(milliseconds(2))->app, app);
  EXPECT_TRUE(client_.StopApp(milliseconds(3))->was_running);
  EXPECT_EQ(client_.StartApp({4000}, milliseconds(4))->last_downtime_ms, 900);
  EXPECT_EQ(client_.CheckHealth(milliseconds(5))->output, "ok");
  EXPECT_TRUE(client_.Shutdown(milliseconds(6))->powering_off);
  EXPECT_EQ(calls_, (std::vector<std::string>{"hello null 1", "status null 2", "app.stop null 3",
                                              R"(app.start {"wait_disk_ms":4000} 4)",
                                              "app.health null 5", "shutdown null 6"}));
}

TEST_F(AgentClientTest, AgentErrorsKeepTheirCode) {
  answers_ = {FailedPrecondition("agent of vm 'vm1': requires os_id 'debian'")};
  auto started = client_.StartApp({}, milliseconds(10));
  EXPECT_EQ(started.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(started.status().message(), "agent of vm 'vm1': requires os_id 'debian'");
}

TEST_F(AgentClientTest, SilenceIsUnavailable) {
  EXPECT_EQ(client_.Hello(milliseconds(10)).status().code(), Code::kUnavailable);
}

TEST_F(AgentClientTest, AReplyOfTheWrongShapeIsInternalNamingVmAndField) {
  answers_ = {Json{{"stopped", true}}, Json{{"healthy", "yes"}, {"output", ""}}};
  auto stopped = client_.StopApp(milliseconds(10));
  EXPECT_EQ(stopped.status().code(), Code::kInternal);
  EXPECT_EQ(stopped.status().message(),
            "agent of vm 'vm1': app.stop reply: field 'was_running' is missing");
  EXPECT_EQ(client_.CheckHealth(milliseconds(10)).status().message(),
            "agent of vm 'vm1': app.health reply: field 'healthy' must be a boolean");
}

}  // namespace
}  // namespace vdswap
