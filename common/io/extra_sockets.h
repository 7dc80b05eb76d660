// ExtraSockets: the further UDP sockets of one peer connection (birthday probing: a core's
// net::Datagram with socket > 0), bound on demand and closed when the core no longer wants them.
#ifndef EDGELINK_COMMON_IO_EXTRA_SOCKETS_H_
#define EDGELINK_COMMON_IO_EXTRA_SOCKETS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"

namespace edgelink::io {

// Not thread-safe: the loop's thread only. The receiver must not destroy this object (schedule
// the work that might, e.g. on a Timer); it may call Retain.
class ExtraSockets {
 public:
  using Receiver = std::function<void(uint16_t socket, const net::Endpoint& from,
                                      absl::Span<const uint8_t> bytes)>;

  // `bind_to` is the address each socket binds, port 0 (so any free port).
  ExtraSockets(EventLoop* loop, net::Endpoint bind_to, Receiver receiver);
  ~ExtraSockets();
  ExtraSockets(const ExtraSockets&) = delete;
  ExtraSockets& operator=(const ExtraSockets&) = delete;

  // Send sends `datagram` from extra socket datagram.socket (> 0), binding it first if need be.
  absl::Status Send(const net::Datagram& datagram);
  // Retain closes every socket for which `wanted` returns false.
  void Retain(const std::function<bool(uint16_t socket)>& wanted);
  size_t size() const { return sockets_.size(); }

 private:
  void OnReadable(uint16_t socket);
  void Close(std::map<uint16_t, std::unique_ptr<UdpSocket>>::iterator it);

  EventLoop* loop_;
  net::Endpoint bind_to_;
  Receiver receiver_;
  std::map<uint16_t, std::unique_ptr<UdpSocket>> sockets_;
  ReceiveBuffer buffer_{16};
};

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_EXTRA_SOCKETS_H_
