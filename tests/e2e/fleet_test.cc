// The `host`, `image`, `template`, `vm` and `rollout` commands end to end through the real
// CLI and daemon on `vdswapd --hypervisor fake`: the routes, the -o json shapes and the
// exit codes of docs/api.md, without real VMs. Each test runs its own daemon on its own
// state dir.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <future>
#include <set>
#include <thread>

#include "tests/e2e/cli_harness.h"

namespace vdswap::testing {
namespace {

// Two versions of a tiny app and a small ext4 OS disk with an os-release, built once per
// process. The fake hypervisor never runs them; the image store reads their metadata.
struct FleetAssets {
  std::string app1, app2, bad_manifest, os_disk;
};

void WriteAppTree(const std::string& dir, const std::string& version) {
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  ASSERT_EQ(mkdir((dir + "/bin").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(dir + "/bin/web", "#!/bin/sh\nexec sleep infinity\n", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/vdswap.json", R"({"name": "web", "version": ")" + version +
                                                        R"(", "start": ["/bin/web"],
                                  "requires": {"os_id": "vdswap-testos"}})")
                  .ok());
}

const FleetAssets& Assets() {
  static FleetAssets* assets = [] {
    auto* a = new FleetAssets;
    auto dir = TempDir::Create("/tmp", "vdswap-fleet-assets");
    EXPECT_TRUE(dir.ok());
    std::string root = dir->Release();
    a->app1 = root + "/web-1";
    a->app2 = root + "/web-2";
    a->bad_manifest = root + "/bad";
    WriteAppTree(a->app1, "1");
    WriteAppTree(a->app2, "2");
    EXPECT_EQ(mkdir(a->bad_manifest.c_str(), 0755), 0);
    EXPECT_TRUE(WriteFileAtomic(a->bad_manifest + "/vdswap.json", "{\"name\": ").ok());

    std::string os_root = root + "/os-root";
    std::filesystem::create_directories(os_root + "/etc");
    EXPECT_TRUE(
        WriteFileAtomic(os_root + "/etc/os-release", "ID=vdswap-testos\nVERSION_ID=3\n").ok());
    a->os_disk = root + "/os.img";
    SubprocessRunner runner;
    auto mkfs = runner.RunOk({"mkfs.ext4", "-q", "-F", "-d", os_root, a->os_disk, "8M"});
    EXPECT_TRUE(mkfs.ok()) << mkfs.status().ToString();
    return a;
  }();
  return *assets;
}

class FleetE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    assets_ = &Assets();
    ASSERT_TRUE(daemon_.Start({"--hypervisor", "fake"}));
  }

  // Runs the CLI with -o json; the exit code lands in *rc.
  Json Cli(std::vector<std::string> args, int* rc) { return RunJson(daemon_, std::move(args), rc); }
  // Runs the CLI with -o json and expects exit 0.
  Json Ok(const std::vector<std::string>& args) {
    int rc = -1;
    Json j = Cli(args, &rc);
    std::string cmd;
    for (const auto& a : args) {
      cmd += a + " ";
    }
    EXPECT_EQ(rc, 0) << cmd << "printed " << j.dump();
    return j;
  }
  // Runs the CLI (table output) and returns what it printed, for the error message tests.
  CommandOutput Raw(std::vector<std::string> args,
                    std::chrono::milliseconds timeout = std::chrono::minutes(10)) {
    args.insert(args.begin(), {"--socket", daemon_.socket()});
    return RunCli(args, timeout);
  }
  // Expects `args` to fail with `exit_code` and a message on stderr containing `says`.
  void ExpectFails(const std::vector<std::string>& args, int exit_code, const std::string& says) {
    CommandOutput out = Raw(args);
    std::string cmd;
    for (const auto& a : args) {
      cmd += a + " ";
    }
    EXPECT_EQ(out.exit_code, exit_code) << cmd << "stderr: " << out.err;
    EXPECT_NE(out.err.find(says), std::string::npos) << cmd << "stderr: " << out.err;
  }

  // A host, the OS image, both app versions and template web:1 (os + app 1).
  void AddFleetBasics() {
    Ok({"host", "add", "h1", "--uri", "fake:///h1"});
    Ok({"image", "import-os", assets_->os_disk, "--name", "testos"});
    app1_digest_ = Ok({"image", "build", assets_->app1})["digest"];
    app2_digest_ = Ok({"image", "build", assets_->app2})["digest"];
    Ok({"template", "create", "web", "--os", "testos:3", "--app", "web:1"});
  }
  // Names of the VMs `vm ls` lists.
  std::set<std::string> VmNames() {
    std::set<std::string> names;
    for (const auto& vm : Ok({"vm", "ls"})) {
      names.insert(vm.value("name", ""));
    }
    return names;
  }
  // Starts a rollout and waits for its end; returns `rollout status ID --watch`.
  Json Rollout(std::vector<std::string> args, int* watch_rc) {
    args.insert(args.begin(), {"rollout", "start"});
    Json started = Ok(args);
    EXPECT_TRUE(started["id"].is_number_integer()) << started.dump();
    return Cli({"rollout", "status", std::to_string(started.value("id", 0)), "--watch", "--vms"},
               watch_rc);
  }

  const FleetAssets* assets_ = nullptr;
  DaemonProcess daemon_;
  std::string app1_digest_, app2_digest_;
};

TEST_F(FleetE2eTest, HostAddListAndRemove) {
  EXPECT_EQ(Ok({"host", "ls"}), Json::array());
  Json added = Ok({"host", "add", "h1", "--uri", "fake:///h1", "--pool", "p1"});
  EXPECT_EQ(added["name"], "h1");
  EXPECT_EQ(added["uri"], "fake:///h1");
  EXPECT_EQ(added["pool"], "p1");
  Ok({"host", "add", "h2", "--uri", "fake:///h2"});

  Json hosts = Ok({"host", "ls"});
  ASSERT_EQ(hosts.size(), 2u) << hosts.dump();
  EXPECT_EQ(hosts[0]["name"], "h1");
  EXPECT_EQ(hosts[0]["pool"], "p1");
  EXPECT_EQ(hosts[0]["vms"], 0);
  EXPECT_EQ(hosts[1]["name"], "h2");
  EXPECT_EQ(hosts[1]["pool"], "vdswap");  // the default pool

  ExpectFails({"host", "add", "h1", "--uri", "fake:///h1"}, 4, "host 'h1' exists");
  ExpectFails({"host", "add", "bad/name", "--uri", "fake:///x"}, 2, "host name 'bad/name'");
  ExpectFails({"host", "add", "h3"}, 2, "--uri");
  ExpectFails({"host", "rm", "nope"}, 3, "host 'nope' not found");

  Json removed = Ok({"host", "rm", "h2"});
  hosts = Ok({"host", "ls"});
  ASSERT_EQ(hosts.size(), 1u) << hosts.dump();
  EXPECT_EQ(hosts[0]["name"], "h1");
}

TEST_F(FleetE2eTest, HostWithVmsCannotBeRemoved) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  EXPECT_EQ(Ok({"host", "ls"})[0]["vms"], 1);
  ExpectFails({"host", "rm", "h1"}, 4, "host 'h1' still has VMs");
  Ok({"vm", "rm", "a1"});
  Ok({"host", "rm", "h1"});
  EXPECT_EQ(Ok({"host", "ls"}), Json::array());
}

TEST_F(FleetE2eTest, ImageBuildAndImportOs) {
  Json app = Ok({"image", "build", assets_->app1});
  EXPECT_EQ(app["kind"], "app");
  EXPECT_EQ(app["name"], "web");
  EXPECT_EQ(app["version"], "1");
  const std::string digest = app["digest"];
  EXPECT_EQ(digest.rfind("sha256:", 0), 0u) << digest;
  EXPECT_EQ(digest.size(), 7u + 64u);
  // The same tree is the same image.
  EXPECT_EQ(Ok({"image", "build", assets_->app1})["digest"], digest);
  EXPECT_NE(Ok({"image", "build", assets_->app2})["digest"], digest);

  Json os = Ok({"image", "import-os", assets_->os_disk, "--name", "testos"});
  EXPECT_EQ(os["kind"], "os");
  EXPECT_EQ(os["name"], "testos");
  EXPECT_EQ(os["version"], "3");  // VERSION_ID from the disk's /etc/os-release
  EXPECT_EQ(os["os_release"]["ID"], "vdswap-testos");
  EXPECT_EQ(os["format"], "raw");

  std::set<std::string> refs;
  for (const auto& image : Ok({"image", "ls"})) {
    refs.insert(image.value("name", "") + ":" + image.value("version", ""));
  }
  EXPECT_EQ(refs, (std::set<std::string>{"web:1", "web:2", "testos:3"}));

  ExpectFails({"image", "build", "/nonexistent/tree"}, 2, "'/nonexistent/tree' does not exist");
  ExpectFails({"image", "build", assets_->bad_manifest}, 2, "manifest");
  ExpectFails({"image", "import-os", assets_->os_disk, "--name", "Bad Name"}, 2, "Bad Name");
  ExpectFails({"image", "import-os", assets_->os_disk}, 2, "--name");
}

TEST_F(FleetE2eTest, TemplateCreateUpdateListAndInspect) {
  AddFleetBasics();
  Json os = Ok({"image", "inspect", "testos:3"});
  Json v1 = Ok({"template", "inspect", "web:1"});
  EXPECT_EQ(v1["ref"], "web:1");
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["app"], app1_digest_);
  EXPECT_EQ(v1["os"], os["digest"]);
  EXPECT_EQ(v1["memory_mib"], 256);  // the defaults
  EXPECT_EQ(v1["cpus"], 1);

