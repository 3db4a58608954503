#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "tests/e2e/cli_harness.h"

namespace vdswap::testing {
namespace {

TEST(DaemonE2eTest, StatusAsJson) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--hypervisor", "fake"}));
  int rc = -1;
  Json st = RunJson(daemon, {"status"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(st["state_dir"], daemon.state_dir());
  EXPECT_EQ(st["hypervisor"], "fake");
  EXPECT_TRUE(st["version"].is_string());
  EXPECT_EQ(st["counts"]["vms"], 0);
  EXPECT_EQ(daemon.Stop(), 0);  // SIGTERM is a clean exit
}

TEST(DaemonE2eTest, TcpListenerRequiresToken) {
  DaemonProcess daemon;
  auto dir = TempDir::Create("/tmp", "tok");
  ASSERT_TRUE(dir.ok());
  std::string token = dir->path() + "/token";
  ASSERT_TRUE(WriteFileAtomic(token, "t0ken-of-at-least-thirty-two-bytes\n", 0600).ok());
  std::string wrong = dir->path() + "/wrong";
  ASSERT_TRUE(WriteFileAtomic(wrong, "nope\n", 0600).ok());
  // The port is free when picked but may be taken before the daemon binds it: retry.
  std::string url;
  bool started = false;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    int port = FreeTcpPort();
    ASSERT_GT(port, 0);
    url = "http://127.0.0.1:" + std::to_string(port);
    started =
        daemon.Start({"--listen", "127.0.0.1:" + std::to_string(port), "--token-file", token});
  }
  ASSERT_TRUE(started);

  CommandOutput ok = RunCli({"--url", url, "--token-file", token, "-o", "json", "status"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\"version\""), std::string::npos);

  CommandOutput denied = RunCli({"--url", url, "--token-file", wrong, "status"});
  EXPECT_EQ(denied.exit_code, 6);  // unauthorized
  EXPECT_NE(denied.err.find("bearer token"), std::string::npos);

  SubprocessRunner runner;
  auto raw =
      runner.Run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/v1/status"}, {});
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->out, "401");
}

TEST(DaemonE2eTest, ListenWithoutTokenIsRefusedBeforeAnythingIsOpened) {
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start({"--listen", "127.0.0.1:" + std::to_string(FreeTcpPort())}));
  // Refused flags are refused first: no database, no socket, nothing served meanwhile.
  EXPECT_TRUE(std::filesystem::is_empty(daemon.state_dir()));
}

// Plain HTTP beyond loopback puts the token on the wire: refused unless asked for.
TEST(DaemonE2eTest, PlainHttpBeyondLoopbackNeedsInsecureHttp) {
  auto dir = TempDir::Create("/tmp", "tok");
  ASSERT_TRUE(dir.ok());
  std::string token = dir->path() + "/token";
  ASSERT_TRUE(WriteFileAtomic(token, std::string(40, 't') + "\n", 0600).ok());
  const std::string listen = "0.0.0.0:" + std::to_string(FreeTcpPort());
  DaemonProcess refused;
  EXPECT_FALSE(refused.Start({"--listen", listen, "--token-file", token}));
  EXPECT_TRUE(std::filesystem::is_empty(refused.state_dir()));
  DaemonProcess insecure;
  EXPECT_TRUE(insecure.Start({"--listen", listen, "--token-file", token, "--insecure-http"}));
}

TEST(DaemonE2eTest, StoppedDaemonGivesExit5WithHowToStart) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start());
  std::string socket = daemon.socket();
  daemon.Stop();
  CommandOutput out = RunCli({"--socket", socket, "status"});
  EXPECT_EQ(out.exit_code, 5);
  EXPECT_NE(out.err.find("vdswapd"), std::string::npos);
}

TEST(DaemonE2eTest, MetricsInPrometheusFormat) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start());
  SubprocessRunner runner;
  auto out =
      runner.Run({"curl", "-s", "--unix-socket", daemon.socket(), "http://localhost/metrics"}, {});
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->out.find("# TYPE vdswap_up gauge\nvdswap_up 1\n"), std::string::npos);
  EXPECT_NE(out->out.find("vdswap_objects{kind=\"vms\"} 0"), std::string::npos);
}

