#include "common/stream/sctp_transport.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <usrsctp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace edgelink::stream {
namespace {

// Payload protocol identifiers of our three message kinds. OPEN and FIN carry one ignored byte
// (SCTP has no empty messages).
constexpr uint32_t kPpidOpen = 0x45444c01;  // "EDL" 1
constexpr uint32_t kPpidData = 0x45444c02;
constexpr uint32_t kPpidFin = 0x45444c03;

// Largest message Send makes. Messages are the unit the stream scheduler round-robins over, so
// this bounds how long one stream can hold the others back; and it is the receive buffer size,
// so a message is read whole.
constexpr size_t kMaxMessage = 64 * 1024;

// on_writable waits for this much room (or a quarter of the buffer if smaller), so a sender woken
// up can write a useful amount rather than a packet at a time.
constexpr size_t kWritableThreshold = 64 * 1024;

// SCTP common header: source and destination port, verification tag, CRC32c.
constexpr size_t kSctpCommonHeaderSize = sizeof(struct sctp_common_header);

// SCTP_GET_SNDBUF_USE is not in usrsctp.h; number and struct are from usrsctp's netinet/sctp.h and
// sctp_uio.h (unchanged since FreeBSD 7). It reads the association's send-queue size, which is
// what non-blocking sends are checked against.
constexpr int kSctpGetSndbufUse = 0x00001101;
struct SctpSockstat {
  sctp_assoc_t ss_assoc_id;
  uint32_t ss_total_sndbuf;
  uint32_t ss_total_recv_buf;
};

// usrsctp_finish fails while endpoints still wait for their timers; the last Unregister runs the
// timers forward this much at a time, at most this many times.
constexpr uint32_t kFinishStepMs = 1000;
constexpr int kFinishAttempts = 100;

// Sent datagrams' buffers kept for reuse.
constexpr size_t kMaxSpareBuffers = 64;

// Datagrams larger than this cannot be SCTP over anything and are not fed in.
constexpr size_t kMaxInputDatagram = 65535;

std::string ErrnoText(const char* what, int error) {
  return absl::StrCat(what, ": ", std::strerror(error));
}

template <typename T>
absl::Status SetOption(struct socket* sock, int level, int name, const T& value, const char* what) {
  if (usrsctp_setsockopt(sock, level, name, &value, sizeof(value)) != 0) {
    return absl::InternalError(ErrnoText(what, errno));
  }
  return absl::OkStatus();
}

uint32_t ToMs(absl::Duration d) { return static_cast<uint32_t>(absl::ToInt64Milliseconds(d)); }

}  // namespace

// UsrsctpLibrary: the process-wide usrsctp state. Reference-counted by transports; maps AF_CONN
// addresses (small integers, never reused) to live transports so usrsctp's callbacks, which may
// run on any thread and after a transport is gone, find their transport or nothing.
//
// Locks, in the order they may be taken: lifecycle_mu_ (init/finish) → timers_mu_ → usrsctp's
// own locks → registry_mu_ (usrsctp callbacks take it) → a transport's outbox_mu_. clock_mu_ is
// never held while calling usrsctp.
class UsrsctpLibrary {
 public:
  static UsrsctpLibrary& Get() {
    static UsrsctpLibrary* const library = new UsrsctpLibrary;
    return *library;
  }

