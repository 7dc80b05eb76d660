// SctpTransport: many reliable, ordered, flow- and congestion-controlled byte streams over one
// unreliable datagram channel that the caller supplies, built on usrsctp (the SCTP stack WebRTC
// data channels use) over AF_CONN.
//
// The transport does no I/O and owns no thread or clock. The owner's event loop hands it received
// datagrams (OnDatagram), the time (OnTimeout at NextTimeout), and gets datagrams to send through
// `send_datagram`. Every callback runs on the owner's thread, from inside one of the transport's
// methods, and never from inside usrsctp.
//
// Association set-up: both sides call usrsctp_connect to each other at once (an SCTP simultaneous
// open, RFC 4960 section 5.2.1, as WebRTC does), so neither side needs to listen and neither needs
// to start first: INITs lost before the peer exists are retransmitted. The Role only splits the
// stream-id space (the client opens even ids, the server odd ids) so both can open streams without
// colliding.
//
// Streams: OpenStream sends a one-byte OPEN message on the new stream id, so the peer learns of the
// stream (on_stream_opened) before any of its data. CloseStream sends FIN after the data already
// accepted: a half-close, like TCP's; the peer sees on_stream_closed once it has read everything
// before it. An id is free for reuse once both directions are closed. Stream ids are SCTP stream
// numbers, so ordering is per stream and a loss on one stream does not stall the others (no
// head-of-line blocking across streams).
//
// Flow control is SCTP's: one receive window per association. While the receiver is paused
// (PauseReceiving) its window fills, the sender's send buffer fills and Send returns 0 until
// on_writable. A slow consumer on one stream therefore stalls all streams of the association once
// the windows are full; per-stream windows, if ever needed, belong to the layer above.
//
// usrsctp facts this class is built around (checked against libusrsctp 0.9.5, Debian 12):
//  * All usrsctp state is per process. UsrsctpLibrary (in the .cc) initialises it with
//    usrsctp_init_nothreads when the first transport is made and calls usrsctp_finish when the
//    last one is destroyed (retrying after running its remaining timers, which it needs).
//  * usrsctp_init_nothreads still starts one thread (the "iterator", which walks endpoints for
//    address changes); there is no timer thread and no receive thread. Timers run only inside
//    usrsctp_handle_timers, which the owners call through OnTimeout.
//  * usrsctp calls its output function and the socket upcall on whatever thread is inside usrsctp
//    at the time, while holding its own locks: the owner in OnDatagram/Send/..., any transport's
//    owner in OnTimeout (timers are process-wide, so one transport's OnTimeout can run another's
//    retransmission), and in principle the iterator thread (not seen: we bind one AF_CONN address
//    and turn ASCONF off). Re-entering usrsctp from there deadlocks. So both
//    callbacks only queue the packet (under a mutex) or set an atomic flag; the owner flushes the
//    queue and reads the socket when it next enters the transport. NextTimeout returns `now` while
//    such work is waiting.
//  * usrsctp_handle_timers must not run on two threads at once: it walks the callout queue
//    through unlocked globals, and two event loops doing so corrupted the heap. UsrsctpLibrary
//    serialises it.
//  * Timers: usrsctp has no "next timer" query, so NextTimeout asks for a tick every
//    `timer_granularity` (10 ms, the period usrsctp's own timer thread uses). The usrsctp clock is
//    process-wide: it advances to the latest `now` any transport passed, so every transport in a
//    process must use the same clock. It restarts from the next `now` given once the last
//    transport is gone.
//  * usrsctp also reads gettimeofday, behind our back: for RTT samples, for which chunks a T3
//    timeout may retransmit (only those sent more than an RTO ago), for whether a heartbeat is
//    due, for cookie lifetime. So `now` must advance at the rate of the real clock: absl::Now() in
//    production. A virtual clock that runs ahead stalls loss recovery for good (seen: T3 fires and
//    retransmits nothing, the path is marked down, no heartbeat ever revives it). Tests and the
//    simulator must give usrsctp the same virtual wall clock: see virtual_wall_clock.h.
//  * Non-blocking usrsctp_sendv takes a whole message or nothing, so Send sizes each message to the
//    free send-buffer space, which it reads with SCTP_GET_SNDBUF_USE.
//  * Packets carry no CRC32c and none is checked (process-wide): the channel below must
//    authenticate every datagram, as the secure channel does (RFC 9653 makes the same argument
//    for SCTP over DTLS). Both ends are this code, so they agree.
//  * Data is read with usrsctp_recvv (not the receive_cb API): the receive_cb API hands every
//    message over as soon as it arrives, which would leave no way to stop reading and let the
//    window close.
#ifndef EDGELINK_COMMON_STREAM_SCTP_TRANSPORT_H_
#define EDGELINK_COMMON_STREAM_SCTP_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct socket;  // usrsctp's socket.

