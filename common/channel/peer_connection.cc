#include "common/channel/peer_connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/wire/bytes.h"

namespace edgelink::channel {
namespace {

constexpr size_t kRelayBindSize = 64;
constexpr uint8_t kReflectionType = 4;  // RELAY_REFLECTION.
// After a key update the receiver keeps the previous generation this long, for packets sealed
// before the update and delivered late (as QUIC keeps old keys for about three PTOs).
constexpr absl::Duration kPreviousKeysKept = absl::Seconds(3);
// Birthday probing's easy side sends this many probes every kSprayInterval (1,600 a second).
constexpr int kSprayBurst = 32;
constexpr absl::Duration kSprayInterval = absl::Milliseconds(20);
// NATs hand out ports from here up (RFC 6335's dynamic range is narrower; many NATs use all).
constexpr int kLowestSprayPort = 1024;

std::vector<uint8_t> ProbePayload(uint32_t probe_id, NatMapping mapping) {
  wire::ByteWriter out;
  out.WriteU32(probe_id);
  out.WriteU8(static_cast<uint8_t>(mapping));
  return out.Take();
}

}  // namespace

std::vector<uint8_t> BuildRelayBind(Side side, absl::Span<const uint8_t> ticket) {
  wire::ByteWriter out(kRelayBindSize);
  out.WriteU8(kRelayMarker);
  out.WriteU8(1);  // BIND
  out.WriteU8(static_cast<uint8_t>(side));
  out.WriteBytes(ticket);
  out.PadTo(kRelayBindSize);
  return out.Take();
}

std::vector<uint8_t> BuildRelayReflect() {
  std::vector<uint8_t> reflect(32, 0);
  reflect[0] = kRelayMarker;
  reflect[1] = 3;  // REFLECT
  return reflect;
}

absl::string_view NatMappingName(NatMapping mapping) {
  switch (mapping) {
    case NatMapping::kUnknown:
      return "unknown";
    case NatMapping::kEndpointIndependent:
      return "endpoint-independent";
    case NatMapping::kEndpointDependent:
      return "endpoint-dependent";
  }
  return "?";
}

absl::string_view PeerConnection::PathName(const Path& path) {
  if (path.via_relay) return "relay";
  switch (path.kind) {
    case wire::Candidate::Kind::kHost:
      return "local";
    case wire::Candidate::Kind::kServerReflexive:
    case wire::Candidate::Kind::kPredicted:
      return "direct";
    case wire::Candidate::Kind::kRelay:
      return "relay";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<PeerConnection>> PeerConnection::New(
    PeerConnectionOptions options, crypto::RandomSource* random) {
  if (options.relay.is_set() && options.relay_ticket.size() != kRelayTicketSize) {
    return absl::InvalidArgumentError("relay ticket must be 40 bytes");
  }
  ASSIGN_OR_RETURN(SessionSecrets secrets,
                   DeriveSessionSecrets(options.session_id, options.session_key,
                                        options.client_nonce, options.device_nonce));
  const bool client = options.side == Side::kClient;
  ASSIGN_OR_RETURN(KeyChain send, KeyChain::New(client ? secrets.client_to_device.Clone()
                                                        : secrets.device_to_client.Clone()));
  ASSIGN_OR_RETURN(KeyChain receive, KeyChain::New(client ? secrets.device_to_client.Clone()
                                                           : secrets.client_to_device.Clone()));
  return std::unique_ptr<PeerConnection>(new PeerConnection(
      std::move(options), random, std::move(secrets), std::move(send), std::move(receive)));
}

PeerConnection::PeerConnection(PeerConnectionOptions options, crypto::RandomSource* random,
                               SessionSecrets secrets, KeyChain send, KeyChain receive)
    : options_(std::move(options)),
      random_(random),
      channel_id_(secrets.channel_id),
      send_keys_(std::move(send)),
      receive_keys_(std::move(receive)) {
  // The session key is not needed again; the chains hold what is.
  options_.session_key = crypto::SecretBytes();
}

std::vector<net::Datagram> PeerConnection::TakeOutgoing() { return std::exchange(outgoing_, {}); }

std::vector<PeerConnection::Received> PeerConnection::TakeReceived() {
  return std::exchange(received_, {});
}

bool PeerConnection::WantsSocket(uint16_t socket) const {
  return socket == 0 || std::any_of(paths_.begin(), paths_.end(), [&](const Path& p) {
           return p.socket == socket && p.state != PathState::kFailed;
         });
}

PeerConnection::Path* PeerConnection::FindPath(const net::Endpoint& remote, uint16_t socket) {
  for (Path& path : paths_) {
    if (path.remote == remote && path.socket == socket) return &path;
  }
  return nullptr;
}

PeerConnection::Path& PeerConnection::AddPath(wire::Candidate::Kind kind,
                                              const net::Endpoint& remote, bool via_relay,
                                              absl::Time now, uint16_t socket) {
  Path path;
  path.kind = kind;
  path.remote = remote;
  path.socket = socket;
  path.via_relay = via_relay;
  path.started = now;
  path.next_probe = now;
  paths_.push_back(path);
  return paths_.back();
}

void PeerConnection::AddPath(const wire::Candidate& candidate, absl::Time now) {
  if (FindPath(candidate.endpoint) != nullptr) return;
  Path& path = AddPath(candidate.kind, candidate.endpoint, false, now);
  SendProbe(path, now);
  path.next_probe = now + options_.probe_interval;
}

void PeerConnection::AddRemoteCandidate(const wire::Candidate& candidate, absl::Time now) {
  if (state_ == State::kClosed || candidate.kind == wire::Candidate::Kind::kRelay ||
      options_.relay_only) {
    return;
  }
  AddPath(candidate, now);
  if (candidate.kind != wire::Candidate::Kind::kServerReflexive) return;
  // A server-reflexive address that is also a host address: the peer is not behind a NAT.
  const bool natted = std::none_of(paths_.begin(), paths_.end(), [&](const Path& p) {
    return p.kind == wire::Candidate::Kind::kHost && p.remote == candidate.endpoint;
  });
  if (!natted) {
    // The peer's public address is one of its interfaces: a path to it is direct, not local.
    for (Path& p : paths_) {
      if (p.remote == candidate.endpoint) p.kind = wire::Candidate::Kind::kServerReflexive;
    }
    return;
  }
  peer_reflexive_ = candidate.endpoint;
  const net::Endpoint& base = candidate.endpoint;
  for (int i = 1; i <= options_.predicted_ports && base.port() + i <= 65535; ++i) {
    AddPath({wire::Candidate::Kind::kPredicted,
             base.WithPort(static_cast<uint16_t>(base.port() + i))},
            now);
  }
}

void PeerConnection::Start(absl::Time now) {
  started_ = now;
  last_heard_ = now;
  // Host candidates first, so a server-reflexive one equal to a host address is recognised.
  std::vector<wire::Candidate> candidates = options_.remote_candidates;
  std::stable_partition(candidates.begin(), candidates.end(), [](const wire::Candidate& c) {
    return c.kind == wire::Candidate::Kind::kHost;
  });
  for (const wire::Candidate& c : candidates) AddRemoteCandidate(c, now);
  if (options_.relay.is_set()) {
    Rebind(now);
    AddPath(wire::Candidate::Kind::kRelay, options_.relay, true, now);
  }
  if (!options_.relay_only && options_.spray_sockets > 0) {
    next_spray_ = now + options_.spray_after;
  }
}

void PeerConnection::TellCandidates(Path& path) {
  if (!reflexive_.is_set() || path.told_candidates || options_.relay_only) return;
  path.told_candidates = true;
  wire::ByteWriter out;
  out.WriteU8(1);
  out.WriteU8(static_cast<uint8_t>(wire::Candidate::Kind::kServerReflexive));
  wire::WriteEndpoint(reflexive_, out);
  out.WriteU8(static_cast<uint8_t>(local_mapping_));
  SendOn(path, PeerPacketType::kCandidates, out.bytes());
}

void PeerConnection::RetellCandidates() {
  for (Path& path : paths_) {
    path.told_candidates = false;
    if (path.state != PathState::kFailed && !(path.via_relay && !relay_bound_)) {
      TellCandidates(path);
    }
  }
}

void PeerConnection::SendOn(const Path& path, PeerPacketType type,
                            absl::Span<const uint8_t> payload) {
  if (tx_packet_number_ > 0 && tx_packet_number_ % options_.key_update_interval == 0 &&
      type == PeerPacketType::kData) {
    absl::StatusOr<KeyChain> next = send_keys_.Next();
    if (!next.ok()) abort();  // HKDF on valid inputs cannot fail short of a broken backend.
    send_keys_ = *std::move(next);
    ++counters_.key_updates;
  }
  const PeerHeader header{type, send_keys_.phase(), channel_id_, tx_packet_number_++};
  absl::StatusOr<std::vector<uint8_t>> packet =
      SealPeerPacket(send_keys_, header, payload);
  if (!packet.ok()) return;  // Oversized payloads were refused by Send already.
  ++counters_.packets_sent;
  outgoing_.push_back({path.remote, *std::move(packet), path.socket});
}

void PeerConnection::SendProbe(Path& path, absl::Time now) {
  uint32_t id = 0;
  random_->Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&id), sizeof(id)));
  path.last_probe_id = id;
  path.last_probe_at = now;
  ++path.probes_sent;
  ++counters_.probes_sent;
  if (path.unanswered_since == absl::InfiniteFuture()) path.unanswered_since = now;
  SendOn(path, PeerPacketType::kProbe, ProbePayload(id, local_mapping_));
}

