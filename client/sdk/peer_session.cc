#include "client/sdk/peer_session.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/io/interfaces.h"
#include "common/status/status_macros.h"

namespace edgelink::client {
namespace {

static_assert(tunnel::kStreamDatagramSize + 1 == channel::kMaxPeerPayload,
              "an SCTP packet must fill exactly one peer DATA datagram");

// UDP socket buffers: room for a window's worth of stream datagrams arriving in a burst.
constexpr int kSocketBufferBytes = 2 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<PeerSession>> PeerSession::Open(Client& client,
                                                               absl::string_view device_id,
                                                               PeerSessionOptions options) {
  std::unique_ptr<PeerSession> peer(new PeerSession());
  // The wall clock, like the other loops an application may run: usrsctp keeps one clock per
  // process, fed by every session's loop, so they must all agree (common/stream/sctp_transport.h).
  ASSIGN_OR_RETURN(peer->loop_, io::EventLoop::New());
  ASSIGN_OR_RETURN(peer->socket_, io::UdpSocket::Bind(*net::Endpoint::Parse("0.0.0.0:0")));
  (void)peer->socket_->SetReceiveBufferSize(kSocketBufferBytes);
  (void)peer->socket_->SetSendBufferSize(kSocketBufferBytes);
  const absl::Time start = peer->loop_->Now();

  // Tell the device where we can be reached: our interface addresses on this socket's port.
  std::vector<Candidate> mine;
  for (const net::Endpoint& address : io::LocalAddresses(net::Endpoint::Family::kIpv4,
                                                         peer->socket_->local_endpoint().port())) {
    if (!options.relay_only) mine.push_back({"host", address});
  }
  ASSIGN_OR_RETURN(peer->session_, client.Connect(device_id, mine));

  channel::PeerConnectionOptions connection;
  connection.side = channel::Side::kClient;
  std::copy(peer->session_.session_id.begin(), peer->session_.session_id.end(),
            connection.session_id.begin());
  if (peer->session_.session_id.size() != connection.session_id.size()) {
    return absl::InternalError("basestation sent a malformed session id");
  }
  connection.session_key = peer->session_.session_key.Clone();
  connection.client_nonce = peer->session_.client_nonce;
  connection.device_nonce = peer->session_.device_nonce;
  for (const Candidate& c : peer->session_.device_candidates) {
    // The device's IPv6 candidates cannot be reached from our IPv4 socket.
    if (c.endpoint.family() != net::Endpoint::Family::kIpv4) continue;
    connection.remote_candidates.push_back(
        {c.kind == "host" ? wire::Candidate::Kind::kHost : wire::Candidate::Kind::kServerReflexive,
         c.endpoint});
  }
  connection.relay = peer->session_.relay;
  connection.relay_ticket = peer->session_.relay_ticket;
  connection.relay_only = options.relay_only;
  connection.reflector = peer->session_.reflector;
  if (options.relay_only && !connection.relay.is_set()) {
    return absl::FailedPreconditionError("relay only was asked, but the basestation offers no relay");
  }
  ASSIGN_OR_RETURN(peer->connection_,
                   channel::PeerConnection::New(std::move(connection), &peer->random_));

  peer->path_filter_ = std::move(options.path_filter_for_test);
  PeerSession* p = peer.get();
  RETURN_IF_ERROR(peer->loop_->Watch(peer->socket_->fd(), [p] { p->OnReadable(); }));
  peer->timer_ = std::make_unique<io::Timer>(peer->loop_.get(), [p] { p->Drive(); });
  peer->extra_sockets_ = std::make_unique<io::ExtraSockets>(
      peer->loop_.get(), peer->socket_->local_endpoint(),
      [p](uint16_t socket, const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
        if (p->path_filter_ && !p->path_filter_(from)) return;
        p->connection_->OnPacket(from, bytes, p->loop_->Now(), socket);
        p->timer_->Schedule(p->loop_->Now());  // One Drive for the whole batch.
      });
  peer->connection_->Start(peer->loop_->Now());
  peer->Drive();
  const absl::Time give_up = peer->loop_->Now() + options.connect_timeout;
  while (peer->connection_->state() == channel::PeerConnection::State::kConnecting &&
         peer->loop_->Now() < give_up) {
    peer->loop_->RunOnce(give_up - peer->loop_->Now());
  }
  if (peer->connection_->state() != channel::PeerConnection::State::kConnected) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no path to ", device_id, " worked within ",
        absl::FormatDuration(options.connect_timeout), " (device unreachable and no relay?)"));
  }
  peer->setup_time_ = peer->loop_->Now() - start;
  return peer;
}

PeerSession::~PeerSession() {
  // Tunnels first: their connections close without events.
  tunnels_.reset();
  listener_.reset();
  if (connection_ && loop_) {
    connection_->Close(loop_->Now());
    Drive();
  }
  if (socket_ && loop_) loop_->Unwatch(socket_->fd());
}

