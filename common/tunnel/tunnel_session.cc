#include "common/tunnel/tunnel_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace edgelink::tunnel {
namespace {

// A byte buffer consumed from the front; compacts instead of shifting on every read.
class ByteQueue {
 public:
  bool empty() const { return head_ == data_.size(); }
  size_t size() const { return data_.size() - head_; }
  absl::Span<const uint8_t> front() const { return absl::MakeConstSpan(data_).subspan(head_); }
  void Append(absl::Span<const uint8_t> bytes) {
    if (head_ > 0 && head_ >= data_.size() / 2) {
      data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }
  void Consume(size_t n) {
    head_ += n;
    if (head_ == data_.size()) Clear();
  }
  void Clear() {
    data_.clear();
    head_ = 0;
    // A drained buffer of a fast connection need not keep a slow one's peak.
    if (data_.capacity() > kKeptCapacity) data_.shrink_to_fit();
  }

 private:
  static constexpr size_t kKeptCapacity = 64 * 1024;
  std::vector<uint8_t> data_;
  size_t head_ = 0;
};

}  // namespace

stream::SctpOptions DefaultTunnelSctpOptions() {
  stream::SctpOptions options;
  options.max_datagram_size = kStreamDatagramSize;
  return options;
}

enum class Phase {
  kWaitAssociation,  // Client: no stream yet (the association is not up).
  kAwaitStatus,      // Client: REQUEST sent.
  kAwaitRequest,     // Device: collecting REQUEST.
  kConnecting,       // Device: connect() to the local service in progress.
  kOpen,             // Bytes flow.
  kEnding,           // Refused or failed: no local side; waiting for the stream to close.
};

class TunnelSession::Scope {
 public:
  explicit Scope(TunnelSession* session, bool from_local = false)
      : session_(session), from_local_(from_local) {
    ++session_->depth_;
  }
  ~Scope() {
    if (session_->depth_ == 1) {
      session_->Settle();
      if (from_local_ && session_->callbacks_.on_wake && !session_->closed_ &&
          session_->transport_->NextTimeout(absl::InfinitePast()) == absl::InfinitePast()) {
        session_->callbacks_.on_wake();
      }
    }
    --session_->depth_;
  }

 private:
  TunnelSession* const session_;
  const bool from_local_;
};

struct TunnelSession::Tunnel : LocalConnection::Listener {
  Tunnel(TunnelSession* s, uint64_t i, Phase p) : session(s), id(i), phase(p) {}

  void OnConnected() override {
    Scope scope(session, true);
    session->OnLocalConnected(*this);
  }
  void OnData(absl::Span<const uint8_t> data) override {
    Scope scope(session, true);
    session->OnLocalData(*this, data);
  }
  void OnEnd() override {
    Scope scope(session, true);
    session->OnLocalEnd(*this);
  }
  void OnWritable() override {
    Scope scope(session, true);
    session->OnLocalWritable(*this);
  }
  void OnError(absl::Status status) override {
    Scope scope(session, true);
    session->OnLocalError(*this, std::move(status));
  }

