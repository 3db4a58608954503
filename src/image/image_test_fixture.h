#pragma once

// Test-only: the fixture the image module's tests share (image_store_test.cc,
// app_image_builder_test.cc, os_image_importer_test.cc). Never linked into a product.

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/command_runner.h"
#include "core/files.h"
#include "image/app_image_builder.h"
#include "image/image_store.h"
#include "image/os_image_importer.h"
#include "store/db.h"

namespace vdswap::testing {

inline constexpr char kHelloManifest[] =
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

// A store in a fresh state dir with an in-memory database, and the builder and importer
// that record into it (on a FakeClock, so builds report no progress).
class ImageFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::Create("/tmp", "imgstore");
    ASSERT_TRUE(d.ok());
    dir_ = std::make_unique<TempDir>(std::move(*d));
    state_ = dir_->path() + "/state";
    std::filesystem::create_directories(state_);
    auto db = Db::Open(":memory:");
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    store_ = std::make_unique<ImageStore>(*db_, state_);
    builder_ = std::make_unique<AppImageBuilder>(*store_, runner_, clock_);
    importer_ = std::make_unique<OsImageImporter>(*store_, runner_);
  }

  // A small app tree with a manifest and an executable.
  std::string MakeTree(const std::string& name, const std::string& payload) {
    std::string root = dir_->path() + "/" + name;
    std::filesystem::create_directories(root + "/bin");
    EXPECT_TRUE(WriteFileAtomic(root + "/vdswap.json", kHelloManifest).ok());
    EXPECT_TRUE(
        WriteFileAtomic(root + "/bin/hello", "#!/bin/sh\necho " + payload + "\n", 0755).ok());
    return root;
  }

  // An 8 MiB ext4 OS disk with an os-release.
  std::string OsDisk() {
    std::string root = dir_->path() + "/osroot";
    std::filesystem::create_directories(root + "/etc");
    EXPECT_TRUE(WriteFileAtomic(root + "/etc/os-release", "ID=vdswap-testos\nVERSION_ID=7\n").ok());
    std::string disk = dir_->path() + "/os.img";
    EXPECT_TRUE(runner_.RunOk({"mkfs.ext4", "-q", "-F", "-d", root, disk, "8M"}).ok());
    return disk;
  }

  std::set<std::string> StateFiles() {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(state_)) {
      out.insert(e.path());
    }
    return out;
  }

  Result<ImageInfo> Build(const std::string& source, const std::string& name = "") {
    return builder_->Build({source, name}, nullptr);
  }

  HoldingRunner runner_;
  FakeClock clock_;
  std::unique_ptr<TempDir> dir_;
  std::string state_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<ImageStore> store_;
  std::unique_ptr<AppImageBuilder> builder_;
  std::unique_ptr<OsImageImporter> importer_;
};

}  // namespace vdswap::testing
