#pragma once

#include <chrono>
#include <string>

#include "core/clock.h"
#include "core/json.h"
#include "hypervisor/hypervisor.h"

namespace vdswap {

// The fleet's one way to talk to a VM's guest agent: every agent operation the host
// side uses is a method here, so the protocol is spoken in one place. Thread-safe
// (each call opens its own channel).
class GuestAgent {
 public:
  GuestAgent(Hypervisor& hv, Clock& clock) : hv_(hv), clock_(clock) {}

  // Stops the app (idempotent). kUnavailable when the agent does not answer.
  Status StopApp(const HostRef& host, const std::string& vm, std::chrono::milliseconds timeout);
  // Starts the app on the attached app disk and waits for its health check; returns the
  // agent's app view ({healthy, version, last_downtime_ms...}).
  Result<Json> StartApp(const HostRef& host, const std::string& vm,
                        std::chrono::milliseconds timeout);
  // The agent's live view: {boot_id, app: {state, healthy, version, health_output...}}.
  Result<Json> LiveStatus(const HostRef& host, const std::string& vm,
                          std::chrono::milliseconds timeout);
  // Waits (retrying every 250 ms of `clock`) until the agent answers, then until its app
  // is healthy; returns StartApp's result. The last error when `timeout` passes first.
  Result<Json> AwaitHealthy(const HostRef& host, const std::string& vm,
                            std::chrono::milliseconds timeout);

 private:
  Result<Json> Call(const HostRef& host, const std::string& vm, const std::string& op,
                    std::chrono::milliseconds timeout);

  Hypervisor& hv_;
  Clock& clock_;
};

}  // namespace vdswap