  // Register initialises usrsctp if this is the first user and returns the transport's AF_CONN
  // address.
  uintptr_t Register(SctpTransport* transport) ABSL_LOCKS_EXCLUDED(lifecycle_mu_, registry_mu_) {
    {
      std::lock_guard<std::mutex> lock(lifecycle_mu_);
      if (!initialized_) {
        usrsctp_init_nothreads(0, &UsrsctpLibrary::ConnOutput, nullptr);
        // Neither is of use over one AF_CONN address, and both widen what a peer can reach.
        usrsctp_sysctl_set_sctp_asconf_enable(0);
        usrsctp_sysctl_set_sctp_auth_enable(0);
        // ECN needs IP header bits our channel does not carry.
        usrsctp_sysctl_set_sctp_ecn_enable(0);
        // No CRC32c: packets go out with a zero checksum and none is checked (RFC 9653's zero
        // checksum, for SCTP over a lower layer that authenticates every packet, as the secure
        // channel does). Debian's libusrsctp is built without optimisation and its table-driven
        // CRC32c took ~30% of the CPU in sctp_bench.
        usrsctp_enable_crc32c_offload();
        // The default (512) stops sends and drops received chunks well before a 1 MiB window
        // is full (~880 full-size chunks); 16384 covers 4 MiB windows of ~256-byte chunks.
        usrsctp_sysctl_set_sctp_max_chunks_on_queue(16384);
        initialized_ = true;
      }
      ++users_;
    }
    uintptr_t id;
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      id = next_id_++;
      transports_[id] = transport;
    }
    usrsctp_register_address(reinterpret_cast<void*>(id));
    return id;
  }

  // Unregister forgets the transport (its socket must be closed already); the last user finishes
  // usrsctp.
  void Unregister(uintptr_t id) ABSL_LOCKS_EXCLUDED(lifecycle_mu_, registry_mu_) {
    usrsctp_deregister_address(reinterpret_cast<void*>(id));
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      transports_.erase(id);
    }
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (--users_ > 0) return;
    {
      std::lock_guard<std::mutex> clock_lock(clock_mu_);
      clock_ = absl::InfinitePast();
    }
    // Closed endpoints are freed by a timer; run timers until usrsctp lets go. If it never does
    // (a bug in usrsctp), it stays initialised and the next Register reuses it.
    for (int attempt = 0; attempt < kFinishAttempts; ++attempt) {
      if (usrsctp_finish() == 0) {
        initialized_ = false;
        return;
      }
      std::lock_guard<std::mutex> timers_lock(timers_mu_);
      usrsctp_handle_timers(kFinishStepMs);
    }
  }

  // AdvanceClock moves usrsctp's clock to `now` (never backwards) and runs due timers.
  void AdvanceClock(absl::Time now) ABSL_LOCKS_EXCLUDED(clock_mu_) {
    int64_t elapsed_ms;
    {
      std::lock_guard<std::mutex> lock(clock_mu_);
      if (clock_ == absl::InfinitePast()) {
        clock_ = now;
        return;
      }
      if (now <= clock_) return;
      elapsed_ms = std::min<int64_t>(absl::ToInt64Milliseconds(now - clock_), 1 << 30);
      if (elapsed_ms <= 0) return;
      clock_ += absl::Milliseconds(elapsed_ms);
    }
    std::lock_guard<std::mutex> lock(timers_mu_);
    usrsctp_handle_timers(static_cast<uint32_t>(elapsed_ms));
  }

  // usrsctp's socket upcall: something to read, room to write, or an error.
  static void Upcall(struct socket* /*sock*/, void* arg, int /*flags*/) {
    UsrsctpLibrary& library = Get();
    std::lock_guard<std::mutex> lock(library.registry_mu_);
    auto it = library.transports_.find(reinterpret_cast<uintptr_t>(arg));
    if (it != library.transports_.end()) it->second->MarkNeedsService();
  }

 private:
  UsrsctpLibrary() = default;

  // usrsctp's output function: `addr` is the sending endpoint's AF_CONN address.
  static int ConnOutput(void* addr, void* buffer, size_t length, uint8_t /*tos*/,
                        uint8_t /*set_df*/) {
    UsrsctpLibrary& library = Get();
    std::lock_guard<std::mutex> lock(library.registry_mu_);
    auto it = library.transports_.find(reinterpret_cast<uintptr_t>(addr));
    if (it != library.transports_.end()) it->second->QueueDatagram(buffer, length);
    return 0;
  }

  // std::mutex rather than absl::Mutex throughout: Debian's Abseil is not built with TSan
  // annotations, so TSan could not see absl::Mutex synchronise.
  std::mutex lifecycle_mu_;
  bool initialized_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  int users_ ABSL_GUARDED_BY(lifecycle_mu_) = 0;

  std::mutex registry_mu_;
  uintptr_t next_id_ ABSL_GUARDED_BY(registry_mu_) = 1;
  absl::flat_hash_map<uintptr_t, SctpTransport*> transports_ ABSL_GUARDED_BY(registry_mu_);

  std::mutex clock_mu_;
  absl::Time clock_ ABSL_GUARDED_BY(clock_mu_) = absl::InfinitePast();

  // usrsctp_handle_timers walks the callout queue through unlocked globals (the callout in
  // progress, the next one): two threads in it at once corrupt the heap (seen with two event
  // loops). usrsctp's own timer thread never has that problem, being one thread.
  std::mutex timers_mu_;
};

