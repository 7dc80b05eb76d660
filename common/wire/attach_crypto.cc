#include "common/wire/attach_crypto.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/hmac.h"
#include "common/status/status_macros.h"
#include "common/wire/bytes.h"

namespace edgelink::wire {
namespace {

constexpr char kAttachSalt[] = "edgelink/1 attach";

template <size_t N>
absl::Status ExpandInto(const crypto::SecretBytes& prk, absl::string_view label,
                        absl::Span<uint8_t> out) {
  ASSIGN_OR_RETURN(crypto::SecretBytes bytes, crypto::HkdfSha256Expand(prk, AsBytes(label), N));
  std::copy(bytes.span().begin(), bytes.span().end(), out.begin());
  return absl::OkStatus();
}

absl::Status DeriveDirection(const crypto::SecretBytes& prk, absl::string_view name,
                             absl::string_view context, DirectionKeys* keys) {
  RETURN_IF_ERROR(
      ExpandInto<16>(prk, absl::StrCat(name, " key", context), keys->key.mutable_span()));
  return ExpandInto<12>(prk, absl::StrCat(name, " iv", context), absl::MakeSpan(keys->iv));
}

// HMAC-SHA256 under a key that is known to be valid; the backend failing here is a broken
// invariant, not an input error.
crypto::Sha256Digest Mac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data) {
  absl::StatusOr<crypto::Sha256Digest> mac =
      crypto::HmacSha256::Compute(crypto::SecretBytes::CopyFrom(key), data);
  if (!mac.ok()) abort();
  return *mac;
}

std::vector<uint8_t> ProofTranscript(const Proof& proof) {
  ByteWriter t;
  t.WriteBytes(AsBytes("edgelink/1 attach proof"));
  t.WriteString8(proof.device_id);
  t.WriteBytes(proof.device_nonce);
  t.WriteBytes(proof.server_nonce);
  t.WriteU64(proof.timestamp_ms);
  t.WriteBytes(proof.cookie);
  return t.Take();
}

std::array<uint8_t, crypto::Aead::kNonceSize> RecordNonce(const DirectionKeys& keys,
                                                          uint64_t packet_number) {
  std::array<uint8_t, crypto::Aead::kNonceSize> nonce = keys.iv;
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<uint8_t>(packet_number >> (8 * i));
  return nonce;
}

}  // namespace

absl::StatusOr<AttachKeys> DeriveAttachKeys(const crypto::SecretBytes& device_secret,
                                            const Nonce& device_nonce, const Nonce& server_nonce) {
  if (device_secret.size() < kMinDeviceSecretSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("device secret must be at least 16 bytes, got ", device_secret.size()));
  }
  ByteWriter salt;
  salt.WriteBytes(AsBytes(kAttachSalt));
  salt.WriteBytes(device_nonce);
  salt.WriteBytes(server_nonce);
  ASSIGN_OR_RETURN(crypto::SecretBytes prk, crypto::HkdfSha256Extract(salt.bytes(), device_secret));
  AttachKeys keys;
  RETURN_IF_ERROR(ExpandInto<32>(prk, "proof", keys.proof_key.mutable_span()));
  keys.prk = crypto::SecretArray<32>::CopyFrom(prk.span());
  return keys;
}

SessionKeys DeriveSessionKeys(const AttachKeys& keys, const Nonce& session_nonce) {
  const crypto::SecretBytes prk = crypto::SecretBytes::CopyFrom(keys.prk.span());
  const absl::string_view nonce(reinterpret_cast<const char*>(session_nonce.data()),
                                session_nonce.size());
  SessionKeys session;
  // HKDF over a 32-byte PRK with short outputs cannot fail short of a broken backend.
  if (!DeriveDirection(prk, "device to server", nonce, &session.device_to_server).ok() ||
      !DeriveDirection(prk, "server to device", nonce, &session.server_to_device).ok()) {
    abort();
  }
  return session;
}

ProofTag ComputeProof(const AttachKeys& keys, const Proof& proof) {
  return Mac(keys.proof_key.span(), ProofTranscript(proof));
}

