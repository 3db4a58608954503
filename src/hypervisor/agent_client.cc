#include "hypervisor/agent_client.h"

#include <cassert>

namespace vdswap {

AgentClient::AgentClient(std::unique_ptr<AgentChannel> channel, std::string vm)
    : channel_(std::move(channel)), vm_(std::move(vm)) {
  assert(channel_ != nullptr);
}

Result<AgentClient> AgentClient::Open(Hypervisor& hv, const HostRef& host, const std::string& vm) {
  ASSIGN_OR_RETURN(std::unique_ptr<AgentChannel> channel, hv.OpenAgent(host, vm));
  return AgentClient(std::move(channel), vm);
}

template <typename T>
Result<T> AgentClient::Call(AgentOp op, const Json& fields, std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(Json result, channel_->Call(op, fields, timeout));
  Result<T> reply = FromJson<T>(result);
  // A reply we cannot read is the agent's fault, not the caller's.
  if (!reply.ok()) return Internal("agent of vm '" + vm_ + "': " + reply.status().message());
  return reply;
}

Result<HelloReply> AgentClient::Hello(std::chrono::milliseconds timeout) {
  return Call<HelloReply>(AgentOp::kHello, nullptr, timeout);
}

Result<StatusReply> AgentClient::GetStatus(std::chrono::milliseconds timeout) {
  return Call<StatusReply>(AgentOp::kStatus, nullptr, timeout);
}

Result<StopReply> AgentClient::StopApp(std::chrono::milliseconds timeout) {
  return Call<StopReply>(AgentOp::kAppStop, nullptr, timeout);
}

Result<AppStatus> AgentClient::StartApp(const StartRequest& request,
                                        std::chrono::milliseconds timeout) {
  return Call<AppStatus>(AgentOp::kAppStart, ToJson(request), timeout);
}

Result<AppStatus> AgentClient::PrepareApp(const SlotRequest& request,
                                          std::chrono::milliseconds timeout) {
  return Call<AppStatus>(AgentOp::kAppPrepare, ToJson(request), timeout);
}

Result<AppStatus> AgentClient::SwitchApp(const SlotRequest& request,
                                         std::chrono::milliseconds timeout) {
  return Call<AppStatus>(AgentOp::kAppSwitch, ToJson(request), timeout);
}

Result<StopReply> AgentClient::ReleaseApp(const SlotRequest& request,
                                          std::chrono::milliseconds timeout) {
  return Call<StopReply>(AgentOp::kAppRelease, ToJson(request), timeout);
}

Result<HealthReply> AgentClient::CheckHealth(std::chrono::milliseconds timeout) {
  return Call<HealthReply>(AgentOp::kAppHealth, nullptr, timeout);
}

Result<ShutdownReply> AgentClient::Shutdown(std::chrono::milliseconds timeout) {
  return Call<ShutdownReply>(AgentOp::kShutdown, nullptr, timeout);
}

}  // namespace vdswap
