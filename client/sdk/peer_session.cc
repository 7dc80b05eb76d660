#include "client/sdk/peer_session.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/io/interfaces.h"
#include "common/status/status_macros.h"

namespace edgelink::client {

absl::StatusOr<std::unique_ptr<PeerSession>> PeerSession::Open(Client& client,
                                                               absl::string_view device_id,
                                                               PeerSessionOptions options) {
  std::unique_ptr<PeerSession> peer(new PeerSession());
  ASSIGN_OR_RETURN(peer->loop_, io::EventLoop::New());
  ASSIGN_OR_RETURN(peer->socket_, io::UdpSocket::Bind(*net::Endpoint::Parse("0.0.0.0:0")));
  const absl::Time start = absl::Now();

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
  if (options.relay_only && !connection.relay.is_set()) {
    return absl::FailedPreconditionError("relay only was asked, but the basestation offers no relay");
  }
  ASSIGN_OR_RETURN(peer->connection_,
                   channel::PeerConnection::New(std::move(connection), &peer->random_));

  PeerSession* p = peer.get();
  RETURN_IF_ERROR(peer->loop_->Watch(peer->socket_->fd(), [p] { p->OnReadable(); }));
  peer->timer_ = std::make_unique<io::Timer>(peer->loop_.get(), [p] { p->Drive(); });
  peer->connection_->Start(peer->loop_->Now());
  peer->Drive();
  const absl::Time give_up = absl::Now() + options.connect_timeout;
  while (peer->connection_->state() == channel::PeerConnection::State::kConnecting &&
         absl::Now() < give_up) {
    peer->loop_->RunOnce(give_up - absl::Now());
  }
  if (peer->connection_->state() != channel::PeerConnection::State::kConnected) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no path to ", device_id, " worked within ",
        absl::FormatDuration(options.connect_timeout), " (device unreachable and no relay?)"));
  }
  peer->setup_time_ = absl::Now() - start;
  return peer;
}

PeerSession::~PeerSession() {
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
    if (r.kind == channel::DataKind::kRpc) rpc_.OnDatagram(r.bytes, now);
  }
  for (const std::vector<uint8_t>& d : rpc_.TakeOutgoing()) {
    (void)connection_->Send(channel::DataKind::kRpc, d, now);
  }
  for (const net::Datagram& d : connection_->TakeOutgoing()) (void)socket_->SendTo(d.to, d.bytes);
  if (timer_) timer_->Schedule(std::min(connection_->next_timeout(), rpc_.next_timeout()));
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
  const absl::Time end = absl::Now() + duration;
  while (absl::Now() < end) loop_->RunOnce(end - absl::Now());
}

}  // namespace edgelink::client
