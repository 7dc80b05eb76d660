#include "integration/sim/scenario.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/channel/channel_crypto.h"
#include "common/status/status_macros.h"
#include "common/wire/bytes.h"

namespace edgelink::sim {
namespace {

using basestation::AttachServer;
using basestation::RelayServer;
using channel::PeerConnection;

constexpr absl::Duration kConnectResend = absl::Milliseconds(250);
constexpr absl::Duration kReflectInterval = absl::Milliseconds(300);
constexpr int kReflectTries = 3;
constexpr absl::Duration kRelayTicketLifetime = absl::Hours(1);
constexpr absl::Duration kConnectDeadline = absl::Seconds(10);

// Runs `connection`'s and `rpc`'s due timers and moves RPC datagrams between them, as
// device/daemon/daemon.cc's DrivePeers does.
void PumpPeer(PeerConnection& connection, rpc::RpcEndpoint& rpc, absl::Time now) {
  if (connection.next_timeout() <= now) connection.OnTimeout(now);
  if (rpc.next_timeout() <= now) rpc.OnTimeout(now);
  for (PeerConnection::Received& r : connection.TakeReceived()) {
    if (r.kind == channel::DataKind::kRpc) rpc.OnDatagram(r.bytes, now);
  }
  for (const std::vector<uint8_t>& d : rpc.TakeOutgoing()) {
    // Before a path is usable the RPC layer's retransmission covers what Send refuses.
    (void)connection.Send(channel::DataKind::kRpc, d, now);
  }
}

uint64_t Drops(const channel::PeerConnectionCounters& c) {
  return c.dropped_malformed + c.dropped_unauthenticated + c.dropped_replay;
}

// RELAY_REFLECTION (basestation/relay/relay.h): 0x03 0x04 || endpoint. nullopt for anything else.
std::optional<net::Endpoint> ParseReflection(absl::Span<const uint8_t> packet) {
  wire::ByteReader in(packet);
  uint8_t control = 0, type = 0;
  net::Endpoint observed;
  if (!in.ReadU8(&control) || !in.ReadU8(&type) || control != basestation::kRelayControlByte ||
      type != basestation::kRelayReflectionType || !wire::ReadEndpoint(in, &observed) ||
      !in.done()) {
    return std::nullopt;
  }
  return observed;
}

}  // namespace

// --- Basestation -------------------------------------------------------------------------------

class Basestation::Directory : public basestation::DeviceDirectory {
 public:
  absl::StatusOr<basestation::DeviceCredentials> FindDevice(absl::string_view id) override {
    auto it = secrets.find(id);
    if (it == secrets.end()) return absl::NotFoundError("no such device");
    return basestation::DeviceCredentials{it->second.Clone(), false};
  }
  absl::flat_hash_map<std::string, crypto::SecretBytes> secrets;
};

absl::StatusOr<std::unique_ptr<Basestation>> Basestation::New(
    Host* host, crypto::SecretBytes server_key, basestation::AttachServerOptions options) {
  ASSIGN_OR_RETURN(basestation::RelayKey relay_key, basestation::RelayKey::Derive(server_key));
  std::unique_ptr<Basestation> bs(
      new Basestation(&host->sim(), std::move(server_key), options, std::move(relay_key)));
  RETURN_IF_ERROR(bs->StartCores());
  Basestation* self = bs.get();
  ASSIGN_OR_RETURN(bs->attach_socket_,
                   host->Bind(kAttachPort, [self](const net::Endpoint& from,
                                                  absl::Span<const uint8_t> bytes) {
                     self->OnAttachPacket(from, bytes);
                   }));
  ASSIGN_OR_RETURN(bs->relay_socket_,
                   host->Bind(kRelayPort, [self](const net::Endpoint& from,
                                                 absl::Span<const uint8_t> bytes) {
                     self->OnRelayPacket(from, bytes);
                   }));
  return bs;
}

Basestation::Basestation(Simulator* sim, crypto::SecretBytes server_key,
                         basestation::AttachServerOptions options, basestation::RelayKey relay_key)
    : sim_(sim),
      server_key_(std::move(server_key)),
      options_(options),
      relay_key_(std::move(relay_key)),
      directory_(std::make_unique<Directory>()),
      alarm_(sim_, [this] { OnAlarm(); }) {}

Basestation::~Basestation() = default;

absl::Status Basestation::StartCores() {
  ASSIGN_OR_RETURN(attach_,
                   AttachServer::New(options_, server_key_, directory_.get(), &sim_->random()));
  ASSIGN_OR_RETURN(relay_, RelayServer::New(basestation::RelayOptions(), relay_key_));
  return absl::OkStatus();
}

void Basestation::AddDevice(const std::string& device_id, const crypto::SecretBytes& secret) {
  directory_->secrets[device_id] = secret.Clone();
}

absl::Status Basestation::Restart() {
  for (auto& [id, pending] : pending_) {
    pending.done(absl::UnavailableError("basestation restarted"));
  }
  pending_.clear();
  next_resend_ = absl::InfiniteFuture();
  RETURN_IF_ERROR(StartCores());
  Drive();
  return absl::OkStatus();
}

absl::Status Basestation::RestartRelay() {
  ASSIGN_OR_RETURN(relay_, RelayServer::New(basestation::RelayOptions(), relay_key_));
  Drive();
  return absl::OkStatus();
}

void Basestation::Connect(const std::string& device_id, const wire::Fingerprint& client,
                          std::vector<wire::Candidate> client_candidates,
                          const wire::Nonce& client_nonce, absl::Time deadline,
                          ConnectDone done) {
  ++counters_.connects;
  if (!attach_->IsAttached(device_id)) {
    done(absl::UnavailableError(absl::StrCat("device ", device_id, " is offline")));
    return;
  }
  auto request = std::make_unique<wire::ConnectRequest>();
  sim_->random().Fill(absl::MakeSpan(request->session_id));
  sim_->random().Fill(request->session_key.mutable_span());
  request->client_nonce = client_nonce;
  request->client_fingerprint = client;
  request->client_name = "sim-client";
  request->client_candidates = std::move(client_candidates);
  // The relay session id is the peer session id: PeerConnection checks RELAY_BOUND against it.
  basestation::RelaySessionId relay_session;
  std::copy(request->session_id.begin(), request->session_id.end(), relay_session.begin());
  const std::array<uint8_t, basestation::kRelayTicketSize> ticket =
      basestation::MakeRelayTicket(relay_key_, relay_session, sim_->now() + kRelayTicketLifetime)
          .Encode();
  request->relay_ticket.assign(ticket.begin(), ticket.end());
  request->relay = relay_address();
  uint64_t id = 0;
  while (id == 0 || pending_.count(id) != 0) {
    sim_->random().Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&id), sizeof(id)));
  }
  request->request_id = id;
  request->valid_ms = static_cast<uint32_t>(absl::ToInt64Milliseconds(deadline - sim_->now()));
  (void)attach_->SendConnectRequest(device_id, *request);
  // broker.cc takes the device's address when the request goes out, and hands it to the client
  // as a server-reflexive candidate.
  pending_[id] = {device_id, deadline, std::move(request), attach_->AddressOf(device_id),
                  std::move(done)};
  if (next_resend_ == absl::InfiniteFuture()) next_resend_ = sim_->now() + kConnectResend;
  Drive();
}

