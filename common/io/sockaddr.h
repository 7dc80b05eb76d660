// Conversions between net::Endpoint and the kernel's socket addresses. Only AF_INET and AF_INET6
// exist for Edgelink; anything else is rejected with kInvalidArgument, never guessed at.
#ifndef EDGELINK_COMMON_IO_SOCKADDR_H_
#define EDGELINK_COMMON_IO_SOCKADDR_H_

#include <sys/socket.h>

#include "absl/status/statusor.h"
#include "common/net/endpoint.h"

namespace edgelink::io {

// ToSockaddr writes `endpoint` into `*out` (zeroing the rest) and returns the length to pass to the
// kernel: sizeof(sockaddr_in) or sizeof(sockaddr_in6). IPv6 addresses get scope id 0 and flow info
// 0, so link-local destinations (fe80::/10) cannot be reached through an Endpoint. Fails with
// kInvalidArgument for an unset endpoint.
absl::StatusOr<socklen_t> ToSockaddr(const net::Endpoint& endpoint, sockaddr_storage* out);

// FromSockaddr reads an address the kernel filled in (recvmmsg, getsockname). `length` is the
// length the kernel reported. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) stays an IPv6 Endpoint.
// Fails with kInvalidArgument for a family other than AF_INET/AF_INET6 or a length too short for
// the family.
absl::StatusOr<net::Endpoint> FromSockaddr(const sockaddr_storage& address, socklen_t length);

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_SOCKADDR_H_
