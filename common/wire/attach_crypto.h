// The attach handshake's cryptography (docs/PROTOCOL.md, "Key schedule"): session keys from the
// device secret and both nonces, the device's proof, the basestation's stateless cookie and reset
// token, and sealing/opening of records. Symmetric only: HMAC-SHA256, HKDF-SHA256, AES-128-GCM.
#ifndef EDGELINK_COMMON_WIRE_ATTACH_CRYPTO_H_
#define EDGELINK_COMMON_WIRE_ATTACH_CRYPTO_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/aead.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/wire/packet.h"

namespace edgelink::wire {

// Device secrets are at least 128 bits.
inline constexpr size_t kMinDeviceSecretSize = 16;

// One direction's record keys. 28 bytes.
struct DirectionKeys {
  crypto::SecretArray<crypto::Aead::kKeySize> key;
  std::array<uint8_t, crypto::Aead::kNonceSize> iv{};
};

struct AttachKeys {
  crypto::SecretArray<32> proof_key;
  DirectionKeys device_to_server;
  DirectionKeys server_to_device;
};

// DeriveAttachKeys runs HKDF-SHA256 with salt "edgelink/1 attach" || device_nonce || server_nonce
// over the device secret. Fails with kInvalidArgument for a secret under 16 bytes.
absl::StatusOr<AttachKeys> DeriveAttachKeys(const crypto::SecretBytes& device_secret,
                                            const Nonce& device_nonce, const Nonce& server_nonce);

// ComputeProof is HMAC-SHA256(proof_key, transcript of every PROOF field but the proof itself).
ProofTag ComputeProof(const AttachKeys& keys, const Proof& proof);
// VerifyProof checks proof.proof in constant time.
bool VerifyProof(const AttachKeys& keys, const Proof& proof);

// The basestation's long-term key material, from the 32-byte server key in its registry.
struct ServerSecrets {
  crypto::SecretArray<32> cookie_key;
  crypto::SecretArray<32> reset_key;
};
absl::StatusOr<ServerSecrets> DeriveServerSecrets(const crypto::SecretBytes& server_key);

// ComputeCookie binds a CHALLENGE to the HELLO's source address, device id and nonce, the server
// nonce and the timestamp, so a PROOF can be checked with no per-HELLO state.
Cookie ComputeCookie(const ServerSecrets& secrets, const net::Endpoint& source,
                     absl::string_view device_id, const Nonce& device_nonce,
                     const Nonce& server_nonce, uint64_t timestamp_s);

// ComputeResetToken: what a basestation (even after a restart) sends to prove a RESET for a
// connection id is genuine. The device learns it in ATTACHED.
ResetToken ComputeResetToken(const ServerSecrets& secrets, uint64_t connection_id);

// SealPacket returns header || AES-128-GCM(payload) with the header as associated data and the
// nonce iv XOR packet number. `aead` is scratch: it is re-keyed with `keys`.
absl::StatusOr<std::vector<uint8_t>> SealPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> payload);
// OpenPacket authenticates and decrypts `packet` (whose header was parsed into `header`) and
// returns the payload. kUnauthenticated on a wrong key or any modification.
absl::StatusOr<std::vector<uint8_t>> OpenPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> packet);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_ATTACH_CRYPTO_H_
