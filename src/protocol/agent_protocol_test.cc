#include "protocol/agent_protocol.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

Json Parse(std::string_view text) {
  auto j = ParseJson(text, "test json");
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : Json();
}

// The error message of a failed decode, or "" when it succeeded.
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

AppStatus RunningApp() {
  AppStatus app;
  app.state = AppState::kRunning;
  app.healthy = true;
  app.health_output = "hello 2 starts=3";
  app.restarts = 1;
  app.pid = 321;
  app.name = "hello";
  app.version = "2";
  app.last_downtime_ms = 840;
  return app;
}

TEST(AgentProtocolTest, OpNamesRoundTrip) {
  for (AgentOp op : {AgentOp::kHello, AgentOp::kStatus, AgentOp::kAppStop, AgentOp::kAppStart,
                     AgentOp::kAppHealth, AgentOp::kShutdown, AgentOp::kAppPrepare,
                     AgentOp::kAppSwitch, AgentOp::kAppRelease}) {
    auto back = AgentOpFromName(AgentOpName(op));
    ASSERT_TRUE(back.ok()) << AgentOpName(op);
    EXPECT_EQ(*back, op);
  }
  EXPECT_EQ(AgentOpName(AgentOp::kAppStart), "app.start");
  EXPECT_EQ(AgentOpName(AgentOp::kAppHealth), "app.health");
}

TEST(AgentProtocolTest, UnknownOpIsNamedInTheError) {
  EXPECT_EQ(ErrorOf(AgentOpFromName("format-disk")), "unknown op 'format-disk'");
  EXPECT_EQ(ErrorOf(AgentOpFromName("")), "unknown op ''");
}