void Basestation::OnReplies(std::vector<basestation::DeviceReply> replies) {
  for (basestation::DeviceReply& reply : replies) {
    const auto* response = std::get_if<wire::ConnectResponse>(&reply.reply);
    if (response == nullptr) continue;
    auto it = pending_.find(response->request_id);
    if (it == pending_.end() || it->second.device_id != reply.device_id) continue;
    PendingConnect pending = std::move(it->second);
    pending_.erase(it);
    switch (response->verdict) {
      case wire::ConnectVerdict::kAccepted:
        break;
      case wire::ConnectVerdict::kDenied:
        pending.done(absl::PermissionDeniedError("device refused this client"));
        continue;
      case wire::ConnectVerdict::kBusy:
        pending.done(absl::ResourceExhaustedError("device is busy"));
        continue;
    }
    BrokeredSession session;
    session.session_id = pending.request->session_id;
    session.session_key = crypto::SecretBytes::CopyFrom(pending.request->session_key.span());
    session.device_nonce = response->device_nonce;
    session.device_candidates = response->device_candidates;
    if (pending.reflexive.has_value()) {
      session.device_candidates.push_back(
          {wire::Candidate::Kind::kServerReflexive, *pending.reflexive});
    }
    session.relay = pending.request->relay;
    session.relay_ticket = pending.request->relay_ticket;
    session.reflector = attach_address();
    pending.done(std::move(session));
  }
}