void PeerSession::OnReadable() {
  for (;;) {
    absl::StatusOr<size_t> n = socket_->ReceiveBatch(buffer_);
    if (!n.ok() || *n == 0) break;
    for (const io::ReceivedDatagram& d : buffer_.datagrams()) {
      if (path_filter_ && !path_filter_(d.source)) continue;
      connection_->OnPacket(d.source, d.bytes, loop_->Now());
    }
  }
  Drive();
}

void PeerSession::Drive() {
  const absl::Time now = loop_->Now();
  if (connection_->next_timeout() <= now) connection_->OnTimeout(now);
  if (rpc_.next_timeout() <= now) rpc_.OnTimeout(now);
  for (channel::PeerConnection::Received& r : connection_->TakeReceived()) {
    if (r.kind == channel::DataKind::kRpc) {
      rpc_.OnDatagram(r.bytes, now);
    } else if (r.kind == channel::DataKind::kStream && tunnels_) {
      tunnels_->OnDatagram(r.bytes);
    }
  }
  if (tunnels_) {
    if (tunnels_->NextTimeout(now) <= now) tunnels_->OnTimeout(now);
    // The association ended (its tunnels reported it): the next connection starts a new one.
    if (tunnels_->closed()) RetireTunnels();
  }
  for (const std::vector<uint8_t>& d : rpc_.TakeOutgoing()) {
    (void)connection_->Send(channel::DataKind::kRpc, d, now);
  }
  Flush();
  if (connection_->state() == channel::PeerConnection::State::kClosed) {
    RetireTunnels();
    loop_->Stop();  // Run returns: there is nothing left to serve.
  }
  if (timer_) {
    timer_->Schedule(std::min({connection_->next_timeout(), rpc_.next_timeout(),
                               tunnels_ ? tunnels_->NextTimeout(now) : absl::InfiniteFuture()}));
  }
}

void PeerSession::Flush() {
  for (const net::Datagram& d : connection_->TakeOutgoing()) {
    if (path_filter_ && !path_filter_(d.to)) continue;
    (void)(d.socket == 0 ? socket_->SendTo(d.to, d.bytes) : extra_sockets_->Send(d));
  }
  if (extra_sockets_->size() > 0) {
    extra_sockets_->Retain([this](uint16_t s) { return connection_->WantsSocket(s); });
  }
}

absl::StatusOr<std::vector<uint8_t>> PeerSession::Call(absl::string_view method,
                                                       absl::Span<const uint8_t> payload,
                                                       absl::Duration timeout) {
  std::optional<rpc::Reply> reply;
  const absl::Time deadline = loop_->Now() + timeout;
  rpc_.Call(method, payload, deadline, [&](rpc::Reply r) { reply = std::move(r); },
            loop_->Now());
  Drive();
  while (!reply.has_value() && connection_->state() != channel::PeerConnection::State::kClosed) {
    loop_->RunOnce(absl::Milliseconds(100));
  }
  if (!reply.has_value()) {
    rpc_.CancelAll(absl::UnavailableError("the connection to the device closed"));
    return absl::UnavailableError("the connection to the device closed");
  }
  return *std::move(reply);
}

void PeerSession::RunFor(absl::Duration duration) {
  const absl::Time end = loop_->Now() + duration;
  while (loop_->Now() < end) loop_->RunOnce(end - loop_->Now());
}

}  // namespace edgelink::client