TEST(AgentProtocolTest, AppStatesRoundTrip) {
  for (AppState s :
       {AppState::kStopped, AppState::kStarting, AppState::kRunning, AppState::kFailed}) {
    auto back = AppStateFromName(AppStateName(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(AppStateFromName("sleeping").ok());
}

TEST(AgentProtocolTest, EveryMessageRoundTripsThroughJson) {
  StartRequest start{3000};
  EXPECT_EQ(*FromJson<StartRequest>(ToJson(start)), start);
  HelloReply hello{"0.1.0", "b-1", "x86_64", "vdswap-testos", "2"};
  EXPECT_EQ(*FromJson<HelloReply>(ToJson(hello)), hello);
  AppStatus app = RunningApp();
  EXPECT_EQ(*FromJson<AppStatus>(ToJson(app)), app);
  AppStatus bare;  // no manifest yet, no downtime measured
  EXPECT_EQ(*FromJson<AppStatus>(ToJson(bare)), bare);
  StatusReply status{"b-1", true, true, app};
  EXPECT_EQ(*FromJson<StatusReply>(ToJson(status)), status);
  StopReply stop{true, true};
  EXPECT_EQ(*FromJson<StopReply>(ToJson(stop)), stop);
  HealthReply health{false, "connection refused"};
  EXPECT_EQ(*FromJson<HealthReply>(ToJson(health)), health);
  ShutdownReply shutdown{true};
  EXPECT_EQ(*FromJson<ShutdownReply>(ToJson(shutdown)), shutdown);
}

// The wire form is the one agents in deployed OS images speak: field names must not move.
TEST(AgentProtocolTest, WireFieldNamesAreStable) {
  EXPECT_EQ(DumpJson(ToJson(HelloReply{"0.1.0", "b-1", "x86_64", "vdswap-testos", "2"})),
            R"({"agent":"0.1.0","arch":"x86_64","boot_id":"b-1",)"
            R"("os_release":{"ID":"vdswap-testos","VERSION_ID":"2"}})");
  EXPECT_EQ(DumpJson(ToJson(StatusReply{"b-1", true, false, RunningApp()})),
            R"({"app":{"error":"","health_output":"hello 2 starts=3","healthy":true,)"
            R"("last_downtime_ms":840,"name":"hello","pid":321,"restarts":1,)"
            R"("state":"running","version":"2"},"app_mounted":false,"boot_id":"b-1",)"
            R"("data_mounted":true})");
  EXPECT_EQ(DumpJson(ToJson(StopReply{true, false})), R"({"stopped":true,"was_running":false})");
  EXPECT_EQ(DumpJson(ToJson(HealthReply{true, "ok"})), R"({"healthy":true,"output":"ok"})");
  EXPECT_EQ(DumpJson(ToJson(ShutdownReply{true})), R"({"powering_off":true})");
  EXPECT_EQ(DumpJson(ToJson(StartRequest{100})), R"({"wait_disk_ms":100})");
}

TEST(AgentProtocolTest, DecodesARecordedStatusReplyIgnoringUnknownFields) {
  auto status = FromJson<StatusReply>(
      Parse(R"({"boot_id":"7f3e","data_mounted":true,"app_mounted":true,"uptime_s":12,)"
            R"("app":{"state":"starting","healthy":false,"health_output":"","restarts":0,)"
            R"("pid":88,"error":"","name":"hello","version":"1"}})"));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->boot_id, "7f3e");
  EXPECT_EQ(status->app.state, AppState::kStarting);
  EXPECT_EQ(status->app.pid, 88);
  EXPECT_FALSE(status->app.last_downtime_ms.has_value());
}

TEST(AgentProtocolTest, MissingFieldsAreNamed) {
  EXPECT_EQ(ErrorOf(FromJson<HelloReply>(Parse(
                R"({"agent":"1","arch":"x86_64","os_release":{"ID":"a","VERSION_ID":"1"}})"))),
            "hello reply: field 'boot_id' is missing");
  EXPECT_EQ(ErrorOf(FromJson<HelloReply>(
                Parse(R"({"agent":"1","boot_id":"b","arch":"x86_64","os_release":{"ID":"a"}})"))),
            "hello reply: field 'os_release.VERSION_ID' is missing");
  EXPECT_EQ(ErrorOf(FromJson<StatusReply>(
                Parse(R"({"boot_id":"b","data_mounted":true,"app_mounted":true})"))),
            "status reply: field 'app' is missing");
  EXPECT_EQ(ErrorOf(FromJson<StopReply>(Parse(R"({"stopped":true})"))),
            "app.stop reply: field 'was_running' is missing");
}

TEST(AgentProtocolTest, WrongTypesAreNamed) {
  Json status = ToJson(StatusReply{"b-1", true, true, RunningApp()});
  status["app"]["healthy"] = "yes";
  EXPECT_EQ(ErrorOf(FromJson<StatusReply>(status)),
            "status reply: field 'app.healthy' must be a boolean");
  Json app = ToJson(RunningApp());
  app["pid"] = 3.5;
  EXPECT_EQ(ErrorOf(FromJson<AppStatus>(app)), "app status: field 'pid' must be an integer");
  app = ToJson(RunningApp());
  app["last_downtime_ms"] = "840";
  EXPECT_EQ(ErrorOf(FromJson<AppStatus>(app)),
            "app status: field 'last_downtime_ms' must be an integer");
  EXPECT_EQ(ErrorOf(FromJson<HealthReply>(Parse(R"({"healthy":true,"output":7})"))),
            "app.health reply: field 'output' must be a string");
  EXPECT_EQ(ErrorOf(FromJson<HelloReply>(Parse("[1,2]"))), "hello reply must be a JSON object");
  EXPECT_EQ(ErrorOf(FromJson<StartRequest>(Parse(R"({"wait_disk_ms":"soon"})"))),
            "app.start request: field 'wait_disk_ms' must be an integer");
  EXPECT_EQ(ErrorOf(FromJson<StartRequest>(Parse(R"({"wait_disk_ms":18446744073709551615})"))),
            "app.start request: field 'wait_disk_ms' is out of range");
}

TEST(AgentProtocolTest, UnknownAppStateIsNamed) {
  Json status = ToJson(StatusReply{"b-1", true, true, RunningApp()});
  status["app"]["state"] = "sleeping";
  EXPECT_EQ(ErrorOf(FromJson<StatusReply>(status)),
            "status reply: field 'app.state' has unknown value 'sleeping'");
}

TEST(AgentProtocolTest, StartRequestFieldsAreOptional) {
  auto start = FromJson<StartRequest>(Parse(R"({"id":3,"op":"app.start"})"));
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->wait_disk_ms, StartRequest::kDefaultWaitDiskMs);
}

TEST(AgentProtocolTest, RequestRoundTripKeepsIdOpAndFields) {
  std::string line = EncodeRequest("c-9", AgentOp::kAppStart, ToJson(StartRequest{500}));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  Json id;
  auto req = DecodeRequest(line, &id);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(id, "c-9");
  EXPECT_EQ(req->id, "c-9");
  EXPECT_EQ(req->op, AgentOp::kAppStart);
  EXPECT_EQ(FromJson<StartRequest>(req->fields)->wait_disk_ms, 500);
  // Fields never override the envelope.
  auto hello = DecodeRequest(EncodeRequest(1, AgentOp::kHello, Json{{"op", "shutdown"}}), &id);
  EXPECT_EQ(hello->op, AgentOp::kHello);
}

TEST(AgentProtocolTest, MalformedRequestsSayWhyAndKeepTheirId) {
  Json id;
  EXPECT_EQ(ErrorOf(DecodeRequest("{not json", &id)), "request is not valid JSON");
  EXPECT_TRUE(id.is_null());
  EXPECT_EQ(ErrorOf(DecodeRequest("[1,2]", &id)), "request must be a JSON object");
  EXPECT_EQ(ErrorOf(DecodeRequest(R"({"id":3})", &id)), "request needs a string 'op'");
  EXPECT_EQ(id, 3);
  EXPECT_EQ(ErrorOf(DecodeRequest(R"({"id":4,"op":7})", &id)), "request needs a string 'op'");
  EXPECT_EQ(ErrorOf(DecodeRequest(R"({"id":"x","op":"rm -rf"})", &id)), "unknown op 'rm -rf'");
  EXPECT_EQ(id, "x");
  EXPECT_EQ(ErrorOf(DecodeRequest(std::string(kMaxRequestLine + 1, 'x'), &id)),
            "request line too long");
}

TEST(AgentProtocolTest, ReplyRoundTripCarriesResultOrError) {
  auto ok = DecodeReply(EncodeReply(5, Result<Json>(ToJson(StopReply{true, true}))));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->id, 5);
  ASSERT_TRUE(ok->result.ok());
  EXPECT_EQ(*FromJson<StopReply>(*ok->result), (StopReply{true, true}));

  auto err = DecodeReply(EncodeReply("a", NotFound("no disk with serial 'vdswap-app'")));
  ASSERT_TRUE(err.ok()) << err.status().ToString();
  EXPECT_EQ(err->id, "a");
  EXPECT_EQ(err->result.status().code(), Code::kNotFound);
  EXPECT_EQ(err->result.status().message(), "no disk with serial 'vdswap-app'");
}