int PeerConnection::Rank(const Path& path) {
  if (path.via_relay) return 0;
  return path.kind == wire::Candidate::Kind::kHost ? 2 : 1;
}

const PeerConnection::Path* PeerConnection::active_path() const {
  return active_ >= 0 ? &paths_[active_] : nullptr;
}

void PeerConnection::ChooseActivePath(absl::Time now) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(paths_.size()); ++i) {
    const Path& p = paths_[i];
    if (p.state != PathState::kUsable) continue;
    if (best < 0 || Rank(p) > Rank(paths_[best]) ||
        (Rank(p) == Rank(paths_[best]) && p.rtt < paths_[best].rtt)) {
      best = i;
    }
  }
  if (best == active_) return;
  if (active_ >= 0 && best >= 0) ++counters_.path_switches;
  active_ = best;
  if (best >= 0) {
    if (first_usable_ == absl::InfiniteFuture()) first_usable_ = now;
    state_ = State::kConnected;
  }
}

absl::Time PeerConnection::next_timeout() const {
  if (state_ == State::kClosed) return absl::InfiniteFuture();
  absl::Time next =
      std::min({last_heard_ + options_.idle_timeout, next_relay_bind_, next_spray_});
  for (const Path& p : paths_) {
    if (p.state != PathState::kFailed || p.kind != wire::Candidate::Kind::kPredicted) {
      next = std::min(next, p.next_probe);
    }
  }
  return next;
}

