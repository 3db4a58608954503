#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"

namespace vdswap {

// The guest agent's protocol, shared by the host (hypervisor/, libvirt/, fake/) and the
// agent inside the VM (guest/agent/): names, typed messages and their JSON-lines wire form.
//
// A request is one JSON object per line: {"id": 7, "op": "app.start", ...fields}. A reply
// is {"id": 7, "ok": true, "result": {...}} or {"id": 7, "ok": false, "error": {"code":
// "not_found", "message": "..."}}; `id` is echoed as sent (a string or a number, or null
// when the request had none). Every decoder here is non-throwing: malformed input is
// kInvalidArgument with a message naming the message and the field at fault.

// The virtio-serial port the agent serves on.
inline constexpr char kAgentChannel[] = "org.vdswap.agent.0";

// Disk serials the guest finds its disks by.
inline constexpr char kOsSerial[] = "vdswap-os";
inline constexpr char kAppSerial[] = "vdswap-app";
// The second app slot: a make-before-break swap plugs the new app disk beside the old one
// under the other slot's serial, so slots alternate between kAppSerial and this.
inline constexpr char kAppSerialB[] = "vdswap-app-b";
inline constexpr char kDataSerial[] = "vdswap-data";

// True for kAppSerial and kAppSerialB.
bool IsAppSerial(std::string_view serial);
// The other app slot's serial. REQUIRES: IsAppSerial(serial).
const char* OtherAppSerial(std::string_view serial);

// The longest request line the agent accepts.
inline constexpr size_t kMaxRequestLine = size_t{64} * 1024;

// What the host accepts from a guest, which may be hostile: a reply line of at most
// kMaxReplyLine bytes, nesting at most kMaxReplyDepth deep (replies nest 3 deep), and text
// fields cut to kMaxGuestText bytes by GuestText.
inline constexpr size_t kMaxReplyLine = size_t{1} << 20;
inline constexpr int kMaxReplyDepth = 16;
inline constexpr size_t kMaxGuestText = 4096;

// Text a guest sent, made safe to log, store and print: control characters and DEL
// escaped ("\n", "\x1b"), backslashes doubled, cut to kMaxGuestText bytes (marked
// "...[N bytes cut]").
std::string GuestText(std::string_view text);

// The requests the agent answers. Every one is idempotent.
enum class AgentOp {
  kHello,      // "hello": who is there (HelloReply)
  kStatus,     // "status": the agent's and the app's state (StatusReply)
  kAppStop,    // "app.stop": stop the app, then unmount its disk (StopReply)
  kAppStart,   // "app.start" (StartRequest): mount, start, wait until healthy (AppStatus)
  kAppHealth,  // "app.health": run the health check once (HealthReply)
  kShutdown,   // "shutdown": stop the app and power off (ShutdownReply)
  // Make-before-break (SlotRequest each):
  kAppPrepare,  // "app.prepare": mount the slot's disk beside the running app, read and
                // check its manifest and requires; the app keeps running (AppStatus)
  kAppSwitch,   // "app.switch": stop the running app, start the prepared slot's, wait until
                // healthy; the old slot stays mounted for a switch back (AppStatus)
  kAppRelease,  // "app.release": unmount a slot that is not the active one (StopReply)
};

// The wire name of an op ("app.start").
std::string_view AgentOpName(AgentOp op);
// Inverse of AgentOpName; kInvalidArgument "unknown op 'x'" for any other name.
Result<AgentOp> AgentOpFromName(std::string_view name);

// The supervised app's state.
enum class AppState { kStopped, kStarting, kRunning, kFailed };

// "stopped", "starting", "running", "failed".
std::string_view AppStateName(AppState state);
// Inverse of AppStateName; kInvalidArgument for any other name.
Result<AppState> AppStateFromName(std::string_view name);

// app.start's fields.
struct StartRequest {
  static constexpr int64_t kDefaultWaitDiskMs = 15000;
  // How long to wait for the app disk to appear (a hot-attached disk shows up about a
  // second after the attach).
  int64_t wait_disk_ms = kDefaultWaitDiskMs;

  bool operator==(const StartRequest&) const = default;
};

// app.prepare's, app.switch's and app.release's fields.
struct SlotRequest {
  std::string serial;                                       // kAppSerial or kAppSerialB
  int64_t wait_disk_ms = StartRequest::kDefaultWaitDiskMs;  // app.prepare: for the disk