namespace edgelink::stream {

struct SctpOptions {
  // Streams offered in each direction; the association uses the smaller of both sides' offers.
  // usrsctp allocates per-stream state up front (roughly 150 bytes a stream), hence not 65535.
  uint16_t max_streams = 256;
  // Socket buffers. The receive buffer is the window advertised to the peer; together with the RTT
  // it caps throughput (1 MiB at a 50 ms RTT: ~160 Mbit/s). The send buffer holds data accepted by
  // Send and not yet acknowledged, so it must cover at least one window to keep the pipe full.
  uint32_t send_buffer_bytes = 1 << 20;
  uint32_t receive_buffer_bytes = 1 << 20;
  // Largest SCTP packet (common header included) handed to send_datagram. The path MTU is fixed at
  // this value and path-MTU discovery is off: the secure channel's datagram size is known.
  uint16_t max_datagram_size = 1200;
  // Retransmission timeout bounds. RFC 4960 says 1 s minimum; 200 ms matches TCP on Linux and
  // recovers tail losses faster on the short paths we mostly see.
  absl::Duration rto_initial = absl::Seconds(1);
  absl::Duration rto_min = absl::Milliseconds(200);
  absl::Duration rto_max = absl::Seconds(10);
  // How often NextTimeout asks to be called while the association lives.
  absl::Duration timer_granularity = absl::Milliseconds(10);
  // SCTP port used by both ends. Ports only need to match; AF_CONN addresses keep associations of
  // different transports apart.
  uint16_t port = 5000;
};

class SctpTransport {
 public:
  enum class Role { kClient, kServer };
  enum class State { kConnecting, kConnected, kClosing, kClosed };

  // Every callback is optional and runs on the owner's thread from inside a method of this
  // transport. Callbacks may call any method of this transport (Send, CloseStream, ...), but must
  // not destroy it, except on_closed, which is always the last thing a method does.
  struct Callbacks {
    // The association is established; streams can be opened.
    std::function<void()> on_connected;
    // The peer opened `stream`; it can be written to at once.
    std::function<void(uint16_t stream)> on_stream_opened;
    // Bytes the peer sent on `stream`, in order. The span is valid only during the call.
    std::function<void(uint16_t stream, absl::Span<const uint8_t> data)> on_data;
    // Send accepted less than it was given, and the send buffer has room again. The buffer is
    // shared by all streams, so this is not per stream.
    std::function<void()> on_writable;
    // The peer will send no more on `stream` (it called CloseStream); everything it sent before
    // has been delivered through on_data.
    std::function<void(uint16_t stream)> on_stream_closed;
    // The association ended; called once, last. OK: graceful close by either side (everything sent
    // before Close was delivered). kUnavailable: the peer aborted, stopped answering, or the
    // association could not be set up. kAborted: the peer restarted its end. kCancelled: Abort()
    // was called here. No stream callbacks follow; streams still open are gone.
    std::function<void(absl::Status reason)> on_closed;
  };