TEST(AgentProtocolTest, ErrorReplyWireFormIsStable) {
  EXPECT_EQ(EncodeReply(9, FailedPrecondition("the app is not running")),
            R"({"error":{"code":"failed_precondition","message":"the app is not running"},)"
            R"("id":9,"ok":false})");
  EXPECT_EQ(EncodeReply(nullptr, Result<Json>(Json{{"powering_off", true}})),
            R"({"id":null,"ok":true,"result":{"powering_off":true}})");
}

TEST(AgentProtocolTest, MalformedRepliesAreRejected) {
  EXPECT_EQ(ErrorOf(DecodeReply("hello")), "agent reply is not valid JSON");
  EXPECT_EQ(ErrorOf(DecodeReply("[]")), "agent reply must be a JSON object");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1})")), "agent reply: field 'ok' is missing");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":"yes"})")),
            "agent reply: field 'ok' must be a boolean");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":true,"result":[1]})")),
            "agent reply: field 'result' must be an object");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":false})")),
            "agent reply: field 'error' is missing");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":false,"error":{"code":"internal"}})")),
            "agent reply: field 'error.message' is missing");
}

TEST(AgentProtocolTest, AFailedReplyIsNeverOk) {
  for (const char* code : {"ok", "exploded", ""}) {
    auto r = DecodeReply(std::string(R"({"id":1,"ok":false,"error":{"code":")") + code +
                         R"(","message":"m"}})");
    ASSERT_TRUE(r.ok()) << code;
    EXPECT_EQ(r->result.status().code(), Code::kInternal) << code;
  }
}