void Basestation::OnAttachPacket(const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
  if (!bytes.empty() && bytes[0] == basestation::kRelayControlByte) {
    if (!attach_port_reflects_) return;
    // As basestation/server does: the attach port reflects too (see AnswerReflect).
    if (std::optional<std::vector<uint8_t>> reflection = basestation::AnswerReflect(from, bytes)) {
      attach_socket_->SendTo(from, *std::move(reflection));
    }
    return;
  }
  attach_->OnPacket(from, bytes, sim_->now());
  Drive();
}

void Basestation::OnRelayPacket(const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
  if (std::optional<net::Endpoint> to = relay_->OnPacket(from, bytes, sim_->now())) {
    relay_socket_->SendTo(*to, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  }
  Drive();
}

void Basestation::OnAlarm() {
  const absl::Time now = sim_->now();
  if (attach_->next_timeout() <= now) attach_->OnTimeout(now);
  if (relay_->next_timeout() <= now) relay_->OnTimeout(now);
  if (next_resend_ <= now) {
    std::vector<uint64_t> expired;
    for (const auto& [id, pending] : pending_) {
      if (now >= pending.deadline) {
        expired.push_back(id);
      } else {
        ++counters_.connect_resends;
        pending.request->valid_ms =
            static_cast<uint32_t>(absl::ToInt64Milliseconds(pending.deadline - now));
        (void)attach_->SendConnectRequest(pending.device_id, *pending.request);
      }
    }
    for (uint64_t id : expired) {
      ConnectDone done = std::move(pending_[id].done);
      pending_.erase(id);
      done(absl::DeadlineExceededError("device did not answer in time"));
    }
    next_resend_ = pending_.empty() ? absl::InfiniteFuture() : now + kConnectResend;
  }
  Drive();
}

void Basestation::Drive() {
  for (net::Datagram& d : attach_->TakeOutgoing()) {
    attach_socket_->SendTo(d.to, std::move(d.bytes));
  }
  for (net::Datagram& d : relay_->TakeOutgoing()) relay_socket_->SendTo(d.to, std::move(d.bytes));
  (void)attach_->TakePresenceEvents();
  OnReplies(attach_->TakeReplies());
  alarm_.Set(std::min({attach_->next_timeout(), relay_->next_timeout(), next_resend_}));
}

// --- Extra sockets -----------------------------------------------------------------------------

void ExtraSockets::Flush(PeerConnection& connection, Socket& main) {
  for (net::Datagram& d : connection.TakeOutgoing()) {
    if (d.socket == 0) {
      main.SendTo(d.to, std::move(d.bytes));
      continue;
    }
    std::unique_ptr<Socket>& socket = sockets_[d.socket];
    if (socket == nullptr) {
      absl::StatusOr<std::unique_ptr<Socket>> bound =
          host_->Bind(0, [receiver = receiver_, index = d.socket](
                             const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
            receiver(index, from, bytes);
          });
      if (!bound.ok()) continue;  // Out of ports: this guess is lost, as a real bind failure.
      socket = *std::move(bound);
    }
    socket->SendTo(d.to, std::move(d.bytes));
  }
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    it = connection.WantsSocket(it->first) ? std::next(it) : sockets_.erase(it);
  }
}

