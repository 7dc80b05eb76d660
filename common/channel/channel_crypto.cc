#include "common/channel/channel_crypto.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/crypto/hkdf.h"
#include "common/status/status_macros.h"
#include "common/wire/bytes.h"

namespace edgelink::channel {
namespace {

absl::StatusOr<crypto::SecretBytes> Expand(const crypto::SecretBytes& prk,
                                           absl::string_view label, size_t length) {
  return crypto::HkdfSha256Expand(prk, wire::AsBytes(label), length);
}

std::array<uint8_t, crypto::Aead::kNonceSize> Nonce(const wire::DirectionKeys& keys,
                                                    uint64_t packet_number) {
  std::array<uint8_t, crypto::Aead::kNonceSize> nonce = keys.iv;
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<uint8_t>(packet_number >> (8 * i));
  return nonce;
}

}  // namespace

absl::StatusOr<PeerHeader> ParsePeerHeader(absl::Span<const uint8_t> packet) {
  wire::ByteReader in(packet);
  uint8_t marker = 0, type = 0;
  PeerHeader header;
  if (!in.ReadU8(&marker) || !in.ReadU8(&type) || !in.ReadU64(&header.channel_id) ||
      !in.ReadU64(&header.packet_number)) {
    return absl::InvalidArgumentError("peer packet too short");
  }
  const uint8_t kind = type & 0x7f;
  if (marker != kPeerPacketMarker || kind < 1 || kind > 5) {
    return absl::InvalidArgumentError("not a peer packet");
  }
  header.type = static_cast<PeerPacketType>(kind);
  header.key_phase = (type & 0x80) != 0;
  return header;
}

uint64_t PeekChannelId(absl::Span<const uint8_t> packet) {
  absl::StatusOr<PeerHeader> header = ParsePeerHeader(packet);
  return header.ok() ? header->channel_id : 0;
}

absl::StatusOr<KeyChain> KeyChain::New(crypto::SecretBytes secret) {
  if (secret.size() != 32) return absl::InvalidArgumentError("direction secret must be 32 bytes");
  KeyChain chain;
  ASSIGN_OR_RETURN(crypto::SecretBytes key, Expand(secret, "key", crypto::Aead::kKeySize));
  ASSIGN_OR_RETURN(crypto::SecretBytes iv, Expand(secret, "iv", crypto::Aead::kNonceSize));
  chain.keys_.key = crypto::SecretArray<crypto::Aead::kKeySize>::CopyFrom(key.span());
  std::copy(iv.span().begin(), iv.span().end(), chain.keys_.iv.begin());
  ASSIGN_OR_RETURN(chain.aead_, crypto::Aead::New(key));
  chain.secret_ = std::move(secret);
  return chain;
}

absl::StatusOr<KeyChain> KeyChain::Next() const {
  ASSIGN_OR_RETURN(crypto::SecretBytes next, Expand(secret_, "key update", 32));
  ASSIGN_OR_RETURN(KeyChain chain, New(std::move(next)));
  chain.generation_ = generation_ + 1;
  return chain;
}

absl::StatusOr<SessionSecrets> DeriveSessionSecrets(const wire::SessionId& session_id,
                                                    const crypto::SecretBytes& session_key,
                                                    const wire::Nonce& client_nonce,
                                                    const wire::Nonce& device_nonce) {
  if (session_key.size() != wire::kSessionKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("session key must be 16 bytes, got ", session_key.size()));
  }
  wire::ByteWriter salt;
  salt.WriteBytes(wire::AsBytes("edgelink/1 channel"));
  salt.WriteBytes(session_id);
  salt.WriteBytes(client_nonce);
  salt.WriteBytes(device_nonce);
  ASSIGN_OR_RETURN(crypto::SecretBytes prk, crypto::HkdfSha256Extract(salt.bytes(), session_key));
  SessionSecrets secrets;
  secrets.channel_id = ChannelIdOf(session_id);
  ASSIGN_OR_RETURN(secrets.client_to_device, Expand(prk, "client to device", 32));
  ASSIGN_OR_RETURN(secrets.device_to_client, Expand(prk, "device to client", 32));
  return secrets;
}

namespace {

absl::StatusOr<std::vector<uint8_t>> Seal(crypto::Aead& keyed, const wire::DirectionKeys& keys,
                                          const PeerHeader& header,
                                          absl::Span<const uint8_t> payload) {
  if (payload.size() > kMaxPeerPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer payload of ", payload.size(), " bytes exceeds ", kMaxPeerPayload));
  }
  wire::ByteWriter out(kPeerHeaderSize + payload.size() + crypto::Aead::kTagSize);
  out.WriteU8(kPeerPacketMarker);
  out.WriteU8(static_cast<uint8_t>(header.type) | (header.key_phase ? 0x80 : 0));
  out.WriteU64(header.channel_id);
  out.WriteU64(header.packet_number);
  std::vector<uint8_t> packet = out.Take();
  packet.resize(kPeerHeaderSize + payload.size() + crypto::Aead::kTagSize);
  RETURN_IF_ERROR(keyed.Seal(Nonce(keys, header.packet_number),
                            absl::MakeConstSpan(packet).first(kPeerHeaderSize), payload,
                            absl::MakeSpan(packet).subspan(kPeerHeaderSize))
                      .status());
  return packet;
}

absl::StatusOr<std::vector<uint8_t>> Open(crypto::Aead& keyed, const wire::DirectionKeys& keys,
                                          const PeerHeader& header,
                                          absl::Span<const uint8_t> packet) {
  if (packet.size() < kPeerHeaderSize + crypto::Aead::kTagSize) {
    return absl::InvalidArgumentError("peer packet too short");
  }
  return keyed.Open(Nonce(keys, header.packet_number), packet.first(kPeerHeaderSize),
                    packet.subspan(kPeerHeaderSize));
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> SealPeerPacket(crypto::Aead& aead,
                                                    const wire::DirectionKeys& keys,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> payload) {
  RETURN_IF_ERROR(aead.SetKey(keys.key.span()));
  return Seal(aead, keys, header, payload);
}

absl::StatusOr<std::vector<uint8_t>> OpenPeerPacket(crypto::Aead& aead,
                                                    const wire::DirectionKeys& keys,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> packet) {
  RETURN_IF_ERROR(aead.SetKey(keys.key.span()));
  return Open(aead, keys, header, packet);
}

absl::StatusOr<std::vector<uint8_t>> SealPeerPacket(const KeyChain& chain,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> payload) {
  return Seal(chain.aead(), chain.keys(), header, payload);
}

absl::StatusOr<std::vector<uint8_t>> OpenPeerPacket(const KeyChain& chain,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> packet) {
  return Open(chain.aead(), chain.keys(), header, packet);
}

}  // namespace edgelink::channel
