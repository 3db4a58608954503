#include "protocol/agent_protocol.h"

#include <limits>
#include <optional>
#include <utility>

#include "core/enum_names.h"

namespace vdswap {

namespace {

constexpr EnumNames<AgentOp, 9> kOps = {{
    {AgentOp::kHello, "hello"},
    {AgentOp::kStatus, "status"},
    {AgentOp::kAppStop, "app.stop"},
    {AgentOp::kAppStart, "app.start"},
    {AgentOp::kAppHealth, "app.health"},
    {AgentOp::kShutdown, "shutdown"},
    {AgentOp::kAppPrepare, "app.prepare"},
    {AgentOp::kAppSwitch, "app.switch"},
    {AgentOp::kAppRelease, "app.release"},
}};

constexpr EnumNames<AppState, 4> kStates = {{
    {AppState::kStopped, "stopped"},
    {AppState::kStarting, "starting"},
    {AppState::kRunning, "running"},
    {AppState::kFailed, "failed"},
}};

// Reads the fields of one JSON object without throwing. The first problem is kept (and
// later reads return defaults), so a decoder reads every field and checks status() once.
// Sub-objects share their root's status and name fields by their dotted path.
class FieldReader {
 public:
  FieldReader(const Json& j, std::string_view what) : j_(j), what_(what), error_(&own_error_) {
    if (!j_.is_object()) Fail(what_ + " must be a JSON object");
  }
  FieldReader(const FieldReader&) = delete;
  FieldReader& operator=(const FieldReader&) = delete;

  const Status& status() const { return *error_; }

  std::string String(const char* key) {
    const Json* v = Get(key, "a string", &Json::is_string);
    return v ? v->get<std::string>() : std::string();
  }
  bool Bool(const char* key) {
    const Json* v = Get(key, "a boolean", &Json::is_boolean);
    return v ? v->get<bool>() : false;
  }
  int64_t Int(const char* key) { return IntOr(key, 0, /*required=*/true); }
  std::string OptionalString(const char* key) { return Has(key) ? String(key) : std::string(); }
  std::optional<int64_t> OptionalInt(const char* key) {
    if (!Has(key)) return std::nullopt;
    return Int(key);
  }
  int64_t OptionalInt(const char* key, int64_t fallback) {
    return IntOr(key, fallback, /*required=*/false);
  }
  // Records that field `key` holds a bad value: "<what>: field '<key>' <why>".
  void Invalid(const char* key, const std::string& why) {
    Fail(what_ + ": field '" + Path(key) + "' " + why);
  }
  // The sub-object `key`; its fields are named "key.field".
  FieldReader Object(const char* key) {
    static const Json kEmpty = Json::object();
    const Json* v = Get(key, "an object", &Json::is_object);
    return FieldReader(v ? *v : kEmpty, what_, Path(key) + ".", error_);
  }
  // A string field from the guest, through GuestText.
  std::string Text(const char* key) { return GuestText(String(key)); }
  std::string OptionalText(const char* key) { return GuestText(OptionalString(key)); }

 private:
  FieldReader(const Json& j, std::string what, std::string prefix, Status* error)
      : j_(j), what_(std::move(what)), prefix_(std::move(prefix)), error_(error) {}

  std::string Path(const char* key) const { return prefix_ + key; }
  void Fail(std::string message) {
    if (error_->ok()) *error_ = InvalidArgument(std::move(message));
  }
  bool Has(const char* key) const {
    if (!j_.is_object()) return false;
    auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
  }
  // The field when it has the right type; else records why not and returns nullptr.
  const Json* Get(const char* key, const char* type, bool (Json::*is)() const noexcept) {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end()) {
      Fail(what_ + ": field '" + Path(key) + "' is missing");
      return nullptr;
    }
    if (!((*it).*is)()) {
      Fail(what_ + ": field '" + Path(key) + "' must be " + type);
      return nullptr;
    }
    return &*it;
  }
  int64_t IntOr(const char* key, int64_t fallback, bool required) {
    if (!required && !Has(key)) return fallback;
    const Json* v = Get(key, "an integer", &Json::is_number_integer);
    if (v == nullptr) return fallback;
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Fail(what_ + ": field '" + Path(key) + "' is out of range");
      return fallback;
    }
    return v->get<int64_t>();
  }

  const Json& j_;  // read in place: a reply is never copied
  std::string what_;
  std::string prefix_;
  Status own_error_;
  Status* error_;
};

