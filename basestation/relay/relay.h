// RelayServer: the basestation relay, sans-I/O. Two peers of a connection (a client and a device)
// that cannot reach each other directly both send to the relay's UDP port; once both sides have
// bound with a ticket from the basestation, the relay forwards each side's peer packets,
// unchanged, to the other. It holds no keys but its own ticket key: it never opens what it forwards
// (DESIGN.md, trust model 3); it reads only their channel id. No socket, thread or clock inside.
//
// ## Relay protocol (edgelink/1)
//
// All integers are big-endian; `||` is concatenation. A datagram whose first byte is 0x03 is a
// relay control packet; one whose first byte is 0x02 is a peer channel packet (header in
// common/channel/channel_crypto.h), to forward. The relay reads its channel id and nothing else:
//
// ```
// peer packet   (peer -> relay -> peer)  0x02 || type u8 || channel_id u64 || packet_number u64
//                                        || sealed bytes              (at least 18 bytes)
// channel_id of a relay session          session_id[0..8] as a u64, 0 becoming 1
//                                        (channel::ChannelIdOf: a session's channel id is public)
// ```
//
// ```
// RELAY_BIND   (peer -> relay)  0x03 || 0x01 || side u8 || ticket[40] || zero padding
//                               (at least 64 bytes in all; side 0 = client, 1 = device)
// RELAY_BOUND  (relay -> peer)  0x03 || 0x02 || session_id[16] || state u8           (19 bytes)
//                               (state 1 = waiting for the other side, 2 = both sides bound)
// RELAY_REFLECT (anyone -> relay) 0x03 || 0x03 || zero padding (32 bytes in all)
// RELAY_REFLECTION (relay -> sender) 0x03 || 0x04 || endpoint the REFLECT came from
//                               (family u8 4|6 || address || port u16; at most 21 bytes)
// ticket                        session_id[16] || expiry_unix_s u64 || mac[16]
// mac                           HMAC-SHA256(relay_key, "edgelink/1 relay" || session_id
//                               || expiry_unix_s)[0..16]
// relay_key                     HKDF-Expand(HKDF-Extract(salt = "", secret), "edgelink/1 relay", 32)
// ```
//
// The basestation makes a random 16-byte session id and a ticket at Connect time and hands the same
// ticket to both peers (the client over TLS, the device over the attach channel). The relay session
// id is the peer channel's session id, so the channel id of the session's peer packets is known to
// the relay from the ticket. Each peer sends RELAY_BIND with its side; the relay checks the MAC
// (constant time) and the expiry, records the BIND's source address as that side's address and
// answers RELAY_BOUND. When the second side binds, both sides get RELAY_BOUND(2): the sender of the
// BIND, and the other side at its bound address, so neither waits for a retransmission to start
// sending. The answer to one BIND is at most 2 x 19 bytes, less than the 64-byte BIND, so a spoofed
// BIND cannot make the relay an amplifier. Peers repeat RELAY_BIND (same ticket) until they see
// state 2, and whenever they may have moved.
//
// Reflection. A client is not attached over UDP, so it learns its own public (server-reflexive)
// address the way STUN does: a RELAY_REFLECT is answered with the address it came from. The answer
// is smaller than the request; a reflection is a hint, validated by the probes that follow.
//
// Forwarding. A peer packet goes to the session its channel id names (one hash lookup). If it
// came from one side's bound address and the other side is bound, it is sent, byte for byte, to
// the other side's bound address. A peer packet whose channel id names no session, that came from
// neither side's address, or whose other side is not bound yet, is dropped (unbound). So one
// address may be bound in any number of sessions: a device serves all its peer sessions from one
// socket, and two phones on one camera (or an old session still alive when a new one starts) are
// two relay sessions with the same device address. A BIND from a new address for a side replaces
// that side's address (NAT rebinding) and touches no other session. Within one session the two
// sides' addresses differ: a BIND from the other side's address takes it over (the other side is
// then unbound), so nothing is ever sent back to its sender. Two live sessions whose channel ids
// collide (different session ids, same first 8 bytes: 2^-64 for a pair of random ids) cannot both
// exist: a BIND that would create the second is dropped (channel_collision).
//
// Limits. A session ends when no packet arrived from either side for the idle timeout (default
// 60 s) or when its ticket expires (a later ticket for the same session id extends it). Each
// session's forwarded bytes, both directions together, go through a token bucket (default
// 20 MB/s, burst 1 MB); what is over the cap is dropped. At most max_sessions sessions exist at
// once (default 100000); a BIND that would create one more is dropped.
//
// Drops, each counted by reason: malformed (empty, oversized, a control packet that does not parse
// exactly: unknown type, bad side, short, non-zero padding; any other datagram that is not a peer
// packet: first byte neither 0x03 nor 0x02, or shorter than the 18-byte peer header), bad_ticket
// (MAC does not verify), expired_ticket (genuine but expired), unbound, rate_limited,
// too_many_sessions, channel_collision. Nothing is ever answered except a valid BIND and a valid
// REFLECT.
//
// What the relay learns and what an on-path observer can do: a ticket travels in the clear, so
// whoever sees a BIND can re-bind that side to its own address until the ticket expires (it could
// drop the traffic anyway). It can neither read nor forge peer packets: the secure channel seals
// them end to end with keys the relay never has. A packet naming a session must still come from
// that session's bound address, so binding a session of one's own gives no way into another.
#ifndef EDGELINK_BASESTATION_RELAY_RELAY_H_
#define EDGELINK_BASESTATION_RELAY_RELAY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/hmac.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"

