#include "image/oci.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

const std::string kHex(64, 'a');

TEST(OciTest, ParsesDockerManifest) {
  auto l = ParseDockerManifest(
      R"([{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["l1/layer.tar","blobs/sha256/)" + kHex +
      R"("]}])");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->config_path, "cfg.json");
  ASSERT_EQ(l->layers.size(), 2u);
  EXPECT_EQ(l->layers[0].digest, "");
  EXPECT_EQ(l->layers[1].digest, kHex);
}

TEST(OciTest, RefusesUnsafeDockerLayerPaths) {
  auto l = ParseDockerManifest(R"([{"Config":"c.json","Layers":["../../etc/passwd"]}])");
  EXPECT_EQ(l.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseDockerManifest(R"([{"Config":"/c.json","Layers":["a"]}])").status().code(),
            Code::kInvalidArgument);
}

TEST(OciTest, ParsesIndexAndManifest) {
  auto m =
      ParseOciIndex(R"({"schemaVersion":2,"manifests":[{"digest":"sha256:)" + kHex + R"("}]})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, kHex);
  auto l = ParseOciManifest(R"({"config":{"digest":"sha256:)" + kHex +
                            R"("},"layers":[{"digest":"sha256:)" + kHex + R"("}]})");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->config_path, "blobs/sha256/" + kHex);
  EXPECT_EQ(l->layers[0].path, "blobs/sha256/" + kHex);
}

TEST(OciTest, RefusesBadDigests) {
  EXPECT_FALSE(ParseOciIndex(R"({"manifests":[{"digest":"sha256:../../x"}]})").ok());
  EXPECT_FALSE(ParseOciManifest(R"({"config":{"digest":"md5:1"},"layers":[]})").ok());
  EXPECT_FALSE(ParseOciIndex(R"({"manifests":[]})").ok());
}

TEST(OciTest, ConfigBecomesManifestResolvingPath) {
  auto c = ParseImageConfig(R"({"config":{"Entrypoint":["server"],"Cmd":["--port","80"],
      "Env":["PATH=/opt/bin:/bin","MODE=prod"],"WorkingDir":"/srv",
      "Labels":{"org.opencontainers.image.version":"3.1"}}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto m = ManifestFromConfig(*c, "web", [](const std::string& p) { return p == "/bin/server"; });
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->start, (std::vector<std::string>{"/bin/server", "--port", "80"}));
  EXPECT_EQ(m->env.at("MODE"), "prod");
  EXPECT_EQ(m->workdir, "/srv");
  EXPECT_EQ(m->version, "3.1");
}

TEST(OciTest, ConfigWithoutCommandIsAnError) {
  auto c = ParseImageConfig(R"({"config":{"Env":["A=b"]}})");
  ASSERT_TRUE(c.ok());
  auto m = ManifestFromConfig(*c, "web", [](const std::string&) { return true; });
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vdswap