void PeerConnection::Rebind(absl::Time now) {
  if (options_.reflector.is_set() && !options_.relay_only) {
    outgoing_.push_back({options_.reflector, BuildRelayReflect()});
  }
  if (!options_.relay.is_set()) return;
  outgoing_.push_back({options_.relay, BuildRelayBind(options_.side, options_.relay_ticket)});
  outgoing_.push_back({options_.relay, BuildRelayReflect()});
  // Every second until the relay bound us and, while connecting, the reflector answered too.
  const bool settled = relay_bound_ && (local_mapping_ != NatMapping::kUnknown ||
                                        !options_.reflector.is_set() ||
                                        now - started_ >= options_.probe_timeout);
  next_relay_bind_ = now + (settled ? absl::Seconds(20) : absl::Seconds(1));
}

void PeerConnection::OnLocalAddressChanged(absl::Time now) {
  if (state_ == State::kClosed) return;
  Rebind(now);
  for (Path& p : paths_) {
    if (p.state == PathState::kFailed) Revive(p, now);
    p.next_probe = now;
    p.told_candidates = false;
  }
}

void PeerConnection::Revive(Path& path, absl::Time now) {
  path.state = PathState::kProbing;
  path.started = now;
  path.unanswered_since = absl::InfiniteFuture();
  path.next_probe = now;
}