namespace edgelink::basestation {

inline constexpr uint8_t kRelayControlByte = 0x03;
inline constexpr uint8_t kRelayBindType = 0x01;
inline constexpr uint8_t kRelayBoundType = 0x02;
inline constexpr uint8_t kRelayReflectType = 0x03;
inline constexpr uint8_t kRelayReflectionType = 0x04;
inline constexpr size_t kRelayReflectSize = 32;

inline constexpr size_t kRelaySessionIdSize = 16;
inline constexpr size_t kRelayMacSize = 16;
inline constexpr size_t kRelayTicketSize = kRelaySessionIdSize + 8 + kRelayMacSize;  // 40
inline constexpr size_t kRelayBindSize = 64;   // The minimum; padding makes it so.
inline constexpr size_t kRelayBoundSize = 19;
static_assert(2 * kRelayBoundSize <= kRelayBindSize, "a BIND must outweigh what it provokes");

using RelaySessionId = std::array<uint8_t, kRelaySessionIdSize>;

// RelayChannelId: the channel id of the peer packets a relay session carries, by which the relay
// finds their session: channel::ChannelIdOf of the same 16 bytes (first 8, big-endian, 0 -> 1).
uint64_t RelayChannelId(const RelaySessionId& session_id);

// AnswerReflect: the RELAY_REFLECTION for a well-formed RELAY_REFLECT from `from`, else nullopt.
// The relay answers on its port and the attach server on the attach port, so that a peer can
// compare the two answers and tell whether its NAT keeps one public port for every destination
// (channel::NatMapping).
std::optional<std::vector<uint8_t>> AnswerReflect(const net::Endpoint& from,
                                                  absl::Span<const uint8_t> packet);

enum class RelaySide : uint8_t { kClient = 0, kDevice = 1 };
enum class RelayBoundState : uint8_t { kWaiting = 1, kBound = 2 };

// RelayKey is the key tickets are made and checked with. Immutable once made, so one key may be
// shared by threads (the broker making tickets, the relay checking them).
class RelayKey {
 public:
  // Derive runs HKDF-SHA256 over `secret` (the basestation's 32-byte server key) with an empty
  // salt and info "edgelink/1 relay". Fails with kInvalidArgument for a secret under 32 bytes,
  // kInternal if the crypto backend fails.
  static absl::StatusOr<RelayKey> Derive(const crypto::SecretBytes& secret);

  RelayKey(RelayKey&&) = default;
  RelayKey& operator=(RelayKey&&) = default;
  RelayKey Clone() const { return RelayKey(key_.Clone()); }

  const crypto::SecretBytes& secret() const { return key_; }

