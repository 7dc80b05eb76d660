// The tunnel protocol: TCP connections carried over the peer channel, each on a reliable ordered
// stream of the session's one SCTP association (common/stream; its packets travel as peer DATA
// datagrams of kind 2, "stream", at most kStreamDatagramSize bytes each).
//
// One TCP connection is one stream, opened by the client:
//
//   client -> device   REQUEST  version u8 (= 1) || port u16 (big-endian)                  3 bytes
//   device -> client   STATUS   u8: 0 ok
//                                   1 port not allowed (not in the device's tunnel_ports)
//                                   2 connection refused or failed (nothing listens, ...)
//                                   3 bad request (unknown version)
//   after STATUS 0     raw bytes both ways, in order, until each side closes its direction
//
// The device connects (TCP, non-blocking) to 127.0.0.1:<port> only if <port> is on its allow-list
// and answers STATUS when connect() has finished. For any STATUS but 0 it closes its direction of
// the stream at once, and the client closes its own on reading it. The client sends nothing after
// REQUEST until it has read STATUS 0 (a device keeps early bytes within its buffer limit and drops
// them if it refuses).
//
// Closing maps to TCP's half-close: when a side reads end-of-file from its TCP connection (the
// local peer's FIN), it closes its direction of the stream after everything read before; when a
// side sees the stream's close, it shuts down the sending direction of its TCP connection
// (shutdown(SHUT_WR)) after writing everything before. A connection is over once both directions
// are closed. A TCP error (reset, a failed write) ends that side's TCP connection and closes its
// direction of the stream: the other side sees an ordinary close (streams carry no reset), and
// bytes still arriving on the stream are dropped. The end of the association ends every tunnelled
// connection of the session.
//
// Flow control is SCTP's, one receive window per association. A side whose TCP peer reads slowly
// keeps at most TunnelSessionOptions::local_buffer_limit bytes for that connection; past it, it
// stops reading the association (SctpTransport::PauseReceiving) until the connection drains, so
// memory stays bounded, but every tunnelled connection of the session waits meanwhile (the
// window is shared). Opening a second session gives a connection a window of its own.
#ifndef EDGELINK_COMMON_TUNNEL_TUNNEL_PROTOCOL_H_
#define EDGELINK_COMMON_TUNNEL_TUNNEL_PROTOCOL_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgelink::tunnel {

inline constexpr uint8_t kTunnelVersion = 1;
inline constexpr size_t kRequestSize = 3;

// The largest SCTP packet a stream datagram carries: a peer DATA payload (kMaxPeerPayload, 1198)
// less its kind byte. The bindings check this against channel::kMaxPeerPayload.
inline constexpr uint16_t kStreamDatagramSize = 1197;

enum class TunnelStatus : uint8_t {
  kOk = 0,
  kPortNotAllowed = 1,
  kConnectFailed = 2,
  kBadRequest = 3,
};

struct TunnelRequest {
  uint8_t version = kTunnelVersion;
  uint16_t port = 0;
};

std::array<uint8_t, kRequestSize> EncodeRequest(uint16_t port);

// RequestReader collects a REQUEST that may arrive in pieces.
class RequestReader {
 public:
  // Feed takes bytes from the front of `data` until the request is complete and returns how many
  // it took; what follows belongs to the connection.
  size_t Feed(absl::Span<const uint8_t> data);
  bool complete() const { return have_ == kRequestSize; }
  // Once complete: the request, or kInvalidArgument for a version this side does not speak.
  // kFailedPrecondition before.
  absl::StatusOr<TunnelRequest> Parse() const;

 private:
  std::array<uint8_t, kRequestSize> bytes_{};
  size_t have_ = 0;
};

// StatusFromWire turns the device's STATUS byte into what the client reports: OK;
// kPermissionDenied (1); kUnavailable (2); kUnimplemented (3); kInternal for a byte the protocol
// does not define. The message names `port` and never quotes anything else from the wire.
absl::Status StatusFromWire(uint8_t status, uint16_t port);

}  // namespace edgelink::tunnel

#endif  // EDGELINK_COMMON_TUNNEL_TUNNEL_PROTOCOL_H_