namespace edgelink::client {

absl::StatusOr<net::Endpoint> PeerSession::Tunnel(
    const net::Endpoint& listen, uint16_t device_port,
    std::function<void(const TunnelEvent&)> on_event) {
  if (listener_) return absl::FailedPreconditionError("this session already has a tunnel listener");
  if (device_port == 0) return absl::InvalidArgumentError("the device port must be 1..65535");
  if (!tcp_) {
    ASSIGN_OR_RETURN(tcp_, tunnel::TcpIo::New(loop_.get()));
  }
  auto on_accept = [this](std::unique_ptr<tunnel::LocalConnection> c,
                          const net::Endpoint& from) { OnAccept(std::move(c), from); };
  ASSIGN_OR_RETURN(listener_, tunnel::TcpListener::Listen(tcp_.get(), listen, on_accept));
  device_port_ = device_port;
  on_tunnel_event_ = std::move(on_event);
  return listener_->local_endpoint();
}

absl::Status PeerSession::StartTunnels() {
  tunnel::TunnelSessionOptions options;
  options.side = tunnel::TunnelSessionOptions::Side::kClient;
  tunnel::TunnelSession::Callbacks callbacks;
  callbacks.on_event = [this](const tunnel::TunnelEvent& e) { OnTunnelEvent(e); };
  callbacks.on_wake = [this] { timer_->Schedule(loop_->Now()); };
  ASSIGN_OR_RETURN(tunnels_,
                   tunnel::TunnelSession::New(
                       std::move(options),
                       [this](absl::Span<const uint8_t> d) {
                         // Lost if no path is usable right now: SCTP retransmits.
                         (void)connection_->Send(channel::DataKind::kStream, d, loop_->Now());
                         Flush();
                       },
                       std::move(callbacks)));
  timer_->Schedule(loop_->Now());
  return absl::OkStatus();
}

void PeerSession::OnAccept(std::unique_ptr<tunnel::LocalConnection> connection,
                           const net::Endpoint& from) {
  Accepted accepted{next_connection_id_++, from, false};
  TunnelEvent event;
  event.id = accepted.id;
  event.from = from;
  event.device_port = device_port_;
  event.kind = TunnelEvent::Kind::kAccepted;
  if (on_tunnel_event_) on_tunnel_event_(event);
  absl::Status status;
  if (connection_->state() == channel::PeerConnection::State::kClosed) {
    status = absl::UnavailableError("the connection to the device has closed");
  } else if (!tunnels_) {
    status = StartTunnels();
  }
  if (status.ok()) {
    accepting_ = accepted;  // Open may report at once.
    absl::StatusOr<uint64_t> id = tunnels_->Open(device_port_, std::move(connection));
    accepting_.reset();
    if (id.ok()) {
      accepted_.try_emplace(*id, accepted);
      return;
    }
    status = id.status();
  }
  event.kind = TunnelEvent::Kind::kRefused;
  event.status = status;
  if (on_tunnel_event_) on_tunnel_event_(event);
}

void PeerSession::OnTunnelEvent(const tunnel::TunnelEvent& e) {
  auto it = accepted_.find(e.id);
  if (it == accepted_.end()) {
    if (!accepting_.has_value()) return;
    it = accepted_.emplace(e.id, *accepting_).first;
  }
  TunnelEvent event;
  event.id = it->second.id;
  event.from = it->second.from;
  event.device_port = e.port;
  event.status = e.status;
  event.bytes_sent = e.bytes_sent;
  event.bytes_received = e.bytes_received;
  switch (e.kind) {
    case tunnel::TunnelEvent::Kind::kOpened:
      event.kind = TunnelEvent::Kind::kOpened;
      it->second.opened = true;
      break;
    case tunnel::TunnelEvent::Kind::kRefused:
      event.kind = TunnelEvent::Kind::kRefused;
      accepted_.erase(it);
      break;
    case tunnel::TunnelEvent::Kind::kClosed:
      event.kind = TunnelEvent::Kind::kClosed;
      accepted_.erase(it);
      break;
  }
  if (on_tunnel_event_) on_tunnel_event_(event);
}

void PeerSession::RetireTunnels() {
  if (!tunnels_) return;
  ended_tunnels_ += tunnels_->counters();
  absl::Status why = tunnels_->closed()
                         ? tunnels_->close_reason()
                         : absl::UnavailableError("the connection to the device closed");
  tunnels_.reset();  // Closes what is left; reports nothing itself.
  for (const auto& [id, accepted] : accepted_) {
    TunnelEvent event;
    event.kind = accepted.opened ? TunnelEvent::Kind::kClosed : TunnelEvent::Kind::kRefused;
    event.id = accepted.id;
    event.from = accepted.from;
    event.device_port = device_port_;
    event.status = why;
    if (on_tunnel_event_) on_tunnel_event_(event);
  }
  accepted_.clear();
}

tunnel::TunnelCounters PeerSession::tunnel_counters() const {
  tunnel::TunnelCounters total = ended_tunnels_;
  if (tunnels_) total += tunnels_->counters();
  return total;
}

bool PeerSession::Run() {
  if (connection_->state() != channel::PeerConnection::State::kClosed) loop_->Run();
  return connection_->state() != channel::PeerConnection::State::kClosed;
}

bool PeerSession::RunUntil(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time give_up = loop_->Now() + limit;
  while (!done()) {
    const absl::Duration left = give_up - loop_->Now();
    if (left <= absl::ZeroDuration()) return done();
    loop_->RunOnce(std::min(left, absl::Milliseconds(100)));
  }
  return true;
}

void PeerSession::Stop() { loop_->Stop(); }

absl::Status PeerSession::StopOnSignal(int signo) {
  return loop_->OnSignal(signo, [this] { loop_->Stop(); });
}

void PeerSession::SetPathFilterForTest(std::function<bool(const net::Endpoint&)> allow,
                                       bool network_changed) {
  path_filter_ = std::move(allow);
  if (network_changed) connection_->OnLocalAddressChanged(loop_->Now());
  timer_->Schedule(loop_->Now());
}

}  // namespace edgelink::client
