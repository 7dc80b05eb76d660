#include "device/core/attach_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_macros.h"
#include "common/wire/device_id.h"

namespace edgelink::device {

using wire::PacketType;

absl::StatusOr<std::unique_ptr<AttachClient>> AttachClient::New(AttachClientOptions options,
                                                                crypto::RandomSource* random) {
  RETURN_IF_ERROR(wire::ValidateDeviceId(options.device_id));
  if (options.secret.size() < wire::kMinDeviceSecretSize) {
    return absl::InvalidArgumentError("device secret must be at least 16 bytes");
  }
  if (!options.server.is_set()) return absl::InvalidArgumentError("no basestation address");
  // The scratch AEAD gets a real key before every use.
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                   crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize)));
  return std::unique_ptr<AttachClient>(
      new AttachClient(std::move(options), random, std::move(aead)));
}

AttachClient::AttachClient(AttachClientOptions options, crypto::RandomSource* random,
                           std::unique_ptr<crypto::Aead> aead)
    : options_(std::move(options)), random_(random), aead_(std::move(aead)) {}

absl::string_view AttachClient::StateName(State state) {
  switch (state) {
    case State::kStopped:
      return "stopped";
    case State::kHello:
      return "hello";
    case State::kProof:
      return "proof";
    case State::kAttached:
      return "attached";
    case State::kBackoff:
      return "backoff";
  }
  return "?";
}

void AttachClient::SetState(State state, absl::string_view reason) {
  if (state == state_) return;
  state_ = state;
  if (options_.on_state_change) options_.on_state_change(StateName(state), reason);
}

std::vector<net::Datagram> AttachClient::TakeOutgoing() { return std::exchange(outgoing_, {}); }

void AttachClient::Send(std::vector<uint8_t> bytes) {
  ++counters_.packets_sent;
  outgoing_.push_back({options_.server, std::move(bytes)});
}

void AttachClient::SendSealed(PacketType type, absl::Span<const uint8_t> payload) {
  const wire::Header header{type, connection_id_, tx_packet_number_++};
  absl::StatusOr<std::vector<uint8_t>> packet =
      wire::SealPacket(*aead_, keys_->device_to_server, header, payload);
  if (!packet.ok()) abort();  // Sealing with a valid key cannot fail short of a broken backend.
  Send(*std::move(packet));
}

absl::Duration AttachClient::Jitter(absl::Duration base) {
  uint8_t r[2];
  random_->Fill(absl::MakeSpan(r));
  const double unit = (r[0] << 8 | r[1]) / 65535.0;  // [0, 1]
  return base * (0.8 + 0.4 * unit);
}

void AttachClient::Start(absl::Time now) {
  if (state_ != State::kStopped) return;
  failures_ = 0;
  SendHello(now);
}

void AttachClient::Stop() {
  handshake_keys_.reset();
  keys_.reset();
  connection_id_ = 0;
  reflexive_ = net::Endpoint();
  outgoing_.clear();
  deadline_ = absl::InfiniteFuture();
  SetState(State::kStopped, "remote access off");
}

void AttachClient::Detach() {
  std::vector<net::Datagram> goodbye;
  if (state_ == State::kAttached) {
    SendSealed(PacketType::kDetach, wire::EncodeDetach({wire::DetachReason::kShutdown}));
    goodbye = TakeOutgoing();
  }
  Stop();
  outgoing_ = std::move(goodbye);
}

void AttachClient::SetServer(const net::Endpoint& server, absl::Time now) {
  if (server == options_.server) return;
  options_.server = server;
  if (state_ != State::kStopped) Reattach(now, "basestation address changed");
}

void AttachClient::SendHello(absl::Time now) {
  handshake_keys_.reset();
  keys_.reset();
  connection_id_ = 0;
  random_->Fill(absl::MakeSpan(device_nonce_));
  last_handshake_packet_ = wire::BuildHello({options_.device_id, device_nonce_});
  retransmits_ = 0;
  Send(last_handshake_packet_);
  deadline_ = now + Jitter(options_.initial_backoff);
  SetState(State::kHello, "sent HELLO");
}