// --- Device ------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<DeviceApp>> DeviceApp::New(Host* host, std::string device_id,
                                                          crypto::SecretBytes secret,
                                                          net::Endpoint server) {
  std::unique_ptr<DeviceApp> app(new DeviceApp(host, server));
  DeviceApp* self = app.get();
  ASSIGN_OR_RETURN(app->socket_,
                   host->Bind(kPort, [self](const net::Endpoint& from,
                                            absl::Span<const uint8_t> bytes) {
                     self->OnDatagram(from, bytes);
                   }));
  device::AttachClientOptions options;
  options.device_id = std::move(device_id);
  options.secret = std::move(secret);
  options.server = server;
  options.handler = self;
  ASSIGN_OR_RETURN(app->attach_,
                   device::AttachClient::New(std::move(options), &host->sim().random()));
  return app;
}

DeviceApp::DeviceApp(Host* host, net::Endpoint server)
    : sim_(&host->sim()), host_(host), server_(server), alarm_(sim_, [this] { OnAlarm(); }) {}

DeviceApp::~DeviceApp() = default;

void DeviceApp::Start() {
  attach_->Start(Now());
  Drive();
}

channel::PeerConnection* DeviceApp::peer() const {
  auto it = peers_.find(newest_peer_);
  return it == peers_.end() ? nullptr : it->second->connection.get();
}

wire::ConnectResponse DeviceApp::OnConnectRequest(const wire::ConnectRequest& request,
                                                  const wire::Nonce& device_nonce,
                                                  absl::Time now) {
  wire::ConnectResponse response;
  response.request_id = request.request_id;
  channel::PeerConnectionOptions options;
  options.side = channel::Side::kDevice;
  options.session_id = request.session_id;
  options.session_key = crypto::SecretBytes::CopyFrom(request.session_key.span());
  options.client_nonce = request.client_nonce;
  options.device_nonce = device_nonce;
  options.remote_candidates = request.client_candidates;
  options.relay = request.relay;
  options.relay_ticket = request.relay_ticket;
  options.reflector = server_;
  if (predicted_ports_.has_value()) options.predicted_ports = *predicted_ports_;
  absl::StatusOr<std::unique_ptr<PeerConnection>> connection =
      PeerConnection::New(std::move(options), &sim_->random());
  if (!connection.ok()) {
    response.verdict = wire::ConnectVerdict::kBusy;
    return response;
  }
  auto session = std::make_unique<PeerSession>();
  session->connection = *std::move(connection);
  const uint64_t id = session->connection->channel_id();
  session->extra_sockets = std::make_unique<ExtraSockets>(
      host_, [this, id](uint16_t socket, const net::Endpoint& from,
                        absl::Span<const uint8_t> bytes) {
        if (auto it = peers_.find(id); it != peers_.end()) {
          it->second->connection->OnPacket(from, bytes, Now(), socket);
        }
        Drive();
      });
  session->rpc.Handle("echo", [this](absl::Span<const uint8_t> payload) -> rpc::Reply {
    ++rpc_served_;
    return std::vector<uint8_t>(payload.begin(), payload.end());
  });
  // Started now; its first probes go out after the CONNECT_RESPONSE (Drive sends attach first).
  session->connection->Start(now);
  newest_peer_ = session->connection->channel_id();
  peers_[newest_peer_] = std::move(session);
  response.verdict = wire::ConnectVerdict::kAccepted;
  response.device_candidates = {{wire::Candidate::Kind::kHost, socket_->local()}};
  return response;
}

wire::DeviceResponse DeviceApp::OnDeviceRequest(const wire::DeviceRequest& request,
                                                absl::Time) {
  return {request.request_id, static_cast<uint8_t>(absl::StatusCode::kUnimplemented),
          "no device methods in the simulator", {}};
}

void DeviceApp::OnDatagram(const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
  const absl::Time now = Now();
  if (bytes.empty()) {
    ++dropped_;
  } else if (bytes[0] == wire::kProtocolVersion) {
    attach_->OnPacket(from, bytes, now);
  } else if (bytes[0] == channel::kRelayMarker) {
    // Relay replies name their session inside; each connection checks.
    for (auto& [id, peer] : peers_) peer->connection->OnPacket(from, bytes, now);
  } else if (auto it = peers_.find(channel::PeekChannelId(bytes)); it != peers_.end()) {
    it->second->connection->OnPacket(from, bytes, now);
  } else {
    ++dropped_;
  }
  Drive();
}

