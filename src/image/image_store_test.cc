#include "image/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "core/files.h"
#include "image/image_test_fixture.h"
#include "testing/test_archives.h"

namespace fs = std::filesystem;

namespace vdswap {
namespace {

class ImageStoreTest : public testing::ImageFixture {};

TEST_F(ImageStoreTest, SameBytesUnderAnotherNameAreRefusedNamingTheImage) {
  const std::string tree = MakeTree("a", "v1");
  auto a = Build(tree, "first");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto again = Build(tree, "first");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, a->digest);
  auto renamed = Build(tree, "second");
  ASSERT_FALSE(renamed.ok());
  EXPECT_EQ(renamed.status().code(), Code::kAlreadyExists);
  EXPECT_NE(renamed.status().message().find(
                "already image 'first:1' (sha256:" + a->digest.substr(0, 12) + ")"),
            std::string::npos)
      << renamed.status().message();
  EXPECT_EQ(store_->Resolve("second").status().code(), Code::kNotFound);
}

TEST_F(ImageStoreTest, RebuildAfterRemoveGivesSameDigest) {
  std::string tree = MakeTree("a", "v1");
  auto a = Build(tree);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store_->Remove("sha256:" + a->digest).ok());
  EXPECT_FALSE(fs::exists(a->dir));
  auto b = Build(tree);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest, b->digest);
}

TEST_F(ImageStoreTest, ResolvesReferences) {
  auto a = Build(MakeTree("a", "v1"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(store_->Resolve("sha256:" + a->digest)->digest, a->digest);
  EXPECT_EQ(store_->Resolve(a->digest.substr(0, 12))->digest, a->digest);
  EXPECT_EQ(store_->Resolve("hello")->digest, a->digest);
  EXPECT_EQ(store_->Resolve("hello:1")->digest, a->digest);
  EXPECT_EQ(store_->Resolve("hello:9").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Resolve("hello", ImageKind::kOs).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Resolve("sha256:abc").status().code(), Code::kInvalidArgument);
}

TEST_F(ImageStoreTest, RemoveRefusesImagesATemplateUses) {
  auto a = Build(MakeTree("a", "v1"));
  ASSERT_TRUE(a.ok());
  // A template row as fleet's TemplateStore writes it (image sits below fleet and cannot
  // call it): the database's RESTRICT key is what protects the image.
  ASSERT_TRUE(db_->Exec("INSERT INTO templates (name, version, os_digest, app_digest, memory_mib, "
                        "cpus, data_bytes, created_at) VALUES ('t', 1, ?1, ?1, 256, 1, 1, 0)",
                        {a->digest})
                  .ok());
  Status s = store_->Remove("hello");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("image 'hello' is used by a template"), std::string::npos)
      << s.message();
  EXPECT_TRUE(fs::exists(a->disk_path()));
  ASSERT_TRUE(store_->Gc(true).ok());  // in use: not unused
  EXPECT_TRUE(fs::exists(a->disk_path()));
  EXPECT_EQ(*store_->Count(), 1);
}

TEST_F(ImageStoreTest, GcRemovesOrphansAndUnused) {
  auto a = Build(MakeTree("a", "v1"));
  ASSERT_TRUE(a.ok());
  fs::create_directories(state_ + "/tmp/build.crashed/root");
  fs::create_directories(state_ + "/images/deadbeef");
  auto gc = store_->Gc(false);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ((*gc)["removed"].size(), 2u);
  EXPECT_TRUE(fs::exists(a->disk_path()));
  ASSERT_TRUE(store_->Gc(true).ok());
  EXPECT_FALSE(fs::exists(a->disk_path()));
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(ImageStoreTest, GcSparesTheStagingOfAnImportInProgress) {
  const std::string disk = OsDisk();
  runner_.Hold("qemu-img");  // the import has copied the disk and checks it now
  Result<ImageInfo> imported = Internal("not run");
  std::thread import([&] { imported = importer_->Import({disk, "", "", "", "os", ""}, nullptr); });
  runner_.AwaitEntered();
  auto gc = store_->Gc(/*unused=*/false);
  runner_.Release();
  import.join();
  ASSERT_TRUE(gc.ok());
  EXPECT_TRUE((*gc)["removed"].empty()) << gc->dump();
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_TRUE(fs::exists(imported->disk_path()));
}

// A producer's files move from its staging directory to the image's, read-only; the
// staging is spared by Gc while it lives and gone once recorded.
TEST_F(ImageStoreTest, RecordMovesAStagedImageInPlace) {
  auto staging = store_->Stage(ImageKind::kApp);
  ASSERT_TRUE(staging.ok()) << staging.status().ToString();
  const std::string work = staging->work_dir();
  EXPECT_EQ(work.rfind(state_ + "/tmp/build.", 0), 0u) << work;
  EXPECT_TRUE(fs::is_directory(staging->image_dir()));
  ASSERT_TRUE(WriteFileAtomic(staging->app_disk_path(), "erofs bytes").ok());
  auto gc = store_->Gc(/*unused=*/false);
  ASSERT_TRUE(gc.ok());
  EXPECT_TRUE((*gc)["removed"].empty()) << gc->dump();

  ImageInfo info;
  info.digest = std::string(64, 'a');
  info.name = "staged";
  info.version = "1";
  info.size_bytes = 11;
  auto recorded = store_->Record(std::move(*staging), info);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_EQ(recorded->dir, state_ + "/images/" + info.digest);
  EXPECT_EQ(testing::Slurp(recorded->disk_path()), "erofs bytes");
  struct stat st {};
  ASSERT_EQ(stat(recorded->disk_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_FALSE(fs::exists(work));
  EXPECT_EQ(store_->Resolve("staged:1")->digest, info.digest);
}

}  // namespace
}  // namespace vdswap
