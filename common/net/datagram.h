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
  // Which of the core's sockets sends it: 0, the one it shares with its caller, or an extra one
  // the core asked for by number (see PeerConnection::TakeOutgoing).
  uint16_t socket = 0;
};

}  // namespace edgelink::net

#endif  // EDGELINK_COMMON_NET_DATAGRAM_H_
