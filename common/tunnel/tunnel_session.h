// TunnelSession: the TCP tunnels of one peer session (client <-> device), sans-I/O. It owns the
// session's SctpTransport (one association, many streams) and bridges each stream to a
// LocalConnection (a TCP connection, behind an interface) by the tunnel protocol of
// tunnel_protocol.h.
//
// The owner (the device daemon's or the client SDK's peer session) feeds it the peer channel's
// DataKind::kStream datagrams (OnDatagram), drives its timer (OnTimeout at NextTimeout, with
// absl::Now(): see sctp_transport.h on usrsctp's clock), and carries what it hands to
// `send_datagram` to the peer (PeerConnection::Send(DataKind::kStream, ...)). LocalConnection
// events come from the owner's event loop too. Not thread-safe: one loop.
//
// Backpressure, both ways:
//  * local -> stream: when the association's send buffer is full (Send takes less), the rest of
//    that read is kept (at most one read) and the connection stops reading until on_writable;
//    the local peer's TCP window then closes.
//  * stream -> local: when a local connection's socket is full (Write takes less), bytes wait in
//    its buffer; once it holds local_buffer_limit, or all connections together hold
//    session_buffer_limit, the session stops reading the association (PauseReceiving) until the
//    buffers drain to half; the peer's sends then return 0 and its local readers stop. Memory is
//    bounded, but the SCTP window is per association, so one connection whose local peer stops
//    reading stalls the other connections of the session once its buffer is full (see
//    tunnel_protocol.h). Counted in receive_pauses.
#ifndef EDGELINK_COMMON_TUNNEL_TUNNEL_SESSION_H_
#define EDGELINK_COMMON_TUNNEL_TUNNEL_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/stream/sctp_transport.h"
#include "common/tunnel/local_connection.h"
#include "common/tunnel/tunnel_protocol.h"

namespace edgelink::tunnel {

// The SCTP options a tunnel session uses unless told otherwise: packets sized to one stream
// datagram of the peer channel.
stream::SctpOptions DefaultTunnelSctpOptions();

struct TunnelSessionOptions {
  enum class Side { kClient, kDevice };
  Side side = Side::kClient;
  // Device: whether a request for `port` may connect. Asked for each request, so a reloaded
  // allow-list applies to new connections. Unset: every request is refused (status 1).
  std::function<bool(uint16_t port)> port_allowed;
  // Device: makes the connections to local services. Not owned; must outlive the session.
  LocalConnector* connector = nullptr;
  // Bytes from the stream waiting for one local connection before the session stops reading
  // the association, and for all of them together.
  size_t local_buffer_limit = 256 * 1024;
  size_t session_buffer_limit = 1024 * 1024;
  // Tunnels alive at once (client: Open fails beyond it; the device is bounded by stream ids).
  size_t max_tunnels = 128;
  stream::SctpOptions sctp = DefaultTunnelSctpOptions();
};

// What happened to one tunnelled connection, for the owner's log or UI.
struct TunnelEvent {
  enum class Kind {
    kOpened,   // STATUS 0: bytes flow.
    kRefused,  // Never opened: STATUS 1/2/3, or the association or the stream ended first.
    kClosed,   // An opened tunnel ended: `status` OK if both directions closed cleanly.
  };
  Kind kind = Kind::kOpened;
  uint64_t id = 0;
  uint16_t port = 0;
  absl::Status status;
  uint64_t bytes_sent = 0;      // Read from the local connection, sent on the stream.
  uint64_t bytes_received = 0;  // Received on the stream for the local connection.
};

// Counters for the owner's metrics (per session).
struct TunnelCounters {
  uint64_t requests = 0;        // Tunnels asked for: Open calls / streams the client opened.
  uint64_t opened = 0;          // STATUS 0.
  uint64_t port_refused = 0;    // STATUS 1.
  uint64_t connect_failed = 0;  // STATUS 2 (and, on the client, failures before any STATUS).
  uint64_t bad_requests = 0;    // STATUS 3, and protocol violations (a stream from the wrong side).
  uint64_t failed = 0;          // Opened tunnels that ended with an error.
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_dropped = 0;   // Received for a connection that had failed or been refused.
  uint64_t receive_pauses = 0;  // Times the session stopped reading the association.

  // Adds another session's counters (totals over sessions, ended ones included).
  TunnelCounters& operator+=(const TunnelCounters& other) {
    requests += other.requests;
    opened += other.opened;
    port_refused += other.port_refused;
    connect_failed += other.connect_failed;
    bad_requests += other.bad_requests;
    failed += other.failed;
    bytes_sent += other.bytes_sent;
    bytes_received += other.bytes_received;
    bytes_dropped += other.bytes_dropped;
    receive_pauses += other.receive_pauses;
    return *this;
  }
};

class TunnelSession {
 public:
  using SendDatagram = std::function<void(absl::Span<const uint8_t>)>;
  struct Callbacks {
    std::function<void(const TunnelEvent&)> on_event;
    // After a LocalConnection event: the session has work for its timer now (NextTimeout is due);
    // the owner should drive it soon rather than at the next tick.
    std::function<void()> on_wake;
  };