  Json v2 = Ok({"template", "update", "web", "--app", "web:2"});
  EXPECT_EQ(v2["ref"], "web:2");
  EXPECT_EQ(v2["app"], app2_digest_);
  EXPECT_EQ(v2["os"], v1["os"]);  // what update does not name stays
  Json v3 = Ok({"template", "update", "web", "--memory", "512M"});
  EXPECT_EQ(v3["ref"], "web:3");
  EXPECT_EQ(v3["memory_mib"], 512);
  EXPECT_EQ(v3["app"], app2_digest_);

  Json all = Ok({"template", "ls"});
  ASSERT_EQ(all.size(), 3u) << all.dump();
  EXPECT_EQ(all[0]["ref"], "web:1");
  EXPECT_EQ(all[2]["ref"], "web:3");
  EXPECT_EQ(Ok({"template", "inspect", "web"})["ref"], "web:3");  // NAME is the newest
  EXPECT_EQ(Ok({"template", "inspect", "web:1"}), v1);            // old versions stay as they were

  ExpectFails({"template", "create", "web", "--os", "testos:3", "--app", "web:1"}, 4,
              "template 'web' exists");
  ExpectFails({"template", "create", "api", "--os", "testos:3", "--app", "web:9"}, 3, "web:9");
  ExpectFails({"template", "create", "api", "--os", "nope:1", "--app", "web:1"}, 3, "nope:1");
  ExpectFails({"template", "update", "nope", "--app", "web:1"}, 3, "template 'nope' not found");
  ExpectFails({"template", "inspect", "web:9"}, 3, "template 'web:9' not found");
  ExpectFails({"template", "inspect", "nope"}, 3, "template 'nope' not found");
  EXPECT_EQ(Ok({"template", "ls"}).size(), 3u);  // failed commands made no versions
}

