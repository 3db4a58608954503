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
