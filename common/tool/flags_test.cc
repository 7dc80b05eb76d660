#include "common/tool/flags.h"

#include "gtest/gtest.h"

namespace edgelink::tool {
namespace {

TEST(NormalizeFlagNameTest, DashesInNamesBecomeUnderscoresValuesUntouched) {
  EXPECT_EQ(NormalizeFlagName("--device-id=cam-1"), "--device_id=cam-1");
  EXPECT_EQ(NormalizeFlagName("--dns-listen"), "--dns_listen");
  EXPECT_EQ(NormalizeFlagName("--zone=a-b.c"), "--zone=a-b.c");
  EXPECT_EQ(NormalizeFlagName("serve"), "serve");
  EXPECT_EQ(NormalizeFlagName("-v"), "-v");
  EXPECT_EQ(NormalizeFlagName("--"), "--");
  EXPECT_EQ(NormalizeFlagName("cam-1"), "cam-1");
}

}  // namespace
}  // namespace edgelink::tool
