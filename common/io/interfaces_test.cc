#include "common/io/interfaces.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace edgelink::io {
namespace {

TEST(LocalAddressesTest, LeavesOutLoopbackAndKeepsThePortAndTheFamilyAsked) {
  const std::vector<net::Endpoint> v4 = LocalAddresses(net::Endpoint::Family::kIpv4, 4242);
  EXPECT_EQ(std::find(v4.begin(), v4.end(), *net::Endpoint::Parse("127.0.0.1:4242")), v4.end());
  for (const net::Endpoint& e : v4) EXPECT_NE(e.ip()[0], 127) << e.ToString();
  for (const net::Endpoint& e : v4) {
    EXPECT_EQ(e.family(), net::Endpoint::Family::kIpv4);
    EXPECT_EQ(e.port(), 4242);
  }
  for (const net::Endpoint& e : LocalAddresses(net::Endpoint::Family::kIpv6, 1)) {
    EXPECT_EQ(e.family(), net::Endpoint::Family::kIpv6);
    EXPECT_FALSE(e.ip()[0] == 0xfe && (e.ip()[1] & 0xc0) == 0x80) << e.ToString();
    EXPECT_NE(e, *net::Endpoint::Parse("[::1]:1"));
  }
}

}  // namespace
}  // namespace edgelink::io