TEST_F(FleetE2eTest, VmCreateByNamesAndByCountWithPrefix) {
  AddFleetBasics();
  Json named = Ok({"vm", "create", "a1", "a2", "--template", "web:1"});
  EXPECT_EQ(named["template"], "web:1");
  EXPECT_EQ(named["host"], "h1");
  ASSERT_EQ(named["vms"].size(), 2u) << named.dump();
  for (const auto& vm : named["vms"]) {
    EXPECT_EQ(vm["state"], "running") << vm.dump();
    EXPECT_EQ(vm["error"], "");
  }
  Json counted = Ok({"vm", "create", "--count", "3", "--prefix", "b", "--template", "web"});
  std::set<std::string> created;
  for (const auto& vm : counted["vms"]) {
    created.insert(vm.value("name", ""));
  }
  EXPECT_EQ(created, (std::set<std::string>{"b-1", "b-2", "b-3"}));

  EXPECT_EQ(VmNames(), (std::set<std::string>{"a1", "a2", "b-1", "b-2", "b-3"}));
  for (const auto& vm : Ok({"vm", "ls"})) {
    EXPECT_EQ(vm["template"], "web:1") << vm.dump();
    EXPECT_EQ(vm["host"], "h1");
    EXPECT_EQ(vm["state"], "running");
  }
}

TEST_F(FleetE2eTest, VmCreateRejectsBadInputAndCreatesNothing) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  ExpectFails({"vm", "create", "new1", "a1", "--template", "web:1"}, 4, "vm 'a1' exists");
  ExpectFails({"vm", "create", "BAD_name", "--template", "web:1"}, 2, "'BAD_name' is not valid");
  ExpectFails({"vm", "create", "x1", "--template", "nope:1"}, 3, "template 'nope:1' not found");
  ExpectFails({"vm", "create", "x1", "--template", "web:1", "--host", "nope"}, 3,
              "host 'nope' not found");
  ExpectFails({"vm", "create", "--count", "2", "--template", "web:1"}, 2, "--prefix");
  ExpectFails({"vm", "create", "--template", "web:1"}, 2, "--count");
  ExpectFails({"vm", "create", "x1"}, 2, "--template");
  EXPECT_EQ(VmNames(), std::set<std::string>{"a1"});  // not even new1 of the first failure
}

TEST_F(FleetE2eTest, VmInspectHasTheContractFields) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  Json vm = Ok({"vm", "inspect", "a1"});
  EXPECT_EQ(vm["name"], "a1");
  EXPECT_EQ(vm["template"], "web:1");
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["host"], "h1");
  EXPECT_EQ(vm["app"]["name"], "web");
  EXPECT_EQ(vm["app"]["version"], "1");
  EXPECT_EQ(vm["app"]["digest"], app1_digest_);
  EXPECT_EQ(vm["app"]["healthy"], true);
  EXPECT_TRUE(vm["app"]["health_output"].is_string()) << vm.dump();
  ASSERT_TRUE(vm["boot_id"].is_string()) << vm.dump();
  EXPECT_FALSE(vm["boot_id"].get<std::string>().empty());
  ExpectFails({"vm", "inspect", "nope"}, 3, "vm 'nope' not found");
}