absl::StatusOr<std::unique_ptr<SctpTransport>> SctpTransport::New(
    Role role, std::function<void(absl::Span<const uint8_t>)> send_datagram, Callbacks callbacks,
    const SctpOptions& options) {
  if (!send_datagram) return absl::InvalidArgumentError("send_datagram is required");
  if (options.max_streams < 2) return absl::InvalidArgumentError("max_streams must be >= 2");
  if (options.max_datagram_size < 512) {
    return absl::InvalidArgumentError("max_datagram_size must be >= 512");
  }
  if (options.send_buffer_bytes < kMaxMessage || options.receive_buffer_bytes < kMaxMessage ||
      options.send_buffer_bytes > (1u << 30) || options.receive_buffer_bytes > (1u << 30)) {
    return absl::InvalidArgumentError("socket buffers must be between 64 KiB and 1 GiB");
  }
  if (options.rto_min < absl::Milliseconds(1) || options.rto_initial < options.rto_min ||
      options.rto_max < options.rto_initial || options.rto_max > absl::Hours(1)) {
    return absl::InvalidArgumentError("need 1 ms <= rto_min <= rto_initial <= rto_max <= 1 h");
  }
  if (options.timer_granularity < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("timer_granularity must be >= 1 ms");
  }
  if (options.port == 0) return absl::InvalidArgumentError("port must not be 0");
  std::unique_ptr<SctpTransport> transport(
      new SctpTransport(role, std::move(send_datagram), std::move(callbacks), options));
  RETURN_IF_ERROR(transport->Start());
  return transport;
}

SctpTransport::SctpTransport(Role role,
                             std::function<void(absl::Span<const uint8_t>)> send_datagram,
                             Callbacks callbacks, const SctpOptions& options)
    : role_(role),
      options_(options),
      send_datagram_(std::move(send_datagram)),
      callbacks_(std::move(callbacks)),
      next_stream_id_(role == Role::kClient ? 0 : 1),
      receive_buffer_(kMaxMessage) {}

SctpTransport::~SctpTransport() {
  if (socket_ != nullptr) CloseSocket();
  // The ABORT that closing made is dropped with everything else queued: calling send_datagram
  // from a destructor would reach into objects the owner may be tearing down too.
  if (conn_id_ != 0) UsrsctpLibrary::Get().Unregister(conn_id_);
}