void DeviceApp::OnAlarm() {
  if (attach_->next_timeout() <= Now()) attach_->OnTimeout(Now());
  Drive();
}

void DeviceApp::Drive() {
  const absl::Time now = Now();
  for (net::Datagram& d : attach_->TakeOutgoing()) socket_->SendTo(d.to, std::move(d.bytes));
  // As the daemon does: a new public address (NAT rebinding) is news for every peer session.
  if (attach_->reflexive() != last_reflexive_) {
    if (last_reflexive_.is_set()) {
      for (auto& [id, peer] : peers_) peer->connection->OnLocalAddressChanged(now);
    }
    last_reflexive_ = attach_->reflexive();
  }
  absl::Time next = attach_->next_timeout();
  for (auto it = peers_.begin(); it != peers_.end();) {
    PeerSession& peer = *it->second;
    PumpPeer(*peer.connection, peer.rpc, now);
    peer.extra_sockets->Flush(*peer.connection, *socket_);
    if (peer.connection->state() == PeerConnection::State::kClosed) {
      peers_.erase(it++);
      continue;
    }
    next = std::min({next, peer.connection->next_timeout(), peer.rpc.next_timeout()});
    ++it;
  }
  // Deadlines are on the device's clock: a clock stepped back postpones them, as a wall-clock
  // timer would.
  alarm_.Set(next - clock_offset_);
}

// --- Client ------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ClientApp>> ClientApp::New(Host* host, Basestation* basestation,
                                                          absl::Duration control_delay,
                                                          bool reflect_first) {
  std::unique_ptr<ClientApp> app(
      new ClientApp(host, basestation, control_delay, reflect_first));
  ClientApp* self = app.get();
  ASSIGN_OR_RETURN(app->socket_,
                   host->Bind(kPort, [self](const net::Endpoint& from,
                                            absl::Span<const uint8_t> bytes) {
                     self->OnDatagram(from, bytes);
                   }));
  return app;
}

ClientApp::ClientApp(Host* host, Basestation* basestation, absl::Duration control_delay,
                     bool reflect_first)
    : sim_(&host->sim()),
      host_(host),
      basestation_(basestation),
      control_delay_(control_delay),
      reflect_first_(reflect_first),
      alarm_(sim_, [this] { OnAlarm(); }) {}

ClientApp::~ClientApp() = default;

bool ClientApp::connected() const {
  return connection_ != nullptr && connection_->state() == PeerConnection::State::kConnected;
}

std::string ClientApp::path() const {
  if (connection_ == nullptr || connection_->active_path() == nullptr) return "none";
  return std::string(PeerConnection::PathName(*connection_->active_path()));
}

void ClientApp::Connect(const std::string& device_id) {
  device_id_ = device_id;
  connect_started_ = sim_->now();
  if (reflect_first_) {
    state_ = State::kReflecting;
    reflect_tries_ = 0;
    SendReflect();
  } else {
    StartBroker();
  }
  Drive();
}

void ClientApp::SendReflect() {
  ++reflect_tries_;
  socket_->SendTo(basestation_->relay_address(), channel::BuildRelayReflect());
  reflect_deadline_ = sim_->now() + kReflectInterval;
}

void ClientApp::StartBroker() {
  state_ = State::kBrokering;
  reflect_deadline_ = absl::InfiniteFuture();
  std::vector<wire::Candidate> candidates = {{wire::Candidate::Kind::kHost, socket_->local()}};
  if (reflexive_.has_value() && *reflexive_ != socket_->local()) {
    candidates.push_back({wire::Candidate::Kind::kServerReflexive, *reflexive_});
  }
  wire::Fingerprint fingerprint;
  fingerprint.fill(0xAA);
  sim_->random().Fill(absl::MakeSpan(client_nonce_));
  // The control channel (gRPC over TLS in production): one reliable message each way.
  const absl::Time deadline = sim_->now() + kConnectDeadline;
  sim_->Schedule(sim_->now() + control_delay_, [this, fingerprint, deadline,
                                                candidates = std::move(candidates)] {
    basestation_->Connect(
        device_id_, fingerprint, candidates, client_nonce_, deadline,
        [this](absl::StatusOr<BrokeredSession> session) {
          auto shared = std::make_shared<absl::StatusOr<BrokeredSession>>(std::move(session));
          sim_->Schedule(sim_->now() + control_delay_,
                         [this, shared] { OnBrokered(std::move(*shared)); });
        });
  });
}

