#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "hypervisor/hypervisor.h"
#include "protocol/agent_protocol.h"

namespace vdswap {

// Typed calls to one VM's guest agent over an AgentChannel it owns. Every call returns the
// agent's reply decoded (protocol/agent_protocol.h); errors keep the channel's codes (an
// agent error keeps the agent's code, no answer is kUnavailable), and a reply that does not
// decode is kInternal naming the VM and the field. Not thread-safe: one caller at a time,
// like the channel.
class AgentClient {
 public:
  // REQUIRES: channel != nullptr.
  AgentClient(std::unique_ptr<AgentChannel> channel, std::string vm);

  // Opens the agent channel of `vm` on `host`; kUnavailable when the VM is not running.
  static Result<AgentClient> Open(Hypervisor& hv, const HostRef& host, const std::string& vm);

  Result<HelloReply> Hello(std::chrono::milliseconds timeout);
  Result<StatusReply> GetStatus(std::chrono::milliseconds timeout);
  // Stops the app (the manifest's signal, then SIGKILL) and unmounts its disk.
  Result<StopReply> StopApp(std::chrono::milliseconds timeout);
  // Mounts the app disk, starts the app and waits until it is healthy; a running healthy
  // app is returned as is. The agent's kNotFound when the app disk does not appear,
  // kFailedPrecondition when the app's requirements do not match the guest, kInternal when
  // it does not get healthy within the manifest's health timeout.
  Result<AppStatus> StartApp(const StartRequest& request, std::chrono::milliseconds timeout);
  // Make-before-break (protocol/agent_protocol.h): mounts and checks the slot's app disk
  // beside the running app; stops the running app and starts the slot's, waiting until
  // healthy (switching back to a still mounted slot needs no disk); unmounts a slot that
  // is not the active one. kFailedPrecondition for the active slot (prepare, release).
  Result<AppStatus> PrepareApp(const SlotRequest& request, std::chrono::milliseconds timeout);
  Result<AppStatus> SwitchApp(const SlotRequest& request, std::chrono::milliseconds timeout);
  Result<StopReply> ReleaseApp(const SlotRequest& request, std::chrono::milliseconds timeout);
  // Runs the health check once. kFailedPrecondition when the app is not running.
  Result<HealthReply> CheckHealth(std::chrono::milliseconds timeout);
  // Stops the app and powers the guest off.
  Result<ShutdownReply> Shutdown(std::chrono::milliseconds timeout);

 private:
  template <typename T>
  Result<T> Call(AgentOp op, const Json& fields, std::chrono::milliseconds timeout);

  std::unique_ptr<AgentChannel> channel_;
  std::string vm_;
};

}  // namespace vdswap