absl::Status SctpTransport::Start() {
  conn_id_ = UsrsctpLibrary::Get().Register(this);
  socket_ = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
  if (socket_ == nullptr) return absl::InternalError(ErrnoText("usrsctp_socket", errno));
  // Set before anything can happen on the socket, so no event is missed.
  if (usrsctp_set_upcall(socket_, &UsrsctpLibrary::Upcall, reinterpret_cast<void*>(conn_id_)) !=
      0) {
    return absl::InternalError(ErrnoText("usrsctp_set_upcall", errno));
  }
  if (usrsctp_set_non_blocking(socket_, 1) != 0) {
    return absl::InternalError(ErrnoText("usrsctp_set_non_blocking", errno));
  }
  // Buffers before connect: the INIT advertises the receive buffer as the initial window.
  RETURN_IF_ERROR(SetOption(socket_, SOL_SOCKET, SO_SNDBUF,
                            static_cast<int>(options_.send_buffer_bytes), "SO_SNDBUF"));
  RETURN_IF_ERROR(SetOption(socket_, SOL_SOCKET, SO_RCVBUF,
                            static_cast<int>(options_.receive_buffer_bytes), "SO_RCVBUF"));
  int value = 0;
  socklen_t length = sizeof(value);
  if (usrsctp_getsockopt(socket_, SOL_SOCKET, SO_SNDBUF, &value, &length) != 0 || value <= 0) {
    return absl::InternalError(ErrnoText("getsockopt(SO_SNDBUF)", errno));
  }
  send_buffer_limit_ = static_cast<size_t>(value);
  // Small writes (a keystroke through a tunnel) go out at once rather than waiting for more.
  RETURN_IF_ERROR(SetOption(socket_, IPPROTO_SCTP, SCTP_NODELAY, 1, "SCTP_NODELAY"));
  RETURN_IF_ERROR(SetOption(socket_, IPPROTO_SCTP, SCTP_RECVRCVINFO, 1, "SCTP_RECVRCVINFO"));
  for (uint16_t type : {SCTP_ASSOC_CHANGE, SCTP_SHUTDOWN_EVENT}) {
    struct sctp_event event = {};
    event.se_assoc_id = SCTP_FUTURE_ASSOC;
    event.se_type = type;
    event.se_on = 1;
    RETURN_IF_ERROR(SetOption(socket_, IPPROTO_SCTP, SCTP_EVENT, event, "SCTP_EVENT"));
  }
  struct sctp_initmsg init = {};
  init.sinit_num_ostreams = options_.max_streams;
  init.sinit_max_instreams = options_.max_streams;
  init.sinit_max_attempts = 8;
  init.sinit_max_init_timeo = static_cast<uint16_t>(std::min<uint32_t>(ToMs(options_.rto_max),
                                                                       UINT16_MAX));
  RETURN_IF_ERROR(SetOption(socket_, IPPROTO_SCTP, SCTP_INITMSG, init, "SCTP_INITMSG"));
  struct sctp_rtoinfo rto = {};
  rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
  rto.srto_initial = ToMs(options_.rto_initial);
  rto.srto_min = ToMs(options_.rto_min);
  rto.srto_max = ToMs(options_.rto_max);
  RETURN_IF_ERROR(SetOption(socket_, IPPROTO_SCTP, SCTP_RTOINFO, rto, "SCTP_RTOINFO"));
  // usrsctp's path MTU counts from the SCTP common header on (no IP header over AF_CONN) but not
  // the header itself: checked, an MTU of 1200 gives 1212-byte packets.
  struct sctp_paddrparams paddr = {};
  paddr.spp_assoc_id = SCTP_FUTURE_ASSOC;
  // The path below can change (direct, relay, failover): after an outage usrsctp marks its only
  // path unreachable and only a heartbeat revives it, so heartbeat every second, not every 30.
  paddr.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
  paddr.spp_hbinterval = 1000;
  paddr.spp_pathmtu = options_.max_datagram_size - kSctpCommonHeaderSize;
  RETURN_IF_ERROR(
      SetOption(socket_, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, paddr, "SCTP_PEER_ADDR_PARAMS"));

  // Both ends bind and connect to the same AF_CONN address, their own: usrsctp_conninput marks a
  // packet as coming from and going to the address it is fed with, so the peer's packets match
  // this association.
  struct sockaddr_conn address = {};
  address.sconn_family = AF_CONN;
  address.sconn_port = htons(options_.port);
  address.sconn_addr = reinterpret_cast<void*>(conn_id_);
  if (usrsctp_bind(socket_, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::InternalError(ErrnoText("usrsctp_bind", errno));
  }
  if (usrsctp_connect(socket_, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) !=
          0 &&
      errno != EINPROGRESS) {
    return absl::InternalError(ErrnoText("usrsctp_connect", errno));
  }
  Service();
  return absl::OkStatus();
}

void SctpTransport::QueueDatagram(const void* data, size_t length) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  std::lock_guard<std::mutex> lock(outbox_mu_);
  std::vector<uint8_t> datagram;
  if (!spare_buffers_.empty()) {
    datagram = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
  }
  datagram.assign(bytes, bytes + length);
  outbox_.push_back(std::move(datagram));
}