 private:
  explicit RelayKey(crypto::SecretBytes key) : key_(std::move(key)) {}
  crypto::SecretBytes key_;
};

// A relay ticket: it lets whoever holds it bind either side of one relay session until `expiry`.
struct RelayTicket {
  RelaySessionId session_id{};
  uint64_t expiry_unix_s = 0;
  std::array<uint8_t, kRelayMacSize> mac{};

  std::array<uint8_t, kRelayTicketSize> Encode() const;
};

// MakeRelayTicket makes the ticket for `session_id`, valid until `expiry` (whole Unix seconds,
// rounded down; a time before 1970 gives 0, an already expired ticket). Aborts only if the crypto
// backend cannot allocate.
RelayTicket MakeRelayTicket(const RelayKey& key, const RelaySessionId& session_id,
                            absl::Time expiry);

// VerifyRelayTicket decodes a 40-byte ticket and checks it at `now`. Fails with
// kInvalidArgument for another length, kPermissionDenied if the MAC does not verify (constant-time
// compare), and kDeadlineExceeded if it is genuine but expiry <= now.
absl::StatusOr<RelayTicket> VerifyRelayTicket(const RelayKey& key,
                                              absl::Span<const uint8_t> ticket, absl::Time now);

// For peers: the RELAY_BIND to send (64 bytes), and RELAY_BOUND parsing.
std::vector<uint8_t> BuildRelayBind(RelaySide side, const RelayTicket& ticket);
struct RelayBound {
  RelaySessionId session_id{};
  RelayBoundState state = RelayBoundState::kWaiting;
};
// ParseRelayBound fails with kInvalidArgument unless `packet` is exactly a RELAY_BOUND.
absl::StatusOr<RelayBound> ParseRelayBound(absl::Span<const uint8_t> packet);
// IsRelayControl: whether a datagram from the relay is a control packet (else a peer packet).
inline bool IsRelayControl(absl::Span<const uint8_t> packet) {
  return !packet.empty() && packet[0] == kRelayControlByte;
}

struct RelayOptions {
  // A session with no packet from either side for this long ends.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Per-session token bucket over forwarded bytes (both directions together).
  double session_bytes_per_second = 20e6;
  double session_burst_bytes = 1e6;
  size_t max_sessions = 100000;
  // Larger datagrams are dropped as malformed (bindings make their receive slots one byte larger,
  // so a truncated datagram shows up as oversized).
  size_t max_packet_size = 1500;
};

enum class RelayDropReason {
  kMalformed,         // Empty, oversized, a control packet that does not parse exactly, or a
                      // datagram that is neither a control packet nor a peer packet.
  kBadTicket,         // BIND whose ticket MAC does not verify.
  kExpiredTicket,     // BIND with a genuine ticket past its expiry.
  kUnbound,           // Peer packet naming no session, from neither side's bound address of the
                      // session it names, or before the other side bound.
  kRateLimited,       // Peer packet over its session's byte rate.
  kTooManySessions,   // BIND that would create a session beyond max_sessions.
  kChannelCollision,  // BIND that would create a session whose channel id a live one has.
};
inline constexpr int kRelayDropReasonCount = 7;
absl::string_view RelayDropReasonName(RelayDropReason reason);

struct RelayCounters {
  uint64_t packets_received = 0;
  uint64_t binds = 0;             // Accepted BINDs (each answered with BOUND).
  uint64_t reflections = 0;       // REFLECTs answered.
  uint64_t sessions = 0;          // Sessions created.
  uint64_t sessions_expired = 0;  // Sessions ended by idle timeout or ticket expiry.
  uint64_t packets_forwarded = 0;
  uint64_t bytes_forwarded = 0;
  uint64_t dropped[kRelayDropReasonCount] = {};
  uint64_t dropped_total() const;
  uint64_t drops(RelayDropReason reason) const { return dropped[static_cast<int>(reason)]; }
};

// Not thread-safe: owned by one event loop.
class RelayServer {
 public:
  // New fails with kInvalidArgument for options that cannot work (non-positive timeout or rate,
  // a burst smaller than one maximal packet, no sessions allowed, max_sessions above 2^30).
  static absl::StatusOr<std::unique_ptr<RelayServer>> New(RelayOptions options,
                                                          const RelayKey& key);
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;

