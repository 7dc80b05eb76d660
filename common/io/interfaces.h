// LocalAddresses: this host's interface addresses, for the host candidates a peer can try.
#ifndef EDGELINK_COMMON_IO_INTERFACES_H_
#define EDGELINK_COMMON_IO_INTERFACES_H_

#include <vector>

#include "common/net/endpoint.h"

namespace edgelink::io {

// LocalAddresses returns the addresses of the interfaces that are up, of `family`, each with
// `port`. Left out: loopback (a peer told "127.0.0.1" would probe its own host, perhaps an
// unrelated service there) and IPv6 link-local addresses (an Endpoint cannot carry a scope id).
std::vector<net::Endpoint> LocalAddresses(net::Endpoint::Family family, uint16_t port);

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_INTERFACES_H_