void SctpTransport::OnDatagram(absl::Span<const uint8_t> datagram) {
  if (datagram.empty() || datagram.size() > kMaxInputDatagram) {
    ++stats_.datagrams_dropped;
    return;
  }
  ++stats_.datagrams_in;
  // Fed in even after close: usrsctp then answers stray packets as RFC 4960 section 8.4 says
  // (e.g. SHUTDOWN COMPLETE to a retransmitted SHUTDOWN ACK), which lets the peer finish.
  usrsctp_conninput(reinterpret_cast<void*>(conn_id_), datagram.data(), datagram.size(), 0);
  Service();
}

absl::Time SctpTransport::NextTimeout(absl::Time now) const {
  if (needs_service_.load(std::memory_order_acquire)) return now;
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    if (!outbox_.empty()) return now;
  }
  if (state_ == State::kClosed) return absl::InfiniteFuture();
  if (last_timeout_ == absl::InfinitePast()) return now;
  return std::max(now, last_timeout_ + options_.timer_granularity);
}

void SctpTransport::OnTimeout(absl::Time now) {
  last_timeout_ = now;
  UsrsctpLibrary::Get().AdvanceClock(now);
  Service();
}

absl::StatusOr<uint16_t> SctpTransport::OpenStream() {
  if (state_ != State::kConnected) {
    return absl::FailedPreconditionError("the association is not connected");
  }
  const uint16_t first = role_ == Role::kClient ? 0 : 1;
  const uint32_t ours = stream_limit_ > first ? (stream_limit_ - first + 1u) / 2 : 0;
  std::optional<uint16_t> id;
  for (uint32_t tried = 0; tried < ours; ++tried) {
    const uint16_t candidate = next_stream_id_ < stream_limit_ ? next_stream_id_ : first;
    next_stream_id_ = candidate + 2 < stream_limit_ ? candidate + 2 : first;
    if (streams_.count(candidate) == 0) {
      id = candidate;
      break;
    }
  }
  if (!id.has_value()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", ours, " stream ids of this side are in use"));
  }
  StreamState& stream = streams_[*id];
  if (!pending_controls_.empty() || !SendControl(*id, kPpidOpen)) {
    stream.open_pending = true;
    pending_controls_.emplace_back(*id, kPpidOpen);
    want_writable_ = true;
  }
  const uint16_t result = *id;
  Service();
  return result;
}

absl::StatusOr<size_t> SctpTransport::Send(uint16_t stream, absl::Span<const uint8_t> data) {
  if (state_ != State::kConnected) {
    return absl::FailedPreconditionError("the association is not connected");
  }
  auto it = streams_.find(stream);
  if (it == streams_.end()) return absl::NotFoundError(absl::StrCat("stream ", stream, " not open"));
  if (!it->second.local_open) {
    return absl::FailedPreconditionError(absl::StrCat("stream ", stream, " closed for sending"));
  }
  if (data.empty()) return 0;
  size_t taken = 0;
  absl::Status error;
  // Controls first: an OPEN still waiting must precede this stream's data.
  if (pending_controls_.empty() || FlushControls()) {
    struct sctp_sndinfo info = {};
    info.snd_sid = stream;
    info.snd_ppid = htonl(kPpidData);
    while (taken < data.size()) {
      const size_t n = std::min({data.size() - taken, kMaxMessage, SendSpace()});
      if (n == 0) break;
      const ssize_t sent = usrsctp_sendv(socket_, data.data() + taken, n, nullptr, 0, &info,
                                         sizeof(info), SCTP_SENDV_SNDINFO, 0);
      if (sent < 0) {
        // EWOULDBLOCK despite the space check: usrsctp's chunk-count limit was hit.
        if (errno != EWOULDBLOCK && errno != EAGAIN) {
          error = absl::UnavailableError(ErrnoText("usrsctp_sendv", errno));
        }
        break;
      }
      taken += static_cast<size_t>(sent);
    }
  }
  if (taken < data.size() && error.ok()) want_writable_ = true;
  Service();
  if (taken == 0 && !error.ok()) return error;
  return taken;
}

