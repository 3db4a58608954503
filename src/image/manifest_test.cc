#include "image/manifest.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

constexpr char kFull[] = R"({
  "name": "hello", "version": "2.0.1",
  "start": ["/bin/hello", "--port", "8080"],
  "stop": {"signal": "TERM", "timeout_s": 10},
  "health": {"exec": ["/bin/hello", "--check"], "interval_ms": 200, "timeout_s": 30},
  "env": {"LOG_LEVEL": "info"},
  "requires": {"os_id": "vdswap-testos", "arch": "x86_64"}
})";

std::string ErrorOf(const std::string& text) {
  auto m = ParseManifest(text);
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
  return m.status().message();
}

TEST(ManifestTest, ParsesTheDesignExample) {
  auto m = ParseManifest(kFull);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "hello");
  EXPECT_EQ(m->version, "2.0.1");
  EXPECT_EQ(m->start, (std::vector<std::string>{"/bin/hello", "--port", "8080"}));
  EXPECT_EQ(m->health.interval_ms, 200);
  EXPECT_EQ(m->env.at("LOG_LEVEL"), "info");
  EXPECT_EQ(m->requirements.os_id, "vdswap-testos");
}

TEST(ManifestTest, RoundTripsThroughCanonicalJson) {
  auto m = ParseManifest(kFull);
  ASSERT_TRUE(m.ok());
  auto again = ManifestFromJson(ManifestToJson(*m));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ManifestToJson(*again), ManifestToJson(*m));
}

TEST(ManifestTest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"strat":1})"),
            "manifest: unknown field 'strat'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1"})"), "manifest: 'start' is required");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["bin/a"]})"),
            "manifest: 'start[0]' must be an absolute path, got 'bin/a'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":"/a"})"),
            "manifest: 'start' must be a non-empty array of strings");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":1,"start":["/a"]})"),
            "manifest: 'version' must be a string");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"stop":{"signal":"BOOM"}})"),
            "manifest: 'stop.signal' must be one of TERM INT QUIT HUP USR1 USR2 KILL");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"health":{"interval_ms":1}})"),
            "manifest: 'health.interval_ms' must be between 10 and 60000");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"health":{"exec":["x"]}})"),
            "manifest: 'health.exec[0]' must be an absolute path, got 'x'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"env":{"A":1}})"),
            "manifest: 'env.A' must be a string");
  EXPECT_EQ(ErrorOf(R"({"name":"a","version":"1","start":["/a"],"requires":{"x":1}})"),
            "manifest: unknown field 'requires.x'");
  EXPECT_EQ(ErrorOf(R"({"name":"A b","version":"1","start":["/a"]})"),
            "manifest: 'name' must match [a-z0-9][a-z0-9._-]{0,62}, got 'A b'");
  EXPECT_EQ(ErrorOf("[1]"), "manifest: /vdswap.json must be a JSON object");
  EXPECT_EQ(ErrorOf("{nope"), "manifest: /vdswap.json is not valid JSON");
}

TEST(OsReleaseTest, ParsesQuotedAndBareValues) {
  OsRelease os = ParseOsRelease("# c\nID=vdswap-testos\nVERSION_ID=\"2\"\nNAME='Test OS'\n\n");
  EXPECT_EQ(os["ID"], "vdswap-testos");
  EXPECT_EQ(os["VERSION_ID"], "2");
  EXPECT_EQ(os["NAME"], "Test OS");
}

TEST(CheckRequiresTest, SaysWhichRequirementFails) {
  auto m = ParseManifest(kFull);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(CheckRequires(*m, {{"ID", "vdswap-testos"}}, "x86_64").ok());
  Status s = CheckRequires(*m, {{"ID", "debian"}}, "x86_64");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "app 'hello' requires os_id 'vdswap-testos' but the OS is 'debian'");
  EXPECT_EQ(CheckRequires(*m, {{"ID", "vdswap-testos"}}, "aarch64").code(),
            Code::kFailedPrecondition);
}

}  // namespace
}  // namespace vdswap

namespace vdswap {
namespace {

constexpr char kWeb[] = R"({
  "name": "web", "version": "2",
  "start": ["/usr/sbin/lighttpd", "-D", "-f", "/etc/lighttpd/lighttpd.conf"],
  "stop": {"signal": "INT", "timeout_s": 10, "drain_s": 2},
  "health": {"http": "http://127.0.0.1:80/healthz", "interval_ms": 100},
  "sockets": [{"name": "http", "listen": "0.0.0.0:80"},
              {"name": "admin", "listen": "[::1]:8081"},
              {"name": "ctl", "listen": "unix:/run/web.sock"}]
})";

