#include "image/app_image_builder.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "core/files.h"
#include "core/sha256.h"
#include "image/image_test_fixture.h"
#include "testing/test_archives.h"

namespace fs = std::filesystem;

namespace vdswap {
namespace {

using testing::kHelloManifest;
using testing::TarEntry;
using testing::WriteTar;

class AppImageBuilderTest : public testing::ImageFixture {
 protected:
  // A bad input: kInvalidArgument mentioning `needle`, and nothing new in the state dir.
  void ExpectRejected(const std::string& source, const std::string& needle) {
    auto before = StateFiles();
    auto r = Build(source, "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(StateFiles(), before);
  }

  std::string Blob(const std::string& layout, const std::string& content) {
    std::string hex = Sha256::Of(content);
    fs::create_directories(layout + "/blobs/sha256");
    EXPECT_TRUE(WriteFileAtomic(layout + "/blobs/sha256/" + hex, content).ok());
    return hex;
  }

  // Packs a directory into a tar (the outer archive of docker-archive / oci-archive).
  std::string PackDir(const std::string& src, const std::string& out) {
    std::vector<TarEntry> entries;
    for (const auto& e : fs::recursive_directory_iterator(src)) {
      std::string rel = fs::relative(e.path(), src);
      if (e.is_directory()) {
        entries.push_back({rel, TarEntry::kDir, "", "", 0755});
      } else {
        entries.push_back({rel, TarEntry::kFile, testing::Slurp(e.path())});
      }
    }
    WriteTar(out, entries);
    return out;
  }

  std::string LayerTar(const std::string& name, const std::vector<TarEntry>& entries) {
    std::string path = dir_->path() + "/" + name;
    WriteTar(path, entries, true);
    return testing::Slurp(path);
  }
};

TEST_F(AppImageBuilderTest, SameTreeGivesSameDigest) {
  auto a = Build(MakeTree("a", "v1"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = Build(MakeTree("b", "v1"));  // another directory, same contents
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(*Sha256::OfFile(a->disk_path()), a->digest);
  EXPECT_EQ(a->name, "hello");
  EXPECT_EQ(a->meta["files"], 3);
  struct stat st {};
  ASSERT_EQ(stat(a->disk_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

TEST_F(AppImageBuilderTest, OneByteChangedGivesAnotherDigest) {
  auto a = Build(MakeTree("a", "v1"));
  auto b = Build(MakeTree("b", "v2"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->digest, b->digest);
}

TEST_F(AppImageBuilderTest, BuildsFromTarball) {
  std::string tar = dir_->path() + "/app.tar.gz";
  WriteTar(tar,
           {{"vdswap.json", TarEntry::kFile, kHelloManifest},
            {"bin/hello", TarEntry::kFile, "#!/bin/sh\n", "", 0755}},
           true);
  auto r = Build(tar);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "1");
}

TEST_F(AppImageBuilderTest, ImportsDockerSaveArchiveWithConfigAsManifest) {
  std::string layout = dir_->path() + "/docker";
  fs::create_directories(layout + "/l1");
  fs::create_directories(layout + "/l2");
  ASSERT_TRUE(WriteFileAtomic(layout + "/l1/layer.tar",
                              LayerTar("l1", {{"usr/bin/server", TarEntry::kFile, "old", "", 0755},
                                              {"etc/junk", TarEntry::kFile, "x"}}))
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(layout + "/l2/layer.tar",
                              LayerTar("l2", {{"usr/bin/server", TarEntry::kFile, "new", "", 0755},
                                              {"etc/.wh.junk", TarEntry::kFile}}))
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(layout + "/cfg.json",
                              R"({"config":{"Cmd":["server","-v"],"Env":["PATH=/usr/bin"]}})")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(layout + "/manifest.json",
                              R"([{"Config":"cfg.json","RepoTags":["server:1"],
                                   "Layers":["l1/layer.tar","l2/layer.tar"]}])")
                  .ok());
  std::string archive = PackDir(layout, dir_->path() + "/docker.tar");
  auto r = Build("docker-archive:" + archive, "server");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Json& m = r->meta["manifest"];
  EXPECT_EQ(m["start"], Json::array({"/usr/bin/server", "-v"}));
  EXPECT_EQ(m["name"], "server");
  // The tree the image was made of: check through fsck.erofs --extract.
  std::string out = dir_->path() + "/extracted";
  ASSERT_TRUE(runner_.RunOk({"fsck.erofs", "--extract=" + out, r->disk_path()}).ok());
  EXPECT_EQ(testing::Slurp(out + "/usr/bin/server"), "new");
  EXPECT_FALSE(fs::exists(out + "/etc/junk"));
  EXPECT_TRUE(fs::exists(out + "/vdswap.json"));
}

TEST_F(AppImageBuilderTest, ImportsOciLayoutArchive) {
  std::string layout = dir_->path() + "/oci";
  std::string layer =
      Blob(layout, LayerTar("l", {{"vdswap.json", TarEntry::kFile, kHelloManifest},
                                  {"bin/hello", TarEntry::kFile, "#!/bin/sh\n", "", 0755}}));
  std::string config = Blob(layout, R"({"config":{"Cmd":["/bin/other"]}})");
  std::string manifest = Blob(layout, R"({"schemaVersion":2,"config":{"digest":"sha256:)" + config +
                                          R"("},"layers":[{"digest":"sha256:)" + layer + R"("}]})");
  ASSERT_TRUE(WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})").ok());
  ASSERT_TRUE(WriteFileAtomic(
                  layout + "/index.json",
                  R"({"schemaVersion":2,"manifests":[{"digest":"sha256:)" + manifest + R"("}]})")
                  .ok());
  auto r = Build("oci-archive:" + PackDir(layout, dir_->path() + "/oci.tar"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // An explicit /vdswap.json wins over the config's Cmd.
  EXPECT_EQ(r->meta["manifest"]["start"], Json::array({"/bin/hello"}));
}

TEST_F(AppImageBuilderTest, RejectsCorruptOciBlob) {
  std::string layout = dir_->path() + "/oci";
  std::string config = Blob(layout, R"({"config":{"Cmd":["/bin/x"]}})");
  std::string layer = Blob(layout, LayerTar("l", {{"bin/x", TarEntry::kFile, "x", "", 0755}}));
  std::string manifest = Blob(layout, R"({"config":{"digest":"sha256:)" + config +
                                          R"("},"layers":[{"digest":"sha256:)" + layer + R"("}]})");
  ASSERT_TRUE(WriteFileAtomic(layout + "/blobs/sha256/" + layer, "garbage").ok());
  ASSERT_TRUE(WriteFileAtomic(layout + "/index.json",
                              R"({"manifests":[{"digest":"sha256:)" + manifest + R"("}]})")
                  .ok());
  ExpectRejected("oci-archive:" + PackDir(layout, dir_->path() + "/oci.tar"), "is corrupt");
}

TEST_F(AppImageBuilderTest, RejectsBadInputLeavingNothing) {
  auto tar = [&](const std::string& name, const std::vector<TarEntry>& e, bool gz = false) {
    std::string p = dir_->path() + "/" + name;
    WriteTar(p, e, gz);
    return p;
  };
  TarEntry manifest{"vdswap.json", TarEntry::kFile, kHelloManifest};
  ExpectRejected(tar("dotdot.tar", {manifest, {"../x", TarEntry::kFile, "x"}}), "escapes the root");
  ExpectRejected(tar("abslink.tar", {manifest,
                                     {"etc", TarEntry::kSymlink, "", "/etc"},
                                     {"etc/cron.d/x", TarEntry::kFile, "x"}}),
                 "written through the symlink");
  ExpectRejected(
      tar("hardlink.tar", {manifest, {"h", TarEntry::kHardlink, "", "../../etc/shadow"}}),
      "leaves the root");
  ExpectRejected(tar("dev.tar", {manifest, {"dev/sda", TarEntry::kCharDevice}}), "device nodes");
  ExpectRejected(tar("nomanifest.tar", {{"bin/hello", TarEntry::kFile, "x", "", 0755}}),
                 "has no /vdswap.json");
  ExpectRejected(tar("badmanifest.tar", {{"vdswap.json", TarEntry::kFile, R"({"name":"a"})"}}),
                 "'version' is required");
  ExpectRejected(tar("nostart.tar", {{"vdswap.json", TarEntry::kFile, kHelloManifest}}),
                 "not an executable file in the image");
  std::string gz =
      tar("trunc.tar.gz", {manifest, {"big", TarEntry::kFile, std::string(300000, 'q')}}, true);
  std::string bytes = testing::Slurp(gz);
  ASSERT_TRUE(WriteFileAtomic(gz, bytes.substr(0, bytes.size() / 2)).ok());
  ExpectRejected(gz, "archive");
  ExpectRejected(dir_->path() + "/does-not-exist", "does not exist");
}

// A FakeClock that moves 1.5 s on every reading: each phase of a build seems slow.
class SlowClock : public FakeClock {
 public:
  TimePoint Now() override {
    Advance(std::chrono::milliseconds(1500));
    return FakeClock::Now();
  }
};

// Builds report progress once they run over a second on the builder's clock; on the
// fixture's FakeClock, which stands still, they stay quiet.
TEST_F(AppImageBuilderTest, ReportsProgressOnlyWhenTheBuildRunsOverASecond) {
  std::vector<Json> quiet;
  ASSERT_TRUE(
      builder_->Build({MakeTree("a", "v1"), ""}, [&](const Json& e) { quiet.push_back(e); }).ok());
  EXPECT_TRUE(quiet.empty());

  SlowClock slow;
  AppImageBuilder builder(*store_, runner_, slow);
  std::vector<Json> events;
  auto r = builder.Build({MakeTree("b", "v2"), ""}, [&](const Json& e) { events.push_back(e); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["phase"], "building EROFS image");
  EXPECT_EQ(events[0]["files"], 3);
}

}  // namespace
}  // namespace vdswap