  TunnelSession* const session;
  const uint64_t id;
  Phase phase;
  uint16_t port = 0;
  std::optional<uint16_t> stream;
  std::unique_ptr<LocalConnection> local;
  RequestReader request;
  ByteQueue to_local;             // From the stream, not yet taken by the local connection.
  ByteQueue to_stream;            // From the local connection, not yet taken by the send buffer.
  bool stream_fin_sent = false;   // Our direction of the stream is closed.
  bool fin_when_flushed = false;  // Close it once to_stream is sent.
  bool peer_fin = false;          // The peer's direction is closed.
  bool stream_released = false;   // Both directions closed: the id is the transport's again.
  bool local_eof = false;         // The local peer sent FIN.
  bool local_shut = false;        // We sent FIN to the local peer.
  bool reading = false;
  bool blocking = false;      // to_local is over its limit: the association is paused.
  bool opened = false;        // kOpened was reported.
  bool reported_end = false;  // kRefused was reported.
  absl::Status error;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

absl::StatusOr<std::unique_ptr<TunnelSession>> TunnelSession::New(TunnelSessionOptions options,
                                                                  SendDatagram send_datagram,
                                                                  Callbacks callbacks) {
  if (options.side == TunnelSessionOptions::Side::kDevice && options.connector == nullptr) {
    return absl::InvalidArgumentError("a device tunnel session needs a connector");
  }
  if (options.sctp.max_datagram_size > kStreamDatagramSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCTP packets must fit a stream datagram (", kStreamDatagramSize, " bytes)"));
  }
  if (options.local_buffer_limit == 0 || options.session_buffer_limit == 0 ||
      options.max_tunnels == 0) {
    return absl::InvalidArgumentError("buffer limits and max_tunnels must be positive");
  }
  const stream::SctpTransport::Role role = options.side == TunnelSessionOptions::Side::kClient
                                               ? stream::SctpTransport::Role::kClient
                                               : stream::SctpTransport::Role::kServer;
  const stream::SctpOptions sctp = options.sctp;
  std::unique_ptr<TunnelSession> session(
      new TunnelSession(std::move(options), std::move(callbacks)));
  TunnelSession* s = session.get();
  stream::SctpTransport::Callbacks events;
  events.on_connected = [s] { s->OnAssociationUp(); };
  events.on_stream_opened = [s](uint16_t stream) { s->OnStreamOpened(stream); };
  events.on_data = [s](uint16_t stream, absl::Span<const uint8_t> data) {
    s->OnStreamData(stream, data);
  };
  events.on_writable = [s] { s->OnStreamWritable(); };
  events.on_stream_closed = [s](uint16_t stream) { s->OnStreamClosed(stream); };
  events.on_closed = [s](absl::Status reason) { s->OnAssociationClosed(std::move(reason)); };
  ASSIGN_OR_RETURN(session->transport_, stream::SctpTransport::New(role, std::move(send_datagram),
                                                                   std::move(events), sctp));
  return session;
}

TunnelSession::TunnelSession(TunnelSessionOptions options, Callbacks callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {}

TunnelSession::~TunnelSession() {
  // Local connections first: none of them reports anything from its destructor.
  by_stream_.clear();
  tunnels_.clear();
  graveyard_.clear();
  transport_.reset();
}

bool TunnelSession::connected() const {
  return !closed_ && transport_->state() == stream::SctpTransport::State::kConnected;
}

size_t TunnelSession::buffered_bytes() const {
  size_t total = 0;
  for (const auto& [id, t] : tunnels_) total += t->to_local.size() + t->to_stream.size();
  return total;
}

void TunnelSession::OnDatagram(absl::Span<const uint8_t> datagram) {
  Scope scope(this);
  if (!closed_) transport_->OnDatagram(datagram);
}

absl::Time TunnelSession::NextTimeout(absl::Time now) const {
  if (closed_) return absl::InfiniteFuture();
  return transport_->NextTimeout(now);
}

void TunnelSession::OnTimeout(absl::Time now) {
  Scope scope(this);
  if (!closed_) transport_->OnTimeout(now);
}

absl::StatusOr<uint64_t> TunnelSession::Open(uint16_t port,
                                             std::unique_ptr<LocalConnection> local) {
  Scope scope(this);
  if (options_.side != TunnelSessionOptions::Side::kClient) {
    return absl::FailedPreconditionError("only the client opens tunnels");
  }
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the stream association ended: ", close_reason_.message()));
  }
  if (tunnels_.size() >= options_.max_tunnels) {
    return absl::ResourceExhaustedError(
        absl::StrCat("already ", tunnels_.size(), " tunnels on this session"));
  }
  const uint64_t id = next_id_++;
  auto owned = std::make_unique<Tunnel>(this, id, Phase::kWaitAssociation);
  Tunnel& t = *owned;
  t.port = port;
  t.local = std::move(local);
  tunnels_.emplace(id, std::move(owned));
  ++counters_.requests;
  t.local->Start(&t);
  if (connected()) StartStream(t);
  return id;
}

void TunnelSession::OnAssociationUp() {
  for (auto& [id, t] : tunnels_) {
    if (t->phase == Phase::kWaitAssociation) StartStream(*t);
  }
}

void TunnelSession::StartStream(Tunnel& t) {
  absl::StatusOr<uint16_t> stream = transport_->OpenStream();
  if (!stream.ok()) {
    ++counters_.connect_failed;
    Fail(t, stream.status());
    return;
  }
  t.stream = *stream;
  by_stream_[*stream] = &t;
  t.phase = Phase::kAwaitStatus;
  QueueToStream(t, EncodeRequest(t.port));
}

void TunnelSession::OnStreamOpened(uint16_t stream) {
  if (by_stream_.contains(stream)) return;  // The transport does not reuse live ids.
  const uint64_t id = next_id_++;
  const bool device = options_.side == TunnelSessionOptions::Side::kDevice;
  auto owned = std::make_unique<Tunnel>(this, id, device ? Phase::kAwaitRequest : Phase::kEnding);
  Tunnel& t = *owned;
  t.stream = stream;
  by_stream_[stream] = &t;
  tunnels_.emplace(id, std::move(owned));
  if (!device) {
    // Devices never open tunnels towards clients.
    ++counters_.bad_requests;
    t.reported_end = true;
    RequestStreamClose(t);
    return;
  }
  ++counters_.requests;
}

void TunnelSession::OnStreamData(uint16_t stream, absl::Span<const uint8_t> data) {
  auto it = by_stream_.find(stream);
  if (it == by_stream_.end()) {
    counters_.bytes_dropped += data.size();
    return;
  }
  Tunnel& t = *it->second;
  switch (t.phase) {
    case Phase::kAwaitRequest: {
      data = data.subspan(t.request.Feed(data));
      if (!t.request.complete()) return;
      HandleRequest(t);
      break;
    }
    case Phase::kAwaitStatus: {
      if (data.empty()) return;
      const uint8_t status = data[0];
      data = data.subspan(1);
      HandleStatus(t, status);
      break;
    }
    default:
      break;
  }
  if (!data.empty()) DeliverToLocal(t, data);
}

void TunnelSession::HandleRequest(Tunnel& t) {
  absl::StatusOr<TunnelRequest> request = t.request.Parse();
  if (!request.ok()) {
    ++counters_.bad_requests;
    Refuse(t, TunnelStatus::kBadRequest, request.status());
    return;
  }
  t.port = request->port;
  if (!options_.port_allowed || !options_.port_allowed(t.port)) {
    ++counters_.port_refused;
    Refuse(t, TunnelStatus::kPortNotAllowed,
           absl::PermissionDeniedError(absl::StrCat("port ", t.port, " is not allowed")));
    return;
  }
  absl::StatusOr<std::unique_ptr<LocalConnection>> local = options_.connector->Connect(t.port);
  if (!local.ok()) {
    ++counters_.connect_failed;
    Refuse(t, TunnelStatus::kConnectFailed, local.status());
    return;
  }
  t.local = *std::move(local);
  t.phase = Phase::kConnecting;
  t.local->Start(&t);
}

void TunnelSession::HandleStatus(Tunnel& t, uint8_t status) {
  absl::Status result = StatusFromWire(status, t.port);
  if (!result.ok()) {
    switch (static_cast<TunnelStatus>(status)) {
      case TunnelStatus::kPortNotAllowed:
        ++counters_.port_refused;
        break;
      case TunnelStatus::kConnectFailed:
        ++counters_.connect_failed;
        break;
      default:
        ++counters_.bad_requests;
        break;
    }
    Fail(t, std::move(result));
    return;
  }
  t.phase = Phase::kOpen;
  t.opened = true;
  ++counters_.opened;
  Report(t, TunnelEvent::Kind::kOpened, absl::OkStatus());
  if (t.local == nullptr) return;
  t.reading = true;
  t.local->SetReading(true);
  MaybeShutdownLocal(t);
}

bool TunnelSession::QueueToStream(Tunnel& t, absl::Span<const uint8_t> bytes) {
  if (t.to_stream.empty()) {
    absl::StatusOr<size_t> taken = transport_->Send(*t.stream, bytes);
    if (!taken.ok()) {
      Fail(t, absl::UnavailableError(absl::StrCat("stream: ", taken.status().message())));
      return false;
    }
    bytes = bytes.subspan(*taken);
  }
  if (!bytes.empty()) t.to_stream.Append(bytes);
  return true;
}

void TunnelSession::DeliverToLocal(Tunnel& t, absl::Span<const uint8_t> data) {
  t.bytes_received += data.size();
  counters_.bytes_received += data.size();
  if (t.local == nullptr || t.local_shut || t.phase == Phase::kEnding) {
    counters_.bytes_dropped += data.size();
    return;
  }
  if (t.phase == Phase::kOpen && t.to_local.empty()) {
    absl::StatusOr<size_t> written = t.local->Write(data);
    if (!written.ok()) {
      counters_.bytes_dropped += data.size();
      Fail(t, std::move(written).status());
      return;
    }
    data = data.subspan(*written);
  }
  if (!data.empty()) t.to_local.Append(data);
  UpdateBlocking(t);
}

void TunnelSession::FlushToLocal(Tunnel& t) {
  while (!t.to_local.empty() && t.local != nullptr) {
    absl::StatusOr<size_t> written = t.local->Write(t.to_local.front());
    if (!written.ok()) {
      counters_.bytes_dropped += t.to_local.size();
      Fail(t, std::move(written).status());
      return;
    }
    if (*written == 0) break;
    t.to_local.Consume(*written);
  }
  UpdateBlocking(t);
  MaybeShutdownLocal(t);
}

void TunnelSession::MaybeShutdownLocal(Tunnel& t) {
  if (t.peer_fin && t.phase == Phase::kOpen && t.local != nullptr && !t.local_shut &&
      t.to_local.empty()) {
    t.local_shut = true;
    t.local->ShutdownWrite();
  }
}

void TunnelSession::UpdateBlocking(Tunnel& t) {
  const size_t held = t.to_local.size();
  if (!t.blocking && held >= options_.local_buffer_limit) {
    t.blocking = true;
  } else if (t.blocking && held <= options_.local_buffer_limit / 2) {
    t.blocking = false;
  }
  // Pausing is only a flag: done at once, so usrsctp hands over no further message. Resuming
  // delivers data, so it waits for Settle.
  if (!paused_ && !closed_ && ShouldPause()) {
    paused_ = true;
    ++counters_.receive_pauses;
    transport_->PauseReceiving();
  }
}

bool TunnelSession::ShouldPause() const {
  size_t total = 0;
  for (const auto& [id, t] : tunnels_) {
    if (t->blocking) return true;
    total += t->to_local.size();
  }
  // Hysteresis as per connection: stay paused until down to half.
  return total >= (paused_ ? options_.session_buffer_limit / 2 : options_.session_buffer_limit);
}

void TunnelSession::OnStreamWritable() {
  // Round robin, starting after the tunnel served last, so one busy connection does not take
  // every freed byte.
  std::vector<Tunnel*> waiting;
  for (auto it = tunnels_.upper_bound(writable_cursor_); it != tunnels_.end(); ++it) {
    if (!it->second->to_stream.empty()) waiting.push_back(it->second.get());
  }
  for (auto it = tunnels_.begin(); it != tunnels_.end() && it->first <= writable_cursor_; ++it) {
    if (!it->second->to_stream.empty()) waiting.push_back(it->second.get());
  }
  for (Tunnel* t : waiting) {
    if (t->to_stream.empty() || !t->stream.has_value()) continue;
    absl::StatusOr<size_t> taken = transport_->Send(*t->stream, t->to_stream.front());
    if (!taken.ok()) {
      Fail(*t, absl::UnavailableError(absl::StrCat("stream: ", taken.status().message())));
      continue;
    }
    t->to_stream.Consume(*taken);
    writable_cursor_ = t->id;
    if (!t->to_stream.empty()) return;  // Full again; on_writable follows.
    if (t->fin_when_flushed) {
      CloseStreamNow(*t);
    } else if (t->phase == Phase::kOpen && t->local != nullptr && !t->local_eof && !t->reading) {
      t->reading = true;
      t->local->SetReading(true);
    }
  }
}

void TunnelSession::OnStreamClosed(uint16_t stream) {
  auto it = by_stream_.find(stream);
  if (it == by_stream_.end()) return;
  Tunnel& t = *it->second;
  t.peer_fin = true;
  switch (t.phase) {
    case Phase::kAwaitRequest:
      // The client gave up before asking for anything.
      t.phase = Phase::kEnding;
      t.reported_end = true;
      RequestStreamClose(t);
      break;
    case Phase::kAwaitStatus:
      ++counters_.connect_failed;
      Fail(t, absl::UnavailableError("the device closed the tunnel without answering"));
      break;
    case Phase::kOpen:
      MaybeShutdownLocal(t);
      break;
    default:
      break;  // kConnecting: shut down once connected and flushed.
  }
  MaybeReleaseStream(t);
}

void TunnelSession::OnAssociationClosed(absl::Status reason) {
  closed_ = true;
  close_reason_ = reason.ok() ? absl::UnavailableError("the stream association was closed")
                              : absl::UnavailableError(absl::StrCat(
                                    "the stream association ended: ", reason.message()));
  for (auto& [id, t] : tunnels_) {
    const bool clean = t->stream_fin_sent && t->peer_fin;
    if (!clean && t->error.ok()) t->error = close_reason_;
    DropLocal(*t);
    if (!t->opened && !t->reported_end) {
      t->reported_end = true;
      Report(*t, TunnelEvent::Kind::kRefused, t->error);
    }
  }
  by_stream_.clear();
}

void TunnelSession::OnLocalConnected(Tunnel& t) {
  if (t.phase != Phase::kConnecting) return;
  t.phase = Phase::kOpen;
  t.opened = true;
  ++counters_.opened;
  Report(t, TunnelEvent::Kind::kOpened, absl::OkStatus());
  const uint8_t ok = static_cast<uint8_t>(TunnelStatus::kOk);
  if (!QueueToStream(t, absl::MakeConstSpan(&ok, 1))) return;
  FlushToLocal(t);  // What the client sent early, and its FIN if it came already.
  if (t.local != nullptr && t.to_stream.empty()) {
    t.reading = true;
    t.local->SetReading(true);
  }
}

void TunnelSession::OnLocalData(Tunnel& t, absl::Span<const uint8_t> data) {
  if (t.phase != Phase::kOpen || t.local == nullptr || t.stream_fin_sent || t.fin_when_flushed) {
    return;
  }
  t.bytes_sent += data.size();
  counters_.bytes_sent += data.size();
  if (!QueueToStream(t, data)) return;
  if (!t.to_stream.empty() && t.reading) {
    t.reading = false;
    t.local->SetReading(false);
  }
}

void TunnelSession::OnLocalEnd(Tunnel& t) {
  t.local_eof = true;
  t.reading = false;
  if (t.phase == Phase::kOpen) RequestStreamClose(t);
}

void TunnelSession::OnLocalWritable(Tunnel& t) { FlushToLocal(t); }

void TunnelSession::OnLocalError(Tunnel& t, absl::Status status) {
  if (t.phase == Phase::kConnecting) {
    ++counters_.connect_failed;
    Refuse(t, TunnelStatus::kConnectFailed, std::move(status));
    return;
  }
  Fail(t, std::move(status));
}

void TunnelSession::RequestStreamClose(Tunnel& t) {
  if (!t.stream.has_value() || t.stream_fin_sent) return;
  if (t.to_stream.empty()) {
    CloseStreamNow(t);
  } else {
    t.fin_when_flushed = true;
  }
}

void TunnelSession::CloseStreamNow(Tunnel& t) {
  t.fin_when_flushed = false;
  if (t.stream_fin_sent || !t.stream.has_value()) return;
  t.stream_fin_sent = true;
  if (!closed_)
    (void)transport_->CloseStream(*t.stream);  // Fails only if the association is going.
  MaybeReleaseStream(t);
}

void TunnelSession::MaybeReleaseStream(Tunnel& t) {
  if (t.stream_released || !t.stream.has_value() || !t.stream_fin_sent || !t.peer_fin) return;
  t.stream_released = true;
  by_stream_.erase(*t.stream);
}

void TunnelSession::Refuse(Tunnel& t, TunnelStatus status, absl::Status why) {
  DropLocal(t);
  t.phase = Phase::kEnding;
  t.error = std::move(why);
  t.reported_end = true;
  Report(t, TunnelEvent::Kind::kRefused, t.error);
  const uint8_t byte = static_cast<uint8_t>(status);
  if (!QueueToStream(t, absl::MakeConstSpan(&byte, 1))) return;
  RequestStreamClose(t);
}

void TunnelSession::Fail(Tunnel& t, absl::Status why) {
  if (t.error.ok()) t.error = std::move(why);
  DropLocal(t);
  t.to_stream.Clear();
  t.fin_when_flushed = false;
  t.phase = Phase::kEnding;
  if (!t.opened && !t.reported_end) {
    t.reported_end = true;
    Report(t, TunnelEvent::Kind::kRefused, t.error);
  }
  CloseStreamNow(t);
}

void TunnelSession::DropLocal(Tunnel& t) {
  t.to_local.Clear();
  t.blocking = false;
  t.reading = false;
  if (t.local != nullptr) graveyard_.push_back(std::move(t.local));
}

void TunnelSession::Report(const Tunnel& t, TunnelEvent::Kind kind, absl::Status status) {
  if (!callbacks_.on_event) return;
  TunnelEvent event;
  event.kind = kind;
  event.id = t.id;
  event.port = t.port;
  event.status = std::move(status);
  event.bytes_sent = t.bytes_sent;
  event.bytes_received = t.bytes_received;
  callbacks_.on_event(event);
}

bool TunnelSession::Done(const Tunnel& t) const {
  if (closed_) return true;
  const bool stream_done =
      t.stream.has_value() ? (t.stream_fin_sent && t.peer_fin) : t.phase == Phase::kEnding;
  const bool local_done = t.local == nullptr || (t.local_eof && t.local_shut &&
                                                 t.to_local.empty() && t.to_stream.empty());
  return stream_done && local_done;
}

void TunnelSession::Settle() {
  if (settling_) return;
  settling_ = true;
  for (;;) {
    graveyard_.clear();
    for (auto it = tunnels_.begin(); it != tunnels_.end();) {
      Tunnel& t = *it->second;
      if (!Done(t)) {
        ++it;
        continue;
      }
      if (t.opened) {
        if (!t.error.ok()) ++counters_.failed;
        Report(t, TunnelEvent::Kind::kClosed, t.error);
      }
      if (t.stream.has_value() && !t.stream_released) {
        auto s = by_stream_.find(*t.stream);
        if (s != by_stream_.end() && s->second == &t) by_stream_.erase(s);
      }
      it = tunnels_.erase(it);
    }
    if (paused_ && !ShouldPause()) {
      paused_ = false;
      // Delivers what waited, which may fill buffers (and pause) again: look once more.
      if (!closed_) transport_->ResumeReceiving();
      continue;
    }
    if (graveyard_.empty()) break;
  }
  settling_ = false;
}

}  // namespace edgelink::tunnel