TEST_F(FleetE2eTest, VmStopAndStartReboots) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "a2", "--template", "web:1"});
  const std::string boot_id = Ok({"vm", "inspect", "a1"})["boot_id"];

  Json stopped = Ok({"vm", "stop", "a1"});
  EXPECT_EQ(stopped["name"], "a1");
  EXPECT_EQ(stopped["state"], "stopped");
  Json vm = Ok({"vm", "inspect", "a1"});
  EXPECT_EQ(vm["state"], "stopped");
  EXPECT_EQ(vm["running"], false);
  EXPECT_NE(vm["app"]["healthy"], true) << vm.dump();          // absent today for a stopped VM
  EXPECT_EQ(Ok({"vm", "inspect", "a2"})["state"], "running");  // only the named VM

  Json started = Ok({"vm", "start", "a1"});
  EXPECT_EQ(started["state"], "running");
  vm = Ok({"vm", "inspect", "a1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["running"], true);
  EXPECT_EQ(vm["app"]["healthy"], true);
  EXPECT_NE(vm["boot_id"], boot_id) << "a start is a new boot";

  ExpectFails({"vm", "stop", "nope"}, 3, "vm 'nope' not found");
  ExpectFails({"vm", "start", "nope"}, 3, "vm 'nope' not found");
}

TEST_F(FleetE2eTest, VmRmWithAndWithoutData) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "a2", "a3", "--template", "web:1"});
  Json kept = Ok({"vm", "rm", "a1"});
  EXPECT_EQ(kept["removed"], "a1");
  EXPECT_EQ(kept["data_deleted"], false);
  Json deleted = Ok({"vm", "rm", "a2", "--delete-data"});
  EXPECT_EQ(deleted["removed"], "a2");
  EXPECT_EQ(deleted["data_deleted"], true);
  EXPECT_EQ(VmNames(), std::set<std::string>{"a3"});
  ExpectFails({"vm", "inspect", "a1"}, 3, "vm 'a1' not found");
  ExpectFails({"vm", "rm", "a1"}, 3, "vm 'a1' not found");
  // The name is free again.
  Ok({"vm", "create", "a1", "--template", "web:1"});
  EXPECT_EQ(Ok({"vm", "inspect", "a1"})["state"], "running");
}

TEST_F(FleetE2eTest, RolloutWithVmsMovesExactlyThoseVms) {
  AddFleetBasics();
  Ok({"vm", "create", "--count", "3", "--prefix", "w", "--template", "web:1"});
  std::map<std::string, std::string> boot_ids;
  for (const char* name : {"w-1", "w-2", "w-3"}) {
    boot_ids[name] = Ok({"vm", "inspect", name})["boot_id"];
  }
  Ok({"template", "update", "web", "--app", "web:2"});

  int rc = -1;
  Json r = Rollout({"--to", "web:2", "--vms", "w-1,w-3"}, &rc);
  EXPECT_EQ(rc, 0) << r.dump();
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(r["to"], "web:2");
  ASSERT_EQ(r["vms"].size(), 2u) << r.dump();
  std::set<std::string> moved;
  for (const auto& v : r["vms"]) {
    moved.insert(v.value("vm", ""));
    EXPECT_EQ(v["state"], "done") << v.dump();
    EXPECT_EQ(v["from"], "web:1");
    EXPECT_EQ(v["to"], "web:2");
    EXPECT_TRUE(v["downtime_ms"].is_number()) << v.dump();
    EXPECT_EQ(v["error"], "");
  }
  EXPECT_EQ(moved, (std::set<std::string>{"w-1", "w-3"}));
  for (const char* key : {"p50", "p95", "max"}) {
    EXPECT_TRUE(r["downtime_ms"][key].is_number()) << r.dump();
  }

  for (const char* name : {"w-1", "w-3"}) {
    Json vm = Ok({"vm", "inspect", name});
    EXPECT_EQ(vm["template"], "web:2") << vm.dump();
    EXPECT_EQ(vm["state"], "running");
    EXPECT_EQ(vm["app"]["version"], "2");
    EXPECT_EQ(vm["app"]["digest"], app2_digest_);
    EXPECT_EQ(vm["app"]["healthy"], true);
    EXPECT_EQ(vm["boot_id"], boot_ids[name]) << "an app swap must not reboot";
  }
  Json untouched = Ok({"vm", "inspect", "w-2"});
  EXPECT_EQ(untouched["template"], "web:1");
  EXPECT_EQ(untouched["app"]["version"], "1");

  Json listed = Ok({"rollout", "ls"});
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["id"], r["id"]);
  EXPECT_EQ(listed[0]["state"], "succeeded");
  EXPECT_EQ(listed[0]["to"], "web:2");
  // Status without --watch reads the same finished rollout.
  Json again = Ok({"rollout", "status", std::to_string(r.value("id", 0))});
  EXPECT_EQ(again["state"], "succeeded");
  EXPECT_FALSE(again.contains("vms")) << "without --vms status is a summary";
  EXPECT_EQ(again["counts"], (Json{{"done", 2}}));
  EXPECT_EQ(Ok({"rollout", "status", std::to_string(r.value("id", 0)), "--vms"})["vms"].size(), 2u);
}

