#include "hypervisor/host_uri.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

std::string Refusal(const std::string& uri) {
  auto r = ParseHostUri(uri);
  EXPECT_FALSE(r.ok()) << uri;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << uri;
  return r.status().message();
}

TEST(HostUriTest, AcceptsTheAllowedForms) {
  for (const char* uri :
       {"qemu:///system", "qemu+unix:///system", "qemu:///session", "qemu+ssh://root@h7/system",
        "qemu+ssh://h7:2222/system?keyfile=/root/.ssh/id_ed25519",
        "qemu+ssh://h7/system?no_verify=1&known_hosts=/etc/vdswap/known_hosts",
        "qemu+tls://h7.example.com/system?pkipath=/etc/pki/vdswap", "qemu+tcp://127.0.0.1/system",
        "qemu+ssh://[fd00::7]/system"}) {
    auto r = ParseHostUri(uri);
    EXPECT_TRUE(r.ok()) << uri << ": " << r.status().message();
  }
  EXPECT_EQ(ParseHostUri("qemu+ssh://root@h7:22/system")->authority, "root@h7:22");
  EXPECT_EQ(ParseHostUri("qemu+ssh://h7/system?keyfile=/k")->params.at("keyfile"), "/k");
}

TEST(HostUriTest, OnlyTheLocalTransportsAreLocal) {
  for (const char* uri : {"qemu:///system", "qemu+unix:///system", "qemu:///session"}) {
    EXPECT_TRUE(ParseHostUri(uri)->IsLocal()) << uri;
  }
  for (const char* uri :
       {"qemu+tcp://127.0.0.1/system", "qemu+ssh://localhost/system", "qemu+tls://h7/system"}) {
    EXPECT_FALSE(ParseHostUri(uri)->IsLocal()) << uri;
  }
}

TEST(HostUriTest, WarnsAboutTcpOnly) {
  EXPECT_NE(ParseHostUri("qemu+tcp://127.0.0.1/system")->warning.find("unencrypted"),
            std::string::npos);
  EXPECT_TRUE(ParseHostUri("qemu+ssh://h/system")->warning.empty());
  EXPECT_TRUE(ParseHostUri("qemu:///system")->warning.empty());
}

TEST(HostUriTest, RefusesTransportsAndParametersThatRunCommands) {
  EXPECT_NE(Refusal("qemu+ext:///system?command=/bin/false").find("transport 'ext' is not allowed"),
            std::string::npos);
  EXPECT_NE(Refusal("qemu+ssh://h/system?netcat=/tmp/evil").find("parameter 'netcat'"),
            std::string::npos);
  EXPECT_NE(Refusal("qemu+tcp://h/system?command=x").find("parameter 'command'"),
            std::string::npos);
  EXPECT_NE(Refusal("qemu:///system?name=qemu+ext:///x").find("parameter 'name'"),
            std::string::npos);
  EXPECT_NE(Refusal("qemu+ssh://h/system?keyfile=$(reboot)").find("not allowed"),
            std::string::npos);
}

TEST(HostUriTest, RefusesOtherDriversAndShapes) {
  EXPECT_NE(Refusal("xen:///system").find("only the qemu driver"), std::string::npos);
  EXPECT_NE(Refusal("test:///default").find("only the qemu driver"), std::string::npos);
  EXPECT_NE(Refusal("qemu:///embed?root=/tmp").find("the path must be /system"), std::string::npos);
  EXPECT_NE(Refusal("qemu://h7/system").find("a local URI has no host"), std::string::npos);
  EXPECT_NE(Refusal("qemu+ssh:///system").find("needs a host"), std::string::npos);
  EXPECT_NE(Refusal("qemu+ssh://h;x/system").find("may not contain ';'"), std::string::npos);
  EXPECT_NE(Refusal("/var/run/libvirt/libvirt-sock").find("not a libvirt URI"), std::string::npos);
  EXPECT_EQ(Refusal("qemu:///system\n"), "host uri must not contain spaces or control characters");
  EXPECT_NE(Refusal("qemu+ext:///x").find("allowed: qemu:///system"), std::string::npos);
}

}  // namespace
}  // namespace vdswap
