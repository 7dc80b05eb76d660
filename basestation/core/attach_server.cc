#include "basestation/core/attach_server.h"

#include <algorithm>
#include <utility>

#include "common/status/status_macros.h"

namespace edgelink::basestation {
namespace {

uint64_t NoncePrefix(const wire::Nonce& nonce) {
  uint64_t prefix = 0;
  for (int i = 0; i < 8; ++i) prefix = prefix << 8 | nonce[i];
  return prefix;
}

}  // namespace

using wire::PacketType;

absl::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kBadCookie:
      return "bad_cookie";
    case DropReason::kUnknownDevice:
      return "unknown_device";
    case DropReason::kRevoked:
      return "revoked";
    case DropReason::kBadProof:
      return "bad_proof";
    case DropReason::kReplay:
      return "replay";
    case DropReason::kUnauthenticated:
      return "unauthenticated";
    case DropReason::kUnknownSession:
      return "unknown_session";
    case DropReason::kRateLimited:
      return "rate_limited";
  }
  return "?";
}

uint64_t AttachServerCounters::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t n : dropped) total += n;
  return total;
}

absl::StatusOr<std::unique_ptr<AttachServer>> AttachServer::New(
    AttachServerOptions options, const crypto::SecretBytes& server_key,
    DeviceDirectory* directory, crypto::RandomSource* random) {
  if (options.keepalive_interval <= absl::ZeroDuration() ||
      options.liveness_timeout <= options.keepalive_interval) {
    return absl::InvalidArgumentError(
        "liveness timeout must be longer than the keep-alive interval");
  }
  wire::Nonce boot_nonce;
  random->Fill(absl::MakeSpan(boot_nonce));
  ASSIGN_OR_RETURN(wire::ServerSecrets secrets, wire::DeriveServerSecrets(server_key, boot_nonce));
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                   crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize)));
  return std::unique_ptr<AttachServer>(new AttachServer(
      std::move(options), std::move(secrets), directory, random, std::move(aead)));
}

AttachServer::AttachServer(AttachServerOptions options, wire::ServerSecrets secrets,
                           DeviceDirectory* directory, crypto::RandomSource* random,
                           std::unique_ptr<crypto::Aead> aead)
    : options_(std::move(options)),
      secrets_(std::move(secrets)),
      directory_(directory),
      random_(random),
      aead_(std::move(aead)),
      handshake_tokens_(options_.handshake_burst) {}

std::vector<net::Datagram> AttachServer::TakeOutgoing() { return std::exchange(outgoing_, {}); }

std::vector<PresenceEvent> AttachServer::TakePresenceEvents() {
  return std::exchange(presence_, {});
}

std::optional<net::Endpoint> AttachServer::AddressOf(absl::string_view device_id) {
  const AttachSession* session = sessions_.FindDevice(device_id);
  if (session == nullptr) return std::nullopt;
  return session->address;
}

uint32_t AttachServer::Seconds(absl::Time now) const {
  // A clock stepped back past the epoch counts as the epoch: a negative count would wrap to the
  // far future, and a session last heard then would never expire.
  return static_cast<uint32_t>(std::max<int64_t>(absl::ToInt64Seconds(now - epoch_), 0));
}

absl::Time AttachServer::next_timeout() const {
  return sessions_.empty() && ended_proofs_ms_.empty() ? absl::InfiniteFuture() : next_sweep_;
}

uint64_t AttachServer::NewestProofMs(const AttachSession* session,
                                     absl::string_view device_id) const {
  if (session != nullptr) return session->proof_timestamp_ms;
  auto it = ended_proofs_ms_.find(device_id);
  return it == ended_proofs_ms_.end() ? 0 : it->second;
}

bool AttachServer::TakeHandshakeToken(absl::Time now) {
  if (tokens_updated_ != absl::InfinitePast() && now > tokens_updated_) {
    handshake_tokens_ =
        std::min(options_.handshake_burst,
                 handshake_tokens_ + absl::ToDoubleSeconds(now - tokens_updated_) *
                                         options_.handshakes_per_second);
  }
  tokens_updated_ = now;
  if (handshake_tokens_ < 1) return false;
  handshake_tokens_ -= 1;
  return true;
}

