#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/command_runner.h"
#include "core/files.h"
#include "hypervisor/hypervisor.h"
#include "protocol/agent_protocol.h"

namespace vdswap::testing {

// Assets every real-VM test needs, built once per process into a temp dir: the test OS
// (guest/testos/build) and the hello app trees (examples/hello/build).
struct Assets {
  std::string dir;
  std::string os_dir;     // os.img, vmlinuz, initrd.img, cmdline
  std::string os2_dir;    // the same OS with VERSION_ID=2
  std::string hello_dir;  // hello-1, hello-2, hello-broken, hello-slow
  std::string cmdline;
};

// Builds the assets (fails the test on error). REQUIRES: SOURCE_DIR and BUILD_DIR defined.
const Assets& BuildAssets();

// Polls the VM's agent with hello until it answers, up to `timeout`. Returns the reply.
Result<HelloReply> WaitForAgent(Hypervisor& hv, const HostRef& host, const std::string& vm,
                                std::chrono::milliseconds timeout);

// Deletes a test pool with everything in its directory, and its definition.
void RemovePool(const HostRef& host);

}  // namespace vdswap::testing
