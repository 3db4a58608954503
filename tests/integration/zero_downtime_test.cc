// Zero-downtime app swaps as a client sees them, on real libvirtd + QEMU (TCG): a real web
// server (lighttpd from Debian's packages, examples/web/build) on a test-OS VM on libvirt's
// `default` network, requested from the host every 10 ms while a rollout swaps its app.
// With make-before-break and a socket the agent holds, no request may fail; without the
// held socket, the same swap refuses connections (the control that shows the client
// notices an outage at all).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "core/command_runner.h"
#include "tests/integration/cli_fleet.h"
#include "tests/integration/http_poller.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kInterval{10};
// Long enough for a connection queued on a held socket during the switch (the agent
// measures ~300 ms under TCG), far shorter than an outage worth the name.
constexpr milliseconds kRequestTimeout{3000};

class ZeroDowntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const Assets& a = BuildAssets();
    const std::string web_dir = a.dir + "/web";
    SubprocessRunner runner;
    auto web = runner.RunOk({std::string(SOURCE_DIR) + "/examples/web/build", web_dir, "--cache",
                             std::string(BUILD_DIR) + "/cache/web-debs"},
                            {.timeout = std::chrono::minutes(10)});
    ASSERT_TRUE(web.ok()) << web.status().ToString();
    fleet_ = new CliFleet;
    ASSERT_TRUE(fleet_->Start("zd"));
    vm_ = "zd" + std::to_string(getpid());
    fleet_->Ok({"image", "import-os", a.os_dir + "/os.img", "--kernel", a.os_dir + "/vmlinuz",
                "--initrd", a.os_dir + "/initrd.img", "--cmdline", a.cmdline, "--name", "testos"});
    for (const char* tree : {"web-1", "web-2", "web-sock-1", "web-sock-2"}) {
      fleet_->Ok({"image", "build", web_dir + "/" + tree});
    }
    fleet_->Ok({"host", "add", "local", "--uri", "qemu:///system", "--pool", fleet_->pool()});
    fleet_->Ok({"template", "create", "web", "--os", "testos:1", "--app", "web-sock:1"});
    fleet_->Ok({"vm", "create", vm_, "--template", "web:1"});
    address_ = AwaitAddress(seconds(120));
    ASSERT_FALSE(address_.empty()) << "no DHCP address for " << vm_ << ": " << Inspect().dump();
  }
  static void TearDownTestSuite() {
    if (fleet_ == nullptr) return;
    fleet_->TearDown({vm_});
    delete fleet_;
  }

  static Json Inspect() { return fleet_->Inspect(vm_); }
  // The VM's first IPv4 address from its DHCP lease, polled up to `timeout`; "" if none.
  static std::string AwaitAddress(seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Json j = fleet_->Cli({"vm", "inspect", vm_});
      for (const auto& nic : j.value("interfaces", Json::array())) {
        for (const auto& addr : nic.value("addresses", Json::array())) {
          std::string s = addr.get<std::string>();
          if (s.find('.') != std::string::npos) return s;
        }
      }
      std::this_thread::sleep_for(milliseconds(500));
    }
    return "";
  }
  // GETs / until it answers 200 (up to `timeout`); returns the body, or the last error.
  static std::string AwaitPage(seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    HttpSample s;
    while (std::chrono::steady_clock::now() < deadline) {
      s = HttpGetOnce(address_, 80, "/", kRequestTimeout);
      if (s.ok) return s.body;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return s.body;
  }
  // Puts the VM on a new template version running `app` (e.g. "web-sock:1"), by a
  // break-before-make rollout, whatever it ran before. Returns the version's ref.
  static std::string UseApp(const std::string& app) {
    std::string ref = fleet_->Ok({"template", "update", "web", "--os", "testos:1", "--app", app})
                          .value("ref", "");
    Json r = Rollout(ref, "break-before-make");
    EXPECT_EQ(r["state"], "succeeded") << "setting up " << app << ": " << r.dump();
    return ref;
  }
  // A rollout of the VM to template version `ref` in `order`, watched to its end (the
  // CLI's deadline: 10 minutes).
  static Json Rollout(const std::string& ref, const std::string& order) {
    return fleet_->Watch(fleet_->StartRollout(ref, {vm_}, {"--swap-order", order}).value("id", 0));
  }
  // Swaps the VM from app `from` to app `to` in `order` while a client requests / every
  // 10 ms; returns the rollout's final status and what the client saw.
  struct Observed {
    Json rollout;
    HttpPollSummary client;
    std::vector<HttpSample> samples;
  };
  static Observed SwapUnderLoad(const std::string& from, const std::string& to,
                                const std::string& order) {
    UseApp(from);
    const std::string ref =
        fleet_->Ok({"template", "update", "web", "--os", "testos:1", "--app", to}).value("ref", "");
    EXPECT_EQ(AwaitPage(seconds(60)), "web 1") << "the VM does not serve " << from;
    Observed o;
    HttpPoller client(address_, 80, "/", kInterval, kRequestTimeout);
    o.rollout = Rollout(ref, order);
    // The new version has served for a while once the rollout is done: one more second.
    std::this_thread::sleep_for(seconds(1));
    o.samples = client.Stop();
    o.client = Summarize(o.samples);
    std::printf(
        "[measure] %s -> %s %s: %d requests, %d failed, longest gap %lld ms, agent downtime "
        "%s ms\n",
        from.c_str(), to.c_str(), order.c_str(), o.client.requests, o.client.failed,
        static_cast<long long>(o.client.longest_gap_ms),
        o.rollout["vms"][0]["downtime_ms"].dump().c_str());
    return o;
  }
  static std::string FirstFailure(const std::vector<HttpSample>& samples) {
    for (const auto& s : samples) {
      if (!s.ok) return "at " + std::to_string(s.start_ms) + " ms: " + s.body;
    }
    return "none";
  }

  static inline CliFleet* fleet_;
  static inline std::string vm_;
  static inline std::string address_;
};