void AttachServer::OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                            absl::Time now) {
  ++counters_.packets_received;
  if (packet.size() > wire::kMaxPacketSize) return Drop(DropReason::kMalformed);
  absl::StatusOr<wire::Header> header = wire::ParseHeader(packet);
  if (!header.ok()) return Drop(DropReason::kMalformed);
  const absl::Span<const uint8_t> body = packet.subspan(wire::kHeaderSize);
  switch (header->type) {
    case PacketType::kHello:
      if (!TakeHandshakeToken(now)) return Drop(DropReason::kRateLimited);
      return HandleHello(from, body, now);
    case PacketType::kProof:
      if (!TakeHandshakeToken(now)) return Drop(DropReason::kRateLimited);
      return HandleProof(from, body, now);
    case PacketType::kKeepAlive:
    case PacketType::kDetach:
    case PacketType::kConnectResponse:
    case PacketType::kDeviceResponse:
      return HandleSealed(from, *header, packet, now);
    case PacketType::kChallenge:
    case PacketType::kAttached:
    case PacketType::kKeepAliveAck:
    case PacketType::kReset:
    case PacketType::kConnectRequest:
    case PacketType::kDeviceRequest:
      return Drop(DropReason::kMalformed);  // Server-to-device types.
  }
}

void AttachServer::HandleHello(const net::Endpoint& from, absl::Span<const uint8_t> body,
                               absl::Time now) {
  absl::StatusOr<wire::Hello> hello = wire::ParseHello(body);
  if (!hello.ok()) return Drop(DropReason::kMalformed);
  ++counters_.hellos;
  // Stateless: everything needed to check the PROOF later is in the cookie.
  wire::Challenge challenge;
  random_->Fill(absl::MakeSpan(challenge.server_nonce));
  challenge.timestamp_ms = static_cast<uint64_t>(std::max<int64_t>(absl::ToUnixMillis(now), 0));
  challenge.cookie = wire::ComputeCookie(secrets_, from, hello->device_id, hello->device_nonce,
                                         challenge.server_nonce, challenge.timestamp_ms);
  ++counters_.packets_sent;
  outgoing_.push_back({from, wire::BuildChallenge(challenge)});
}

void AttachServer::HandleProof(const net::Endpoint& from, absl::Span<const uint8_t> body,
                               absl::Time now) {
  absl::StatusOr<wire::Proof> proof = wire::ParseProof(body);
  if (!proof.ok()) return Drop(DropReason::kMalformed);

  // Unsigned arithmetic: the timestamp is attacker-controlled (any u64).
  const uint64_t now_ms = static_cast<uint64_t>(std::max<int64_t>(absl::ToUnixMillis(now), 0));
  const uint64_t ts = proof->timestamp_ms;
  const uint64_t lifetime_ms =
      static_cast<uint64_t>(absl::ToInt64Milliseconds(options_.cookie_lifetime));
  const bool fresh = ts <= now_ms + 1000 && (ts >= now_ms || now_ms - ts <= lifetime_ms);
  const wire::Cookie expected =
      wire::ComputeCookie(secrets_, from, proof->device_id, proof->device_nonce,
                          proof->server_nonce, proof->timestamp_ms);
  if (!fresh || !crypto::ConstantTimeEquals(expected, proof->cookie)) {
    return Drop(DropReason::kBadCookie);
  }

  // Only now, with the source address proven, is the directory consulted.
  absl::StatusOr<DeviceCredentials> device = directory_->FindDevice(proof->device_id);
  if (!device.ok()) return Drop(DropReason::kUnknownDevice);
  absl::StatusOr<wire::AttachKeys> keys =
      wire::DeriveAttachKeys(device->secret, proof->device_nonce, proof->server_nonce);
  if (!keys.ok() || !wire::VerifyProof(*keys, *proof)) return Drop(DropReason::kBadProof);
  // Every key we seal with from here on mixes in a session nonce drawn for it: no PROOF, replayed
  // or not, can bring back earlier keys.
  wire::Nonce session_nonce;
  if (device->revoked) {
    random_->Fill(absl::MakeSpan(session_nonce));
    // The device proved who it is, so it may learn, authenticated, that it should stop trying.
    Drop(DropReason::kRevoked);
    const wire::Header header{PacketType::kDetach, 0, 0};
    absl::StatusOr<std::vector<uint8_t>> detach =
        wire::SealPacket(*aead_, wire::DeriveSessionKeys(*keys, session_nonce).server_to_device,
                         header,
                         wire::EncodeDetach({wire::DetachReason::kRevoked}), session_nonce);
    if (!detach.ok()) abort();
    ++counters_.packets_sent;
    outgoing_.push_back({from, *std::move(detach)});
    return;
  }

  AttachSession* current = sessions_.FindDevice(proof->device_id);
  if (current != nullptr && current->device_nonce_prefix == NoncePrefix(proof->device_nonce)) {
    // The device did not get our ATTACHED and sent its PROOF again.
    current->address = from;
    return SendAttached(*current);
  }
  // Only a PROOF newer than the newest accepted for this device makes a session: an equal or
  // older one is a replay, whether its session still runs or ended (DETACH, expiry). Unless our
  // clock went back since that PROOF (it is stamped in our future): then the order says nothing,
  // and a device that lost its state would be refused until the clock caught up. Replays stay
  // bounded by the cookie's lifetime and, across our restarts, by the per-boot cookie key.
  const uint64_t newest_ms = NewestProofMs(current, proof->device_id);
  if (ts <= newest_ms && newest_ms <= now_ms) return Drop(DropReason::kReplay);
  // A newer handshake replaces the session (the device restarted or lost its state).
  if (current != nullptr) sessions_.Erase(*current);
  ended_proofs_ms_.erase(proof->device_id);

  if (epoch_ == absl::InfinitePast()) epoch_ = now;
  uint32_t random32 = 0;
  while (random32 == 0) random_->Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&random32), 4));
  AttachSession& session = sessions_.Insert(proof->device_id, random32);
  random_->Fill(absl::MakeSpan(session_nonce));
  wire::SessionKeys session_keys = wire::DeriveSessionKeys(*keys, session_nonce);
  session.address = from;
  session.rx = std::move(session_keys.device_to_server);
  session.tx = std::move(session_keys.server_to_device);
  session.last_heard_s = Seconds(now);
  session.device_nonce_prefix = NoncePrefix(proof->device_nonce);
  session.proof_timestamp_ms = ts;
  session.session_nonce = session_nonce;
  ++counters_.attaches;
  presence_.push_back({session.device_id, true, from, now});
  if (next_sweep_ == absl::InfiniteFuture()) next_sweep_ = now + options_.keepalive_interval;
  SendAttached(session);
}