bool VerifyProof(const AttachKeys& keys, const Proof& proof) {
  const ProofTag expected = ComputeProof(keys, proof);
  return crypto::ConstantTimeEquals(expected, proof.proof);
}

absl::StatusOr<ServerSecrets> DeriveServerSecrets(const crypto::SecretBytes& server_key,
                                                  const Nonce& boot_nonce) {
  if (server_key.size() < 32) {
    return absl::InvalidArgumentError("server key must be at least 32 bytes");
  }
  ASSIGN_OR_RETURN(crypto::SecretBytes prk, crypto::HkdfSha256Extract({}, server_key));
  ServerSecrets secrets;
  RETURN_IF_ERROR(ExpandInto<32>(
      prk,
      absl::StrCat("edgelink/1 cookie",
                   absl::string_view(reinterpret_cast<const char*>(boot_nonce.data()),
                                     boot_nonce.size())),
      secrets.cookie_key.mutable_span()));
  RETURN_IF_ERROR(ExpandInto<32>(prk, "edgelink/1 reset", secrets.reset_key.mutable_span()));
  return secrets;
}

Cookie ComputeCookie(const ServerSecrets& secrets, const net::Endpoint& source,
                     absl::string_view device_id, const Nonce& device_nonce,
                     const Nonce& server_nonce, uint64_t timestamp_ms) {
  ByteWriter input;
  WriteEndpoint(source, input);
  input.WriteString8(device_id);
  input.WriteBytes(device_nonce);
  input.WriteBytes(server_nonce);
  input.WriteU64(timestamp_ms);
  const crypto::Sha256Digest mac = Mac(secrets.cookie_key.span(), input.bytes());
  Cookie cookie;
  std::copy_n(mac.begin(), cookie.size(), cookie.begin());
  return cookie;
}

ResetToken ComputeResetToken(const ServerSecrets& secrets, uint64_t connection_id) {
  ByteWriter input;
  input.WriteU64(connection_id);
  const crypto::Sha256Digest mac = Mac(secrets.reset_key.span(), input.bytes());
  ResetToken token;
  std::copy_n(mac.begin(), token.size(), token.begin());
  return token;
}

absl::StatusOr<std::vector<uint8_t>> SealPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> payload,
                                                absl::Span<const uint8_t> clear) {
  const size_t aad_size = kHeaderSize + clear.size();
  ByteWriter out(aad_size + payload.size() + crypto::Aead::kTagSize);
  WriteHeader(header, out);
  out.WriteBytes(clear);
  std::vector<uint8_t> packet = out.Take();
  packet.resize(aad_size + payload.size() + crypto::Aead::kTagSize);
  RETURN_IF_ERROR(aead.SetKey(keys.key.span()));
  const auto nonce = RecordNonce(keys, header.packet_number);
  RETURN_IF_ERROR(aead.Seal(nonce, absl::MakeConstSpan(packet).first(aad_size), payload,
                            absl::MakeSpan(packet).subspan(aad_size))
                      .status());
  return packet;
}

bool PeekSessionNonce(absl::Span<const uint8_t> packet, Nonce* session_nonce) {
  if (packet.size() < kHeaderSize + session_nonce->size()) return false;
  std::copy_n(packet.begin() + kHeaderSize, session_nonce->size(), session_nonce->begin());
  return true;
}

absl::StatusOr<std::vector<uint8_t>> OpenPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> packet) {
  const size_t aad_size = kHeaderSize + (CarriesSessionNonce(header) ? kNonceSize : 0);
  if (packet.size() < aad_size + crypto::Aead::kTagSize) {
    return absl::InvalidArgumentError("sealed packet too short");
  }
  RETURN_IF_ERROR(aead.SetKey(keys.key.span()));
  const auto nonce = RecordNonce(keys, header.packet_number);
  return aead.Open(nonce, packet.first(aad_size), packet.subspan(aad_size));
}

}  // namespace edgelink::wire