// web-sock:1 -> web-sock:2, make-before-break: the new app disk is plugged and mounted
// beside the old one, lighttpd is restarted on the socket the agent holds (connections
// queue in its backlog meanwhile), and the old disk is released and unplugged only after
// the new lighttpd is healthy. The client sees every request answered, v1 then v2.
TEST_F(ZeroDowntimeTest, MakeBeforeBreakWithAHeldSocketAnswersEveryRequest) {
  Observed o = SwapUnderLoad("web-sock:1", "web-sock:2", "make-before-break");
  ASSERT_EQ(o.rollout["state"], "succeeded") << o.rollout.dump();
  EXPECT_EQ(o.client.failed, 0) << "first failure " << FirstFailure(o.samples);
  EXPECT_EQ(o.client.bodies, (std::vector<std::string>{"web 1", "web 2"}))
      << "the page must switch from v1 to v2 once, never back";

  // The journal: the new app was healthy on the new disk (switched/done) before the old
  // disk was released and unplugged (released/intent).
  std::vector<std::string> steps = fleet_->JournalSteps(vm_, o.rollout.value("id", 0));
  auto at = [&steps](const std::string& name) {
    return std::find(steps.begin(), steps.end(), name) - steps.begin();
  };
  const auto n = static_cast<std::ptrdiff_t>(steps.size());
  ASSERT_LT(at("switched/done"), n) << ::testing::PrintToString(steps);
  ASSERT_LT(at("released/intent"), n) << ::testing::PrintToString(steps);
  EXPECT_LT(at("attached/done"), at("switched/intent")) << ::testing::PrintToString(steps);
  EXPECT_LT(at("switched/done"), at("released/intent")) << ::testing::PrintToString(steps);
  EXPECT_EQ(steps.back(), "done/done") << ::testing::PrintToString(steps);

  // One app disk is left, the new version's, healthy.
  Json j = Inspect();
  EXPECT_EQ(j["app"]["name"], "web-sock") << j.dump();
  EXPECT_EQ(j["app"]["version"], "2") << j.dump();
  EXPECT_EQ(j["app"]["healthy"], true) << j.dump();
  int app_disks = 0;
  for (const auto& [serial, volume] : j["disks"].items()) {
    app_disks += serial.rfind("vdswap-app", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(app_disks, 1) << j.dump();
}

// The control: the same make-before-break swap without a held socket (web:1 -> web:2,
// lighttpd binds port 80 itself) leaves the port closed between the old lighttpd's exit
// and the new one's bind, and the client sees refused connections.
TEST_F(ZeroDowntimeTest, MakeBeforeBreakWithoutAHeldSocketRefusesRequests) {
  Observed o = SwapUnderLoad("web:1", "web:2", "make-before-break");
  ASSERT_EQ(o.rollout["state"], "succeeded") << o.rollout.dump();
  EXPECT_GT(o.client.failed, 0) << "no request failed: the client cannot see an outage";
  EXPECT_EQ(o.client.bodies, (std::vector<std::string>{"web 1", "web 2"}));
}

}  // namespace
}  // namespace vdswap::testing
