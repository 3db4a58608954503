#include "fleet/nics.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

TEST(NicsTest, DefaultNetworkWhenNoneGiven) {
  EXPECT_EQ(*ParseNetworks({}), std::vector<std::string>{"default"});
}

TEST(NicsTest, NoneMeansNoNic) { EXPECT_TRUE(ParseNetworks({"none"})->empty()); }

TEST(NicsTest, KeepsOrderOfSeveralNetworks) {
  EXPECT_EQ(*ParseNetworks({"front", "back"}), (std::vector<std::string>{"front", "back"}));
}

TEST(NicsTest, RefusesBadCombinations) {
  EXPECT_EQ(ParseNetworks({"none", "default"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseNetworks({"a", "a"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseNetworks({"Bad Name"}).status().code(), Code::kInvalidArgument);
}

TEST(NicsTest, MacHasQemuPrefixAndTheBits) {
  EXPECT_EQ(MacFromBits(0x0a0b0c), "52:54:00:0a:0b:0c");
  EXPECT_EQ(MacFromBits(0xffffffff), "52:54:00:ff:ff:ff");
}

}  // namespace
}  // namespace vdswap