void AttachClient::ScheduleRetry(absl::Time now, absl::string_view reason) {
  ++failures_;
  const absl::Duration delay =
      std::min(options_.initial_backoff * (1 << std::min(failures_, 16)), options_.max_backoff);
  deadline_ = now + Jitter(delay);
  SetState(State::kBackoff, reason);
}

void AttachClient::Reattach(absl::Time now, absl::string_view reason) {
  failures_ = 0;
  handshake_keys_.reset();
  keys_.reset();
  connection_id_ = 0;
  // A small random delay, so that devices dropped together do not all return in one instant.
  deadline_ = now + Jitter(options_.initial_backoff) / 2;
  SetState(State::kBackoff, reason);
}

void AttachClient::OnTimeout(absl::Time now) {
  if (now < deadline_) return;
  switch (state_) {
    case State::kStopped:
      deadline_ = absl::InfiniteFuture();
      return;
    case State::kBackoff:
      SendHello(now);
      return;
    case State::kHello:
    case State::kProof:
      // Retransmit the same packet a few times, then back off and start over with a new nonce.
      if (retransmits_ < kMaxRetransmits) {
        ++retransmits_;
        Send(last_handshake_packet_);
        deadline_ = now + Jitter(options_.initial_backoff * (1 << retransmits_));
      } else {
        ScheduleRetry(now, state_ == State::kHello ? "no CHALLENGE from basestation"
                                                   : "no ATTACHED from basestation");
      }
      return;
    case State::kAttached:
      if (!heard_since_keepalive_ && ++missed_keepalives_ >= options_.max_missed_keepalives) {
        Reattach(now, "basestation stopped answering keep-alives");
        return;
      }
      heard_since_keepalive_ = false;
      SendSealed(PacketType::kKeepAlive, {});
      // Retry sooner once an answer went missing, to tell loss from a dead basestation quickly.
      deadline_ = now + (missed_keepalives_ == 0 ? keepalive_interval_
                                                 : std::min(keepalive_interval_, absl::Seconds(5)));
      return;
  }
}

void AttachClient::OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                            absl::Time now) {
  ++counters_.packets_received;
  if (state_ == State::kStopped || from != options_.server) {
    ++counters_.dropped_unexpected;
    return;
  }
  if (packet.size() > wire::kMaxPacketSize) {
    ++counters_.dropped_malformed;
    return;
  }
  absl::StatusOr<wire::Header> header = wire::ParseHeader(packet);
  if (!header.ok()) {
    ++counters_.dropped_malformed;
    return;
  }
  const absl::Span<const uint8_t> body = packet.subspan(wire::kHeaderSize);
  switch (header->type) {
    case PacketType::kChallenge:
      HandleChallenge(body, now);
      return;
    case PacketType::kReset:
      HandleReset(*header, body, now);
      return;
    case PacketType::kAttached:
    case PacketType::kKeepAliveAck:
    case PacketType::kDetach:
    case PacketType::kConnectRequest:
    case PacketType::kDeviceRequest:
      HandleSealed(*header, packet, now);
      return;
    case PacketType::kHello:
    case PacketType::kProof:
    case PacketType::kKeepAlive:
    case PacketType::kConnectResponse:
    case PacketType::kDeviceResponse:
      ++counters_.dropped_unexpected;  // Device-to-server types.
      return;
  }
}

void AttachClient::HandleChallenge(absl::Span<const uint8_t> body, absl::Time now) {
  if (state_ != State::kHello) {
    ++counters_.dropped_unexpected;
    return;
  }
  absl::StatusOr<wire::Challenge> challenge = wire::ParseChallenge(body);
  if (!challenge.ok()) {
    ++counters_.dropped_malformed;
    return;
  }
  absl::StatusOr<wire::AttachKeys> keys =
      wire::DeriveAttachKeys(options_.secret, device_nonce_, challenge->server_nonce);
  if (!keys.ok()) abort();  // The secret was checked in New.
  handshake_keys_ = *std::move(keys);
  wire::Proof proof{options_.device_id, device_nonce_, challenge->server_nonce,
                    challenge->timestamp_ms, challenge->cookie, {}};
  proof.proof = wire::ComputeProof(*handshake_keys_, proof);
  last_handshake_packet_ = wire::BuildProof(proof);
  retransmits_ = 0;
  Send(last_handshake_packet_);
  deadline_ = now + Jitter(options_.initial_backoff);
  SetState(State::kProof, "sent PROOF");
}

