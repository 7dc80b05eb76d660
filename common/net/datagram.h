// Datagram: what a sans-I/O core asks its binding to send.
#ifndef EDGELINK_COMMON_NET_DATAGRAM_H_
#define EDGELINK_COMMON_NET_DATAGRAM_H_

#include <cstdint>
#include <vector>

#include "common/net/endpoint.h"

namespace edgelink::net {

struct Datagram {
  Endpoint to;
  std::vector<uint8_t> bytes;
};

}  // namespace edgelink::net

#endif  // EDGELINK_COMMON_NET_DATAGRAM_H_