void ClientApp::OnBrokered(absl::StatusOr<BrokeredSession> session) {
  if (!session.ok()) {
    state_ = State::kFailed;
    status_ = session.status();
    return;
  }
  channel::PeerConnectionOptions options;
  options.side = channel::Side::kClient;
  options.session_id = session->session_id;
  options.session_key = std::move(session->session_key);
  options.client_nonce = client_nonce_;
  options.device_nonce = session->device_nonce;
  options.remote_candidates = session->device_candidates;
  options.relay = session->relay;
  options.relay_ticket = session->relay_ticket;
  options.reflector = session->reflector;
  if (predicted_ports_.has_value()) options.predicted_ports = *predicted_ports_;
  absl::StatusOr<std::unique_ptr<PeerConnection>> connection =
      PeerConnection::New(std::move(options), &sim_->random());
  if (!connection.ok()) {
    state_ = State::kFailed;
    status_ = connection.status();
    return;
  }
  connection_ = *std::move(connection);
  extra_sockets_ = std::make_unique<ExtraSockets>(
      host_, [this](uint16_t socket, const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
        if (connection_ != nullptr) connection_->OnPacket(from, bytes, sim_->now(), socket);
        Drive();
      });
  state_ = State::kPeering;
  connection_->Start(sim_->now());
  Drive();
}

void ClientApp::Call(absl::string_view method, std::vector<uint8_t> payload, absl::Time deadline,
                     rpc::Done done) {
  rpc_.Call(method, payload, deadline, std::move(done), sim_->now());
  Drive();
}

void ClientApp::Close() {
  if (connection_ != nullptr) connection_->Close(sim_->now());
  Drive();
}

void ClientApp::OnDatagram(const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
  const absl::Time now = sim_->now();
  if (state_ == State::kReflecting) {
    if (std::optional<net::Endpoint> observed = ParseReflection(bytes);
        observed.has_value() && from == basestation_->relay_address()) {
      reflexive_ = *observed;
      StartBroker();
    }
  } else if (connection_ != nullptr && connection_->state() != PeerConnection::State::kClosed) {
    const uint64_t drops = Drops(connection_->counters());
    connection_->OnPacket(from, bytes, now);
    if (!bytes.empty() && bytes[0] == channel::kPeerPacketMarker &&
        Drops(connection_->counters()) == drops && first_authenticated_ == absl::InfiniteFuture()) {
      first_authenticated_ = now;
    }
  }
  Drive();
}

void ClientApp::OnAlarm() {
  if (state_ == State::kReflecting && reflect_deadline_ <= sim_->now()) {
    if (reflect_tries_ < kReflectTries) {
      SendReflect();
    } else {
      StartBroker();  // No answer: go on without a server-reflexive candidate.
    }
  }
  Drive();
}

void ClientApp::Drive() {
  const absl::Time now = sim_->now();
  absl::Time next = reflect_deadline_;
  if (connection_ != nullptr) {
    PumpPeer(*connection_, rpc_, now);
    extra_sockets_->Flush(*connection_, *socket_);
    const PeerConnection::Path* active = connection_->active_path();
    std::string key = active == nullptr
                          ? "none"
                          : absl::StrCat(PeerConnection::PathName(*active), " ",
                                         active->remote.ToString());
    if (key != path_key_) {
      path_key_ = std::move(key);
      path_changed_ = now;
      ++path_changes_;
    }
    if (connection_->state() == PeerConnection::State::kClosed) {
      rpc_.CancelAll(absl::UnavailableError("peer connection closed"));
    }
    next = std::min({next, connection_->next_timeout(), rpc_.next_timeout()});
  } else {
    next = std::min(next, rpc_.next_timeout());
  }
  alarm_.Set(next);
}

