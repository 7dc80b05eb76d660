#include "common/net/endpoint.h"

#include "absl/container/flat_hash_set.h"
#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace edgelink::net {
namespace {

using ::edgelink::testing::StatusIs;

TEST(EndpointTest, ParsesAndPrintsIpv4AndIpv6) {
  ASSERT_OK_AND_ASSIGN(Endpoint v4, Endpoint::Parse("192.0.2.7:4433"));
  EXPECT_EQ(v4.family(), Endpoint::Family::kIpv4);
  EXPECT_EQ(v4.port(), 4433);
  EXPECT_EQ(v4.ToString(), "192.0.2.7:4433");
  ASSERT_OK_AND_ASSIGN(Endpoint v6, Endpoint::Parse("[2001:db8::1]:53"));
  EXPECT_EQ(v6.family(), Endpoint::Family::kIpv6);
  EXPECT_EQ(v6.ToString(), "[2001:db8::1]:53");
  EXPECT_EQ(Endpoint().ToString(), "none");
}

TEST(EndpointTest, RejectsMalformedText) {
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "300.1.1.1:80",
                          "host:80", "2001:db8::1:53", "[2001:db8::1]53", "[::1]:x",
                          "1.2.3.4:80:90"}) {
    EXPECT_THAT(Endpoint::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(EndpointTest, EqualityAndHashCoverAddressAndPort) {
  Endpoint a = *Endpoint::Parse("10.0.0.1:1");
  absl::flat_hash_set<Endpoint> set = {a, a.WithPort(2), *Endpoint::Parse("10.0.0.2:1")};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.contains(*Endpoint::Parse("10.0.0.1:2")));
  EXPECT_NE(a, a.WithPort(2));
  EXPECT_NE(*Endpoint::Parse("[::]:1"), *Endpoint::Parse("0.0.0.0:1"));
}

}  // namespace
}  // namespace edgelink::net