  // Counters for the owner's metrics. Bad input is counted, never fatal.
  struct Stats {
    uint64_t datagrams_in = 0;
    uint64_t datagrams_out = 0;
    uint64_t datagrams_dropped = 0;     // Empty or larger than any SCTP packet; not fed in.
    uint64_t protocol_violations = 0;   // Well-formed SCTP but against our stream protocol.
  };

  // New makes the transport and starts the association: the first INIT goes to send_datagram
  // before New returns. `send_datagram` receives each SCTP packet to carry to the peer, at most
  // options.max_datagram_size bytes; it is called only from inside this transport's methods on
  // the owner's thread, and should queue the packet rather than feed the peer transport
  // synchronously. Fails with kInvalidArgument for unusable options, kInternal if usrsctp refuses
  // a socket or an option.
  static absl::StatusOr<std::unique_ptr<SctpTransport>> New(
      Role role, std::function<void(absl::Span<const uint8_t>)> send_datagram, Callbacks callbacks,
      const SctpOptions& options = SctpOptions());

  SctpTransport(const SctpTransport&) = delete;
  SctpTransport& operator=(const SctpTransport&) = delete;

  // Drops a live association without telling the peer (its heartbeats or retransmissions time
  // out) and releases usrsctp. Calls no callback, send_datagram included. To end the association
  // visibly, call Abort() (the ABORT is sent at once) or Close() and wait for on_closed first.
  ~SctpTransport();

  // OnDatagram feeds one packet received from the peer. Anything is accepted: usrsctp checks the
  // ports, the verification tag and the chunk layout and drops what fails (the CRC32c is not
  // checked: the channel below authenticates; see above).
  void OnDatagram(absl::Span<const uint8_t> datagram);

  // NextTimeout: when OnTimeout should next run: `now` if work is waiting (see above), else one
  // timer_granularity after the last OnTimeout; InfiniteFuture once closed.
  absl::Time NextTimeout(absl::Time now) const;
  // OnTimeout advances usrsctp's process-wide clock to `now` (which must keep pace with the real
  // clock; see above), runs due timers, and flushes.
  void OnTimeout(absl::Time now);

  // OpenStream picks a free stream id of this side's parity and tells the peer. Fails with
  // kFailedPrecondition before on_connected or after close, kResourceExhausted if every id of
  // this side is in use.
  absl::StatusOr<uint16_t> OpenStream();

  // Send queues bytes on `stream` and returns how many it took: all of `data`, or less (possibly
  // 0) when the send buffer is full, in which case on_writable follows once there is room. Bytes
  // taken will be delivered in order unless the association fails. Fails with kNotFound for a
  // stream that is not open, kFailedPrecondition if this side closed the stream or the association
  // is not connected.
  absl::StatusOr<size_t> Send(uint16_t stream, absl::Span<const uint8_t> data);

  // CloseStream ends this side's direction of `stream` after the bytes already taken. kNotFound if
  // the stream is not open, kFailedPrecondition if already closed by this side or the association
  // is not connected.
  absl::Status CloseStream(uint16_t stream);

  // PauseReceiving stops reading: data stays in usrsctp, the window closes, the peer's Send
  // returns 0. Events queued behind unread data (a stream's FIN, a graceful close) wait too; only
  // the association's death is still noticed. ResumeReceiving reads again, delivering what waited.
  void PauseReceiving();
  void ResumeReceiving();

  // Close starts a graceful shutdown: data already taken by both sides is delivered, then
  // on_closed(OK) on both. Before the association is up it aborts instead.
  void Close();
  // Abort ends the association at once (the peer gets an ABORT and on_closed(kUnavailable)); here
  // on_closed(kCancelled) follows.
  void Abort();

  // What SCTP currently knows of the path (SCTP_STATUS), for diagnostics and metrics.
  struct PathInfo {
    uint32_t congestion_window = 0;  // Bytes.
    uint32_t peer_window = 0;        // The peer's last advertised receive window, bytes.
    absl::Duration smoothed_rtt;
    absl::Duration rto;
    uint32_t unacked_chunks = 0;
    uint32_t pending_chunks = 0;  // Queued, not yet sent.
    uint32_t mtu = 0;
  };
  // kFailedPrecondition unless connected or closing.
  absl::StatusOr<PathInfo> GetPathInfo();