void AttachServer::SendAttached(AttachSession& session) {
  wire::Attached attached;
  attached.reflexive = session.address;
  attached.keepalive_interval_ms =
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.keepalive_interval));
  attached.reset_token = wire::ComputeResetToken(secrets_, session.connection_id);
  SendSealed(session, PacketType::kAttached, wire::EncodeAttached(attached));
}

void AttachServer::SendSealed(AttachSession& session, PacketType type,
                              absl::Span<const uint8_t> payload) {
  const wire::Header header{type, session.connection_id, session.tx_packet_number++};
  absl::StatusOr<std::vector<uint8_t>> packet = wire::SealPacket(
      *aead_, session.tx, header, payload,
      wire::CarriesSessionNonce(header) ? absl::MakeConstSpan(session.session_nonce)
                                        : absl::Span<const uint8_t>());
  if (!packet.ok()) abort();  // Sealing with a valid key cannot fail short of a broken backend.
  ++counters_.packets_sent;
  outgoing_.push_back({session.address, *std::move(packet)});
}

void AttachServer::HandleSealed(const net::Endpoint& from, const wire::Header& header,
                                absl::Span<const uint8_t> packet, absl::Time now) {
  AttachSession* found = sessions_.Find(header.connection_id);
  if (found == nullptr) {
    Drop(DropReason::kUnknownSession);
    // Tell the device to re-attach, with a token only this basestation's key can make. The RESET
    // is never larger than the packet that provoked it.
    std::vector<uint8_t> reset = wire::BuildReset(
        header.connection_id, {wire::ComputeResetToken(secrets_, header.connection_id)});
    if (reset.size() <= packet.size()) {
      ++counters_.packets_sent;
      outgoing_.push_back({from, std::move(reset)});
    }
    return;
  }
  AttachSession& session = *found;
  if (!session.replay.CanAccept(header.packet_number)) return Drop(DropReason::kReplay);
  absl::StatusOr<std::vector<uint8_t>> payload =
      wire::OpenPacket(*aead_, session.rx, header, packet);
  if (!payload.ok()) return Drop(DropReason::kUnauthenticated);
  if (header.type == PacketType::kDetach) {
    if (!wire::ParseDetach(*payload).ok()) return Drop(DropReason::kMalformed);
    session.replay.Accept(header.packet_number);
    return RemoveSession(session, now);
  }
  if (header.type == PacketType::kConnectResponse) {
    absl::StatusOr<wire::ConnectResponse> response = wire::ParseConnectResponse(*payload);
    if (!response.ok()) return Drop(DropReason::kMalformed);
    replies_.push_back({session.device_id, *std::move(response)});
  } else if (header.type == PacketType::kDeviceResponse) {
    absl::StatusOr<wire::DeviceResponse> response = wire::ParseDeviceResponse(*payload);
    if (!response.ok()) return Drop(DropReason::kMalformed);
    replies_.push_back({session.device_id, *std::move(response)});
  } else if (!payload->empty()) {
    return Drop(DropReason::kMalformed);  // KEEPALIVE has no body.
  }
  session.replay.Accept(header.packet_number);
  session.last_heard_s = Seconds(now);
  if (from != session.address) {
    // The device's NAT gave it a new mapping; the authenticated packet proves it is the device.
    session.address = from;
    presence_.push_back({session.device_id, true, from, now});
  }
  if (header.type == PacketType::kKeepAlive) {
    ++counters_.keepalives;
    SendSealed(session, PacketType::kKeepAliveAck, wire::EncodeKeepAliveAck({from}));
  } else {
    ++counters_.replies;
  }
}