TEST_F(FleetE2eTest, RolloutWithoutVmsMovesEveryVmOfTheTemplate) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "a2", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  int rc = -1;
  Json r = Rollout({"--to", "web:2"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(r["vms"].size(), 2u);
  for (const auto& vm : Ok({"vm", "ls"})) {
    EXPECT_EQ(vm["template"], "web:2") << vm.dump();
  }

  // And back: a rollout to the older version is a rollout like any other.
  r = Rollout({"--to", "web:1", "--vms", "a2"}, &rc);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  Json vm = Ok({"vm", "inspect", "a2"});
  EXPECT_EQ(vm["template"], "web:1");
  EXPECT_EQ(vm["app"]["version"], "1");
  EXPECT_EQ(Ok({"rollout", "ls"}).size(), 2u);
}

TEST_F(FleetE2eTest, RolloutOfAStoppedVmFailsAndLeavesItAsItWas) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  Ok({"vm", "stop", "a1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  int rc = -1;
  Json r = Rollout({"--to", "web:2", "--vms", "a1"}, &rc);
  EXPECT_EQ(rc, 1) << "--watch exits 1 when the rollout does not succeed";
  EXPECT_EQ(r["state"], "failed") << r.dump();
  ASSERT_EQ(r["vms"].size(), 1u) << r.dump();
  EXPECT_NE(r["vms"][0]["error"].get<std::string>().find("not running"), std::string::npos)
      << r.dump();
  Json vm = Ok({"vm", "inspect", "a1"});
  EXPECT_EQ(vm["template"], "web:1");
  EXPECT_EQ(vm["state"], "stopped");
}

TEST_F(FleetE2eTest, RolloutErrorsAndExitCodes) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  ExpectFails({"rollout", "start", "--to", "web:9"}, 3, "template 'web:9' not found");
  ExpectFails({"rollout", "start", "--to", "nope:1"}, 3, "template 'nope:1' not found");
  ExpectFails({"rollout", "start", "--to", "web:1", "--vms", "nope"}, 3, "vm 'nope' not found");
  ExpectFails({"rollout", "start"}, 2, "--to");
  ExpectFails({"rollout", "status", "99"}, 3, "rollout 99 not found");
  ExpectFails({"rollout", "status", "abc"}, 2, "'abc' is not a number");
  EXPECT_EQ(Ok({"rollout", "ls"}), Json::array());  // nothing was started
  EXPECT_EQ(Ok({"vm", "inspect", "a1"})["template"], "web:1");
}

// The fields docs/api.md promises for `rollout status --vms`, `vm inspect` and `host ls`.
TEST_F(FleetE2eTest, RolloutStatusAndVmInspectHaveEveryContractField) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  int rc = -1;
  Json r = Rollout({"--to", "web:2", "--vms", "a1"}, &rc);
  Json st = Ok({"rollout", "status", std::to_string(r.value("id", 0)), "--vms"});
  EXPECT_TRUE(st.contains("policy")) << st.dump();
  EXPECT_TRUE(st["counts"].is_object()) << st.dump();
  EXPECT_EQ(st["vms"].size(), 1u) << st.dump();
  Json first = st["vms"].is_array() && !st["vms"].empty() ? st["vms"][0] : Json::object();
  for (const char* key : {"vm", "host", "state", "from", "to", "downtime_ms", "started_at_ms",
                          "finished_at_ms", "error"}) {
    EXPECT_TRUE(first.contains(key)) << key << " missing: " << st.dump();
  }
  Json vm = Ok({"vm", "inspect", "a1"});
  for (const char* key : {"template", "state", "app", "interfaces", "boot_id"}) {
    EXPECT_TRUE(vm.contains(key)) << key << " missing: " << vm.dump();
  }
  for (const char* key : {"name", "version", "digest", "healthy", "health_output"}) {
    EXPECT_TRUE(vm["app"].contains(key)) << "app." << key << " missing: " << vm.dump();
  }
  for (const char* key : {"network", "mac", "addresses"}) {
    EXPECT_TRUE(vm["interfaces"][0].contains(key)) << key << " missing: " << vm.dump();
  }
  for (const char* key : {"id", "version", "image_version"}) {
    EXPECT_TRUE(vm["os"].contains(key)) << "os." << key << " missing: " << vm.dump();
  }
  EXPECT_FALSE(vm["os"].value("id", "").empty()) << "the guest's OS, as its agent reports it";
  Json hosts = Ok({"host", "ls"});
  EXPECT_TRUE(hosts[0]["bad_image_volumes"].is_array()) << hosts.dump();
  Json failed = Cli({"vm", "inspect", "nope"}, &rc);
  EXPECT_EQ(rc, 3);
  EXPECT_TRUE(failed.is_object()) << "-o json prints one JSON document for every command";
  EXPECT_EQ(failed["error"]["code"], "not_found") << failed.dump();
}

