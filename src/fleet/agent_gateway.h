#pragma once

#include <chrono>
#include <string>

#include "core/clock.h"
#include "hypervisor/hypervisor.h"
#include "protocol/agent_protocol.h"

namespace vdswap {

// The host side's gateway to the guest agents of the fleet's VMs, and the fleet's one way
// to talk to them: every agent operation the fleet uses is a method here, each opening the
// VM's channel and making one typed call (hypervisor/agent_client.h). The agent itself
// runs in the guest (guest/agent). Thread-safe (each call opens its own channel).
class AgentGateway {
 public:
  AgentGateway(Hypervisor& hv, Clock& clock) : hv_(hv), clock_(clock) {}

  // Stops the app (idempotent). kUnavailable when the agent does not answer.
  Status StopApp(const HostRef& host, const std::string& vm, std::chrono::milliseconds timeout);
  // Starts the app on the attached app disk and waits for its health check; returns the
  // agent's view of the app. kInternal when the agent's ok reply does not say the app is
  // running and healthy (as for SwitchApp and AwaitHealthy).
  Result<AppStatus> StartApp(const HostRef& host, const std::string& vm,
                             std::chrono::milliseconds timeout);
  // Make-before-break, on app slot `serial` (kAppSerial or kAppSerialB): see AgentClient.
  Result<AppStatus> PrepareApp(const HostRef& host, const std::string& vm,
                               const std::string& serial, std::chrono::milliseconds timeout);
  Result<AppStatus> SwitchApp(const HostRef& host, const std::string& vm, const std::string& serial,
                              std::chrono::milliseconds timeout);
  Status ReleaseApp(const HostRef& host, const std::string& vm, const std::string& serial,
                    std::chrono::milliseconds timeout);
  // The agent's live view of the guest and its app.
  Result<StatusReply> LiveStatus(const HostRef& host, const std::string& vm,
                                 std::chrono::milliseconds timeout);
  // The same and who the guest is (its OS), over one channel, each call within `timeout`.
  struct LiveGuest {
    HelloReply hello;
    StatusReply status;
  };
  Result<LiveGuest> LiveView(const HostRef& host, const std::string& vm,
                             std::chrono::milliseconds timeout);
  // Waits (retrying every 250 ms of `clock`) until the agent answers, then until its app
  // is healthy; returns StartApp's result. The last error when `timeout` passes first.
  Result<AppStatus> AwaitHealthy(const HostRef& host, const std::string& vm,
                                 std::chrono::milliseconds timeout);

 private:
  Hypervisor& hv_;
  Clock& clock_;
};

}  // namespace vdswap