AppStatus ReadAppStatus(FieldReader& r) {
  AppStatus m;
  std::string state = r.String("state");
  m.healthy = r.Bool("healthy");
  m.health_output = r.Text("health_output");
  m.restarts = r.Int("restarts");
  m.pid = r.Int("pid");
  m.error = r.Text("error");
  m.name = r.OptionalText("name");
  m.version = r.OptionalText("version");
  m.last_downtime_ms = r.OptionalInt("last_downtime_ms");
  if (r.status().ok()) {
    auto parsed = AppStateFromName(state);
    if (parsed.ok()) {
      m.state = *parsed;
    } else {
      r.Invalid("state", "has unknown value '" + state + "'");
    }
  }
  return m;
}

}  // namespace

std::string_view AgentOpName(AgentOp op) { return NameOf(kOps, op); }

Result<AgentOp> AgentOpFromName(std::string_view name) {
  if (std::optional<AgentOp> op = FindValue(kOps, name)) return *op;
  return InvalidArgument("unknown op '" + std::string(name) + "'");
}

std::string_view AppStateName(AppState state) { return NameOf(kStates, state); }

Result<AppState> AppStateFromName(std::string_view name) {
  if (std::optional<AppState> state = FindValue(kStates, name)) return *state;
  return InvalidArgument("unknown app state '" + std::string(name) + "'");
}

Json ToJson(const StartRequest& m) { return {{"wait_disk_ms", m.wait_disk_ms}}; }

Json ToJson(const SlotRequest& m) {
  return {{"serial", m.serial}, {"wait_disk_ms", m.wait_disk_ms}};
}

