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

// What both sides know once the PROOF is made: the proof key, and the PRK the session keys come
// from once the basestation added its session nonce.
struct AttachKeys {
  crypto::SecretArray<32> proof_key;
  crypto::SecretArray<32> prk;
};

// The records' keys of one attach session.
struct SessionKeys {
  DirectionKeys device_to_server;
  DirectionKeys server_to_device;
};

// DeriveAttachKeys runs HKDF-SHA256 with salt "edgelink/1 attach" || device_nonce || server_nonce
// over the device secret. Fails with kInvalidArgument for a secret under 16 bytes.
absl::StatusOr<AttachKeys> DeriveAttachKeys(const crypto::SecretBytes& device_secret,
                                            const Nonce& device_nonce, const Nonce& server_nonce);

// DeriveSessionKeys: each direction's key and IV are HKDF-Expand(PRK, label || session_nonce),
// where the session nonce is fresh randomness the basestation draws for each PROOF it accepts. So
// a PROOF replayed or accepted again can never bring back a session's keys.
SessionKeys DeriveSessionKeys(const AttachKeys& keys, const Nonce& session_nonce);

// ComputeProof is HMAC-SHA256(proof_key, transcript of every PROOF field but the proof itself).
ProofTag ComputeProof(const AttachKeys& keys, const Proof& proof);
// VerifyProof checks proof.proof in constant time.
bool VerifyProof(const AttachKeys& keys, const Proof& proof);

// The basestation's key material, from the 32-byte server key in its registry. The reset key
// is the same after a restart (so RESET tokens stay valid); the cookie key also depends on a
// random value drawn at each start, so a PROOF answering a CHALLENGE from before a restart (when
// the basestation forgot which PROOFs it had accepted) no longer verifies.
struct ServerSecrets {
  crypto::SecretArray<32> cookie_key;
  crypto::SecretArray<32> reset_key;
};
absl::StatusOr<ServerSecrets> DeriveServerSecrets(const crypto::SecretBytes& server_key,
                                                  const Nonce& boot_nonce);

// ComputeCookie binds a CHALLENGE to the HELLO's source address, device id and nonce, the server
// nonce and the timestamp, so a PROOF can be checked with no per-HELLO state.
Cookie ComputeCookie(const ServerSecrets& secrets, const net::Endpoint& source,
                     absl::string_view device_id, const Nonce& device_nonce,
                     const Nonce& server_nonce, uint64_t timestamp_ms);

// ComputeResetToken: what a basestation (even after a restart) sends to prove a RESET for a
// connection id is genuine. The device learns it in ATTACHED.
ResetToken ComputeResetToken(const ServerSecrets& secrets, uint64_t connection_id);

// SealPacket returns header || clear || AES-128-GCM(payload) with header || clear as associated
// data and the nonce iv XOR packet number. `clear` is the session nonce for the packets that
// CarriesSessionNonce, else empty. `aead` is scratch: it is re-keyed with `keys`.
absl::StatusOr<std::vector<uint8_t>> SealPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> payload,
                                                absl::Span<const uint8_t> clear = {});
// OpenPacket authenticates and decrypts `packet` (whose header was parsed into `header`; the
// session nonce follows it if CarriesSessionNonce) and returns the payload. kUnauthenticated on
// a wrong key or any modification, kInvalidArgument if too short.
absl::StatusOr<std::vector<uint8_t>> OpenPacket(crypto::Aead& aead, const DirectionKeys& keys,
                                                const Header& header,
                                                absl::Span<const uint8_t> packet);
// PeekSessionNonce reads the clear session nonce of a packet that CarriesSessionNonce; false if
// it is too short.
bool PeekSessionNonce(absl::Span<const uint8_t> packet, Nonce* session_nonce);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_ATTACH_CRYPTO_H_
