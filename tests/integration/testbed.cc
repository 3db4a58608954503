#include "tests/integration/testbed.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "hypervisor/agent_client.h"

namespace vdswap::testing {

namespace {
// Every real-VM test process is a libvirt client, as vdswapd is, and ignores SIGPIPE as
// vdswapd does (LibvirtHypervisor requires it): libvirt's client writes to its sockets
// with write(2), so a connection libvirtd closed first must give EPIPE, not kill the test.
const bool kSigpipeIgnored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
}  // namespace

const Assets& BuildAssets() {
  static Assets* assets = [] {
    auto* a = new Assets;
    auto dir = TempDir::Create("/tmp", "vdswap-assets");
    EXPECT_TRUE(dir.ok());
    a->dir = dir->Release();
    a->os_dir = a->dir + "/testos";
    a->os2_dir = a->dir + "/testos2";
    a->hello_dir = a->dir + "/hello";
    SubprocessRunner runner;
    std::string agent = std::string(BUILD_DIR) + "/guest/vdswap-guest";
    auto os = runner.RunOk(
        {std::string(SOURCE_DIR) + "/guest/testos/build", a->os_dir, "--agent", agent});
    EXPECT_TRUE(os.ok()) << os.status().ToString();
    auto os2 = runner.RunOk({std::string(SOURCE_DIR) + "/guest/testos/build", a->os2_dir,
                             "--version", "2", "--agent", agent});
    EXPECT_TRUE(os2.ok()) << os2.status().ToString();
    auto hello = runner.RunOk({std::string(SOURCE_DIR) + "/examples/hello/build", a->hello_dir,
                               "--bin-dir", std::string(BUILD_DIR) + "/examples/hello"});
    EXPECT_TRUE(hello.ok()) << hello.status().ToString();
    auto cmdline = ReadFile(a->os_dir + "/cmdline");
    a->cmdline = cmdline.ok() ? *cmdline : "";
    while (!a->cmdline.empty() && a->cmdline.back() == '\n') a->cmdline.pop_back();
    return a;
  }();
  return *assets;
}

Result<HelloReply> WaitForAgent(Hypervisor& hv, const HostRef& host, const std::string& vm,
                                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = Unavailable("not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    auto agent = AgentClient::Open(hv, host, vm);
    if (agent.ok()) {
      auto hello = agent->Hello(std::chrono::seconds(2));
      if (hello.ok()) return hello;
      last = hello.status();
    } else {
      last = agent.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return last.WithContext("waiting for the agent");
}

void RemovePool(const HostRef& host) {
  virConnectPtr conn = virConnectOpen(host.uri.c_str());
  if (conn == nullptr) return;
  if (virStoragePoolPtr pool = virStoragePoolLookupByName(conn, host.pool.c_str())) {
    if (char* xml = virStoragePoolGetXMLDesc(pool, 0)) {
      std::string s(xml);
      free(xml);
      auto a = s.find("<path>"), b = s.find("</path>");
      if (a != std::string::npos && b != std::string::npos) {
        std::error_code ec;
        std::filesystem::remove_all(s.substr(a + 6, b - a - 6), ec);
      }
    }
    virStoragePoolDestroy(pool);
    virStoragePoolUndefine(pool);
    virStoragePoolFree(pool);
  }
  virConnectClose(conn);
}

}  // namespace vdswap::testing
