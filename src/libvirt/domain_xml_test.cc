#include "libvirt/domain_xml.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vdswap {
namespace {

// Compares `actual` with testdata/NAME. A missing golden fails. With VDSWAP_UPDATE_GOLDEN
// set the file is rewritten and the test still fails, so update mode never passes.
void ExpectGolden(const std::string& name, const std::string& actual) {
  std::string path = std::string(GOLDEN_DIR) + "/" + name;
  if (std::getenv("VDSWAP_UPDATE_GOLDEN")) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << actual;
    out.close();
    ASSERT_TRUE(out.good()) << "cannot write golden " << path;
    ADD_FAILURE() << "golden " << path << " rewritten; rerun without VDSWAP_UPDATE_GOLDEN";
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.is_open()) << "golden " << path
                            << " is missing; create it with VDSWAP_UPDATE_GOLDEN=1";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(actual, want.str()) << "golden file " << path;
}

VmSpec Spec() {
  VmSpec s;
  s.name = "web-1";
  s.memory_mib = 256;
  s.cpus = 1;
  s.kernel = "/pool/kernel-abc";
  s.initrd = "/pool/initrd-abc";
  s.cmdline = "console=ttyS0 quiet";
  s.os = {kOsSerial, "/pool/web-1-os.qcow2", "qcow2", false};
  s.app = {kAppSerial, "/pool/app-123.erofs", "raw", true};
  s.data = {kDataSerial, "/pool/web-1-data.qcow2", "qcow2", false};
  s.nics = {{"default", "52:54:00:12:34:56"}, {"backend", "52:54:00:ab:cd:ef"}};
  return s;
}

TEST(DomainXmlTest, TcgDirectBootGolden) {
  ExpectGolden("domain_tcg.xml", DomainXml(Spec(), Accel::kTcg, "/pool/web-1-console.log"));
}

TEST(DomainXmlTest, KvmDiskBootGolden) {
  VmSpec s = Spec();
  s.kernel.clear();
  s.initrd.clear();
  ExpectGolden("domain_kvm.xml", DomainXml(s, Accel::kKvm, "/pool/web-1-console.log"));
}

TEST(DomainXmlTest, EfiDiskBootGolden) {
  VmSpec s = Spec();
  s.kernel.clear();
  s.initrd.clear();
  s.efi = true;
  ExpectGolden("domain_efi.xml", DomainXml(s, Accel::kTcg, "/pool/web-1-console.log"));
}

TEST(DomainXmlTest, RedefinitionKeepsUuid) {
  std::string xml = DomainXml(Spec(), Accel::kTcg, "/x", "0b8e4f1c-1111-2222-3333-444455556666");
  EXPECT_NE(xml.find("<uuid>0b8e4f1c-1111-2222-3333-444455556666</uuid>"), std::string::npos);
  EXPECT_EQ(DomainXml(Spec(), Accel::kTcg, "/x").find("<uuid>"), std::string::npos);
}

TEST(DomainXmlTest, EscapesValues) {
  VmSpec s = Spec();
  s.cmdline = "a=<b> & 'c'";
  std::string xml = DomainXml(s, Accel::kTcg, "/x");
  EXPECT_NE(xml.find("a=&lt;b&gt; &amp; &apos;c&apos;"), std::string::npos);
}

TEST(DomainXmlTest, DiskAndVolumeGolden) {
  ExpectGolden("disk_app.xml", DiskXml({kAppSerial, "/pool/app-123.erofs", "raw", true}) + "\n");
  ExpectGolden("volume_overlay.xml",
               VolumeXml("web-1-os.qcow2", 67108864, "qcow2", "/pool/os-1.img", "raw") + "\n");
  ExpectGolden("pool.xml", PoolXml("vdswap", "/var/lib/libvirt/images/vdswap-vdswap") + "\n");
}

TEST(DomainXmlTest, ParsesDisksBackFromGeneratedXml) {
  auto disks = ParseDomainDisks(DomainXml(Spec(), Accel::kTcg, "/x"));
  ASSERT_TRUE(disks.ok());
  ASSERT_EQ(disks->size(), 3u);
  EXPECT_EQ((*disks)[1].serial, kAppSerial);
  EXPECT_EQ((*disks)[1].path, "/pool/app-123.erofs");
  EXPECT_TRUE((*disks)[1].readonly);
  EXPECT_FALSE((*disks)[2].readonly);
  EXPECT_EQ((*disks)[2].format, "qcow2");
}

TEST(DomainXmlTest, ParsesNicsBackInOrder) {
  auto nics = ParseDomainNics(DomainXml(Spec(), Accel::kTcg, "/x"));
  ASSERT_TRUE(nics.ok());
  ASSERT_EQ(nics->size(), 2u);
  EXPECT_EQ((*nics)[0].network, "default");
  EXPECT_EQ((*nics)[0].mac, "52:54:00:12:34:56");
  EXPECT_EQ((*nics)[1].network, "backend");
  VmSpec none = Spec();
  none.nics.clear();
  std::string xml = DomainXml(none, Accel::kTcg, "/x");
  EXPECT_EQ(xml.find("<interface"), std::string::npos);
  EXPECT_TRUE(ParseDomainNics(xml)->empty());
}

TEST(DomainXmlTest, BadXmlIsAnError) {
  EXPECT_FALSE(ParseDomainDisks("<domain><devices>").ok());
  EXPECT_EQ(*ParsePoolPath(PoolXml("p", "/a/b")), "/a/b");
}

// The live XML of a running domain: libvirt names the agent socket it had QEMU bind.
TEST(DomainXmlTest, ParsesTheAgentSocketOfALiveDomain) {
  const std::string live = R"(<domain><devices>
    <channel type='unix'><source mode='bind' path='/run/x/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.vdswap.agent.0'/>
      <target type='virtio' name='org.vdswap.agent.0' state='connected'/></channel>
  </devices></domain>)";
  EXPECT_EQ(*ParseAgentSocketPath(live),
            "/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.vdswap.agent.0");
  // The definition as vdswap writes it has no path until the domain runs.
  VmSpec spec;
  spec.name = "vm1";
  auto defined = ParseAgentSocketPath(DomainXml(spec, Accel::kTcg, "/p/vm1-console.log"));
  EXPECT_EQ(defined.status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(ParseAgentSocketPath("<domain").ok());
}

TEST(AccelTest, ExplicitChoicesAndErrors) {
  EXPECT_EQ(*ResolveAccel("tcg"), Accel::kTcg);
  EXPECT_EQ(*ResolveAccel("kvm"), Accel::kKvm);
  EXPECT_FALSE(ResolveAccel("xen").ok());
}

}  // namespace
}  // namespace vdswap
