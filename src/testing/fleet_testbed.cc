#include "testing/fleet_testbed.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "image/app_image_builder.h"
#include "image/os_image_importer.h"

namespace vdswap::testing {

namespace {

std::string AppTree(const std::string& root, const std::string& version) {
  std::string dir = root + "/app-" + version;
  std::filesystem::create_directories(dir + "/bin");
  EXPECT_TRUE(WriteFileAtomic(dir + "/vdswap.json",
                              R"({"name":"web","version":")" + version +
                                  R"(","start":["/bin/web"],"requires":{"os_id":"testos"}})")
                  .ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "/bin/web", "#!/bin/sh\n", 0755).ok());
  return dir;
}

std::string OsDisk(SubprocessRunner& runner, const std::string& root, const std::string& v) {
  std::string tree = root + "/os-" + v;
  std::filesystem::create_directories(tree + "/etc");
  EXPECT_TRUE(WriteFileAtomic(tree + "/etc/os-release", "ID=testos\nVERSION_ID=" + v + "\n").ok());
  std::string disk = root + "/os-" + v + ".img";
  EXPECT_TRUE(runner.RunOk({"mkfs.ext4", "-q", "-F", "-d", tree, disk, "4M"}).ok());
  return disk;
}

}  // namespace

TestbedParts::TestbedParts()
    : dir(std::make_unique<TempDir>(std::move(TempDir::Create("/tmp", "fleet")).value())),
      db(std::move(Db::Open(":memory:")).value()) {}

FleetTestbed::FleetTestbed()
    : Fleet(
          *db, hv, clock,
          {dir->path(), "fake:///", Swapper::Options{.health_timeout = std::chrono::seconds(1)}}) {
  EXPECT_TRUE(hosts.Add("h1", "fake:///", "p").ok());
  EXPECT_TRUE(hosts.Add("h2", "fake:///", "q").ok());
  for (std::string v : {"1", "2"}) {
    auto os = OsImageImporter(images, runner)
                  .Import({OsDisk(runner, dir->path(), v), "", "", "", "os", ""}, nullptr);
    EXPECT_TRUE(os.ok()) << os.status().ToString();
  }
  for (std::string v : {"1", "2", "3"}) {
    auto app = AppImageBuilder(images, runner, clock).Build({AppTree(dir->path(), v), ""}, nullptr);
    EXPECT_TRUE(app.ok()) << app.status().ToString();
  }
  EXPECT_TRUE(templates.Create("web", "os:1", "web:1", {}).ok());
  EXPECT_TRUE(templates.Update("web", "", "web:2", {}).ok());
  EXPECT_TRUE(templates.Update("web", "", "web:3", {}).ok());
  EXPECT_TRUE(templates.Update("web", "os:2", "web:2", {}).ok());
  hv.SetUnhealthyApp(AppVolume(3));
}

std::string FleetTestbed::AppVolume(int64_t version) {
  auto t = templates.Get("web:" + std::to_string(version));
  EXPECT_TRUE(t.ok());
  auto image = images.Resolve("sha256:" + t->app_digest);
  EXPECT_TRUE(image.ok());
  return ImageDistributor::DiskVolume(*image);
}

std::unique_ptr<Swapper> FleetTestbed::NewSwapper(SwapJournal& journal) {
  return std::make_unique<Swapper>(*db, vm_table, journal, locks, hosts, templates, disks, agent,
                                   hv, clock,
                                   Swapper::Options{.health_timeout = std::chrono::seconds(1)});
}

std::unique_ptr<RolloutEngine> FleetTestbed::NewRolloutEngine(Swapper& swapper) {
  return std::make_unique<RolloutEngine>(rollout_store, vm_table, templates, hosts, swapper, agent,
                                         clock);
}

void FleetTestbed::CreateVms(const std::vector<std::string>& names) {
  auto out = vms.Create(names, "web:1", "h1", nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (const auto& v : out->vms) ASSERT_EQ(v.state, VmState::kRunning) << v.name << ": " << v.error;
}

}  // namespace vdswap::testing