TEST(DaemonE2eTest, ImageBuildTakesArchivePrefixesWithAbsolutePaths) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--hypervisor", "fake"}));
  int rc = 0;
  Json out = RunJson(daemon, {"image", "build", "docker-archive:/nonexistent/img.tar"}, &rc);
  EXPECT_EQ(rc, 2);
  CommandOutput raw =
      RunCli({"--socket", daemon.socket(), "image", "build", "oci-archive:/nonexistent/img.tar"});
  EXPECT_NE(raw.err.find("source '/nonexistent/img.tar' does not exist"), std::string::npos)
      << raw.err;
}

// Idle connections and slowloris ones (a request line, then one header every so often)
// cost the daemon a file descriptor each, not a thread: `status` is answered at once.
TEST(DaemonE2eTest, SlowAndIdleClientsDoNotDelayStatus) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--hypervisor", "fake"}));
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(ConnectUnix(daemon.socket()));
    ASSERT_TRUE(clients.back().valid());
  }
  const std::string slow = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 8; ++i) {
    clients.push_back(ConnectUnix(daemon.socket()));
    ASSERT_EQ(send(clients.back().get(), slow.data(), slow.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(slow.size()));
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 100; i < clients.size(); ++i) {
      const std::string header = "X-Slow-" + std::to_string(round) + ": 1\r\n";
      send(clients[i].get(), header.data(), header.size(), MSG_NOSIGNAL);
    }
    const auto start = std::chrono::steady_clock::now();
    CommandOutput st = RunCli({"--socket", daemon.socket(), "status"}, std::chrono::seconds(30));
    EXPECT_EQ(st.exit_code, 0) << st.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
}

// A body over the 1 MiB cap is answered 413 with a short error, and its bytes are
// dropped as they arrive (the daemon does not grow by the 100 MB it was sent).
TEST(DaemonE2eTest, OversizedBodyIs413AndDoesNotGrowTheDaemon) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--hypervisor", "fake"}));
  const int64_t before = PeakRssKib(daemon.pid());
  ASSERT_GT(before, 0);
  // 100 MB of 'x' to a POST route; prints the HTTP status, the answer goes to $1.
  const std::string post_100mb =
      "head -c 104857600 /dev/zero | tr '\\0' x | curl -s -o \"$1\" -w '%{http_code}' "
      "--unix-socket \"$0\" -H 'Content-Type: application/json' --data-binary @- "
      "http://localhost/v1/hosts";
  SubprocessRunner runner;
  auto out =
      runner.Run({"sh", "-c", post_100mb, daemon.socket(), daemon.state_dir() + "/answer"}, {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->out, "413");
  auto answer = ReadFile(daemon.state_dir() + "/answer");
  ASSERT_TRUE(answer.ok());
  EXPECT_LT(answer->size(), 200U) << *answer;
  EXPECT_NE(answer->find("\"invalid_argument\""), std::string::npos) << *answer;
  EXPECT_LT(PeakRssKib(daemon.pid()) - before, 20 * 1024) << "KiB grown at peak";
}

TEST(DaemonE2eTest, OtherMethodOnAKnownPathIs405WithAllow) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--hypervisor", "fake"}));
  SubprocessRunner runner;
  auto out = runner.Run({"curl", "-s", "-i", "-X", "PUT", "--unix-socket", daemon.socket(),
                         "http://localhost/v1/vms"},
                        {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->out.rfind("HTTP/1.1 405", 0), 0U) << out->out;
  EXPECT_NE(out->out.find("Allow: GET, POST\r\n"), std::string::npos) << out->out;
}

TEST(DaemonE2eTest, UsageErrorsExit2) {
  EXPECT_EQ(RunCli({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(RunCli({"-o", "yaml", "status"}).exit_code, 2);
  CommandOutput help = RunCli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
}

}  // namespace
}  // namespace vdswap::testing