  State state() const { return state_; }
  const Stats& stats() const { return stats_; }
  // Bytes taken by Send and not yet acknowledged by the peer (0 when unknown).
  size_t BufferedAmount();

 private:
  friend class UsrsctpLibrary;

  struct StreamState {
    bool local_open = true;   // We may still send.
    bool remote_open = true;  // The peer may still send.
    bool open_pending = false;  // OPEN not yet taken by usrsctp.
    bool fin_pending = false;   // FIN not yet taken by usrsctp.
  };

  SctpTransport(Role role, std::function<void(absl::Span<const uint8_t>)> send_datagram,
                Callbacks callbacks, const SctpOptions& options);

  absl::Status Start();
  // Called by usrsctp's callbacks, on any thread, with usrsctp locks held.
  void QueueDatagram(const void* data, size_t length);
  void MarkNeedsService() { needs_service_.store(true, std::memory_order_release); }

  // Service does everything owed after entering usrsctp: read the socket, report writability,
  // flush queued datagrams, close the socket once the association is gone, and call on_closed
  // last. Re-entrant calls (from callbacks) only ask the outer call to go round again.
  void Service();
  // Reads until usrsctp has nothing (or receiving is paused); true if anything was read.
  bool ReadSocket();
  void HandleNotification(absl::Span<const uint8_t> notification);
  void HandleMessage(uint16_t stream, uint32_t ppid, absl::Span<const uint8_t> data);
  void FlushOutbox();
  bool FlushControls();
  // Sends one control message; false if the send buffer cannot take it now.
  bool SendControl(uint16_t stream, uint32_t ppid);
  // Bytes in usrsctp's send queue (SCTP_GET_SNDBUF_USE); nullopt without an association.
  std::optional<size_t> QueuedBytes();
  size_t SendSpace();
  void FinishStreamIfDone(uint16_t stream);
  // Records the end of the association; the socket is closed and on_closed called by Service.
  void MarkClosed(absl::Status reason);
  // Closes the socket, aborting the association if it still lives.
  void CloseSocket();

  const Role role_;
  const SctpOptions options_;
  const std::function<void(absl::Span<const uint8_t>)> send_datagram_;
  const Callbacks callbacks_;

  uintptr_t conn_id_ = 0;  // Our AF_CONN address, from UsrsctpLibrary; 0 until registered.
  struct socket* socket_ = nullptr;
  size_t send_buffer_limit_ = 0;  // SO_SNDBUF as usrsctp reports it.

  State state_ = State::kConnecting;
  absl::Status close_reason_;
  bool close_reported_ = false;
  bool receiving_paused_ = false;
  bool want_writable_ = false;
  bool in_service_ = false;
  bool service_again_ = false;
  uint16_t stream_limit_ = 0;  // Usable ids after COMM_UP: min(inbound, outbound).
  uint16_t next_stream_id_ = 0;
  std::map<uint16_t, StreamState> streams_;
  // Control messages (stream, ppid) waiting for send-buffer space, in order.
  std::vector<std::pair<uint16_t, uint32_t>> pending_controls_;
  absl::Time last_timeout_ = absl::InfinitePast();
  Stats stats_;
  std::vector<uint8_t> receive_buffer_;

  std::atomic<bool> needs_service_{false};
  mutable std::mutex outbox_mu_;  // Not absl::Mutex: see UsrsctpLibrary on TSan.
  std::vector<std::vector<uint8_t>> outbox_ ABSL_GUARDED_BY(outbox_mu_);
  std::vector<std::vector<uint8_t>> spare_buffers_ ABSL_GUARDED_BY(outbox_mu_);
  std::vector<std::vector<uint8_t>> flush_batch_;  // Owner thread only; kept for its capacity.
};

}  // namespace edgelink::stream

#endif  // EDGELINK_COMMON_STREAM_SCTP_TRANSPORT_H_