// What a hostile guest may send: nothing it says is copied, parsed or kept without bound.
TEST(AgentProtocolTest, RepliesNestedAMillionDeepAreRefusedWithoutParsing) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  EXPECT_EQ(ErrorOf(ParseUntrustedJson(deep, "agent reply", kMaxReplyDepth)),
            "agent reply nests deeper than 16 levels");
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":true,"result":{"a":)" + deep + "}}")),
            "agent reply is longer than 1048576 bytes");
  const std::string under_cap = std::string(100000, '{') + std::string(100000, '}');
  EXPECT_EQ(ErrorOf(DecodeReply(R"({"id":1,"ok":true,"result":)" + under_cap + "}")),
            "agent reply nests deeper than 16 levels");
  // Brackets inside strings are text.
  auto r = DecodeReply(R"({"id":1,"ok":true,"result":{"s":")" + std::string(100, '[') + R"("}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[\"{{"})", 100), 1);
}

TEST(AgentProtocolTest, ATenMegabyteFieldIsRefused) {
  const std::string big =
      R"({"id":1,"ok":true,"result":{"output":")" + std::string(size_t{10} << 20, 'x') + R"("}})";
  EXPECT_EQ(ErrorOf(DecodeReply(big)), "agent reply is longer than 1048576 bytes");
}

TEST(AgentProtocolTest, GuestTextIsEscapedAndCut) {
  EXPECT_EQ(GuestText("ok: 200"), "ok: 200");
  EXPECT_EQ(GuestText("line\nforged I 00:00 line\x1b[31m\x7f\\"),
            "line\\nforged I 00:00 line\\x1b[31m\\x7f\\\\");
  const std::string cut = GuestText(std::string(10000, 'y'));
  EXPECT_EQ(cut, std::string(kMaxGuestText, 'y') + "...[5904 bytes cut]");
}

// Text fields of replies pass through GuestText; the error's code stays in a closed set.
TEST(AgentProtocolTest, ReplyTextIsBoundedAndEscaped) {
  AppStatus lie;
  lie.health_output = std::string(20000, 'h');
  lie.error = "boom\n\x1b[2J";
  lie.version = "1\r\n";
  auto app = FromJson<AppStatus>(ToJson(lie));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  EXPECT_LE(app->health_output.size(), kMaxGuestText + 32);
  EXPECT_EQ(app->error, "boom\\n\\x1b[2J");
  EXPECT_EQ(app->version, "1\\x0d\\n");
  auto failed = DecodeReply(R"({"id":1,"ok":false,"error":{"code":"x","message":"a\nb"}})");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->result.status().message(), "a\\nb");
}

TEST(AgentProtocolTest, SlotRequestsNameOneOfTheTwoAppSlots) {
  SlotRequest req{kAppSerialB, 2000};
  auto back = FromJson<SlotRequest>(ToJson(req));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, req);
  EXPECT_EQ(FromJson<SlotRequest>(Json{{"serial", kAppSerial}})->wait_disk_ms,
            StartRequest::kDefaultWaitDiskMs);
  EXPECT_EQ(FromJson<SlotRequest>(Json{{"serial", kDataSerial}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(FromJson<SlotRequest>(Json::object()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(std::string(OtherAppSerial(kAppSerial)), kAppSerialB);
  EXPECT_EQ(std::string(OtherAppSerial(kAppSerialB)), kAppSerial);
  EXPECT_EQ(*AgentOpFromName("app.switch"), AgentOp::kAppSwitch);
}

}  // namespace
}  // namespace vdswap