absl::Status SctpTransport::CloseStream(uint16_t stream) {
  if (state_ != State::kConnected) {
    return absl::FailedPreconditionError("the association is not connected");
  }
  auto it = streams_.find(stream);
  if (it == streams_.end()) return absl::NotFoundError(absl::StrCat("stream ", stream, " not open"));
  if (!it->second.local_open) {
    return absl::FailedPreconditionError(absl::StrCat("stream ", stream, " already closed"));
  }
  it->second.local_open = false;
  if (!pending_controls_.empty() || !SendControl(stream, kPpidFin)) {
    it->second.fin_pending = true;
    pending_controls_.emplace_back(stream, kPpidFin);
    want_writable_ = true;
  }
  FinishStreamIfDone(stream);
  Service();
  return absl::OkStatus();
}

void SctpTransport::PauseReceiving() { receiving_paused_ = true; }

void SctpTransport::ResumeReceiving() {
  receiving_paused_ = false;
  Service();
}

void SctpTransport::Close() {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (state_ == State::kConnecting) {
    Abort();
    return;
  }
  state_ = State::kClosing;
  FlushControls();
  // SHUT_WR: SCTP sends SHUTDOWN once everything queued is acknowledged, and the peer finishes
  // sending what it has queued; we keep reading until SHUTDOWN COMPLETE.
  if (usrsctp_shutdown(socket_, SHUT_WR) != 0) {
    MarkClosed(absl::UnavailableError(ErrnoText("usrsctp_shutdown", errno)));
  }
  Service();
}

void SctpTransport::Abort() {
  if (state_ == State::kClosed) return;
  MarkClosed(absl::CancelledError("aborted by this side"));
  Service();
}

absl::StatusOr<SctpTransport::PathInfo> SctpTransport::GetPathInfo() {
  if (socket_ == nullptr || (state_ != State::kConnected && state_ != State::kClosing)) {
    return absl::FailedPreconditionError("the association is not up");
  }
  struct sctp_status status = {};
  socklen_t length = sizeof(status);
  if (usrsctp_getsockopt(socket_, IPPROTO_SCTP, SCTP_STATUS, &status, &length) != 0) {
    return absl::InternalError(ErrnoText("getsockopt(SCTP_STATUS)", errno));
  }
  PathInfo info;
  info.congestion_window = status.sstat_primary.spinfo_cwnd;
  info.peer_window = status.sstat_rwnd;
  info.smoothed_rtt = absl::Milliseconds(status.sstat_primary.spinfo_srtt);
  info.rto = absl::Milliseconds(status.sstat_primary.spinfo_rto);
  info.unacked_chunks = status.sstat_unackdata;
  info.pending_chunks = status.sstat_penddata;
  info.mtu = status.sstat_primary.spinfo_mtu;
  return info;
}

std::optional<size_t> SctpTransport::QueuedBytes() {
  if (socket_ == nullptr) return std::nullopt;
  SctpSockstat stat = {};
  socklen_t length = sizeof(stat);
  if (usrsctp_getsockopt(socket_, IPPROTO_SCTP, kSctpGetSndbufUse, &stat, &length) != 0) {
    return std::nullopt;  // No association (any more).
  }
  return stat.ss_total_sndbuf;
}

size_t SctpTransport::BufferedAmount() { return QueuedBytes().value_or(0); }

size_t SctpTransport::SendSpace() {
  const std::optional<size_t> queued = QueuedBytes();
  // The queue size also counts per-chunk overhead that usrsctp's own check leaves out, so this
  // errs on the small side.
  if (!queued.has_value() || *queued >= send_buffer_limit_) return 0;
  return send_buffer_limit_ - *queued;
}

bool SctpTransport::SendControl(uint16_t stream, uint32_t ppid) {
  const uint8_t byte = 0;
  struct sctp_sndinfo info = {};
  info.snd_sid = stream;
  info.snd_ppid = htonl(ppid);
  return usrsctp_sendv(socket_, &byte, 1, nullptr, 0, &info, sizeof(info), SCTP_SENDV_SNDINFO,
                       0) == 1;
}