void PeerConnection::Fail(Path& path, absl::Time now) {
  path.state = PathState::kFailed;
  // Not given up for good: probed again now and then (a NAT may let it through later), except
  // the guessed ports, which come back only if the peer shows up on one.
  path.next_probe = now + options_.keepalive_interval;
}

void PeerConnection::OnTimeout(absl::Time now) {
  if (state_ == State::kClosed) return;
  if (now - last_heard_ >= options_.idle_timeout) {
    state_ = State::kClosed;
    active_ = -1;
    return;
  }
  // Keep the relay binding fresh (its idle timeout is longer than this) and our address known.
  if (now >= next_relay_bind_) Rebind(now);
  if (now >= next_spray_) {
    if (spray_ == Spray::kSpraying) {
      SprayBurst(now);
    } else {
      // No direct path yet: say again how our NAT maps, in case that was lost, and see whether
      // birthday probing applies (else it may once the peer's word arrives).
      next_spray_ = absl::InfiniteFuture();
      if (!HasUsableDirectPath()) {
        RetellCandidates();
        // Every probe and its answer say how the sender's NAT maps.
        for (Path& p : paths_) {
          if (p.via_relay && p.state == PathState::kUsable) SendProbe(p, now);
        }
      }
      MaybeStartSpray(now);
    }
  }
  const bool busy = now - last_sent_data_ < options_.keepalive_interval;
  bool changed = false;
  for (int i = 0; i < static_cast<int>(paths_.size()); ++i) {
    Path& p = paths_[i];
    if (now < p.next_probe) continue;
    if (p.state == PathState::kFailed) {
      if (p.kind == wire::Candidate::Kind::kPredicted) continue;
      SendProbe(p, now);
      p.next_probe = now + options_.keepalive_interval;
      continue;
    }
    if (p.state == PathState::kProbing && now - p.started >= options_.probe_timeout) {
      Fail(p, now);
      continue;
    }
    if (p.state == PathState::kUsable && p.unanswered_since != absl::InfiniteFuture() &&
        now - p.unanswered_since >=
            (i == active_ && busy ? options_.path_failure_timeout
                                  : 3 * options_.keepalive_interval)) {
      Fail(p, now);
      changed = true;
      continue;
    }
    if (p.via_relay && !relay_bound_ && p.state == PathState::kProbing) {
      p.next_probe = now + options_.probe_interval;  // Nothing to probe through yet.
      continue;
    }
    SendProbe(p, now);
    if (p.state == PathState::kProbing) {
      p.next_probe = now + options_.probe_interval;
    } else {
      p.next_probe = now + (i == active_ && busy ? options_.active_probe_interval
                                                 : options_.keepalive_interval);
    }
  }
  if (changed) {
    ChooseActivePath(now);
    // A path that worked stopped: perhaps our NAT moved us. Tell the relay and ask again.
    Rebind(now);
  }
}

absl::Status PeerConnection::Send(DataKind kind, absl::Span<const uint8_t> bytes,
                                  absl::Time now) {
  if (state_ == State::kClosed) return absl::FailedPreconditionError("connection closed");
  if (active_ < 0) return absl::FailedPreconditionError("no usable path yet");
  if (bytes.size() + 1 > kMaxPeerPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("datagram of ", bytes.size(), " bytes exceeds ", kMaxPeerPayload - 1));
  }
  std::vector<uint8_t> payload;
  payload.reserve(bytes.size() + 1);
  payload.push_back(static_cast<uint8_t>(kind));
  payload.insert(payload.end(), bytes.begin(), bytes.end());
  Path& path = paths_[active_];
  if (now - last_sent_data_ >= options_.keepalive_interval &&
      path.next_probe > now + options_.active_probe_interval) {
    // Traffic resumes after a quiet spell: check the path soon rather than in a keep-alive, and
    // time its answer from now, not from an idle keep-alive probe.
    path.next_probe = now + options_.active_probe_interval;
    path.unanswered_since = absl::InfiniteFuture();
  }
  last_sent_data_ = now;
  SendOn(path, PeerPacketType::kData, payload);
  return absl::OkStatus();
}

