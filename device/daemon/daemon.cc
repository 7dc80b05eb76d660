#include "device/daemon/daemon.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/io/interfaces.h"
#include "common/wire/device_methods.h"
#include "common/status/status_macros.h"
#include "device/dns/resolver.h"
#include "glog/logging.h"

namespace edgelink::device {
namespace {

static_assert(tunnel::kStreamDatagramSize + 1 == channel::kMaxPeerPayload,
              "an SCTP packet must fill exactly one peer DATA datagram");

// UDP socket buffers: room for a window's worth of stream datagrams arriving in a burst (the
// kernel doubles the request and caps it at net.core.rmem_max / wmem_max).
constexpr int kSocketBufferBytes = 2 << 20;

const char* TunnelEventName(tunnel::TunnelEvent::Kind kind) {
  switch (kind) {
    case tunnel::TunnelEvent::Kind::kOpened:
      return "opened";
    case tunnel::TunnelEvent::Kind::kRefused:
      return "refused";
    case tunnel::TunnelEvent::Kind::kClosed:
      return "closed";
  }
  return "?";
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceDaemon>> DeviceDaemon::Start(std::string config_path,
                                                                  DeviceConfig config,
                                                                  io::EventLoop* loop) {
  const std::string access_path =
      config.access_list_path.empty() ? config_path + ".access" : config.access_list_path;
  ASSIGN_OR_RETURN(std::unique_ptr<AccessList> access,
                   AccessList::Open(access_path, config.pairing_secret));
  std::unique_ptr<DeviceDaemon> daemon(
      new DeviceDaemon(std::move(config_path), std::move(config), loop, std::move(access)));
  ASSIGN_OR_RETURN(daemon->tcp_, tunnel::TcpIo::New(loop));
  daemon->connector_ = std::make_unique<tunnel::LoopbackConnector>(daemon->tcp_.get());
  daemon->Apply();
  return daemon;
}

DeviceDaemon::DeviceDaemon(std::string config_path, DeviceConfig config, io::EventLoop* loop,
                           std::unique_ptr<AccessList> access)
    : config_path_(std::move(config_path)),
      config_(std::move(config)),
      loop_(loop),
      access_(std::move(access)),
      handler_(std::make_unique<AccessRequestHandler>(
          access_.get(), [this] { return LocalCandidates(); },
          [this](const wire::ConnectRequest& request, const wire::Nonce& device_nonce) {
            OpenPeer(request, device_nonce);
          },
          [this](const wire::SessionId& id) { EndPeer(id); })),
      client_timer_(loop, [this] {
        client_->OnTimeout(loop_->Now());
        Drive();
      }),
      resolve_timer_(loop, [this] { Resolve(); }),
      peer_timer_(loop, [this] { DrivePeers(); }),
      started_(loop->Now()) {
  handler_->set_wall_clock([] { return absl::Now(); });
}

DeviceDaemon::~DeviceDaemon() {
  if (socket_) loop_->Unwatch(socket_->fd());
}

void DeviceDaemon::Apply() {
  if (!config_.remote_access) {
    // The master switch: no DNS query, no packet, no timer that could make one.
    resolve_timer_.Cancel();
    client_timer_.Cancel();
    if (client_) client_->Stop();
    for (auto& [id, peer] : peers_) RetireTunnel(*peer);
    peers_.clear();
    peer_timer_.Cancel();
    LOG(INFO) << "state=off remote access is off: sending nothing";
    return;
  }
  Resolve();
}

void DeviceDaemon::Resolve() {
  if (!config_.remote_access) return;
  net::Endpoint basestation;
  if (config_.basestation.has_value()) {
    basestation = *config_.basestation;
  } else {
    // Blocking, bounded by the resolver's timeouts (a few seconds at worst); the daemon has
    // nothing else to do until it knows where its basestation is.
    ++dns_lookups_;
    absl::StatusOr<std::vector<net::Endpoint>> addresses = ResolveHost(
        config_.BasestationHostname(), config_.basestation_port, config_.dns_server);
    if (!addresses.ok()) {
      LOG(WARNING) << "state=resolving " << addresses.status() << "; retrying in "
                   << resolve_backoff_;
      resolve_timer_.Schedule(loop_->Now() + resolve_backoff_);
      resolve_backoff_ = std::min(resolve_backoff_ * 2, absl::Seconds(60));
      return;
    }
    basestation = addresses->front();
  }
  resolve_backoff_ = absl::Seconds(1);
  if (absl::Status s = Connect(basestation); !s.ok()) {
    LOG(ERROR) << "cannot reach basestation " << basestation.ToString() << ": " << s;
    resolve_timer_.Schedule(loop_->Now() + absl::Seconds(10));
  }
}

absl::Status DeviceDaemon::Connect(const net::Endpoint& basestation) {
  if (!socket_ || socket_->local_endpoint().family() != basestation.family()) {
    if (socket_) loop_->Unwatch(socket_->fd());
    const net::Endpoint any = basestation.family() == net::Endpoint::Family::kIpv6
                                  ? *net::Endpoint::Parse("[::]:0")
                                  : *net::Endpoint::Parse("0.0.0.0:0");
    ASSIGN_OR_RETURN(socket_, io::UdpSocket::Bind(any));
    (void)socket_->SetReceiveBufferSize(kSocketBufferBytes);
    (void)socket_->SetSendBufferSize(kSocketBufferBytes);
    RETURN_IF_ERROR(loop_->Watch(socket_->fd(), [this] { OnReadable(); }));
  }
  if (!client_) {
    AttachClientOptions options;
    options.device_id = config_.device_id;
    options.secret = config_.secret.Clone();
    options.server = basestation;
    options.handler = handler_.get();
    options.on_state_change = [](absl::string_view state, absl::string_view reason) {
      LOG(INFO) << "state=" << state << " " << reason;
    };
    ASSIGN_OR_RETURN(client_, AttachClient::New(std::move(options), &random_));
  }
  LOG(INFO) << "basestation "
            << (config_.basestation.has_value() ? "" : config_.BasestationHostname() + " ")
            << "is " << basestation.ToString();
  basestation_ = basestation;
  client_->SetServer(basestation, loop_->Now());
  client_->Start(loop_->Now());
  Drive();
  return absl::OkStatus();
}

std::vector<wire::Candidate> DeviceDaemon::LocalCandidates() const {
  std::vector<wire::Candidate> candidates;
  if (!socket_) return candidates;
  const net::Endpoint& local = socket_->local_endpoint();
  for (const net::Endpoint& address : io::LocalAddresses(local.family(), local.port())) {
    if (candidates.size() == wire::kMaxCandidates) break;
    candidates.push_back({wire::Candidate::Kind::kHost, address});
  }
  return candidates;
}

void DeviceDaemon::OpenPeer(const wire::ConnectRequest& request,
                            const wire::Nonce& device_nonce) {
  channel::PeerConnectionOptions options;
  options.side = channel::Side::kDevice;
  options.session_id = request.session_id;
  options.session_key = crypto::SecretBytes::CopyFrom(request.session_key.span());
  options.client_nonce = request.client_nonce;
  options.device_nonce = device_nonce;
  options.remote_candidates = request.client_candidates;
  options.relay = request.relay;
  options.relay_ticket = request.relay_ticket;
  options.reflector = basestation_;  // The attach port reflects too.
  absl::StatusOr<std::unique_ptr<channel::PeerConnection>> connection =
      channel::PeerConnection::New(std::move(options), &random_);
  if (!connection.ok()) {
    LOG(WARNING) << "cannot open the peer channel: " << connection.status();
    return;
  }
  auto session = std::make_unique<PeerSession>();
  session->session_id = request.session_id;
  session->client_fingerprint = wire::FingerprintHex(request.client_fingerprint);
  session->connection = *std::move(connection);
  PeerSession* p = session.get();
  session->extra_sockets = std::make_unique<io::ExtraSockets>(
      loop_, socket_->local_endpoint(),
      [this, p](uint16_t socket, const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
        p->connection->OnPacket(from, bytes, loop_->Now(), socket);
        // Not DrivePeers here: it may end this session, and with it the socket being read.
        peer_timer_.Schedule(loop_->Now());
      });
  ServeRpc(*session);
  session->connection->Start(loop_->Now());
  const uint64_t channel_id = session->connection->channel_id();
  peers_[channel_id] = std::move(session);
  // Sent after the CONNECT_RESPONSE the caller is about to queue: both go out in this turn.
  loop_->Post([this] { DrivePeers(); });
}

void DeviceDaemon::EndPeer(const wire::SessionId& session_id) {
  for (auto it = peers_.begin(); it != peers_.end(); ++it) {
    if (it->second->session_id != session_id) continue;
    it->second->connection->Close(loop_->Now());
    FlushPeer(*it->second);
    RetireTunnel(*it->second);
    peers_.erase(it);
    return;
  }
}

void DeviceDaemon::ServeRpc(PeerSession& session) {
  const std::string caller = session.client_fingerprint;
  session.rpc.Handle("echo", [](absl::Span<const uint8_t> payload) -> rpc::Reply {
    return std::vector<uint8_t>(payload.begin(), payload.end());
  });
  session.rpc.Handle("status", [this](absl::Span<const uint8_t>) -> rpc::Reply {
    size_t tunnels = 0;  // Tunnelled connections open now, all sessions.
    for (const auto& [id, peer] : peers_) {
      if (peer->tunnel) tunnels += peer->tunnel->tunnel_count();
    }
    const std::string text = absl::StrCat(
        "device_id=", config_.device_id,
        " state=", client_ ? AttachClient::StateName(client_->state()) : "stopped",
        " public_address=", client_ ? client_->reflexive().ToString() : "none",
        " sessions=", peers_.size(),
        " tunnels=", tunnels,
        " uptime_s=", absl::ToInt64Seconds(loop_->Now() - started_));
    return std::vector<uint8_t>(text.begin(), text.end());
  });
  session.rpc.Handle("users.list", [this, caller](absl::Span<const uint8_t>) -> rpc::Reply {
    absl::StatusOr<std::vector<AccessList::Entry>> entries = access_->List(caller);
    if (!entries.ok()) return entries.status();
    std::string text;
    for (const AccessList::Entry& e : *entries) {
      absl::StrAppend(&text, RoleName(e.role), " ", e.fingerprint, " ", e.name, "\n");
    }
    return std::vector<uint8_t>(text.begin(), text.end());
  });
}

void DeviceDaemon::OnPeerPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                                absl::Time now) {
  if (packet[0] == channel::kRelayMarker) {
    // Relay replies name their session inside; each connection checks.
    for (auto& [id, peer] : peers_) peer->connection->OnPacket(from, packet, now);
    return;
  }
  auto it = peers_.find(channel::PeekChannelId(packet));
  if (it != peers_.end()) it->second->connection->OnPacket(from, packet, now);
}

void DeviceDaemon::DrivePeers() {
  const absl::Time now = loop_->Now();
  absl::Time next = absl::InfiniteFuture();
  for (auto it = peers_.begin(); it != peers_.end();) {
    PeerSession& peer = *it->second;
    channel::PeerConnection& connection = *peer.connection;
    if (connection.next_timeout() <= now) connection.OnTimeout(now);
    if (peer.rpc.next_timeout() <= now) peer.rpc.OnTimeout(now);
    for (channel::PeerConnection::Received& r : connection.TakeReceived()) {
      if (r.kind == channel::DataKind::kRpc) {
        peer.rpc.OnDatagram(r.bytes, now);
      } else if (r.kind == channel::DataKind::kStream) {
        OnStreamDatagram(peer, r.bytes);
      }
    }
    if (peer.tunnel) {
      if (peer.tunnel->NextTimeout(now) <= now) peer.tunnel->OnTimeout(now);
      if (peer.tunnel->closed()) {
        LOG(INFO) << "tunnels of client " << peer.client_fingerprint.substr(0, 16)
                  << " ended: " << peer.tunnel->close_reason().message();
        RetireTunnel(peer);
      }
    }
    for (const std::vector<uint8_t>& d : peer.rpc.TakeOutgoing()) {
      (void)connection.Send(channel::DataKind::kRpc, d, now);
    }
    FlushPeer(peer);
    if (connection.state() == channel::PeerConnection::State::kClosed) {
      RetireTunnel(peer);
      peers_.erase(it++);
      continue;
    }
    next = std::min({next, connection.next_timeout(), peer.rpc.next_timeout(),
                     peer.tunnel ? peer.tunnel->NextTimeout(now) : absl::InfiniteFuture()});
    ++it;
  }
  peer_timer_.Schedule(next);
}

void DeviceDaemon::OnStreamDatagram(PeerSession& peer, absl::Span<const uint8_t> datagram) {
  if (!peer.tunnel) {
    // The client started a stream association: the session's tunnels begin. With an empty
    // tunnel_ports every request is refused (status 1), which tells the client why.
    tunnel::TunnelSessionOptions options;
    options.side = tunnel::TunnelSessionOptions::Side::kDevice;
    options.connector = connector_.get();
    options.port_allowed = [this](uint16_t port) { return config_.tunnel_ports.count(port) > 0; };
    PeerSession* p = &peer;
    tunnel::TunnelSession::Callbacks callbacks;
    callbacks.on_event = [p](const tunnel::TunnelEvent& e) {
      LOG(INFO) << "tunnel " << e.id << " port " << e.port << " client "
                << p->client_fingerprint.substr(0, 16) << " " << TunnelEventName(e.kind)
                << (e.status.ok() ? "" : ": ") << e.status.message()
                << (e.kind == tunnel::TunnelEvent::Kind::kClosed
                        ? absl::StrCat(" bytes_in=", e.bytes_received, " bytes_out=", e.bytes_sent)
                        : "");
    };
    callbacks.on_wake = [this] { peer_timer_.Schedule(loop_->Now()); };
    absl::StatusOr<std::unique_ptr<tunnel::TunnelSession>> session = tunnel::TunnelSession::New(
        std::move(options), [this, p](absl::Span<const uint8_t> d) { SendStream(*p, d); },
        std::move(callbacks));
    if (!session.ok()) {
      LOG(WARNING) << "cannot start tunnels: " << session.status();
      return;
    }
    peer.tunnel = *std::move(session);
  }
  peer.tunnel->OnDatagram(datagram);
}

void DeviceDaemon::SendStream(PeerSession& peer, absl::Span<const uint8_t> datagram) {
  // Lost if there is no usable path right now: SCTP retransmits.
  (void)peer.connection->Send(channel::DataKind::kStream, datagram, loop_->Now());
  FlushPeer(peer);
}

void DeviceDaemon::FlushPeer(PeerSession& peer) {
  for (const net::Datagram& d : peer.connection->TakeOutgoing()) {
    const absl::Status sent = d.socket == 0
                                  ? (socket_ ? socket_->SendTo(d.to, d.bytes)
                                             : absl::UnavailableError("no socket"))
                                  : peer.extra_sockets->Send(d);
    if (sent.ok()) ++packets_sent_;
  }
  if (peer.extra_sockets->size() > 0) {
    peer.extra_sockets->Retain([&](uint16_t s) { return peer.connection->WantsSocket(s); });
  }
}

void DeviceDaemon::RetireTunnel(PeerSession& peer) {
  if (!peer.tunnel) return;
  ended_tunnels_ += peer.tunnel->counters();
  peer.tunnel.reset();
}

tunnel::TunnelCounters DeviceDaemon::tunnel_counters() const {
  tunnel::TunnelCounters total = ended_tunnels_;
  for (const auto& [id, peer] : peers_) {
    if (peer->tunnel) total += peer->tunnel->counters();
  }
  return total;
}

void DeviceDaemon::OnReadable() {
  for (;;) {
    absl::StatusOr<size_t> n = socket_->ReceiveBatch(receive_buffer_);
    if (!n.ok() || *n == 0) break;
    const absl::Time now = loop_->Now();
    for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) {
      if (d.bytes.empty()) continue;
      // One socket, three protocols, told apart by the first byte (docs/PROTOCOL.md).
      if (d.bytes[0] == wire::kProtocolVersion) {
        if (client_) client_->OnPacket(d.source, d.bytes, now);
      } else {
        OnPeerPacket(d.source, d.bytes, now);
      }
    }
  }
  if (client_) Drive();
  DrivePeers();
}

void DeviceDaemon::Drive() {
  for (const net::Datagram& d : client_->TakeOutgoing()) {
    if (socket_->SendTo(d.to, d.bytes).ok()) ++packets_sent_;
  }
  // Our NAT gave us a new public address: every peer session must re-announce and re-probe.
  if (client_->reflexive() != last_reflexive_) {
    if (last_reflexive_.is_set()) {
      for (auto& [id, peer] : peers_) peer->connection->OnLocalAddressChanged(loop_->Now());
      loop_->Post([this] { DrivePeers(); });
    }
    last_reflexive_ = client_->reflexive();
  }
  client_timer_.Schedule(client_->next_timeout());
}

void DeviceDaemon::Shutdown() {
  for (auto& [id, peer] : peers_) {
    RetireTunnel(*peer);
    peer->connection->Close(loop_->Now());
  }
  DrivePeers();
  peers_.clear();
  if (client_) {
    client_->Detach();
    Drive();
  }
}

void DeviceDaemon::Reload() {
  absl::StatusOr<DeviceConfig> config = LoadDeviceConfig(config_path_);
  if (!config.ok()) {
    LOG(ERROR) << "config reload failed, keeping the running config: " << config.status();
    return;
  }
  const bool identity_changed =
      config->device_id != config_.device_id ||
      !crypto::ConstantTimeEquals(config->secret.span(), config_.secret.span());
  config_ = *std::move(config);
  LOG(INFO) << "config reloaded: remote_access=" << (config_.remote_access ? "on" : "off");
  if (identity_changed && client_) {
    client_->Stop();
    client_.reset();
  }
  Apply();
}

void DeviceDaemon::LogCounters() const {
  const AttachClientCounters none;
  const AttachClientCounters& c = client_ ? client_->counters() : none;
  const tunnel::TunnelCounters tunnels = tunnel_counters();
  LOG(INFO) << "counters packets_sent=" << packets_sent_ << " dns_lookups=" << dns_lookups_
            << " packets_received=" << c.packets_received << " attaches=" << c.attaches
            << " dropped=" << c.dropped_malformed + c.dropped_unexpected +
                                  c.dropped_unauthenticated + c.dropped_replay
            << " tunnels_opened=" << tunnels.opened
            << " tunnels_refused=" << tunnels.port_refused + tunnels.connect_failed +
                                          tunnels.bad_requests
            << " tunnel_bytes_in=" << tunnels.bytes_received
            << " tunnel_bytes_out=" << tunnels.bytes_sent;
}

}  // namespace edgelink::device