bool SctpTransport::FlushControls() {
  size_t done = 0;
  while (done < pending_controls_.size() && state_ != State::kClosed && socket_ != nullptr) {
    const auto [stream, ppid] = pending_controls_[done];
    if (!SendControl(stream, ppid)) break;
    ++done;
    auto it = streams_.find(stream);
    if (it == streams_.end()) continue;
    (ppid == kPpidOpen ? it->second.open_pending : it->second.fin_pending) = false;
    FinishStreamIfDone(stream);
  }
  pending_controls_.erase(pending_controls_.begin(), pending_controls_.begin() + done);
  return pending_controls_.empty();
}

void SctpTransport::FinishStreamIfDone(uint16_t stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  const StreamState& s = it->second;
  if (!s.local_open && !s.remote_open && !s.open_pending && !s.fin_pending) streams_.erase(it);
}

void SctpTransport::MarkClosed(absl::Status reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_reason_ = std::move(reason);
  streams_.clear();
  pending_controls_.clear();
  want_writable_ = false;
}

void SctpTransport::CloseSocket() {
  // Linger 0: usrsctp_close aborts a live association (ABORT to the peer) and frees the endpoint
  // now rather than after a graceful shutdown nobody would drive.
  struct linger linger = {};
  linger.l_onoff = 1;
  linger.l_linger = 0;
  usrsctp_setsockopt(socket_, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  usrsctp_set_upcall(socket_, nullptr, nullptr);
  usrsctp_close(socket_);
  socket_ = nullptr;
}

void SctpTransport::Service() {
  if (in_service_) {
    service_again_ = true;
    return;
  }
  in_service_ = true;
  bool again;
  do {
    service_again_ = false;
    needs_service_.store(false, std::memory_order_release);
    bool read_something = false;
    if (socket_ != nullptr) {
      read_something = ReadSocket();
      if (state_ != State::kClosed && !pending_controls_.empty()) FlushControls();
      if (want_writable_ && state_ == State::kConnected && pending_controls_.empty() &&
          SendSpace() >= std::min(kWritableThreshold, send_buffer_limit_ / 4)) {
        want_writable_ = false;
        if (callbacks_.on_writable) callbacks_.on_writable();
      }
      if (state_ == State::kClosed && socket_ != nullptr) CloseSocket();
    }
    FlushOutbox();
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      again = service_again_ || !outbox_.empty();
    }
    // An upcall during a round that read something (callbacks may have sent, and usrsctp may
    // have queued more) means another look. Otherwise NextTimeout reports the flag to the owner,
    // which keeps this loop from spinning on upcalls that bring nothing.
    if (read_something && needs_service_.load(std::memory_order_acquire)) again = true;
  } while (again);
  in_service_ = false;
  if (state_ == State::kClosed && !close_reported_) {
    close_reported_ = true;
    // Last: the owner may destroy this transport from on_closed.
    if (callbacks_.on_closed) callbacks_.on_closed(close_reason_);
  }
}

bool SctpTransport::ReadSocket() {
  bool read_something = false;
  while (socket_ != nullptr && state_ != State::kClosed) {
    if (receiving_paused_) {
      // Still notice an association that died while we were not reading.
      if ((usrsctp_get_events(socket_) & SCTP_EVENT_ERROR) != 0) {
        MarkClosed(absl::UnavailableError("association lost while receiving was paused"));
      }
      return read_something;
    }
    struct sctp_rcvinfo info = {};
    socklen_t info_length = sizeof(info);
    unsigned int info_type = SCTP_RECVV_NOINFO;
    struct sockaddr_conn from = {};
    socklen_t from_length = sizeof(from);
    int flags = 0;
    const ssize_t n = usrsctp_recvv(socket_, receive_buffer_.data(), receive_buffer_.size(),
                                    reinterpret_cast<struct sockaddr*>(&from), &from_length,
                                    &info, &info_length, &info_type, &flags);
    if (n < 0) {
      if (errno == EWOULDBLOCK || errno == EAGAIN) return read_something;
      MarkClosed(absl::UnavailableError(ErrnoText("association lost: usrsctp_recvv", errno)));
      return true;
    }
    if (n == 0) {
      // End of file: the association shut down (normally SHUTDOWN_COMP came first).
      MarkClosed(absl::OkStatus());
      return true;
    }
    read_something = true;
    const absl::Span<const uint8_t> bytes(receive_buffer_.data(), static_cast<size_t>(n));
    if ((flags & MSG_NOTIFICATION) != 0) {
      HandleNotification(bytes);
    } else if (info_type == SCTP_RECVV_RCVINFO) {
      HandleMessage(info.rcv_sid, ntohl(info.rcv_ppid), bytes);
    } else {
      ++stats_.protocol_violations;
    }
  }
  return read_something;
}