void PeerConnection::Close(absl::Time now) {
  if (state_ == State::kClosed) return;
  if (active_ >= 0) SendOn(paths_[active_], PeerPacketType::kClose, std::vector<uint8_t>{0});
  state_ = State::kClosed;
  active_ = -1;
}

bool PeerConnection::OpenAndAdvance(const PeerHeader& header, absl::Span<const uint8_t> packet,
                                    absl::Time now, std::vector<uint8_t>* payload) {
  if (previous_receive_keys_.has_value() && now >= previous_receive_until_) {
    previous_receive_keys_.reset();
  }
  auto open = [&](const KeyChain& chain) {
    absl::StatusOr<std::vector<uint8_t>> opened = OpenPeerPacket(chain, header, packet);
    if (!opened.ok()) return false;
    *payload = *std::move(opened);
    return true;
  };
  if (header.key_phase == receive_keys_.phase()) return open(receive_keys_);
  // The other phase: sealed before the peer's last update, or after its next one.
  if (header.packet_number < receive_generation_start_) {
    return previous_receive_keys_.has_value() && open(*previous_receive_keys_);
  }
  if (!next_receive_keys_.has_value()) {
    absl::StatusOr<KeyChain> next = receive_keys_.Next();
    if (!next.ok()) return false;
    next_receive_keys_ = *std::move(next);
  }
  if (!open(*next_receive_keys_)) return false;
  previous_receive_keys_ = std::move(receive_keys_);
  previous_receive_until_ = now + kPreviousKeysKept;
  receive_keys_ = *std::move(next_receive_keys_);
  next_receive_keys_.reset();
  receive_generation_start_ = header.packet_number;
  return true;
}

void PeerConnection::HandleRelay(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                                 absl::Time now) {
  const bool from_relay = options_.relay.is_set() && from == options_.relay;
  if (packet.size() >= 2 && packet[1] == kReflectionType &&
      (from_relay || (options_.reflector.is_set() && from == options_.reflector))) {
    return HandleReflection(from, packet, now);
  }
  if (!from_relay) {
    ++counters_.dropped_malformed;
    return;
  }
  // RELAY_BOUND: marker, 2, session id[16], state (1 waiting, 2 both bound). Unauthenticated: it
  // only says when probing through the relay is worth it; probes decide if the path works.
  if (packet.size() != 19 || packet[1] != 2 ||
      !std::equal(options_.session_id.begin(), options_.session_id.end(), packet.begin() + 2)) {
    ++counters_.dropped_malformed;
    return;
  }
  if (packet[18] == 2 && !relay_bound_) {
    relay_bound_ = true;
    if (Path* path = FindPath(options_.relay); path != nullptr && path->via_relay) {
      path->next_probe = now;
      TellCandidates(*path);
    }
  }
}

void PeerConnection::HandleReflection(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                                      absl::Time now) {
  wire::ByteReader in(packet.subspan(2));
  net::Endpoint address;
  if (!wire::ReadEndpoint(in, &address) || !in.done()) {
    ++counters_.dropped_malformed;
    return;
  }
  // The relay's view is the address we tell; the reflector's, only compared with it.
  const bool from_relay = options_.relay.is_set() && from == options_.relay;
  bool changed = false;
  if (from_relay) {
    changed = address != reflexive_;
    reflexive_ = address;
  } else {
    reflector_reflexive_ = address;
  }
  if (reflexive_.is_set() && reflector_reflexive_.is_set()) {
    const NatMapping mapping = reflexive_ == reflector_reflexive_
                                   ? NatMapping::kEndpointIndependent
                                   : NatMapping::kEndpointDependent;
    changed = changed || mapping != local_mapping_;
    local_mapping_ = mapping;
  }
  // Tell the peer on every path we have, since its NAT may let our probes in only once it has
  // sent to this address.
  if (changed) {
    RetellCandidates();
    MaybeStartSpray(now);
  }
}

