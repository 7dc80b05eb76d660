// The peer channel's packets and keys (docs/PROTOCOL.md, "Peer channel"): what a client and a
// device exchange directly or through the relay, sealed with keys only they hold, derived from the
// session key the basestation brokered.
#ifndef EDGELINK_COMMON_CHANNEL_CHANNEL_CRYPTO_H_
#define EDGELINK_COMMON_CHANNEL_CHANNEL_CRYPTO_H_

#include <array>
#include <memory>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/aead.h"
#include "common/crypto/secret_bytes.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"

namespace edgelink::channel {

inline constexpr uint8_t kPeerPacketMarker = 0x02;  // First byte; attach packets start 0x01.
inline constexpr size_t kPeerHeaderSize = 18;
// The largest peer packet: payload + header + tag within a 1280-byte IPv6 minimum MTU path.
inline constexpr size_t kMaxPeerPacket = 1280 - 48;
inline constexpr size_t kMaxPeerPayload = kMaxPeerPacket - kPeerHeaderSize - crypto::Aead::kTagSize;

enum class PeerPacketType : uint8_t {
  kProbe = 1,     // Path check: u32 probe id || u8 sender's NatMapping.
  kProbeAck = 2,  // u32 probe id || endpoint the probe came from || u8 sender's NatMapping.
  kData = 3,      // u8 kind || bytes (see DataKind).
  kClose = 4,     // u8 reason.
  kCandidates = 5,  // More addresses of the sender (candidates as in CONNECT_REQUEST), then
                    // u8 sender's NatMapping.
};

enum class DataKind : uint8_t {
  kRpc = 1,
  kStream = 2,  // An SCTP packet.
  kPing = 3,
  kPong = 4,
};

// Which end of the session this is: the client or the device. Each sends with its own keys.
enum class Side : uint8_t { kClient = 0, kDevice = 1 };

struct PeerHeader {
  PeerPacketType type = PeerPacketType::kData;
  bool key_phase = false;  // Flips at each key update (bit 7 of the type byte).
  uint64_t channel_id = 0;
  uint64_t packet_number = 0;
};

// ParsePeerHeader reads the first 18 bytes; kInvalidArgument if they are not a peer header.
absl::StatusOr<PeerHeader> ParsePeerHeader(absl::Span<const uint8_t> packet);
// PeekChannelId returns the channel id of a peer packet, or 0 if `packet` is not one, so a socket
// shared by several connections can route without parsing further.
uint64_t PeekChannelId(absl::Span<const uint8_t> packet);

// ChannelIdOf: the channel id of the peer channel of session `session_id`: its first 8 bytes as a
// big-endian u64, 0 becoming 1 (0 means "not a peer packet"). Public by design, like the session
// id it comes from (which the relay ticket carries): the relay, whose relay session id is the same
// 16 bytes, forwards each peer packet to the session its channel id names.
inline uint64_t ChannelIdOf(const wire::SessionId& session_id) {
  uint64_t channel_id = 0;
  for (size_t i = 0; i < 8; ++i) channel_id = channel_id << 8 | session_id[i];
  return channel_id == 0 ? 1 : channel_id;
}

// One direction's key generations. Generation 0 comes from the session; each update derives the
// next (secret' = HKDF-Expand(secret, "key update", 32)), so a compromised later key says nothing
// of earlier traffic. The packet header's key-phase bit is the generation's low bit.
class KeyChain {
 public:
  // New starts a chain from a 32-byte direction secret.
  static absl::StatusOr<KeyChain> New(crypto::SecretBytes secret);
  absl::StatusOr<KeyChain> Next() const;

  const wire::DirectionKeys& keys() const { return keys_; }
  uint64_t generation() const { return generation_; }
  bool phase() const { return (generation_ & 1) != 0; }
  // An AES-GCM context already keyed with keys().key: the key schedule is computed once per
  // generation, not per packet.
  crypto::Aead& aead() const { return *aead_; }

 private:
  crypto::SecretBytes secret_;
  uint64_t generation_ = 0;
  wire::DirectionKeys keys_;
  std::unique_ptr<crypto::Aead> aead_;
};

struct SessionSecrets {
  uint64_t channel_id = 0;
  crypto::SecretBytes client_to_device;  // 32 bytes each: KeyChain::New input.
  crypto::SecretBytes device_to_client;
};

// DeriveSessionSecrets: PRK = HKDF-Extract("edgelink/1 channel" || session id || client nonce ||
// device nonce, session key); channel id = ChannelIdOf(session id), not secret; direction secrets
// = HKDF-Expand(PRK, "client to device" | "device to client", 32). Each side draws its nonce fresh
// for this connection, so whoever seals has put fresh randomness into its keys: a repeated or
// replayed request can never give two channels the same keys (it does give them the same channel
// id: a packet of one then fails to open in the other).
// kInvalidArgument unless the session key is 16 bytes.
absl::StatusOr<SessionSecrets> DeriveSessionSecrets(const wire::SessionId& session_id,
                                                    const crypto::SecretBytes& session_key,
                                                    const wire::Nonce& client_nonce,
                                                    const wire::Nonce& device_nonce);

// SealPeerPacket returns header || AES-128-GCM(payload) (header as associated data, nonce = iv
// XOR packet number) with `keys`; `aead` is scratch and re-keyed.
absl::StatusOr<std::vector<uint8_t>> SealPeerPacket(crypto::Aead& aead,
                                                    const wire::DirectionKeys& keys,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> payload);
// The same with a chain's own keyed context (no re-keying per packet).
absl::StatusOr<std::vector<uint8_t>> SealPeerPacket(const KeyChain& chain,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> payload);
absl::StatusOr<std::vector<uint8_t>> OpenPeerPacket(const KeyChain& chain,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> packet);
// OpenPeerPacket authenticates and decrypts; kUnauthenticated if it does not open.
absl::StatusOr<std::vector<uint8_t>> OpenPeerPacket(crypto::Aead& aead,
                                                    const wire::DirectionKeys& keys,
                                                    const PeerHeader& header,
                                                    absl::Span<const uint8_t> packet);

}  // namespace edgelink::channel

#endif  // EDGELINK_COMMON_CHANNEL_CHANNEL_CRYPTO_H_