TEST(ManifestZeroDowntimeTest, ParsesSocketsProbesAndDrain) {
  auto m = ParseManifest(kWeb);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->stop.drain_s, 2);
  ASSERT_TRUE(m->health.http.has_value());
  EXPECT_EQ(m->health.http->address.host, "127.0.0.1");
  EXPECT_EQ(m->health.http->address.port, 80);
  EXPECT_EQ(m->health.http->path, "/healthz");
  EXPECT_TRUE(m->health.has_probe());
  ASSERT_EQ(m->sockets.size(), 3u);
  EXPECT_EQ(m->sockets[0].name, "http");
  EXPECT_EQ(m->sockets[1].listen.family, SocketAddress::Family::kInet6);
  EXPECT_EQ(m->sockets[2].listen.path, "/run/web.sock");
  auto again = ManifestFromJson(ManifestToJson(*m));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ManifestToJson(*again), ManifestToJson(*m));
  EXPECT_EQ(ManifestToJson(*m)["health"]["http"], "http://127.0.0.1:80/healthz");
}

TEST(ManifestZeroDowntimeTest, TcpProbe) {
  auto m = ParseManifest(
      R"({"name":"db","version":"1","start":["/db"],"health":{"tcp":"localhost:5432"}})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->health.tcp->ToString(), "127.0.0.1:5432");
}

TEST(ManifestZeroDowntimeTest, NoProbeMeansRunningIsHealthy) {
  auto m = ParseManifest(R"({"name":"a","version":"1","start":["/a"]})");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->health.has_probe());
  EXPECT_TRUE(m->sockets.empty());
}

TEST(ManifestZeroDowntimeTest, ErrorsNameTheField) {
  const std::string head = R"({"name":"a","version":"1","start":["/a"],)";
  EXPECT_EQ(ErrorOf(head + R"("health":{"exec":["/c"],"tcp":"127.0.0.1:1"}})"),
            "manifest: 'health' takes one probe: exec, http or tcp");
  EXPECT_EQ(ErrorOf(head + R"("health":{"http":"https://127.0.0.1/"}})"),
            "manifest: 'health.http' 'https://127.0.0.1/': only http:// URLs can be probed");
  EXPECT_EQ(ErrorOf(head + R"("health":{"tcp":"db.local:5432"}})"),
            "manifest: 'health.tcp' 'db.local:5432': 'db.local' is not a numeric IPv4 address "
            "(IPv6 goes in brackets)");
  EXPECT_EQ(ErrorOf(head + R"("sockets":[{"name":"a b","listen":"0.0.0.0:80"}]})"),
            "manifest: 'sockets[0].name' must match [A-Za-z0-9._-]{1,64}");
  EXPECT_EQ(ErrorOf(head + R"("sockets":[{"name":"h","listen":"0.0.0.0:80"},)" +
                    R"({"name":"h","listen":"0.0.0.0:81"}]})"),
            "manifest: 'sockets[1].name' repeats 'h'");
  EXPECT_EQ(ErrorOf(head + R"("sockets":[{"name":"h","listen":"0.0.0.0:80"},)" +
                    R"({"name":"i","listen":"0.0.0.0:80"}]})"),
            "manifest: 'sockets[1].listen' repeats '0.0.0.0:80'");
  EXPECT_EQ(ErrorOf(head + R"("sockets":[{"name":"h","listen":"0.0.0.0:0"}]})"),
            "manifest: 'sockets[0].listen' needs a port 1-65535");
  EXPECT_EQ(ErrorOf(head + R"("sockets":[{"name":"h","listen":"unix:run/x"}]})"),
            "manifest: 'sockets[0].listen' 'unix:run/x': a unix socket needs an absolute path");
  EXPECT_EQ(ErrorOf(head + R"("stop":{"drain_s":-1}})"),
            "manifest: 'stop.drain_s' must be between 0 and 3600");
}

TEST(SocketAddressTest, ParsesEveryForm) {
  EXPECT_EQ(ParseSocketAddress("0.0.0.0:80")->ToString(), "0.0.0.0:80");
  EXPECT_EQ(ParseSocketAddress("[::]:443")->ToString(), "[::]:443");
  EXPECT_EQ(ParseSocketAddress("unix:/run/a.sock")->ToString(), "unix:/run/a.sock");
  EXPECT_FALSE(ParseSocketAddress("0.0.0.0:65536").ok());
  EXPECT_FALSE(ParseSocketAddress("0.0.0.0:8x").ok());
  EXPECT_FALSE(ParseSocketAddress("::1:80").ok());
  EXPECT_FALSE(ParseSocketAddress("[::1]80").ok());
  EXPECT_FALSE(ParseSocketAddress("80").ok());
}

TEST(SocketAddressTest, HttpUrlDefaults) {
  auto url = ParseHttpUrl("http://127.0.0.1");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->address.port, 80);
  EXPECT_EQ(url->path, "/");
  auto v6 = ParseHttpUrl("http://[::1]/x?y=1");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->address.port, 80);
  EXPECT_EQ(v6->path, "/x?y=1");
  EXPECT_EQ(ParseHttpUrl("http://[::1]:8080/")->address.port, 8080);
  EXPECT_FALSE(ParseHttpUrl("http://127.0.0.1:0/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://127.0.0.1/a b").ok());
}

}  // namespace
}  // namespace vdswap