// --- Scenario ----------------------------------------------------------------------------------

absl::string_view NatTypeName(NatType type) {
  switch (type) {
    case NatType::kNone:
      return "none";
    case NatType::kFullCone:
      return "full-cone";
    case NatType::kAddressRestricted:
      return "addr-restricted";
    case NatType::kPortRestricted:
      return "port-restricted";
    case NatType::kSymmetricSequential:
      return "sym-sequential";
    case NatType::kSymmetricRandom:
      return "sym-random";
    case NatType::kDoubleNat:
      return "double-nat";
  }
  return "?";
}

std::vector<NatType> AllNatTypes() {
  return {NatType::kNone,           NatType::kFullCone,           NatType::kAddressRestricted,
          NatType::kPortRestricted, NatType::kSymmetricSequential, NatType::kSymmetricRandom,
          NatType::kDoubleNat};
}

Site BuildSite(Network& internet, NatType type, const std::string& name,
               const net::Endpoint& public_ip, const net::Endpoint& lan_ip,
               absl::Duration one_way, double loss, absl::Duration nat_timeout) {
  constexpr absl::Duration kLanHop = absl::Milliseconds(1);
  LinkConfig host_link;
  host_link.loss = loss;
  Site site;
  if (type == NatType::kNone) {
    host_link.latency = one_way;
    site.host = &internet.AddHost(name, public_ip, host_link);
    return site;
  }
  host_link.latency = kLanHop;
  NatConfig config;
  switch (type) {
    case NatType::kFullCone:
      config = NatConfig::FullCone();
      break;
    case NatType::kAddressRestricted:
      config = NatConfig::AddressRestricted();
      break;
    case NatType::kPortRestricted:
    case NatType::kDoubleNat:
      config = NatConfig::PortRestricted();
      break;
    case NatType::kSymmetricSequential:
      config = NatConfig::SymmetricSequential();
      break;
    case NatType::kSymmetricRandom:
      config = NatConfig::SymmetricRandom();
      break;
    case NatType::kNone:
      break;
  }
  config.mapping_timeout = nat_timeout;
  LinkConfig uplink;
  if (type == NatType::kDoubleNat) {
    uplink.latency = one_way - 2 * kLanHop;
    site.nat = &internet.AddNat(name + "-cgn", public_ip, config, uplink);
    uplink.latency = kLanHop;
    site.inner = &site.nat->inside().AddNat(name + "-nat", Ip("100.64.0.2"), config, uplink);
    site.host = &site.inner->inside().AddHost(name, lan_ip, host_link);
  } else {
    uplink.latency = one_way - kLanHop;
    site.nat = &internet.AddNat(name + "-nat", public_ip, config, uplink);
    site.host = &site.nat->inside().AddHost(name, lan_ip, host_link);
  }
  return site;
}

Scenario::Scenario(const ScenarioOptions& options)
    : options_(options), sim_(options.seed), internet_(&sim_, "internet") {}