  bool operator==(const SlotRequest&) const = default;
};

// hello's result.
struct HelloReply {
  std::string agent_version;     // "agent"
  std::string boot_id;           // changes on every boot of the guest
  std::string arch;              // "x86_64"
  std::string os_id;             // os_release.ID
  std::string os_version_id;     // os_release.VERSION_ID
  std::string os_image_version;  // os_release.IMAGE_VERSION ("" when the OS has none)

  bool operator==(const HelloReply&) const = default;
};

// The app as the agent sees it: status's "app" and app.start's result.
struct AppStatus {
  AppState state = AppState::kStopped;
  bool healthy = false;
  std::string health_output;  // of the last health check
  int64_t restarts = 0;       // restarts after the app died on its own
  int64_t pid = -1;           // -1 when not running
  std::string error;          // why the app is not running, or ""
  std::string name;           // from the manifest; "" when no app disk is mounted
  std::string version;
  std::optional<int64_t> last_downtime_ms;  // stop to healthy, of the last restart

  bool operator==(const AppStatus&) const = default;
};

// status's result.
struct StatusReply {
  std::string boot_id;
  bool data_mounted = false;
  bool app_mounted = false;
  AppStatus app;

  bool operator==(const StatusReply&) const = default;
};

// app.stop's result.
struct StopReply {
  bool stopped = true;
  bool was_running = false;

  bool operator==(const StopReply&) const = default;
};

// app.health's result.
struct HealthReply {
  bool healthy = false;
  std::string output;

  bool operator==(const HealthReply&) const = default;
};

// shutdown's result.
struct ShutdownReply {
  bool powering_off = true;

  bool operator==(const ShutdownReply&) const = default;
};

// The JSON form of each message (the request's fields, or the reply's "result").
Json ToJson(const StartRequest& m);
Json ToJson(const SlotRequest& m);
Json ToJson(const HelloReply& m);
Json ToJson(const AppStatus& m);
Json ToJson(const StatusReply& m);
Json ToJson(const StopReply& m);
Json ToJson(const HealthReply& m);
Json ToJson(const ShutdownReply& m);

// Decodes a message from its JSON form. kInvalidArgument names the message and the field:
// "status reply: field 'app.healthy' must be a boolean". Unknown fields are ignored, so
// either side may add fields. StartRequest's fields are optional; replies' fields are
// required except AppStatus's name, version and last_downtime_ms.
template <typename T>
Result<T> FromJson(const Json& j);
template <>
Result<StartRequest> FromJson<StartRequest>(const Json& j);
template <>
Result<SlotRequest> FromJson<SlotRequest>(const Json& j);
template <>
Result<HelloReply> FromJson<HelloReply>(const Json& j);
template <>
Result<AppStatus> FromJson<AppStatus>(const Json& j);
template <>
Result<StatusReply> FromJson<StatusReply>(const Json& j);
template <>
Result<StopReply> FromJson<StopReply>(const Json& j);
template <>
Result<HealthReply> FromJson<HealthReply>(const Json& j);
template <>
Result<ShutdownReply> FromJson<ShutdownReply>(const Json& j);

// A decoded request line.
struct AgentRequest {
  Json id;  // echoed in the reply
  AgentOp op = AgentOp::kHello;
  Json fields = Json::object();  // the whole request object, for op-specific fields
};

// A request line (no trailing newline). `fields` (an object, or null) are merged into the
// request beside "id" and "op".
std::string EncodeRequest(const Json& id, AgentOp op, const Json& fields);
// Decodes a request line. kInvalidArgument: "request line too long", "request is not
// valid JSON", "request must be a JSON object", "request needs a string 'op'",
// "unknown op 'x'". `*id` receives the request's id whenever it could be read (so an
// error reply still carries it), else null.
Result<AgentRequest> DecodeRequest(std::string_view line, Json* id);

// A decoded reply line.
struct AgentReply {
  Json id;
  Result<Json> result;  // the "result" object, or the agent's error (its code and message)
};

// A reply line (no trailing newline): the result, or the error's code and message.
std::string EncodeReply(const Json& id, const Result<Json>& result);
// Decodes a reply line from a guest, which may be hostile. kInvalidArgument when the line
// is not a reply: longer than kMaxReplyLine, nested deeper than kMaxReplyDepth, not a JSON
// object, no boolean "ok", an ok reply without an object "result", an error without a
// string "message". An error's code maps to the closed set of Code (unknown: kInternal)
// and its message passes through GuestText. The decoders of the replies' results
// (FromJson) pass their text fields through GuestText too.
Result<AgentReply> DecodeReply(std::string_view line);

}  // namespace vdswap