void PeerConnection::NotePeerMapping(uint8_t mapping, absl::Time now) {
  // Unknown values (a later protocol's) say nothing.
  if (mapping == static_cast<uint8_t>(peer_mapping_) ||
      mapping > static_cast<uint8_t>(NatMapping::kEndpointDependent)) {
    return;
  }
  peer_mapping_ = static_cast<NatMapping>(mapping);
  MaybeStartSpray(now);
}

bool PeerConnection::HasUsableDirectPath() const {
  return std::any_of(paths_.begin(), paths_.end(), [](const Path& p) {
    return !p.via_relay && p.state == PathState::kUsable;
  });
}

void PeerConnection::MaybeStartSpray(absl::Time now) {
  if (spray_ != Spray::kNotYet || options_.relay_only || options_.spray_sockets <= 0 ||
      now < started_ + options_.spray_after || !peer_reflexive_.is_set() ||
      HasUsableDirectPath()) {
    return;
  }
  constexpr NatMapping kEasy = NatMapping::kEndpointIndependent;
  constexpr NatMapping kHard = NatMapping::kEndpointDependent;
  if (local_mapping_ == kEasy && peer_mapping_ == kHard) {
    // Easy side: open our NAT to many ports of the peer's address; the peer probes us from as
    // many ports, and one of its probes is let in (or one of ours reaches it directly).
    spray_ = Spray::kSpraying;
    spray_left_ = options_.spray_probes;
    SprayBurst(now);
  } else if (local_mapping_ == kHard && peer_mapping_ == kEasy) {
    // Hard side: every extra socket gets its own mapping (a random port) towards the peer's one
    // public port. Guessed paths: failed for good when they time out.
    spray_ = Spray::kOpening;
    for (int i = 1; i <= options_.spray_sockets && i <= 65535; ++i) {
      SendProbe(AddPath(wire::Candidate::Kind::kPredicted, peer_reflexive_, false, now,
                        static_cast<uint16_t>(i)),
                now);
    }
    counters_.spray_sockets_used = static_cast<uint64_t>(options_.spray_sockets);
  }
}

void PeerConnection::SprayBurst(absl::Time now) {
  const int burst = std::min(spray_left_, kSprayBurst);
  Path target;  // Not a path of ours: an answer from one of these ports makes a new one.
  for (int i = 0; i < burst; ++i) {
    uint16_t port = 0;
    uint32_t id = 0;
    random_->Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&port), sizeof(port)));
    random_->Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&id), sizeof(id)));
    target.remote = peer_reflexive_.WithPort(
        static_cast<uint16_t>(kLowestSprayPort + port % (65536 - kLowestSprayPort)));
    SendOn(target, PeerPacketType::kProbe, ProbePayload(id, local_mapping_));
  }
  counters_.spray_probes_sent += static_cast<uint64_t>(burst);
  spray_left_ -= burst;
  if (spray_left_ > 0) {
    next_spray_ = now + kSprayInterval;
  } else {
    EndSpray(nullptr);
  }
}

void PeerConnection::EndSpray(const Path* winner) {
  if (spray_ == Spray::kOpening) {
    // Close the extra sockets that lost (WantsSocket).
    for (Path& p : paths_) {
      if (p.socket != 0 && &p != winner && p.state == PathState::kProbing) {
        p.state = PathState::kFailed;
      }
    }
  }
  spray_ = Spray::kDone;
  spray_left_ = 0;
  next_spray_ = absl::InfiniteFuture();
}

