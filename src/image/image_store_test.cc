#include "image/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/files.h"
#include "core/sha256.h"
#include "testing/test_archives.h"

namespace fs = std::filesystem;

namespace vdswap {
namespace {

using testing::TarEntry;
using testing::WriteTar;

constexpr char kManifest[] =
    R"({"name":"hello","version":"1","start":["/bin/hello"],"health":{"exec":["/bin/hello","--check"]}})";

// The real runner, recording every argv; Hold(program) makes the next run of `program`
// wait (entered() reports it is waiting) until Release().
class HoldingRunner : public CommandRunner {
 public:
  Result<CommandOutput> Run(const std::vector<std::string>& argv,
                            const RunOptions& options) override {
    {
      std::unique_lock lock(mu_);
      ran_.push_back(argv);
      if (argv[0] == hold_) {
        hold_.clear();
        entered_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return released_; });
      }
    }
    return real_.Run(argv, options);
  }
  void Hold(const std::string& program) {
    std::lock_guard lock(mu_);
    hold_ = program;
  }
  void AwaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Forgets the runs so far.
  void Forget() {
    std::lock_guard lock(mu_);
    ran_.clear();
  }
  // Every argument any run was given.
  std::vector<std::string> Args() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& argv : ran_) out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

 private:
  SubprocessRunner real_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<std::string>> ran_;
  std::string hold_;
  bool entered_ = false;
  bool released_ = false;
};

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::Create("/tmp", "imgstore");
    ASSERT_TRUE(d.ok());
    dir_ = std::make_unique<TempDir>(std::move(*d));
    state_ = dir_->path() + "/state";
    fs::create_directories(state_);
    auto db = Db::Open(":memory:");
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    store_ = std::make_unique<ImageStore>(*db_, runner_, state_);
  }

  // A small app tree with a manifest and an executable.
  std::string MakeTree(const std::string& name, const std::string& payload) {
    std::string root = dir_->path() + "/" + name;
    fs::create_directories(root + "/bin");
    EXPECT_TRUE(WriteFileAtomic(root + "/vdswap.json", kManifest).ok());
    EXPECT_TRUE(
        WriteFileAtomic(root + "/bin/hello", "#!/bin/sh\necho " + payload + "\n", 0755).ok());
    return root;
  }

  std::set<std::string> StateFiles() {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(state_)) out.insert(e.path());
    return out;
  }

  Result<ImageInfo> Build(const std::string& source, const std::string& name = "") {
    return store_->BuildApp({source, name}, nullptr);
  }

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

  // An 8 MiB ext4 OS disk with an os-release.
  std::string OsDisk() {
    std::string root = dir_->path() + "/osroot";
    fs::create_directories(root + "/etc");
    EXPECT_TRUE(WriteFileAtomic(root + "/etc/os-release", "ID=vdswap-testos\nVERSION_ID=7\n").ok());
    std::string disk = dir_->path() + "/os.img";
    EXPECT_TRUE(runner_.RunOk({"mkfs.ext4", "-q", "-F", "-d", root, disk, "8M"}).ok());
    return disk;
  }
  // An import refused with kInvalidArgument mentioning `needle`, before qemu-img or
  // debugfs ever saw the caller's path, and with nothing new in the state dir.
  void ExpectImportRefused(const OsImportRequest& req, const std::string& needle) {
    auto before = StateFiles();
    runner_.Forget();
    auto r = store_->ImportOs(req, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    for (const auto& arg : runner_.Args()) {
      for (const auto* p : {&req.disk, &req.kernel, &req.initrd}) {
        if (!p->empty()) {
          EXPECT_EQ(arg.find(*p), std::string::npos) << arg;
        }
      }
    }
    EXPECT_EQ(StateFiles(), before);
  }

  HoldingRunner runner_;
  std::unique_ptr<TempDir> dir_;
  std::string state_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, SameTreeGivesSameDigest) {
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

TEST_F(ImageStoreTest, OneByteChangedGivesAnotherDigest) {
  auto a = Build(MakeTree("a", "v1"));
  auto b = Build(MakeTree("b", "v2"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->digest, b->digest);
}

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

TEST_F(ImageStoreTest, BuildsFromTarball) {
  std::string tar = dir_->path() + "/app.tar.gz";
  WriteTar(tar,
           {{"vdswap.json", TarEntry::kFile, kManifest},
            {"bin/hello", TarEntry::kFile, "#!/bin/sh\n", "", 0755}},
           true);
  auto r = Build(tar);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "1");
}

TEST_F(ImageStoreTest, ImportsDockerSaveArchiveWithConfigAsManifest) {
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

TEST_F(ImageStoreTest, ImportsOciLayoutArchive) {
  std::string layout = dir_->path() + "/oci";
  std::string layer =
      Blob(layout, LayerTar("l", {{"vdswap.json", TarEntry::kFile, kManifest},
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

TEST_F(ImageStoreTest, RejectsCorruptOciBlob) {
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

TEST_F(ImageStoreTest, RejectsBadInputLeavingNothing) {
  auto tar = [&](const std::string& name, const std::vector<TarEntry>& e, bool gz = false) {
    std::string p = dir_->path() + "/" + name;
    WriteTar(p, e, gz);
    return p;
  };
  TarEntry manifest{"vdswap.json", TarEntry::kFile, kManifest};
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
  ExpectRejected(tar("nostart.tar", {{"vdswap.json", TarEntry::kFile, kManifest}}),
                 "not an executable file in the image");
  std::string gz =
      tar("trunc.tar.gz", {manifest, {"big", TarEntry::kFile, std::string(300000, 'q')}}, true);
  std::string bytes = testing::Slurp(gz);
  ASSERT_TRUE(WriteFileAtomic(gz, bytes.substr(0, bytes.size() / 2)).ok());
  ExpectRejected(gz, "archive");
  ExpectRejected(dir_->path() + "/does-not-exist", "does not exist");
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

TEST_F(ImageStoreTest, ImportsRawOsDiskReadingOsRelease) {
  std::string root = dir_->path() + "/osroot";
  fs::create_directories(root + "/etc");
  ASSERT_TRUE(WriteFileAtomic(root + "/etc/os-release", "ID=vdswap-testos\nVERSION_ID=7\n").ok());
  std::string disk = dir_->path() + "/os.img";
  ASSERT_TRUE(runner_.RunOk({"mkfs.ext4", "-q", "-F", "-d", root, disk, "8M"}).ok());
  std::string kernel = dir_->path() + "/vmlinuz";
  ASSERT_TRUE(WriteFileAtomic(kernel, "kernel").ok());
  auto r = store_->ImportOs({disk, kernel, "", "console=ttyS0", "testos", ""}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, "7");
  EXPECT_EQ(r->meta["os_release"]["ID"], "vdswap-testos");
  EXPECT_EQ(r->kernel_path(), r->dir + "/vmlinuz");
  EXPECT_EQ(r->initrd_path(), "");
  EXPECT_EQ(r->cmdline(), "console=ttyS0");
}

// Where os-release cannot be read (here a qcow2 disk), the caller states the OS; the
// firmware is part of the image.
TEST_F(ImageStoreTest, ImportOsTakesTheStatedOsAndFirmware) {
  std::string disk = dir_->path() + "/os.qcow2";
  ASSERT_TRUE(runner_.RunOk({"qemu-img", "create", "-q", "-f", "qcow2", disk, "8M"}).ok());
  std::vector<Json> progress;
  auto plain = store_->ImportOs({disk, "", "", "", "os", "1"},
                                [&](const Json& e) { progress.push_back(e); });
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->meta["os_release"].empty());
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(progress.back().value("message", "").find("--os-id"), std::string::npos);

  OsImportRequest req{disk, "", "", "", "rhel", ""};
  req.os_id = "rhel";
  req.os_version = "9.4";
  req.firmware = "efi";
  auto stated = store_->ImportOs(req, nullptr);
  ASSERT_TRUE(stated.ok()) << stated.status().ToString();
  EXPECT_EQ(stated->meta["os_release"]["ID"], "rhel");
  EXPECT_EQ(stated->version, "9.4");
  EXPECT_EQ(stated->firmware(), "efi");
  EXPECT_NE(stated->digest, plain->digest);
  EXPECT_EQ(stated->meta["disk_sha256"], plain->meta["disk_sha256"]);

  req.os_version.clear();
  EXPECT_EQ(store_->ImportOs(req, nullptr).status().code(), Code::kInvalidArgument);
  req.os_version = "9";
  req.firmware = "coreboot";
  EXPECT_EQ(store_->ImportOs(req, nullptr).status().code(), Code::kInvalidArgument);
}

TEST_F(ImageStoreTest, ImportOsRefusesBackingFilesAndJunk) {
  std::string base = dir_->path() + "/base.img";
  std::string overlay = dir_->path() + "/overlay.qcow2";
  ASSERT_TRUE(runner_.RunOk({"qemu-img", "create", "-q", "-f", "raw", base, "1M"}).ok());
  ASSERT_TRUE(
      runner_.RunOk({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay})
          .ok());
  auto r = store_->ImportOs({overlay, "", "", "", "os", ""}, nullptr);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("backing file"), std::string::npos);
  EXPECT_EQ(
      store_->ImportOs({dir_->path() + "/none", "", "", "", "os", ""}, nullptr).status().code(),
      Code::kInvalidArgument);
}

TEST_F(ImageStoreTest, ImportOsReadsOnlyRegularLocalFiles) {
  const std::string disk = OsDisk();
  ExpectImportRefused({"nbd://127.0.0.1:10809/export", "", "", "", "os", ""}, "absolute path");
  ExpectImportRefused({"nbd:127.0.0.1:10809", "", "", "", "os", ""}, "absolute path");
  ExpectImportRefused({"/dev/zero", "", "", "", "os", ""}, "under /dev");
  ExpectImportRefused({dir_->path(), "", "", "", "os", ""}, "not a regular file");
  ExpectImportRefused({disk, "/proc/cpuinfo", "", "", "os", ""}, "kernel '/proc/cpuinfo'");
  const std::string empty = dir_->path() + "/empty";
  ASSERT_TRUE(WriteFileAtomic(empty, "").ok());
  ExpectImportRefused({disk, empty, "", "", "os", ""}, "kernel '" + empty + "' is empty");
  ExpectImportRefused({disk, disk, empty, "", "os", ""}, "initrd '" + empty + "' is empty");
}

// A small text file is "raw" to qemu-img; a disk's size is whole sectors.
TEST_F(ImageStoreTest, ImportOsRefusesAFileThatIsNoDisk) {
  const std::string secret = dir_->path() + "/shadow";
  ASSERT_TRUE(WriteFileAtomic(secret, "root:$6$salt$hash:19000:0:99999:7:::\n", 0600).ok());
  auto before = StateFiles();
  auto r = store_->ImportOs({secret, "", "", "", "os", ""}, nullptr);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("not a disk image"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(StateFiles(), before);
}

TEST_F(ImageStoreTest, ImportOsRunsQemuImgOnlyOnItsOwnCopyAfterDoubleDash) {
  const std::string disk = OsDisk();
  runner_.Forget();
  ASSERT_TRUE(store_->ImportOs({disk, "", "", "", "os", ""}, nullptr).ok());
  for (const auto& arg : runner_.Args()) EXPECT_EQ(arg.find(disk), std::string::npos) << arg;
  const auto args = runner_.Args();
  auto dash = std::find(args.begin(), args.end(), "--");
  ASSERT_NE(dash, args.end());
  ASSERT_NE(dash + 1, args.end());
  EXPECT_EQ((dash + 1)->rfind(state_ + "/tmp/import", 0), 0u) << *(dash + 1);
}

TEST_F(ImageStoreTest, ImportOsRefusesControlCharactersInVersionAndCmdline) {
  const std::string disk = OsDisk();
  ExpectImportRefused({disk, "", "", "", "os", "7\n8"}, "version '7\\x0a8'");
  ExpectImportRefused({disk, disk, "", "console=ttyS0\rroot=/dev/vda", "os", ""},
                      "kernel command line 'console=ttyS0\\x0droot=/dev/vda' contains control");
}

TEST_F(ImageStoreTest, GcSparesTheStagingOfAnImportInProgress) {
  const std::string disk = OsDisk();
  runner_.Hold("qemu-img");  // the import has copied the disk and checks it now
  Result<ImageInfo> imported = Internal("not run");
  std::thread import([&] { imported = store_->ImportOs({disk, "", "", "", "os", ""}, nullptr); });
  runner_.AwaitEntered();
  auto gc = store_->Gc(/*unused=*/false);
  runner_.Release();
  import.join();
  ASSERT_TRUE(gc.ok());
  EXPECT_TRUE((*gc)["removed"].empty()) << gc->dump();
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_TRUE(fs::exists(imported->disk_path()));
}

}  // namespace
}  // namespace vdswap