absl::StatusOr<std::unique_ptr<Scenario>> Scenario::New(const ScenarioOptions& options) {
  std::unique_ptr<Scenario> s(new Scenario(options));
  if (std::getenv("EDGELINK_SIM_TRACE") != nullptr) {
    // Debugging aid: every packet sent, delivered or dropped, on stderr.
    const absl::Time start = s->sim_.now();
    s->sim_.set_tracer([start](absl::Time at, const std::string& line) {
      std::fprintf(stderr, "%10.3f %s\n", absl::ToDoubleSeconds(at - start), line.c_str());
    });
  }
  LinkConfig bs_link;
  bs_link.latency = options.basestation_one_way;
  Host& bs_host = s->internet_.AddHost("basestation", Ip("198.51.100.1"), bs_link);
  crypto::SecretBytes server_key(32);
  s->sim_.random().Fill(server_key.mutable_span());
  ASSIGN_OR_RETURN(s->basestation_,
                   Basestation::New(&bs_host, std::move(server_key), options.attach));

  // Distinct private subnets on each side, so only a shared LAN yields a host-to-host path.
  s->device_site_ = BuildSite(s->internet_, options.device_nat, "device", Ip("203.0.113.10"),
                              Ip("192.168.1.2"), options.device_one_way, options.loss,
                              options.nat_timeout);
  crypto::SecretBytes device_secret(32);
  s->sim_.random().Fill(device_secret.mutable_span());
  s->basestation_->AddDevice(std::string(kDeviceId), device_secret);
  s->device_secret_ = device_secret.Clone();
  ASSIGN_OR_RETURN(s->device_, DeviceApp::New(s->device_site_.host, std::string(kDeviceId),
                                              std::move(device_secret),
                                              s->basestation_->attach_address()));

  if (options.client_on_device_lan) {
    LinkConfig lan;
    lan.latency = absl::Milliseconds(1);
    lan.loss = options.loss;
    s->client_site_ = s->device_site_;
    s->client_site_.host =
        &s->device_site_.host->network().AddHost("client", Ip("192.168.1.3"), lan);
  } else {
    s->client_site_ = BuildSite(s->internet_, options.client_nat, "client", Ip("192.0.2.10"),
                                Ip("10.0.0.2"), options.client_one_way, options.loss,
                                options.nat_timeout);
  }
  s->client_rtt_ = s->client_site_.host->RoundTripToRoot() + bs_host.RoundTripToRoot();
  ASSIGN_OR_RETURN(s->client_, ClientApp::New(s->client_site_.host, s->basestation_.get(),
                                              s->client_rtt_ / 2, options.client_reflects_first));
  s->basestation_->set_attach_port_reflects(options.attach_port_reflects);
  if (options.predicted_ports.has_value()) {
    s->device_->set_predicted_ports(*options.predicted_ports);
    s->client_->set_predicted_ports(*options.predicted_ports);
  }
  s->device_->Start();
  return s;
}

absl::Status Scenario::PowerOnDevice() {
  ASSIGN_OR_RETURN(device_, DeviceApp::New(device_site_.host, std::string(kDeviceId),
                                           device_secret_.Clone(),
                                           basestation_->attach_address()));
  if (options_.predicted_ports.has_value()) device_->set_predicted_ports(*options_.predicted_ports);
  device_->Start();
  return absl::OkStatus();
}

ConnectReport Scenario::RunConnect() {
  ConnectReport report;
  report.rtt = client_rtt_;
  report.attached = sim_.RunUntil([&] { return device_->attached(); }, absl::Seconds(60));
  if (!report.attached) {
    report.status = absl::UnavailableError("device did not attach");
    return report;
  }
  const absl::Time start = sim_.now();
  client_->Connect(std::string(kDeviceId));
  sim_.RunUntil([&] { return client_->connected() || client_->state() == ClientApp::State::kFailed; },
                absl::Seconds(20));
  report.status = client_->status();
  // Let every candidate be answered or time out, so the path in use is the one racing settles on.
  sim_.RunFor(channel::PeerConnectionOptions().probe_timeout + absl::Seconds(2));

  const std::vector<uint8_t> payload = {'p', 'i', 'n', 'g'};
  // Shared: `done` may run after this function returned (a late cancel).
  auto result = std::make_shared<std::optional<bool>>();
  if (client_->connected()) {
    client_->Call("echo", payload, sim_.now() + absl::Seconds(5),
                  [result, payload](rpc::Reply reply) {
                    *result = reply.ok() && *reply == payload;
                  });
    sim_.RunUntil([&] { return result->has_value(); }, absl::Seconds(6));
  }
  report.rpc_ok = result->value_or(false);
  report.connected = client_->connected();
  report.path = client_->path();
  if (PeerConnection* peer = device_->peer(); peer != nullptr && peer->active_path() != nullptr) {
    report.device_path = std::string(PeerConnection::PathName(*peer->active_path()));
  }
  auto rtts = [&](absl::Time t) {
    return t == absl::InfiniteFuture() ? -1.0 : absl::FDivDuration(t - start, client_rtt_);
  };
  report.first_byte_rtts = rtts(client_->first_authenticated());
  report.final_path_rtts = rtts(client_->path_changed());
  return report;
}

}  // namespace edgelink::sim
