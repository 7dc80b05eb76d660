#include "common/io/interfaces.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common/io/sockaddr.h"

namespace edgelink::io {

std::vector<net::Endpoint> LocalAddresses(net::Endpoint::Family family, uint16_t port) {
  std::vector<net::Endpoint> addresses;
  ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) return addresses;
  for (ifaddrs* i = interfaces; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) {
      continue;
    }
    const int af = i->ifa_addr->sa_family;
    if (af != AF_INET && af != AF_INET6) continue;
    sockaddr_storage storage{};
    const socklen_t size = af == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    std::memcpy(&storage, i->ifa_addr, size);
    absl::StatusOr<net::Endpoint> address = FromSockaddr(storage, size);
    if (!address.ok() || address->family() != family) continue;
    if (family == net::Endpoint::Family::kIpv6 && address->ip()[0] == 0xfe &&
        (address->ip()[1] & 0xc0) == 0x80) {
      continue;
    }
    addresses.push_back(address->WithPort(port));
  }
  freeifaddrs(interfaces);
  return addresses;
}

}  // namespace edgelink::io