std::string GuestText(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t used = 0;
  for (; used < text.size() && out.size() < kMaxGuestText; ++used) {
    const auto c = static_cast<unsigned char>(text[used]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else {
      out += static_cast<char>(c);
    }
  }
  if (used < text.size()) out += "...[" + std::to_string(text.size() - used) + " bytes cut]";
  return out;
}

bool IsAppSerial(std::string_view serial) { return serial == kAppSerial || serial == kAppSerialB; }

const char* OtherAppSerial(std::string_view serial) {
  return serial == kAppSerial ? kAppSerialB : kAppSerial;
}

Json ToJson(const HelloReply& m) {
  Json os = {{"ID", m.os_id}, {"VERSION_ID", m.os_version_id}};
  if (!m.os_image_version.empty()) os["IMAGE_VERSION"] = m.os_image_version;
  return {{"agent", m.agent_version}, {"boot_id", m.boot_id}, {"arch", m.arch}, {"os_release", os}};
}

Json ToJson(const AppStatus& m) {
  Json j = {
      {"state", AppStateName(m.state)}, {"healthy", m.healthy}, {"health_output", m.health_output},
      {"restarts", m.restarts},         {"pid", m.pid},         {"error", m.error}};
  if (!m.name.empty()) j["name"] = m.name;
  if (!m.version.empty()) j["version"] = m.version;
  if (m.last_downtime_ms) j["last_downtime_ms"] = *m.last_downtime_ms;
  return j;
}

Json ToJson(const StatusReply& m) {
  return {{"boot_id", m.boot_id},
          {"data_mounted", m.data_mounted},
          {"app_mounted", m.app_mounted},
          {"app", ToJson(m.app)}};
}

Json ToJson(const StopReply& m) { return {{"stopped", m.stopped}, {"was_running", m.was_running}}; }

Json ToJson(const HealthReply& m) { return {{"healthy", m.healthy}, {"output", m.output}}; }

Json ToJson(const ShutdownReply& m) { return {{"powering_off", m.powering_off}}; }

template <>
Result<SlotRequest> FromJson<SlotRequest>(const Json& j) {
  FieldReader r(j, "app slot request");
  SlotRequest m;
  m.serial = r.String("serial");
  m.wait_disk_ms = r.OptionalInt("wait_disk_ms", StartRequest::kDefaultWaitDiskMs);
  RETURN_IF_ERROR(r.status());
  if (!IsAppSerial(m.serial)) {
    return InvalidArgument("app slot request: field 'serial' must be '" + std::string(kAppSerial) +
                           "' or '" + kAppSerialB + "'");
  }
  return m;
}

template <>
Result<StartRequest> FromJson<StartRequest>(const Json& j) {
  FieldReader r(j, "app.start request");
  StartRequest m;
  m.wait_disk_ms = r.OptionalInt("wait_disk_ms", StartRequest::kDefaultWaitDiskMs);
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<HelloReply> FromJson<HelloReply>(const Json& j) {
  FieldReader r(j, "hello reply");
  HelloReply m;
  m.agent_version = r.Text("agent");
  m.boot_id = r.Text("boot_id");
  m.arch = r.Text("arch");
  FieldReader os = r.Object("os_release");
  m.os_id = os.Text("ID");
  m.os_version_id = os.Text("VERSION_ID");
  m.os_image_version = os.OptionalText("IMAGE_VERSION");
  RETURN_IF_ERROR(os.status());
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<AppStatus> FromJson<AppStatus>(const Json& j) {
  FieldReader r(j, "app status");
  AppStatus m = ReadAppStatus(r);
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<StatusReply> FromJson<StatusReply>(const Json& j) {
  FieldReader r(j, "status reply");
  StatusReply m;
  m.boot_id = r.Text("boot_id");
  m.data_mounted = r.Bool("data_mounted");
  m.app_mounted = r.Bool("app_mounted");
  FieldReader app = r.Object("app");
  m.app = ReadAppStatus(app);
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<StopReply> FromJson<StopReply>(const Json& j) {
  FieldReader r(j, "app.stop reply");
  StopReply m;
  m.stopped = r.Bool("stopped");
  m.was_running = r.Bool("was_running");
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<HealthReply> FromJson<HealthReply>(const Json& j) {
  FieldReader r(j, "app.health reply");
  HealthReply m;
  m.healthy = r.Bool("healthy");
  m.output = r.Text("output");
  RETURN_IF_ERROR(r.status());
  return m;
}

template <>
Result<ShutdownReply> FromJson<ShutdownReply>(const Json& j) {
  FieldReader r(j, "shutdown reply");
  ShutdownReply m;
  m.powering_off = r.Bool("powering_off");
  RETURN_IF_ERROR(r.status());
  return m;
}

std::string EncodeRequest(const Json& id, AgentOp op, const Json& fields) {
  Json req = fields.is_object() ? fields : Json::object();
  req["id"] = id;
  req["op"] = AgentOpName(op);
  return DumpJson(req);
}

Result<AgentRequest> DecodeRequest(std::string_view line, Json* id) {
  *id = nullptr;
  if (line.size() > kMaxRequestLine) return InvalidArgument("request line too long");
  Json req = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return InvalidArgument("request is not valid JSON");
  if (!req.is_object()) return InvalidArgument("request must be a JSON object");
  if (auto it = req.find("id"); it != req.end()) *id = *it;
  auto op = req.find("op");
  if (op == req.end() || !op->is_string()) return InvalidArgument("request needs a string 'op'");
  ASSIGN_OR_RETURN(AgentOp parsed, AgentOpFromName(op->get<std::string>()));
  return AgentRequest{*id, parsed, std::move(req)};
}

std::string EncodeReply(const Json& id, const Result<Json>& result) {
  Json reply = {{"id", id}, {"ok", result.ok()}};
  if (result.ok()) {
    reply["result"] = *result;
  } else {
    reply["error"] = {{"code", CodeName(result.status().code())},
                      {"message", result.status().message()}};
  }
  return DumpJson(reply);
}

Result<AgentReply> DecodeReply(std::string_view line) {
  if (line.size() > kMaxReplyLine) {
    return InvalidArgument("agent reply is longer than " + std::to_string(kMaxReplyLine) +
                           " bytes");
  }
  ASSIGN_OR_RETURN(Json reply, ParseUntrustedJson(line, "agent reply", kMaxReplyDepth));
  FieldReader r(reply, "agent reply");
  bool ok = r.Bool("ok");
  RETURN_IF_ERROR(r.status());
  Json id = reply.contains("id") ? reply["id"] : Json();
  if (ok) {
    auto result = reply.find("result");
    if (result == reply.end() || !result->is_object()) {
      return InvalidArgument("agent reply: field 'result' must be an object");
    }
    return AgentReply{std::move(id), std::move(*result)};
  }
  FieldReader error = r.Object("error");
  std::string message = error.Text("message");
  std::string code = error.OptionalString("code");
  RETURN_IF_ERROR(r.status());
  Code c = CodeFromName(code);
  if (c == Code::kOk) c = Code::kInternal;  // a failed reply is never ok
  return AgentReply{std::move(id), Status(c, std::move(message))};
}

}  // namespace vdswap
