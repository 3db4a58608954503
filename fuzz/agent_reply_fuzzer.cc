// libFuzzer target: the host's decoder of guest agent replies, which a hostile guest
// writes. It never crashes, and every text it lets through is bounded and free of control
// characters.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/agent_protocol.h"

namespace {

// GuestText's output: at most kMaxGuestText bytes of text and a "...[N bytes cut]" marker.
void CheckText(const std::string& s) {
  if (s.size() > vdswap::kMaxGuestText + 40) __builtin_trap();
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
  }
}

void CheckResult(const vdswap::Json& result) {
  if (auto app = vdswap::FromJson<vdswap::AppStatus>(result); app.ok()) {
    for (const std::string* s : {&app->health_output, &app->error, &app->name, &app->version}) {
      CheckText(*s);
    }
  }
  if (auto hello = vdswap::FromJson<vdswap::HelloReply>(result); hello.ok()) {
    for (const std::string* s : {&hello->agent_version, &hello->boot_id, &hello->arch,
                                 &hello->os_id, &hello->os_version_id, &hello->os_image_version}) {
      CheckText(*s);
    }
  }
  if (auto status = vdswap::FromJson<vdswap::StatusReply>(result); status.ok()) {
    CheckText(status->boot_id);
    CheckText(status->app.health_output);
  }
  if (auto health = vdswap::FromJson<vdswap::HealthReply>(result); health.ok()) {
    CheckText(health->output);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto reply = vdswap::DecodeReply(line);
  if (!reply.ok()) return 0;
  if (reply->result.ok()) {
    CheckResult(*reply->result);
  } else {
    CheckText(reply->result.status().message());
  }
  return 0;
}
