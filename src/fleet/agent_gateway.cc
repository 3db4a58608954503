#include "fleet/agent_gateway.h"

#include <algorithm>

#include "hypervisor/agent_client.h"

namespace vdswap {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds kRetryEvery{250};

// An app.start or app.switch succeeded only when its reply says the app runs and is
// healthy: an ok reply proves nothing more than what it says.
Result<AppStatus> Proven(const std::string& vm, std::string_view op, Result<AppStatus> reply) {
  if (!reply.ok() || (reply->state == AppState::kRunning && reply->healthy)) return reply;
  return Internal("agent of vm '" + vm + "' answered '" + std::string(op) + "' with the app " +
                  std::string(AppStateName(reply->state)) +
                  (reply->healthy ? " and healthy" : " and not healthy") +
                  ", not running and healthy");
}
}  // namespace

Status AgentGateway::StopApp(const HostRef& host, const std::string& vm, milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return agent.StopApp(timeout).status();
}

Result<AppStatus> AgentGateway::StartApp(const HostRef& host, const std::string& vm,
                                         milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return Proven(vm, "app.start", agent.StartApp(StartRequest{}, timeout));
}

Result<AppStatus> AgentGateway::PrepareApp(const HostRef& host, const std::string& vm,
                                           const std::string& serial, milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return agent.PrepareApp(SlotRequest{serial}, timeout);
}

Result<AppStatus> AgentGateway::SwitchApp(const HostRef& host, const std::string& vm,
                                          const std::string& serial, milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return Proven(vm, "app.switch", agent.SwitchApp(SlotRequest{serial}, timeout));
}

Status AgentGateway::ReleaseApp(const HostRef& host, const std::string& vm,
                                const std::string& serial, milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return agent.ReleaseApp(SlotRequest{serial}, timeout).status();
}

Result<StatusReply> AgentGateway::LiveStatus(const HostRef& host, const std::string& vm,
                                             milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  return agent.GetStatus(timeout);
}

Result<AgentGateway::LiveGuest> AgentGateway::LiveView(const HostRef& host, const std::string& vm,
                                                       milliseconds timeout) {
  ASSIGN_OR_RETURN(AgentClient agent, AgentClient::Open(hv_, host, vm));
  LiveGuest out;
  ASSIGN_OR_RETURN(out.hello, agent.Hello(timeout));
  ASSIGN_OR_RETURN(out.status, agent.GetStatus(timeout));
  return out;
}

Result<AppStatus> AgentGateway::AwaitHealthy(const HostRef& host, const std::string& vm,
                                             milliseconds timeout) {
  const auto deadline = clock_.Now() + timeout;
  Status last = Unavailable("vm '" + vm + "': the agent did not answer");
  while (clock_.Now() < deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.Now());
    auto agent = AgentClient::Open(hv_, host, vm);
    auto hello =
        agent.ok() ? agent->Hello(std::min(left, milliseconds(2000))).status() : agent.status();
    if (hello.ok()) {
      // app.start is idempotent: it waits for the app the agent started at boot.
      return Proven(vm, "app.start",
                    agent->StartApp(StartRequest{}, std::max(left, milliseconds(1000))));
    }
    last = hello;
    clock_.SleepFor(kRetryEvery);
  }
  return last;
}

}  // namespace vdswap