  // New starts the association (the first INIT goes to send_datagram before New returns: the
  // owner must be ready to carry it). kInvalidArgument for unusable options (a device without a
  // connector, a datagram size above kStreamDatagramSize); SctpTransport::New's errors.
  static absl::StatusOr<std::unique_ptr<TunnelSession>> New(TunnelSessionOptions options,
                                                            SendDatagram send_datagram,
                                                            Callbacks callbacks);
  // Closes every local connection and drops the association without telling the peer (which
  // notices by timeout, or sooner when the peer channel itself closes). Calls no callback.
  ~TunnelSession();
  TunnelSession(const TunnelSession&) = delete;
  TunnelSession& operator=(const TunnelSession&) = delete;

  // OnDatagram takes one kStream datagram from the peer.
  void OnDatagram(absl::Span<const uint8_t> datagram);
  absl::Time NextTimeout(absl::Time now) const;
  void OnTimeout(absl::Time now);

  // Open (client) tunnels `local` to the device's `port` and returns the tunnel's id; kOpened or
  // kRefused follows through on_event, once the association is up. kFailedPrecondition on a
  // device session or once closed, kResourceExhausted beyond max_tunnels; `local` is closed then.
  absl::StatusOr<uint64_t> Open(uint16_t port, std::unique_ptr<LocalConnection> local);

  // closed: the association ended (close_reason says why) and every tunnel with it. The owner
  // destroys the session; a new one starts a new association.
  bool closed() const { return closed_; }
  const absl::Status& close_reason() const { return close_reason_; }
  bool connected() const;
  size_t tunnel_count() const { return tunnels_.size(); }
  // Bytes held for local connections and for the association, all tunnels together.
  size_t buffered_bytes() const;
  bool receiving_paused() const { return paused_; }
  const TunnelCounters& counters() const { return counters_; }
  const stream::SctpTransport& transport() const { return *transport_; }

 private:
  struct Tunnel;
  // Entry from outside (the owner or a local connection): settles (reaps, resumes) when the
  // outermost one leaves.
  class Scope;

  TunnelSession(TunnelSessionOptions options, Callbacks callbacks);

  // SctpTransport callbacks.
  void OnAssociationUp();
  void OnStreamOpened(uint16_t stream);
  void OnStreamData(uint16_t stream, absl::Span<const uint8_t> data);
  void OnStreamWritable();
  void OnStreamClosed(uint16_t stream);
  void OnAssociationClosed(absl::Status reason);

  // LocalConnection events, by way of Tunnel.
  void OnLocalConnected(Tunnel& t);
  void OnLocalData(Tunnel& t, absl::Span<const uint8_t> data);
  void OnLocalEnd(Tunnel& t);
  void OnLocalWritable(Tunnel& t);
  void OnLocalError(Tunnel& t, absl::Status status);

  void StartStream(Tunnel& t);
  void HandleRequest(Tunnel& t);
  void HandleStatus(Tunnel& t, uint8_t status);
  // Sends on t's stream, keeping what the send buffer does not take; false if t failed.
  bool QueueToStream(Tunnel& t, absl::Span<const uint8_t> bytes);
  void DeliverToLocal(Tunnel& t, absl::Span<const uint8_t> data);
  void FlushToLocal(Tunnel& t);
  void MaybeShutdownLocal(Tunnel& t);
  // Closes t's direction of the stream now, or once what waits for the stream is sent.
  void RequestStreamClose(Tunnel& t);
  void CloseStreamNow(Tunnel& t);
  void MaybeReleaseStream(Tunnel& t);
  // Device: answer `status` (not 0) and end the tunnel.
  void Refuse(Tunnel& t, TunnelStatus status, absl::Status why);
  // The local side is gone or unusable: drop it, close the stream direction, report.
  void Fail(Tunnel& t, absl::Status why);
  void DropLocal(Tunnel& t);
  void UpdateBlocking(Tunnel& t);
  bool ShouldPause() const;
  void Report(const Tunnel& t, TunnelEvent::Kind kind, absl::Status status);
  bool Done(const Tunnel& t) const;
  void Settle();

  const TunnelSessionOptions options_;
  const Callbacks callbacks_;
  std::unique_ptr<stream::SctpTransport> transport_;
  std::map<uint64_t, std::unique_ptr<Tunnel>> tunnels_;  // By id, oldest first.
  absl::flat_hash_map<uint16_t, Tunnel*> by_stream_;
  // Local connections dropped while one of their events may be running; destroyed when the
  // outermost entry settles.
  std::vector<std::unique_ptr<LocalConnection>> graveyard_;
  uint64_t next_id_ = 1;
  uint64_t writable_cursor_ = 0;  // Round robin over tunnels waiting for the send buffer.
  int depth_ = 0;
  bool settling_ = false;
  bool paused_ = false;
  bool closed_ = false;
  absl::Status close_reason_;
  TunnelCounters counters_;
};

}  // namespace edgelink::tunnel

#endif  // EDGELINK_COMMON_TUNNEL_TUNNEL_SESSION_H_
