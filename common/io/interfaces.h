// LocalAddresses: this host's interface addresses, for the host candidates a peer can try.
#ifndef EDGELINK_COMMON_IO_INTERFACES_H_
#define EDGELINK_COMMON_IO_INTERFACES_H_

#include <vector>

#include "common/net/endpoint.h"

namespace edgelink::io {

// LocalAddresses returns the addresses of the interfaces that are up, of `family`, each with
// `port`. IPv6 link-local addresses are left out (an Endpoint cannot carry their scope id).
// Loopback is included: a peer on the same host can use it.
std::vector<net::Endpoint> LocalAddresses(net::Endpoint::Family family, uint16_t port);

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_INTERFACES_H_