void AttachClient::HandleReset(const wire::Header& header, absl::Span<const uint8_t> body,
                               absl::Time now) {
  absl::StatusOr<wire::Reset> reset = wire::ParseReset(body);
  if (!reset.ok()) {
    ++counters_.dropped_malformed;
    return;
  }
  if (state_ != State::kAttached || header.connection_id != connection_id_ ||
      !crypto::ConstantTimeEquals(reset->token, reset_token_)) {
    ++counters_.dropped_unauthenticated;
    return;
  }
  ++counters_.resets;
  Reattach(now, "basestation lost the session (restarted?)");
}

void AttachClient::HandleSealed(const wire::Header& header, absl::Span<const uint8_t> packet,
                                absl::Time now) {
  // While the PROOF is out, the answer is ATTACHED, or DETACH (revoked) on connection 0, both
  // carrying the session nonce the keys need. After that, only records of the current connection.
  const bool handshake = state_ == State::kProof;
  const bool expected =
      handshake ? handshake_keys_.has_value() && wire::CarriesSessionNonce(header)
                : state_ == State::kAttached && keys_.has_value() &&
                      !wire::CarriesSessionNonce(header) &&
                      header.connection_id == connection_id_;
  if (!expected) {
    ++counters_.dropped_unexpected;
    return;
  }
  if (!handshake && !replay_.CanAccept(header.packet_number)) {
    ++counters_.dropped_replay;
    return;
  }
  std::optional<wire::SessionKeys> answer_keys;
  if (handshake) {
    wire::Nonce session_nonce;
    if (!wire::PeekSessionNonce(packet, &session_nonce)) {
      ++counters_.dropped_malformed;
      return;
    }
    answer_keys = wire::DeriveSessionKeys(*handshake_keys_, session_nonce);
  }
  const wire::SessionKeys& keys = handshake ? *answer_keys : *keys_;
  absl::StatusOr<std::vector<uint8_t>> payload =
      wire::OpenPacket(*aead_, keys.server_to_device, header, packet);
  if (!payload.ok()) {
    ++counters_.dropped_unauthenticated;
    return;
  }
  switch (header.type) {
    case PacketType::kAttached: {
      absl::StatusOr<wire::Attached> attached = wire::ParseAttached(*payload);
      if (!attached.ok()) {
        ++counters_.dropped_malformed;
        return;
      }
      replay_ = wire::ReplayWindow();
      replay_.Accept(header.packet_number);
      handshake_keys_.reset();
      keys_ = *std::move(answer_keys);
      connection_id_ = header.connection_id;
      tx_packet_number_ = 0;
      reset_token_ = attached->reset_token;
      keepalive_interval_ = absl::Milliseconds(attached->keepalive_interval_ms);
      reflexive_ = attached->reflexive;
      missed_keepalives_ = 0;
      heard_since_keepalive_ = true;
      failures_ = 0;
      ++counters_.attaches;
      deadline_ = now + keepalive_interval_;
      SetState(State::kAttached, absl::StrCat("public address ", reflexive_.ToString()));
      return;
    }
    case PacketType::kKeepAliveAck: {
      absl::StatusOr<wire::KeepAliveAck> ack = wire::ParseKeepAliveAck(*payload);
      if (!ack.ok()) {
        ++counters_.dropped_malformed;
        return;
      }
      replay_.Accept(header.packet_number);
      heard_since_keepalive_ = true;
      if (missed_keepalives_ > 0) {
        // Back to the normal rhythm after a lost answer.
        missed_keepalives_ = 0;
        deadline_ = now + keepalive_interval_;
      }
      if (ack->reflexive != reflexive_) {
        reflexive_ = ack->reflexive;
        if (options_.on_state_change) {
          options_.on_state_change(StateName(state_),
                                   absl::StrCat("public address now ", reflexive_.ToString()));
        }
      }
      return;
    }
    case PacketType::kDetach: {
      absl::StatusOr<wire::Detach> detach = wire::ParseDetach(*payload);
      if (!detach.ok()) {
        ++counters_.dropped_malformed;
        return;
      }
      replay_.Accept(header.packet_number);
      if (detach->reason == wire::DetachReason::kRevoked) {
        handshake_keys_.reset();
        keys_.reset();
        connection_id_ = 0;
        failures_ = 0;
        deadline_ = now + Jitter(options_.revoked_backoff);
        SetState(State::kBackoff, "device revoked by the basestation");
      } else {
        Reattach(now, "basestation ended the session");
      }
      return;
    }
    case PacketType::kConnectRequest:
    case PacketType::kDeviceRequest:
      if (!HandleRequest(header.type, *payload, now)) {
        ++counters_.dropped_malformed;
        return;
      }
      replay_.Accept(header.packet_number);
      heard_since_keepalive_ = true;
      return;
    default:
      return;
  }
}