void PeerConnection::OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                              absl::Time now, uint16_t socket) {
  if (state_ == State::kClosed) return;
  ++counters_.packets_received;
  if (!packet.empty() && packet[0] == kRelayMarker) {
    if (socket != 0) {
      ++counters_.dropped_malformed;
      return;
    }
    return HandleRelay(from, packet, now);
  }
  absl::StatusOr<PeerHeader> header = ParsePeerHeader(packet);
  if (!header.ok() || header->channel_id != channel_id_ || packet.size() > kMaxPeerPacket) {
    ++counters_.dropped_malformed;
    return;
  }
  if (!replay_.CanAccept(header->packet_number)) {
    ++counters_.dropped_replay;
    return;
  }
  std::vector<uint8_t> payload;
  if (!OpenAndAdvance(*header, packet, now, &payload)) {
    ++counters_.dropped_unauthenticated;
    return;
  }
  replay_.Accept(header->packet_number);
  last_heard_ = now;

  // An authenticated packet from an address we do not know is the peer behind a NAT mapping we
  // could not predict (or one that changed): a new path to validate.
  Path* path = FindPath(from, socket);
  if (path == nullptr) {
    if (options_.relay_only) {
      ++counters_.dropped_unexpected;
      return;
    }
    path = &AddPath(wire::Candidate::Kind::kServerReflexive, from, false, now, socket);
  } else if (path->state == PathState::kFailed) {
    // The peer reaches us this way again: worth validating once more.
    Revive(*path, now);
  }
  switch (header->type) {
    case PeerPacketType::kProbe: {
      wire::ByteReader in(payload);
      uint32_t id = 0;
      uint8_t mapping = 0;
      if (!in.ReadU32(&id) || !in.ReadU8(&mapping) || !in.done()) {
        ++counters_.dropped_malformed;
        return;
      }
      wire::ByteWriter ack;
      ack.WriteU32(id);
      wire::WriteEndpoint(from, ack);
      ack.WriteU8(static_cast<uint8_t>(local_mapping_));
      SendOn(*path, PeerPacketType::kProbeAck, ack.bytes());
      if (path->state == PathState::kProbing && path->probes_sent == 0) SendProbe(*path, now);
      NotePeerMapping(mapping, now);  // Last: it may add paths, which moves `path`.
      return;
    }
    case PeerPacketType::kProbeAck: {
      wire::ByteReader in(payload);
      uint32_t id = 0;
      net::Endpoint observed;
      uint8_t mapping = 0;
      if (!in.ReadU32(&id) || !wire::ReadEndpoint(in, &observed) || !in.ReadU8(&mapping) ||
          !in.done()) {
        ++counters_.dropped_malformed;
        return;
      }
      if (id == path->last_probe_id) path->rtt = now - path->last_probe_at;
      path->unanswered_since = absl::InfiniteFuture();
      if (path->state != PathState::kUsable) {
        path->state = PathState::kUsable;
        path->usable_at = now;
        path->next_probe = now + options_.keepalive_interval;
        TellCandidates(*path);
        if (!path->via_relay && spray_ != Spray::kNotYet && spray_ != Spray::kDone) {
          EndSpray(path);
        }
        ChooseActivePath(now);
      }
      NotePeerMapping(mapping, now);  // Last: it may add paths, which moves `path`.
      return;
    }
    case PeerPacketType::kData: {
      if (payload.empty() || payload[0] < static_cast<uint8_t>(DataKind::kRpc) ||
          payload[0] > static_cast<uint8_t>(DataKind::kPong)) {
        ++counters_.dropped_malformed;
        return;
      }
      received_.push_back({static_cast<DataKind>(payload[0]),
                           std::vector<uint8_t>(payload.begin() + 1, payload.end())});
      return;
    }
    case PeerPacketType::kClose:
      state_ = State::kClosed;
      active_ = -1;
      return;
    case PeerPacketType::kCandidates: {
      wire::ByteReader in(payload);
      uint8_t count = 0;
      if (!in.ReadU8(&count) || count > wire::kMaxCandidates) {
        ++counters_.dropped_malformed;
        return;
      }
      for (int i = 0; i < count; ++i) {
        uint8_t kind = 0;
        net::Endpoint endpoint;
        if (!in.ReadU8(&kind) || kind < 1 || kind > 3 || !wire::ReadEndpoint(in, &endpoint)) {
          ++counters_.dropped_malformed;
          return;
        }
        AddRemoteCandidate({static_cast<wire::Candidate::Kind>(kind), endpoint}, now);
      }
      uint8_t mapping = 0;
      if (in.ReadU8(&mapping)) NotePeerMapping(mapping, now);
      return;
    }
  }
}

}  // namespace edgelink::channel
