#include "fleet/guest_agent.h"

#include <algorithm>

namespace vdswap {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds kRetryEvery{250};
}  // namespace

Result<Json> GuestAgent::Call(const HostRef& host, const std::string& vm, const std::string& op,
                              milliseconds timeout) {
  ASSIGN_OR_RETURN(auto ch, hv_.OpenAgent(host, vm));
  return ch->Call(op, Json::object(), timeout);
}

Status GuestAgent::StopApp(const HostRef& host, const std::string& vm, milliseconds timeout) {
  return Call(host, vm, "app.stop", timeout).status();
}

Result<Json> GuestAgent::StartApp(const HostRef& host, const std::string& vm,
                                  milliseconds timeout) {
  return Call(host, vm, "app.start", timeout);
}

Result<Json> GuestAgent::LiveStatus(const HostRef& host, const std::string& vm,
                                    milliseconds timeout) {
  return Call(host, vm, "status", timeout);
}

Result<Json> GuestAgent::AwaitHealthy(const HostRef& host, const std::string& vm,
                                      milliseconds timeout) {
  const auto deadline = clock_.Now() + timeout;
  Status last = Unavailable("vm '" + vm + "': the agent did not answer");
  while (clock_.Now() < deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.Now());
    auto hello = Call(host, vm, "hello", std::min(left, milliseconds(2000)));
    if (hello.ok()) {
      // app.start is idempotent: it waits for the app the agent started at boot.
      return StartApp(host, vm, std::max(left, milliseconds(1000)));
    }
    last = hello.status();
    clock_.SleepFor(kRetryEvery);
  }
  return last;
}

}  // namespace vdswap
