// Device <-> basestation packets: the fixed header and each message body, encoded and parsed
// without crypto (attach_crypto.h seals and authenticates). Layouts: docs/PROTOCOL.md.
#ifndef EDGELINK_COMMON_WIRE_PACKET_H_
#define EDGELINK_COMMON_WIRE_PACKET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/wire/bytes.h"

namespace edgelink::wire {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 18;
// No packet of this protocol is larger; anything larger is dropped unread.
inline constexpr size_t kMaxPacketSize = 1400;
// HELLO is padded to this size so a CHALLENGE (58 bytes) is never larger than what provoked it:
// a spoofed HELLO cannot make the basestation an amplifier.
inline constexpr size_t kMinHelloSize = 96;
inline constexpr size_t kNonceSize = 16;
inline constexpr size_t kCookieSize = 16;
inline constexpr size_t kProofSize = 32;
inline constexpr size_t kResetTokenSize = 16;

using Nonce = std::array<uint8_t, kNonceSize>;
using Cookie = std::array<uint8_t, kCookieSize>;
using ProofTag = std::array<uint8_t, kProofSize>;
using ResetToken = std::array<uint8_t, kResetTokenSize>;
inline constexpr size_t kFingerprintSize = 32;  // SHA-256 of a client certificate (DER).
inline constexpr size_t kSessionIdSize = 16;
inline constexpr size_t kSessionKeySize = 16;
using Fingerprint = std::array<uint8_t, kFingerprintSize>;
using SessionId = std::array<uint8_t, kSessionIdSize>;
// At most this many candidates travel in one message.
inline constexpr size_t kMaxCandidates = 16;

enum class PacketType : uint8_t {
  kHello = 1,         // device -> basestation, plaintext
  kChallenge = 2,     // basestation -> device, plaintext
  kProof = 3,         // device -> basestation, plaintext, HMAC-authenticated
  kAttached = 4,      // basestation -> device, sealed
  kKeepAlive = 5,     // device -> basestation, sealed
  kKeepAliveAck = 6,  // basestation -> device, sealed
  kDetach = 7,        // either way, sealed
  kReset = 8,         // basestation -> device, plaintext, authenticated by the reset token
  kConnectRequest = 9,   // basestation -> device, sealed
  kConnectResponse = 10, // device -> basestation, sealed
  kDeviceRequest = 11,   // basestation -> device, sealed
  kDeviceResponse = 12,  // device -> basestation, sealed
};
inline constexpr uint8_t kMaxPacketType = 12;

// Sealed packets carry an AES-128-GCM record after the header; the header is its associated data.
bool IsSealed(PacketType type);


struct Header {
  PacketType type = PacketType::kHello;
  uint64_t connection_id = 0;  // 0 during the handshake; the session's id after.
  uint64_t packet_number = 0;  // Per direction, from 0; the AEAD nonce and replay-window input.
};

void WriteHeader(const Header& header, ByteWriter& out);
// ParseHeader fails with kInvalidArgument for a short packet, another version or an unknown type.
absl::StatusOr<Header> ParseHeader(absl::Span<const uint8_t> packet);

// The basestation's answer to a PROOF (ATTACHED, or DETACH on connection 0) carries the session
// nonce in the clear between header and record: the device needs it to derive the session keys
// the record is sealed with. It is associated data too.
bool CarriesSessionNonce(const Header& header);

struct Hello {
  std::string device_id;
  Nonce device_nonce{};
};

struct Challenge {
  Nonce server_nonce{};
  // Basestation clock, Unix milliseconds: bounds the cookie's life and orders a device's PROOFs.
  uint64_t timestamp_ms = 0;
  Cookie cookie{};
};

struct Proof {
  std::string device_id;
  Nonce device_nonce{};
  Nonce server_nonce{};
  uint64_t timestamp_ms = 0;
  Cookie cookie{};
  ProofTag proof{};
};

struct Attached {
  net::Endpoint reflexive;  // The device's address as the basestation saw it.
  uint32_t keepalive_interval_ms = 0;
  ResetToken reset_token{};  // Lets a restarted basestation tell the device to re-attach.
};

struct KeepAliveAck {
  net::Endpoint reflexive;
};

enum class DetachReason : uint8_t {
  kShutdown = 1,  // The sender is going away.
  kRevoked = 2,   // The device was revoked: stop trying.
  kReplaced = 3,  // A newer session of the same device took over.
};

struct Detach {
  DetachReason reason = DetachReason::kShutdown;
};

struct Reset {
  ResetToken token{};
};

// A transport address a peer may be reached at; kinds as in proto/basestation.proto.
struct Candidate {
  enum class Kind : uint8_t { kHost = 1, kServerReflexive = 2, kPredicted = 3, kRelay = 4 };
  Kind kind = Kind::kHost;
  net::Endpoint endpoint;
  friend bool operator==(const Candidate& a, const Candidate& b) {
    return a.kind == b.kind && a.endpoint == b.endpoint;
  }
};

// The basestation brokers a session: the device learns the client, its candidates and the
// session key, and answers whether it accepts.
struct ConnectRequest {
  uint64_t request_id = 0;
  SessionId session_id{};
  crypto::SecretArray<kSessionKeySize> session_key;
  Nonce client_nonce{};   // The client's fresh randomness for the channel keys.
  uint32_t valid_ms = 0;  // How long from now the basestation may still send this request.
  Fingerprint client_fingerprint{};
  std::string client_name;
  std::vector<Candidate> client_candidates;
  std::vector<uint8_t> relay_ticket;  // At most 255 bytes.
  net::Endpoint relay;                // Unset: no relay offered.
};

enum class ConnectVerdict : uint8_t {
  kAccepted = 1,
  kDenied = 2,  // The client is not on the device's access list.
  kBusy = 3,    // The device cannot take another session now.
};

struct ConnectResponse {
  uint64_t request_id = 0;
  ConnectVerdict verdict = ConnectVerdict::kDenied;
  Nonce device_nonce{};  // The device's fresh randomness for the channel keys.
  std::vector<Candidate> device_candidates;
};

// A request a client makes of the device through the basestation (pairing, access list).
struct DeviceRequest {
  uint64_t request_id = 0;
  Fingerprint caller{};
  std::string caller_name;
  std::string method;
  std::vector<uint8_t> payload;  // At most kMaxPayload bytes.
};

struct DeviceResponse {
  uint64_t request_id = 0;
  uint8_t code = 0;     // An absl::StatusCode.
  std::string message;  // At most 255 bytes, for people; never a secret.
  std::vector<uint8_t> payload;
};

// Room left for a request or response payload inside one packet.
inline constexpr size_t kMaxPayload = 1024;

// Whole plaintext packets (header + body).
std::vector<uint8_t> BuildHello(const Hello& hello);
std::vector<uint8_t> BuildChallenge(const Challenge& challenge);
std::vector<uint8_t> BuildProof(const Proof& proof);
std::vector<uint8_t> BuildReset(uint64_t connection_id, const Reset& reset);

// Bodies of sealed packets (the plaintext inside the record).
std::vector<uint8_t> EncodeAttached(const Attached& attached);
std::vector<uint8_t> EncodeKeepAliveAck(const KeepAliveAck& ack);
std::vector<uint8_t> EncodeDetach(const Detach& detach);
std::vector<uint8_t> EncodeConnectRequest(const ConnectRequest& request);
std::vector<uint8_t> EncodeConnectResponse(const ConnectResponse& response);
std::vector<uint8_t> EncodeDeviceRequest(const DeviceRequest& request);
std::vector<uint8_t> EncodeDeviceResponse(const DeviceResponse& response);

// Parsers take the bytes after the header. Each fails with kInvalidArgument naming the problem;
// trailing bytes are an error except HELLO's zero padding.
absl::StatusOr<Hello> ParseHello(absl::Span<const uint8_t> body);
absl::StatusOr<Challenge> ParseChallenge(absl::Span<const uint8_t> body);
absl::StatusOr<Proof> ParseProof(absl::Span<const uint8_t> body);
absl::StatusOr<Reset> ParseReset(absl::Span<const uint8_t> body);
absl::StatusOr<Attached> ParseAttached(absl::Span<const uint8_t> body);
absl::StatusOr<KeepAliveAck> ParseKeepAliveAck(absl::Span<const uint8_t> body);
absl::StatusOr<Detach> ParseDetach(absl::Span<const uint8_t> body);
absl::StatusOr<ConnectRequest> ParseConnectRequest(absl::Span<const uint8_t> body);
absl::StatusOr<ConnectResponse> ParseConnectResponse(absl::Span<const uint8_t> body);
absl::StatusOr<DeviceRequest> ParseDeviceRequest(absl::Span<const uint8_t> body);
absl::StatusOr<DeviceResponse> ParseDeviceResponse(absl::Span<const uint8_t> body);

// Endpoints on the wire: family (4 or 6), 4 or 16 address bytes, port.
void WriteEndpoint(const net::Endpoint& endpoint, ByteWriter& out);
bool ReadEndpoint(ByteReader& in, net::Endpoint* out);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_PACKET_H_
