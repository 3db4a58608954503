// Hosts on real libvirt: the same libvirtd registered twice with distinct pools and once
// through its loopback TCP listener (qemu+tcp://, the remote protocol). Images go to each
// host exactly once; overlays have the right backing chain; a VM on the remote URI boots
// and its agent answers through the remote channel.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fleet/host_registry.h"
#include "fleet/image_distributor.h"
#include "image/app_image_builder.h"
#include "image/image_store.h"
#include "image/os_image_importer.h"
#include "libvirt/domain_xml.h"
#include "libvirt/libvirt_hypervisor.h"
#include "tests/integration/testbed.h"

namespace vdswap::testing {
namespace {

using std::chrono::seconds;

// Delegates to the real driver and counts the bytes each host received.
class CountingHypervisor : public LibvirtHypervisor {
 public:
  CountingHypervisor() : LibvirtHypervisor(Accel::kTcg) {}
  Result<uint64_t> UploadVolume(const HostRef& host, const std::string& volume,
                                const std::string& local, const ProgressFn& progress) override {
    auto n = LibvirtHypervisor::UploadVolume(host, volume, local, progress);
    if (n.ok()) {
      std::lock_guard lock(mu_);
      bytes_[host.name] += *n;
    }
    return n;
  }
  uint64_t Bytes(const std::string& host) {
    std::lock_guard lock(mu_);
    return bytes_[host];
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> bytes_;
};

constexpr char kTcpUri[] = "qemu+tcp://127.0.0.1/system";

bool Answers(const std::string& uri) {
  SubprocessRunner runner;
  auto probe = runner.Run({"virsh", "-c", uri, "version"}, {});
  return probe.ok() && probe->exit_code == 0;
}

// Replaces the libvirtd of this root (the pid in its pid file, not every libvirtd the
// kernel can see) by `libvirtd -d ARGS` and waits until it answers on `uri`. Only one
// libvirtd can run per machine, so the running one is stopped first.
void RestartLibvirtd(const std::vector<std::string>& args, const std::string& uri) {
  auto pid_text = ReadFile("/run/libvirtd.pid");
  ASSERT_TRUE(pid_text.ok()) << "libvirtd was not started by scripts/services";
  pid_t pid = std::atoi(pid_text->c_str());
  ASSERT_GT(pid, 1);
  kill(pid, SIGTERM);
  for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<std::string> argv = {"libvirtd", "-d"};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessRunner runner;
  ASSERT_TRUE(runner.RunOk(argv).ok());
  for (int i = 0; i < 300; ++i) {
    if (Answers(uri)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL() << "libvirtd does not answer on " << uri;
}

class HostsTest : public ::testing::Test {
 protected:
  // libvirtd gets a TCP listener on 127.0.0.1:16509 (auth none) for the suite and loses
  // it afterwards: an unauthenticated listener must not outlive the test.
  static void SetUpTestSuite() {
    if (Answers(kTcpUri)) return;
    const std::string conf = "/tmp/vdswap-libvirtd-tcp.conf";
    ASSERT_TRUE(WriteFileAtomic(conf,
                                "listen_tls = 0\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\n"
                                "auth_tcp = \"none\"\n")
                    .ok());
    RestartLibvirtd({"--listen", "-f", conf}, kTcpUri);
    listener_added_ = true;
  }
  static void TearDownTestSuite() {
    if (!listener_added_) return;
    RestartLibvirtd({}, "qemu:///system");
    EXPECT_FALSE(Answers(kTcpUri)) << "libvirtd still listens on TCP after the suite";
    listener_added_ = false;
  }

  void SetUp() override {
    assets_ = &BuildAssets();
    dir_ = std::make_unique<TempDir>(std::move(TempDir::Create("/tmp", "hosts-it")).value());
    db_ = std::move(Db::Open(":memory:")).value();
    images_ = std::make_unique<ImageStore>(*db_, dir_->path());
    hv_ = std::make_unique<CountingHypervisor>();
    hosts_ = std::make_unique<HostRegistry>(*db_, *hv_, clock_);
    suffix_ = std::to_string(getpid());
  }
  void TearDown() override {
    if (hv_) hv_->Destroy({"tcp", kTcpUri, Pool("c")}, "vdswap-remote-" + suffix_).IgnoreError();
    for (const char* p : {"a", "b", "c"}) RemovePool({"x", "qemu:///system", Pool(p)});
  }
  std::string Pool(const std::string& p) { return "vdswap-hosts-" + p + "-" + suffix_; }
  // The test OS (direct boot) and hello-1, into the store.
  Result<ImageInfo> ImportTestOs() {
    return OsImageImporter(*images_, runner_)
        .Import({assets_->os_dir + "/os.img", assets_->os_dir + "/vmlinuz",
                 assets_->os_dir + "/initrd.img", assets_->cmdline, "testos", ""},
                nullptr);
  }
  Result<ImageInfo> BuildHello() {
    return AppImageBuilder(*images_, runner_, clock_)
        .Build({assets_->hello_dir + "/hello-1", ""}, nullptr);
  }

  static inline bool listener_added_ = false;
  const Assets* assets_;
  SubprocessRunner runner_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<ImageStore> images_;
  std::unique_ptr<CountingHypervisor> hv_;
  SystemClock clock_;
  std::unique_ptr<HostRegistry> hosts_;
  std::string suffix_;
};

TEST_F(HostsTest, ImagesGoOncePerHostAcrossLocalAndRemoteUris) {
  ASSERT_TRUE(hosts_->Add("a", "qemu:///system", Pool("a")).ok());
  ASSERT_TRUE(hosts_->Add("b", "qemu:///system", Pool("b")).ok());
  auto tcp = hosts_->Add("tcp", kTcpUri, Pool("c"));
  ASSERT_TRUE(tcp.ok()) << tcp.status().ToString();
  EXPECT_EQ(hosts_->Add("a", "qemu:///system", Pool("a")).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(hosts_->Add("down", "qemu+tcp://127.0.0.1:1/system", "p").status().code(),
            Code::kUnavailable);

  auto os = ImportTestOs();
  auto app = BuildHello();
  ASSERT_TRUE(os.ok() && app.ok());
  HostImages host_images(*db_);
  SystemClock clock;
  ImageDistributor distributor(host_images, *hv_, clock);
  const uint64_t expected = os->size_bytes + app->size_bytes +
                            std::filesystem::file_size(os->kernel_path()) +
                            std::filesystem::file_size(os->initrd_path());
  for (const char* name : {"a", "b", "tcp"}) {
    HostRef host = *hosts_->Get(name);
    for (int round = 0; round < 2; ++round) {  // the second round must upload nothing
      ASSERT_TRUE(distributor.Ensure(host, *os, nullptr).ok());
      ASSERT_TRUE(distributor.Ensure(host, *app, nullptr).ok());
    }
    EXPECT_EQ(hv_->Bytes(name), expected) << "host " << name;
  }

  // A linked clone: a qcow2 overlay whose backing file is the host's OS volume.
  HostRef a = *hosts_->Get("a");
  auto os_vol = distributor.Ensure(a, *os, nullptr);
  auto overlay = hv_->CreateOverlay(a, "clone.qcow2", os_vol->disk, "raw");
  ASSERT_TRUE(overlay.ok()) << overlay.status().ToString();
  auto info = runner_.RunOk({"qemu-img", "info", "--output=json", *overlay});
  ASSERT_TRUE(info.ok());
  Json j = *ParseJson(info->out, "qemu-img info");
  EXPECT_EQ(j["format"], "qcow2");
  EXPECT_EQ(j["backing-filename"], os_vol->disk);
  EXPECT_EQ(j["backing-filename-format"], "raw");
  EXPECT_LT(j["actual-size"].get<uint64_t>(), 1u << 20);
}

TEST_F(HostsTest, VmOnTheRemoteUriBootsAndItsAgentAnswers) {
  ASSERT_TRUE(hosts_->Add("tcp", kTcpUri, Pool("c")).ok());
  HostRef host = *hosts_->Get("tcp");
  auto os = ImportTestOs();
  auto app = BuildHello();
  HostImages host_images(*db_);
  SystemClock clock;
  ImageDistributor distributor(host_images, *hv_, clock);
  auto os_on = distributor.Ensure(host, *os, nullptr);
  auto app_on = distributor.Ensure(host, *app, nullptr);
  ASSERT_TRUE(os_on.ok() && app_on.ok());
  auto overlay = hv_->CreateOverlay(host, "remote-os.qcow2", os_on->disk, "raw");
  auto data = hv_->CreateBlankVolume(host, "remote-data.qcow2", 64ull << 20);
  ASSERT_TRUE(overlay.ok() && data.ok());
  VmSpec spec;
  spec.name = "vdswap-remote-" + suffix_;
  spec.kernel = os_on->kernel;
  spec.initrd = os_on->initrd;
  spec.cmdline = assets_->cmdline;
  spec.os = {kOsSerial, *overlay, "qcow2", false};
  spec.app = {kAppSerial, app_on->disk, "raw", true};
  spec.data = {kDataSerial, *data, "qcow2", false};
  ASSERT_TRUE(hv_->DefineAndStart(host, spec).ok());
  auto hello = WaitForAgent(*hv_, host, spec.name, seconds(120));
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->os_id, "vdswap-testos");
  ASSERT_TRUE(hv_->Shutdown(host, spec.name, seconds(60)).ok());
  EXPECT_FALSE(hv_->GetState(host, spec.name)->running);
}

// A domain an administrator defined by hand (no vdswap marker) is left exactly as it was:
// vdswap refuses to define over, start, stop, undefine or hot-plug it. No TCP listener is
// needed, so this is not a HostsTest.
TEST(ForeignDomainTest, LibvirtRefusesToTouchADomainVdswapDidNotDefine) {
  const std::string name = "vdswap-foreign-" + std::to_string(getpid());
  const std::string xml_path = "/tmp/" + name + ".xml";
  ASSERT_TRUE(WriteFileAtomic(xml_path, "<domain type='qemu'><name>" + name +
                                            "</name><memory unit='MiB'>64</memory>"
                                            "<os><type arch='x86_64'>hvm</type></os></domain>\n")
                  .ok());
  SubprocessRunner runner;
  auto virsh = [&runner](std::vector<std::string> args) {
    args.insert(args.begin(), {"virsh", "-q", "-c", "qemu:///system"});
    return runner.RunOk(args);
  };
  ASSERT_TRUE(virsh({"define", xml_path}).ok());
  auto before = virsh({"dumpxml", "--inactive", name});
  ASSERT_TRUE(before.ok());

  LibvirtHypervisor hv(Accel::kTcg, "/tmp/vdswap-foreign-pool");
  const HostRef host{"local", "qemu:///system", "vdswap-foreign-" + std::to_string(getpid())};
  auto expect_refused = [&name](const Status& s, const char* call) {
    EXPECT_EQ(s.code(), Code::kFailedPrecondition) << call << ": " << s.ToString();
    EXPECT_NE(s.message().find("domain '" + name + "' exists and is not managed by vdswap"),
              std::string::npos)
        << call << ": " << s.message();
  };
  auto live = hv.GetState(host, name);
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_TRUE(live->exists);
  EXPECT_FALSE(live->managed);
  VmSpec spec;
  spec.name = name;
  expect_refused(hv.DefineAndStart(host, spec), "define");
  expect_refused(hv.Start(host, name), "start");
  expect_refused(hv.Shutdown(host, name, seconds(1)), "shutdown");
  expect_refused(hv.Destroy(host, name), "destroy");
  expect_refused(hv.AttachDisk(host, name, {kAppSerial, "/tmp/none", "raw", true}), "attach");
  expect_refused(hv.DetachDisk(host, name, kAppSerial, seconds(1)), "detach");

  auto after = virsh({"dumpxml", "--inactive", name});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->out, before->out) << "the foreign domain changed";
  auto state = virsh({"domstate", name});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->out.substr(0, 8), "shut off") << state->out;
  EXPECT_TRUE(virsh({"undefine", name}).ok());

  // The same domain with the marker DomainXml writes is vdswap's: Destroy undefines it.
  ASSERT_TRUE(WriteFileAtomic(xml_path, "<domain type='qemu'><name>" + name +
                                            "</name><metadata><vdswap:vm xmlns:vdswap='" +
                                            kVmMetadataNs +
                                            "'/></metadata><memory unit='MiB'>64</memory>"
                                            "<os><type arch='x86_64'>hvm</type></os></domain>\n")
                  .ok());
  ASSERT_TRUE(virsh({"define", xml_path}).ok());
  auto ours = hv.GetState(host, name);
  ASSERT_TRUE(ours.ok());
  EXPECT_TRUE(ours->managed);
  EXPECT_TRUE(hv.Destroy(host, name).ok());
  EXPECT_FALSE(hv.GetState(host, name)->exists);
  RemovePool(host);
  std::filesystem::remove(xml_path);
}

}  // namespace
}  // namespace vdswap::testing
