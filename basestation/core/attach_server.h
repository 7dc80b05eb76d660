// AttachServer: the basestation side of attach (docs/PROTOCOL.md), sans-I/O. It answers HELLOs
// statelessly with a cookie, creates a session only for a device that proved its secret, keeps
// sessions alive on keep-alives and expires silent ones. No socket, thread or clock inside.
#ifndef EDGELINK_BASESTATION_CORE_ATTACH_SERVER_H_
#define EDGELINK_BASESTATION_CORE_ATTACH_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/aead.h"
#include "common/crypto/random.h"
#include "basestation/core/session_table.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"
#include "common/wire/replay_window.h"

namespace edgelink::basestation {

// What the attach server needs to know of a provisioned device.
struct DeviceCredentials {
  crypto::SecretBytes secret;
  bool revoked = false;
};

// Looks devices up by id (the registry, in production). Called only for a PROOF whose cookie
// verified, so spoofed floods never reach it. kNotFound for an unknown id.
class DeviceDirectory {
 public:
  virtual ~DeviceDirectory() = default;
  virtual absl::StatusOr<DeviceCredentials> FindDevice(absl::string_view device_id) = 0;
};

struct AttachServerOptions {
  absl::Duration keepalive_interval = absl::Seconds(25);
  // A session with no authenticated packet for this long is dropped (device offline).
  absl::Duration liveness_timeout = absl::Seconds(80);
  // How long a CHALLENGE's cookie stays valid.
  absl::Duration cookie_lifetime = absl::Seconds(30);
  // Handshake packets (HELLO, PROOF) accepted per second, and the burst allowed above that.
  double handshakes_per_second = 50000;
  double handshake_burst = 10000;
};

// Why packets were dropped; each has a counter.
enum class DropReason {
  kMalformed,       // Unparseable, oversized, or a type the basestation never receives.
  kBadCookie,       // PROOF with a forged, expired or misaddressed cookie.
  kUnknownDevice,   // PROOF for a device id not in the registry.
  kRevoked,         // PROOF from a revoked device.
  kBadProof,        // PROOF whose HMAC does not verify (wrong secret).
  kReplay,          // A record or PROOF seen before.
  kUnauthenticated, // A sealed record that does not open under its session's keys.
  kUnknownSession,  // A sealed record for no current session (answered with RESET).
  kRateLimited,     // Handshake packets over the configured rate.
};
inline constexpr int kDropReasonCount = 9;
absl::string_view DropReasonName(DropReason reason);

struct AttachServerCounters {
  uint64_t packets_received = 0;
  uint64_t packets_sent = 0;
  uint64_t hellos = 0;
  uint64_t attaches = 0;
  uint64_t keepalives = 0;
  uint64_t requests_sent = 0;
  uint64_t replies = 0;
  uint64_t expired = 0;
  uint64_t dropped[kDropReasonCount] = {};
  uint64_t dropped_total() const;
};

// A device came online, moved to another address, or went offline.
struct PresenceEvent {
  std::string device_id;
  bool online = false;
  net::Endpoint address;
  absl::Time at;
};

// A device's answer to a request sent with SendConnectRequest or SendDeviceRequest.
struct DeviceReply {
  std::string device_id;
  std::variant<wire::ConnectResponse, wire::DeviceResponse> reply;
};

// Not thread-safe: owned by one event loop.
class AttachServer {
 public:
  // `server_key` is the basestation's long-term 32-byte key (same across restarts, so reset
  // tokens stay valid). `directory` and `random` must outlive the server.
  static absl::StatusOr<std::unique_ptr<AttachServer>> New(AttachServerOptions options,
                                                           const crypto::SecretBytes& server_key,
                                                           DeviceDirectory* directory,
                                                           crypto::RandomSource* random);

  void OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet, absl::Time now);
  // Expires silent sessions; call when next_timeout() has passed.
  void OnTimeout(absl::Time now);
  absl::Time next_timeout() const;

  std::vector<net::Datagram> TakeOutgoing();
  std::vector<PresenceEvent> TakePresenceEvents();

  // SendConnectRequest / SendDeviceRequest deliver a request to an attached device; the answer
  // comes back through TakeReplies. kUnavailable if the device is not attached. Retransmission
  // (same request id) is the caller's: the device answers a repeated id from its cache.
  absl::Status SendConnectRequest(absl::string_view device_id,
                                  const wire::ConnectRequest& request);
  absl::Status SendDeviceRequest(absl::string_view device_id, const wire::DeviceRequest& request);
  std::vector<DeviceReply> TakeReplies();

  // Revoke ends the device's session, telling the device (DETACH revoked).
  void Revoke(absl::string_view device_id, absl::Time now);

  bool IsAttached(absl::string_view device_id) {
    return sessions_.FindDevice(device_id) != nullptr;
  }
  std::optional<net::Endpoint> AddressOf(absl::string_view device_id);
  size_t attached_count() const { return sessions_.size(); }
  const AttachServerCounters& counters() const { return counters_; }

 private:
  AttachServer(AttachServerOptions options, wire::ServerSecrets secrets,
               DeviceDirectory* directory, crypto::RandomSource* random,
               std::unique_ptr<crypto::Aead> aead);

  void Drop(DropReason reason) { ++counters_.dropped[static_cast<int>(reason)]; }
  bool TakeHandshakeToken(absl::Time now);
  void HandleHello(const net::Endpoint& from, absl::Span<const uint8_t> body, absl::Time now);
  void HandleProof(const net::Endpoint& from, absl::Span<const uint8_t> body, absl::Time now);
  void HandleSealed(const net::Endpoint& from, const wire::Header& header,
                    absl::Span<const uint8_t> packet, absl::Time now);
  void SendSealed(AttachSession& session, wire::PacketType type,
                  absl::Span<const uint8_t> payload);
  void SendAttached(AttachSession& session);
  void RemoveSession(AttachSession& session, absl::Time now);
  // The newest PROOF timestamp accepted for `device_id` (its session's, or one remembered after
  // the session ended), or 0.
  uint64_t NewestProofMs(const AttachSession* session, absl::string_view device_id) const;
  // Seconds since epoch_, the resolution sessions keep time in.
  uint32_t Seconds(absl::Time now) const;

  AttachServerOptions options_;
  wire::ServerSecrets secrets_;
  DeviceDirectory* directory_;
  crypto::RandomSource* random_;
  std::unique_ptr<crypto::Aead> aead_;  // Scratch, re-keyed per record.

  SessionTable sessions_;
  // The newest accepted PROOF's timestamp of each device whose session ended less than a cookie
  // lifetime after it: a replay of that PROOF (or an older one) must not bring the session back.
  // Older entries are swept; their PROOFs fail the cookie's lifetime anyway.
  absl::flat_hash_map<std::string, uint64_t> ended_proofs_ms_;
  absl::Time epoch_ = absl::InfinitePast();
  absl::Time next_sweep_ = absl::InfiniteFuture();

  double handshake_tokens_;
  absl::Time tokens_updated_ = absl::InfinitePast();

  std::vector<net::Datagram> outgoing_;
  std::vector<PresenceEvent> presence_;
  std::vector<DeviceReply> replies_;
  AttachServerCounters counters_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_CORE_ATTACH_SERVER_H_