TEST_F(FleetE2eTest, RolloutPolicyFlagsArePersistedAndShown) {
  AddFleetBasics();
  Ok({"vm", "create", "--count", "4", "--prefix", "w", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  Json started =
      Ok({"rollout",        "start", "--to",           "web:2", "--batch",       "50%",
          "--max-per-host", "3",     "--canary",       "1",     "--canary-wait", "500ms",
          "--min-ready",    "0s",    "--max-failures", "1",     "--on-failure",  "rollback",
          "--max-action",   "app"});
  const std::string id = std::to_string(started.value("id", 0));
  int rc = -1;
  Json r = Cli({"rollout", "status", id, "--watch"}, &rc);
  EXPECT_EQ(rc, 0) << r.dump();
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  EXPECT_EQ(r["policy"]["batch"], "50%");
  EXPECT_EQ(r["policy"]["max_per_host"], 3);
  EXPECT_EQ(r["policy"]["canary"], "1");
  EXPECT_EQ(r["policy"]["canary_wait"], "500ms");
  EXPECT_EQ(r["policy"]["max_failures"], "1");
  EXPECT_EQ(r["policy"]["on_failure"], "rollback");
  EXPECT_EQ(r["policy"]["max_action"], "app");
  EXPECT_EQ(r["counts"], (Json{{"done", 4}}));
  EXPECT_FALSE(r.contains("vms"));
  Json with_vms = Ok({"rollout", "status", id, "--vms"});
  ASSERT_EQ(with_vms["vms"].size(), 4u);
  EXPECT_EQ(with_vms["vms"][0]["host"], "h1");
  EXPECT_TRUE(with_vms["vms"][0]["started_at_ms"].is_number()) << with_vms.dump();

  ExpectFails({"rollout", "start", "--to", "web:1", "--batch", "0"}, 2, "--batch");
  ExpectFails({"rollout", "start", "--to", "web:1", "--canary-wait", "5x"}, 2, "--canary-wait");
  ExpectFails({"rollout", "start", "--to", "web:1", "--on-failure", "retry"}, 2, "--on-failure");
}

TEST_F(FleetE2eTest, RolloutCanaryPauseResumeAbortAndUndo) {
  AddFleetBasics();
  Ok({"vm", "create", "--count", "3", "--prefix", "w", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  const std::string id =
      std::to_string(Ok({"rollout", "start", "--to", "web:2", "--canary", "1"}).value("id", 0));
  int rc = -1;
  Json paused = Cli({"rollout", "status", id, "--watch"}, &rc);
  EXPECT_EQ(rc, 1) << "--watch exits 1 when the rollout does not succeed";
  EXPECT_EQ(paused["state"], "paused") << paused.dump();
  EXPECT_EQ(paused["counts"], (Json{{"done", 1}, {"pending", 2}}));
  ExpectFails({"rollout", "start", "--to", "web:2", "--vms", "w-2"}, 4, "active rollout " + id);
  ExpectFails({"rollout", "pause", id}, 4, "not running");
  ExpectFails({"rollout", "undo", id}, 4, "abort it first");
  Ok({"rollout", "resume", id});
  Json done = Cli({"rollout", "status", id, "--watch"}, &rc);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  ExpectFails({"rollout", "abort", id}, 4, "only a running or paused rollout");
  ExpectFails({"rollout", "resume", "99"}, 3, "rollout 99 not found");

  Json undo = Ok({"rollout", "undo", id});
  const std::string undo_id = std::to_string(undo.value("id", 0));
  EXPECT_NE(undo_id, id);
  EXPECT_EQ(Cli({"rollout", "status", undo_id, "--watch"}, &rc)["state"], "succeeded");
  for (const auto& vm : Ok({"vm", "ls"})) EXPECT_EQ(vm["template"], "web:1") << vm.dump();

  // abort: a paused rollout ends with its pending VMs skipped.
  const std::string third =
      std::to_string(Ok({"rollout", "start", "--to", "web:2", "--canary", "1"}).value("id", 0));
  Cli({"rollout", "status", third, "--watch"}, &rc);
  Json aborted = Ok({"rollout", "abort", third});
  EXPECT_EQ(aborted["state"], "aborted") << aborted.dump();
  EXPECT_EQ(aborted["counts"], (Json{{"done", 1}, {"skipped", 2}}));
}

TEST_F(FleetE2eTest, FakeLatencyMakesEveryCallTakeThatLong) {
  ASSERT_TRUE(daemon_.Start({"--hypervisor", "fake", "--fake-latency", "20"}));
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  int rc = -1;
  Json r = Rollout({"--to", "web:2"}, &rc);
  EXPECT_EQ(r["state"], "succeeded") << r.dump();
  // stop, detach, attach, start: four calls of 20 ms at least between start and end.
  const Json& vm = r["vms"][0];
  EXPECT_GE(vm["finished_at_ms"].get<int64_t>() - vm["started_at_ms"].get<int64_t>(), 80)
      << r.dump();
  DaemonProcess refused;
  EXPECT_FALSE(refused.Start({"--fake-latency", "20"})) << "--fake-latency needs the fake";
}

// kill -9 of vdswapd: a paused rollout stays paused with its counts. (The fake
// hypervisor's VMs live in the daemon's memory and do not survive it, so a running
// rollout's resume is tested on the engine (rollout_engine_test) and on real VMs
// (integration).)
TEST_F(FleetE2eTest, KilledDaemonKeepsAPausedRolloutPaused) {
  AddFleetBasics();
  Ok({"vm", "create", "--count", "2", "--prefix", "w", "--template", "web:1"});
  Ok({"template", "update", "web", "--app", "web:2"});
  const std::string paused =
      std::to_string(Ok({"rollout", "start", "--to", "web:2", "--canary", "1"}).value("id", 0));
  int rc = -1;
  EXPECT_EQ(Cli({"rollout", "status", paused, "--watch"}, &rc)["state"], "paused");
  daemon_.Kill();
  ASSERT_TRUE(daemon_.Restart());
  Json p = Ok({"rollout", "status", paused});
  EXPECT_EQ(p["state"], "paused") << p.dump();
  EXPECT_EQ(p["counts"], (Json{{"done", 1}, {"pending", 1}})) << p.dump();
  EXPECT_EQ(p["policy"]["canary"], "1") << p.dump();
}

TEST_F(FleetE2eTest, VmCreateTakesAtMost1000VmsPerRequest) {
  AddFleetBasics();
  ExpectFails({"vm", "create", "--count", "1001", "--prefix", "x", "--template", "web:1"}, 2,
              "1000");
  std::vector<std::string> args = {"vm", "create", "--template", "web:1"};
  for (int i = 0; i < 1001; ++i) args.push_back("n" + std::to_string(i));
  ExpectFails(args, 2, "at most 1000 VMs per request");
  EXPECT_TRUE(VmNames().empty());
}

// A client that goes away cancels its `vm create`: the VMs already started are finished,
// no further one is started.
TEST_F(FleetE2eTest, KilledClientStopsItsVmCreate) {
  ASSERT_TRUE(daemon_.Start({"--hypervisor", "fake", "--fake-latency", "20"}));
  AddFleetBasics();
  // Killed by its timeout, long before 1000 VMs at 20 ms a call.
  CommandOutput killed =
      Raw({"vm", "create", "--count", "1000", "--prefix", "c", "--template", "web:1"},
          std::chrono::seconds(2));
  EXPECT_NE(killed.exit_code, 0);
  // The VMs in flight finish within a few calls; then the count must stay put.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Json first = Ok({"vm", "ls"});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Json second = Ok({"vm", "ls"});
  EXPECT_EQ(first.size(), second.size()) << "vm create went on after its client was killed";
  EXPECT_LT(second.size(), 100U);
  for (const auto& vm : second) EXPECT_EQ(vm["state"], "running") << vm.dump();
}

// SIGTERM during a big create: the daemon stops at the next VM boundary, within seconds,
// and every VM it made is complete.
TEST_F(FleetE2eTest, SigtermDuringABigCreateExitsPromptly) {
  ASSERT_TRUE(daemon_.Start({"--hypervisor", "fake", "--fake-latency", "20"}));
  AddFleetBasics();
  auto create = std::async(std::launch::async, [this] {
    return Raw({"vm", "create", "--count", "1000", "--prefix", "t", "--template", "web:1"});
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Ok({"vm", "ls"}).size() < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon_.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(create.get().exit_code, 0);
  ASSERT_TRUE(daemon_.Restart());
  Json vms = Ok({"vm", "ls"});
  EXPECT_GE(vms.size(), 8U);
  EXPECT_LT(vms.size(), 1000U);
  for (const auto& vm : vms) EXPECT_EQ(vm["state"], "running") << vm.dump();
}

TEST_F(FleetE2eTest, TableOutputByDefault) {
  AddFleetBasics();
  Ok({"vm", "create", "a1", "--template", "web:1"});
  CommandOutput table = Raw({"vm", "ls"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("a1"), std::string::npos) << table.out;
  EXPECT_FALSE(ParseJson(table.out, "table").ok()) << "-o table is not JSON: " << table.out;
}

TEST_F(FleetE2eTest, VmsGetNicsWithMacsAndAddresses) {
  AddFleetBasics();
  EXPECT_EQ(Ok({"template", "inspect", "web"})["networks"], Json::array({"default"}));
  Ok({"vm", "create", "n1", "--template", "web:1"});
  Json vm = Ok({"vm", "inspect", "n1"});
  ASSERT_EQ(vm["interfaces"].size(), 1u) << vm.dump();
  const Json& nic = vm["interfaces"][0];
  EXPECT_EQ(nic["network"], "default");
  EXPECT_EQ(nic.value("mac", "").rfind("52:54:00:", 0), 0u) << nic.dump();
  ASSERT_EQ(nic["addresses"].size(), 1u) << nic.dump();
  const std::string address = nic["addresses"][0];
  EXPECT_EQ(address.rfind("192.168.122.", 0), 0u);
  EXPECT_EQ(Ok({"vm", "ls"})[0]["address"], address);

  Ok({"template", "create", "batch", "--os", "testos:3", "--app", "web:1", "--network", "none"});
  Ok({"vm", "create", "b1", "--template", "batch"});
  EXPECT_EQ(Ok({"vm", "inspect", "b1"})["interfaces"], Json::array());
  ExpectFails({"template", "create", "x", "--os", "testos:3", "--app", "web:1", "--network", "none",
               "--network", "default"},
              2, "--network none cannot go with other networks");
}

TEST_F(FleetE2eTest, VmCreateOnAMissingNetworkFailsBeforeAnythingIsMade) {
  AddFleetBasics();
  Ok({"template", "create", "db", "--os", "testos:3", "--app", "web:1", "--network", "backend"});
  ExpectFails({"vm", "create", "d1", "--template", "db"}, 4,
              "network 'backend' is not defined on host 'h1'");
  EXPECT_EQ(VmNames(), std::set<std::string>{});
}

TEST_F(FleetE2eTest, VmConsoleShowsTheGuestConsole) {
  AddFleetBasics();
  Ok({"vm", "create", "c1", "--template", "web:1"});
  Json console = Ok({"vm", "console", "c1"});
  EXPECT_NE(console.value("console", "").find("boot 1"), std::string::npos) << console.dump();
  CommandOutput raw = Raw({"vm", "console", "c1", "--bytes", "7"});
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.out, "boot 1\n");
  ExpectFails({"vm", "console", "nope"}, 3, "vm 'nope' not found");
  ExpectFails({"vm", "console", "c1", "--bytes", "0"}, 2, "bytes must be");
}

TEST_F(FleetE2eTest, HostUrisThatCouldRunCommandsAreRefused) {
  ExpectFails({"host", "add", "evil", "--uri", "qemu+ext:///system?command=/bin/false"}, 2,
              "transport 'ext' is not allowed");
  ExpectFails({"host", "add", "evil", "--uri", "qemu+ssh://h/system?netcat=/tmp/x"}, 2,
              "parameter 'netcat' is not allowed");
  EXPECT_EQ(Ok({"host", "ls"}), Json::array());
}

TEST_F(FleetE2eTest, ASecondDaemonOnTheSameStateDirExits4) {
  SubprocessRunner runner;
  RunOptions opts;
  opts.timeout = std::chrono::seconds(30);
  auto run = runner.Run({VDSWAPD_BIN, "--hypervisor", "fake", "--state-dir", daemon_.state_dir(),
                         "--socket", daemon_.state_dir() + "/second.sock"},
                        opts);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const CommandOutput& second = *run;
  EXPECT_EQ(second.exit_code, 4) << second.err;
  EXPECT_NE(second.err.find("is in use by another process (pid "), std::string::npos) << second.err;
  Ok({"status"});  // the first one still serves
}

// kill -9 of vdswapd in the middle of `vm create --count N`: after the restart no VM is
// left in state creating, and the names whose create was cut short can be created again.
TEST_F(FleetE2eTest, VmsBeingCreatedWhenTheDaemonDiesAreSettledAtRestart) {
  ASSERT_TRUE(daemon_.Start({"--hypervisor", "fake", "--fake-latency", "40"}));
  AddFleetBasics();
  constexpr int kCount = 24;
  std::thread create([this] {
    RunCli({"--socket", daemon_.socket(), "vm", "create", "--count", std::to_string(kCount),
            "--prefix", "c", "--template", "web:1"});
  });
  // Kill while some VMs are in state creating (polled, with a deadline).
  bool saw_creating = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!saw_creating && std::chrono::steady_clock::now() < deadline) {
    int rc = -1;
    for (const auto& vm : Cli({"vm", "ls"}, &rc)) {
      saw_creating = saw_creating || vm.value("state", "") == "creating";
    }
  }
  daemon_.Kill();
  create.join();
  ASSERT_TRUE(saw_creating) << "no VM was seen in state creating";
  ASSERT_TRUE(daemon_.Restart());

  std::set<std::string> left;
  for (const auto& vm : Ok({"vm", "ls"})) {
    EXPECT_NE(vm.value("state", ""), "creating") << vm.dump();
    left.insert(vm.value("name", ""));
  }
  std::vector<std::string> again = {"vm", "create", "--template", "web:1"};
  for (int i = 1; i <= kCount; ++i) {
    const std::string name = "c-" + std::to_string(i);
    if (!left.count(name)) again.push_back(name);
  }
  ASSERT_GT(again.size(), 4u) << "the kill cut no create short";
  Json created = Ok(again);
  for (const auto& vm : created["vms"]) EXPECT_EQ(vm["state"], "running") << vm.dump();
}

TEST_F(FleetE2eTest, ImportOsReadsOnlyRegularLocalFiles) {
  ExpectFails({"image", "import-os", "/dev/zero", "--name", "os"}, 2, "under /dev");
  ExpectFails({"image", "import-os", assets_->os_disk, "--name", "os", "--kernel", "/proc/cpuinfo"},
              2, "kernel '/proc/cpuinfo' is under /proc");
  ExpectFails({"image", "import-os", "/etc", "--name", "os"}, 2, "not a regular file");
  ExpectFails({"image", "import-os", "/etc/hostname", "--name", "os"}, 2, "not a disk image");
  ExpectFails({"image", "import-os", assets_->os_disk, "--name", "os", "--cmdline", "a\nb"}, 2,
              "kernel command line 'a\\x0ab' contains control characters");
  Ok({"image", "import-os", assets_->os_disk, "--name", "testos"});
  ExpectFails({"image", "import-os", assets_->os_disk, "--name", "other"}, 4,
              "these bytes are already image 'testos:3'");
  EXPECT_TRUE(Ok({"image", "ls"}).size() == 1);
}

TEST_F(FleetE2eTest, TemplateCpusMustBeAWholeNumberFrom1) {
  AddFleetBasics();
  for (const char* bad : {"-2", "0", "1.5", "257"}) {
    CommandOutput out =
        Raw({"template", "create", "t", "--os", "testos:3", "--app", "web:1", "--cpus", bad});
    EXPECT_EQ(out.exit_code, 2) << bad << ": " << out.err;
    EXPECT_NE(out.err.find("--cpus"), std::string::npos) << out.err;
  }
  int rc = -1;
  Cli({"template", "ls"}, &rc);
  EXPECT_EQ(rc, 0);
}

TEST_F(FleetE2eTest, AWorldWritableStateDirIsRefusedAndAWideOneNarrowed) {
  ASSERT_EQ(daemon_.Stop(), 0);
  ASSERT_EQ(chmod(daemon_.state_dir().c_str(), 0777), 0);
  EXPECT_FALSE(daemon_.Restart()) << "a world-writable state dir is refused";
  ASSERT_EQ(chmod(daemon_.state_dir().c_str(), 0775), 0);
  ASSERT_TRUE(daemon_.Restart());
  struct stat st {};
  ASSERT_EQ(stat(daemon_.state_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

}  // namespace
}  // namespace vdswap::testing