void SctpTransport::HandleNotification(absl::Span<const uint8_t> bytes) {
  union sctp_notification notification;
  std::memset(&notification, 0, sizeof(notification));
  std::memcpy(&notification, bytes.data(), std::min(bytes.size(), sizeof(notification)));
  if (bytes.size() < sizeof(notification.sn_header)) return;
  switch (notification.sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE: {
      const struct sctp_assoc_change& change = notification.sn_assoc_change;
      switch (change.sac_state) {
        case SCTP_COMM_UP:
          if (state_ != State::kConnecting) break;
          state_ = State::kConnected;
          stream_limit_ = std::min(change.sac_outbound_streams, change.sac_inbound_streams);
          if (callbacks_.on_connected) callbacks_.on_connected();
          break;
        case SCTP_COMM_LOST:
          MarkClosed(absl::UnavailableError("association lost: peer aborted or stopped answering"));
          break;
        case SCTP_CANT_STR_ASSOC:
          MarkClosed(absl::UnavailableError("could not set up the association"));
          break;
        case SCTP_SHUTDOWN_COMP:
          MarkClosed(absl::OkStatus());
          break;
        case SCTP_RESTART:
          // The peer started a new association in place of this one: our stream state no longer
          // matches its. End it rather than carry on half-reset.
          MarkClosed(absl::AbortedError("peer restarted the association"));
          break;
        default:
          break;
      }
      break;
    }
    case SCTP_SHUTDOWN_EVENT:
      if (state_ == State::kConnected) state_ = State::kClosing;
      break;
    default:
      break;
  }
}

void SctpTransport::HandleMessage(uint16_t stream, uint32_t ppid, absl::Span<const uint8_t> data) {
  switch (ppid) {
    case kPpidOpen: {
      const bool ours = (stream % 2 == 0) == (role_ == Role::kClient);
      if (ours || !streams_.try_emplace(stream).second) {
        ++stats_.protocol_violations;
        return;
      }
      if (callbacks_.on_stream_opened) callbacks_.on_stream_opened(stream);
      return;
    }
    case kPpidData: {
      auto it = streams_.find(stream);
      if (it == streams_.end() || !it->second.remote_open) {
        ++stats_.protocol_violations;
        return;
      }
      if (callbacks_.on_data) callbacks_.on_data(stream, data);
      return;
    }
    case kPpidFin: {
      auto it = streams_.find(stream);
      if (it == streams_.end() || !it->second.remote_open) {
        ++stats_.protocol_violations;
        return;
      }
      it->second.remote_open = false;
      if (callbacks_.on_stream_closed) callbacks_.on_stream_closed(stream);
      FinishStreamIfDone(stream);
      return;
    }
    default:
      ++stats_.protocol_violations;
      return;
  }
}

void SctpTransport::FlushOutbox() {
  std::vector<std::vector<uint8_t>> batch = std::move(flush_batch_);
  batch.clear();
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    batch.swap(outbox_);
  }
  if (batch.empty()) return;
  for (const std::vector<uint8_t>& datagram : batch) {
    ++stats_.datagrams_out;
    send_datagram_(datagram);
  }
  {
    // Keep the buffers for the next packets: a malloc and a free less per packet.
    std::lock_guard<std::mutex> lock(outbox_mu_);
    for (std::vector<uint8_t>& datagram : batch) {
      if (spare_buffers_.size() >= kMaxSpareBuffers) break;
      spare_buffers_.push_back(std::move(datagram));
    }
  }
  batch.clear();
  flush_batch_ = std::move(batch);
}

}  // namespace edgelink::stream