absl::Status AttachServer::SendConnectRequest(absl::string_view device_id,
                                              const wire::ConnectRequest& request) {
  AttachSession* session = sessions_.FindDevice(device_id);
  if (session == nullptr) return absl::UnavailableError("device is not attached");
  ++counters_.requests_sent;
  SendSealed(*session, PacketType::kConnectRequest, wire::EncodeConnectRequest(request));
  return absl::OkStatus();
}

absl::Status AttachServer::SendDeviceRequest(absl::string_view device_id,
                                             const wire::DeviceRequest& request) {
  AttachSession* session = sessions_.FindDevice(device_id);
  if (session == nullptr) return absl::UnavailableError("device is not attached");
  ++counters_.requests_sent;
  SendSealed(*session, PacketType::kDeviceRequest, wire::EncodeDeviceRequest(request));
  return absl::OkStatus();
}

std::vector<DeviceReply> AttachServer::TakeReplies() { return std::exchange(replies_, {}); }

void AttachServer::Revoke(absl::string_view device_id, absl::Time now) {
  AttachSession* session = sessions_.FindDevice(device_id);
  if (session == nullptr) return;
  SendSealed(*session, PacketType::kDetach, wire::EncodeDetach({wire::DetachReason::kRevoked}));
  RemoveSession(*session, now);
}

void AttachServer::RemoveSession(AttachSession& session, absl::Time now) {
  presence_.push_back({session.device_id, false, session.address, now});
  ended_proofs_ms_[session.device_id] = session.proof_timestamp_ms;
  sessions_.Erase(session);
}

void AttachServer::OnTimeout(absl::Time now) {
  if (now < next_sweep_) return;
  const uint32_t now_s = Seconds(now);
  const int64_t timeout_s = absl::ToInt64Seconds(options_.liveness_timeout);
  std::vector<AttachSession*> expired;
  sessions_.ForEach([&](AttachSession& session) {
    if (int64_t{now_s} - session.last_heard_s >= timeout_s) expired.push_back(&session);
  });
  for (AttachSession* session : expired) {
    ++counters_.expired;
    RemoveSession(*session, now);
  }
  // A remembered PROOF past its cookie's lifetime (and the 1 s of clock skew allowed) can no
  // longer be replayed.
  const int64_t horizon_ms =
      absl::ToUnixMillis(now) - absl::ToInt64Milliseconds(options_.cookie_lifetime) - 1000;
  absl::erase_if(ended_proofs_ms_, [&](const auto& entry) {
    return static_cast<int64_t>(entry.second) < horizon_ms;
  });
  // Sweeping every few seconds bounds how late an expiry is noticed; the sweep is O(sessions).
  next_sweep_ = now + std::min(options_.keepalive_interval / 2, absl::Seconds(5));
}

}  // namespace edgelink::basestation
