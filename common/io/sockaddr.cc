#include "common/io/sockaddr.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace edgelink::io {

absl::StatusOr<socklen_t> ToSockaddr(const net::Endpoint& endpoint, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  switch (endpoint.family()) {
    case net::Endpoint::Family::kIpv4: {
      auto* v4 = reinterpret_cast<sockaddr_in*>(out);
      v4->sin_family = AF_INET;
      v4->sin_port = htons(endpoint.port());
      std::memcpy(&v4->sin_addr, endpoint.ip().data(), 4);
      return static_cast<socklen_t>(sizeof(sockaddr_in));
    }
    case net::Endpoint::Family::kIpv6: {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(endpoint.port());
      std::memcpy(&v6->sin6_addr, endpoint.ip().data(), 16);
      return static_cast<socklen_t>(sizeof(sockaddr_in6));
    }
    case net::Endpoint::Family::kNone:
      break;
  }
  return absl::InvalidArgumentError("no socket address for an unset endpoint (unknown family)");
}

absl::StatusOr<net::Endpoint> FromSockaddr(const sockaddr_storage& address, socklen_t length) {
  if (length < static_cast<socklen_t>(sizeof(sa_family_t))) {
    return absl::InvalidArgumentError(absl::StrCat("socket address too short: ", length, " bytes"));
  }
  switch (address.ss_family) {
    case AF_INET: {
      if (length < static_cast<socklen_t>(sizeof(sockaddr_in))) break;
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
      std::array<uint8_t, 4> ip;
      std::memcpy(ip.data(), &v4->sin_addr, 4);
      return net::Endpoint::Ipv4(ip, ntohs(v4->sin_port));
    }
    case AF_INET6: {
      if (length < static_cast<socklen_t>(sizeof(sockaddr_in6))) break;
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
      std::array<uint8_t, 16> ip;
      std::memcpy(ip.data(), &v6->sin6_addr, 16);
      return net::Endpoint::Ipv6(ip, ntohs(v6->sin6_port));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported socket address family ", address.ss_family));
  }
  return absl::InvalidArgumentError(absl::StrCat("socket address of family ", address.ss_family,
                                                 " too short: ", length, " bytes"));
}

}  // namespace edgelink::io