bool AttachClient::AnsweredBefore(PacketType answer_type, uint64_t request_id,
                                  const wire::SessionId* session_id, absl::Time now) {
  for (const Answer& answer : answers_) {
    if (answer.expires <= now || answer.type != answer_type) continue;
    if (answer.request_id == request_id) {
      SendSealed(answer_type, answer.payload);
      return true;
    }
    if (session_id != nullptr && answer.session_id == *session_id) {
      ++counters_.dropped_replay;  // One session, asked for again under another id.
      return true;
    }
  }
  return false;
}

void AttachClient::RememberAnswer(PacketType answer_type, uint64_t request_id,
                                  const wire::SessionId* session_id, absl::Duration lifetime,
                                  std::vector<uint8_t> answer, absl::Time now) {
  answers_.erase(std::remove_if(answers_.begin(), answers_.end(),
                                [&](const Answer& a) { return a.expires <= now; }),
                 answers_.end());
  if (answers_.size() >= kMaxAnswers) {
    answers_.erase(std::min_element(
        answers_.begin(), answers_.end(),
        [](const Answer& a, const Answer& b) { return a.expires < b.expires; }));
  }
  Answer& remembered = answers_.emplace_back();
  remembered.type = answer_type;
  remembered.request_id = request_id;
  if (session_id != nullptr) remembered.session_id = *session_id;
  remembered.expires = now + std::clamp(lifetime, kMinAnswerLifetime, kMaxAnswerLifetime);
  remembered.payload = std::move(answer);
}

bool AttachClient::HandleRequest(PacketType type, absl::Span<const uint8_t> payload,
                                 absl::Time now) {
  if (type == PacketType::kConnectRequest) {
    absl::StatusOr<wire::ConnectRequest> request = wire::ParseConnectRequest(payload);
    if (!request.ok()) return false;
    const uint64_t id = request->request_id;
    if (AnsweredBefore(PacketType::kConnectResponse, id, &request->session_id, now)) return true;
    wire::Nonce device_nonce;
    random_->Fill(absl::MakeSpan(device_nonce));
    wire::ConnectResponse response{id, wire::ConnectVerdict::kDenied, {}, {}};
    if (options_.handler != nullptr) {
      response = options_.handler->OnConnectRequest(*request, device_nonce, now);
    }
    response.request_id = id;
    response.device_nonce = device_nonce;
    std::vector<uint8_t> answer = wire::EncodeConnectResponse(response);
    SendSealed(PacketType::kConnectResponse, answer);
    RememberAnswer(PacketType::kConnectResponse, id, &request->session_id,
                   absl::Milliseconds(request->valid_ms), std::move(answer), now);
    return true;
  }
  absl::StatusOr<wire::DeviceRequest> request = wire::ParseDeviceRequest(payload);
  if (!request.ok()) return false;
  const uint64_t id = request->request_id;
  if (AnsweredBefore(PacketType::kDeviceResponse, id, nullptr, now)) return true;
  wire::DeviceResponse response{id, static_cast<uint8_t>(absl::StatusCode::kUnimplemented),
                                "this device serves no requests", {}};
  if (options_.handler != nullptr) response = options_.handler->OnDeviceRequest(*request, now);
  response.request_id = id;
  std::vector<uint8_t> answer = wire::EncodeDeviceResponse(response);
  SendSealed(PacketType::kDeviceResponse, answer);
  RememberAnswer(PacketType::kDeviceResponse, id, nullptr, kMaxAnswerLifetime, std::move(answer),
                 now);
  return true;
}

}  // namespace edgelink::device
