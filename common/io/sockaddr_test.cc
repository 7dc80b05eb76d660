#include "common/io/sockaddr.h"

#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace edgelink::io {
namespace {

using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SockaddrTest, RoundTripsIpv4InNetworkByteOrder) {
  ASSERT_OK_AND_ASSIGN(const net::Endpoint endpoint, net::Endpoint::Parse("192.0.2.7:4433"));
  sockaddr_storage storage;
  ASSERT_OK_AND_ASSIGN(const socklen_t length, ToSockaddr(endpoint, &storage));
  EXPECT_EQ(length, sizeof(sockaddr_in));
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
  EXPECT_EQ(v4->sin_family, AF_INET);
  EXPECT_EQ(ntohs(v4->sin_port), 4433);
  EXPECT_EQ(ntohl(v4->sin_addr.s_addr), 0xC0000207u);
  ASSERT_OK_AND_ASSIGN(const net::Endpoint back, FromSockaddr(storage, length));
  EXPECT_EQ(back, endpoint);
}

TEST(SockaddrTest, RoundTripsIpv6) {
  ASSERT_OK_AND_ASSIGN(const net::Endpoint endpoint, net::Endpoint::Parse("[2001:db8::1]:53"));
  sockaddr_storage storage;
  ASSERT_OK_AND_ASSIGN(const socklen_t length, ToSockaddr(endpoint, &storage));
  EXPECT_EQ(length, sizeof(sockaddr_in6));
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  EXPECT_EQ(v6->sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(v6->sin6_port), 53);
  EXPECT_EQ(v6->sin6_scope_id, 0u);
  EXPECT_EQ(v6->sin6_addr.s6_addr[0], 0x20);
  EXPECT_EQ(v6->sin6_addr.s6_addr[15], 0x01);
  ASSERT_OK_AND_ASSIGN(const net::Endpoint back, FromSockaddr(storage, length));
  EXPECT_EQ(back, endpoint);
}

TEST(SockaddrTest, KeepsIpv4MappedAddressAsIpv6) {
  ASSERT_OK_AND_ASSIGN(const net::Endpoint mapped, net::Endpoint::Parse("[::ffff:192.0.2.7]:9"));
  sockaddr_storage storage;
  ASSERT_OK_AND_ASSIGN(const socklen_t length, ToSockaddr(mapped, &storage));
  ASSERT_OK_AND_ASSIGN(const net::Endpoint back, FromSockaddr(storage, length));
  EXPECT_EQ(back.family(), net::Endpoint::Family::kIpv6);
  EXPECT_EQ(back, mapped);
}

TEST(SockaddrTest, RejectsUnsetEndpoint) {
  sockaddr_storage storage;
  EXPECT_THAT(ToSockaddr(net::Endpoint(), &storage),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unset")));
}

TEST(SockaddrTest, RejectsUnknownFamily) {
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof(storage));
  auto* unix_address = reinterpret_cast<sockaddr_un*>(&storage);
  unix_address->sun_family = AF_UNIX;
  std::strcpy(unix_address->sun_path, "/tmp/x");
  EXPECT_THAT(FromSockaddr(storage, sizeof(sockaddr_un)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("family")));
}

TEST(SockaddrTest, RejectsLengthTooShortForFamily) {
  sockaddr_storage storage;
  ASSERT_OK_AND_ASSIGN(const socklen_t v6_length,
                       ToSockaddr(*net::Endpoint::Parse("[::1]:1"), &storage));
  EXPECT_THAT(FromSockaddr(storage, v6_length - 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
  ASSERT_OK_AND_ASSIGN(const socklen_t v4_length,
                       ToSockaddr(*net::Endpoint::Parse("10.0.0.1:1"), &storage));
  EXPECT_THAT(FromSockaddr(storage, v4_length - 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
  EXPECT_THAT(FromSockaddr(storage, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace edgelink::io