  // OnPacket handles one datagram from `from` received at `now`. For a peer packet to forward it
  // returns where to send `packet`, unchanged: the binding sends its own receive buffer, so
  // forwarding copies and allocates nothing. Otherwise (a control packet, a drop) it returns
  // nullopt, having queued any answer for TakeOutgoing.
  [[nodiscard]] std::optional<net::Endpoint> OnPacket(const net::Endpoint& from,
                                                       absl::Span<const uint8_t> packet,
                                                       absl::Time now);
  // OnTimeout ends sessions that are idle or past their ticket; call when next_timeout() passed.
  void OnTimeout(absl::Time now);
  // The earliest time a session may end (it may turn out to be alive: OnTimeout then moves on).
  absl::Time next_timeout() const;

  // RELAY_BOUND answers queued since the last call.
  std::vector<net::Datagram> TakeOutgoing() { return std::exchange(outgoing_, {}); }

  size_t session_count() const { return by_channel_.size(); }
  // Where a session's side is bound now; nullopt if the session or that side is not bound.
  std::optional<net::Endpoint> AddressOf(const RelaySessionId& session_id, RelaySide side) const;
  const RelayCounters& counters() const { return counters_; }

 private:
  // One session: 88 bytes, in a vector of slots reused through a free list. Sessions are indexed
  // by channel id, one index entry per session holding the slot number (4 bytes), hashing through
  // to the slot's id.
  struct Session {
    RelaySessionId id{};
    net::Endpoint peer[2];        // Unset: that side is not bound.
    int64_t expiry_ns = 0;        // Unix nanoseconds; the ticket's expiry.
    int64_t last_ns = 0;          // Last packet from either side; also when tokens were topped up.
    double tokens = 0;            // Bytes that may be forwarded now.
    uint32_t generation = 0;      // Bumped when the slot is freed, so stale deadlines are ignored.
    bool in_use = false;
  };
  // The channel id index: entries are slot numbers, looked up by channel id.
  struct ChannelHash {
    using is_transparent = void;
    const RelayServer* relay;
    size_t operator()(uint32_t slot) const;
    size_t operator()(uint64_t channel_id) const;
  };
  struct ChannelEq {
    using is_transparent = void;
    const RelayServer* relay;
    uint64_t ChannelId(uint32_t slot) const { return RelayChannelId(relay->sessions_[slot].id); }
    uint64_t ChannelId(uint64_t channel_id) const { return channel_id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return ChannelId(a) == ChannelId(b);
    }
  };
  // A deadline in the min-heap. Entries go stale when a session is active (its deadline moves
  // later) or freed; OnTimeout re-checks the session before ending it.
  struct Deadline {
    int64_t at_ns;
    uint32_t slot;
    uint32_t generation;
    bool operator>(const Deadline& other) const { return at_ns > other.at_ns; }
  };

  RelayServer(RelayOptions options, crypto::HmacSha256 mac);

  void Drop(RelayDropReason reason) { ++counters_.dropped[static_cast<int>(reason)]; }
  void HandleBind(const net::Endpoint& from, absl::Span<const uint8_t> packet, int64_t now_ns);
  void HandleReflect(const net::Endpoint& from, absl::Span<const uint8_t> packet);
  // A packet from either side at `now_ns`: tops up the token bucket and keeps the session alive.
  void Touch(Session& session, int64_t now_ns);
  uint32_t NewSession(const RelaySessionId& id, int64_t expiry_ns, int64_t now_ns);
  void EndSession(uint32_t slot);
  int64_t SessionDeadline(const Session& session) const;
  void PushDeadline(uint32_t slot);
  void QueueBound(const net::Endpoint& to, const RelaySessionId& id, RelayBoundState state);

  const RelayOptions options_;
  const int64_t idle_ns_;
  crypto::HmacSha256 mac_;  // Keyed with the relay key; checks BIND tickets without allocating.

  std::vector<Session> sessions_;
  std::vector<uint32_t> free_slots_;
  absl::flat_hash_set<uint32_t, ChannelHash, ChannelEq> by_channel_;
  std::vector<Deadline> deadlines_;  // A min-heap (std::push_heap with greater).

  std::vector<net::Datagram> outgoing_;
  RelayCounters counters_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_RELAY_RELAY_H_
