// PeerConnection: one client <-> device session after the basestation brokered it, sans-I/O.
//
// Both ends start at once: each sends authenticated probes to every candidate address of the
// other (host, server-reflexive, predicted) and binds to the basestation relay, so data can flow
// on whichever path answers first. A path is usable once a probe through it is answered; the
// connection sends on the best usable path (local > direct > relay, then lowest round-trip time)
// and moves as soon as a better one proves itself, or away from one that stops answering.
// Every packet is AES-128-GCM sealed with keys derived from the session key, numbered, checked
// against a replay window, and the keys are updated before nonces could run out. The relay sees
// only ciphertext.
//
// A NAT that picks a random public port per destination defeats prediction. Each side tells the
// other how its own NAT maps (comparing the relay's and the reflector's view of its address); when
// one side's NAT keeps one port for every destination and the other's does not, they fall back on
// the birthday approach: the hard side probes from many local ports at once (Datagram::socket,
// bound by the caller on demand), the easy side probes many random ports of the hard side's
// public address, and any match opens a direct path. Docs: docs/PROTOCOL.md, "Peer channel".
#ifndef EDGELINK_COMMON_CHANNEL_PEER_CONNECTION_H_
#define EDGELINK_COMMON_CHANNEL_PEER_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/channel/channel_crypto.h"
#include "common/crypto/aead.h"
#include "common/crypto/random.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"
#include "common/wire/packet.h"
#include "common/wire/replay_window.h"

namespace edgelink::channel {

// The relay's control packets, as a peer builds and reads them.
inline constexpr uint8_t kRelayMarker = 0x03;
inline constexpr size_t kRelayTicketSize = 40;
std::vector<uint8_t> BuildRelayBind(Side side, absl::Span<const uint8_t> ticket);
// RELAY_REFLECT: asks the relay which address this socket's packets come from.
std::vector<uint8_t> BuildRelayReflect();

// How a side's NAT maps its socket to public ports, as the side observed it (RFC 4787 4.1) and
// tells the other in CANDIDATES.
enum class NatMapping : uint8_t {
  kUnknown = 0,
  kEndpointIndependent = 1,  // One public port for every destination (or no NAT at all).
  kEndpointDependent = 2,    // A port per destination: the peer cannot know ours in advance.
};
absl::string_view NatMappingName(NatMapping mapping);

struct PeerConnectionOptions {
  Side side = Side::kClient;
  wire::SessionId session_id{};
  crypto::SecretBytes session_key;
  // Both sides' fresh randomness for this connection (ConnectRequest / ConnectResponse): the
  // channel keys mix them in (DeriveSessionSecrets).
  wire::Nonce client_nonce{};
  wire::Nonce device_nonce{};
  std::vector<wire::Candidate> remote_candidates;
  net::Endpoint relay;                // Unset: no relay path.
  std::vector<uint8_t> relay_ticket;  // kRelayTicketSize bytes when `relay` is set.
  // Use the relay only: no direct probing, no candidates told, packets from anywhere but the
  // relay dropped (a diagnostic, and what a user who wants to hide their address can choose).
  bool relay_only = false;
  // A second address that answers RELAY_REFLECT (the basestation's attach port). Our address as
  // it and the relay see it tells our NatMapping. Unset: kUnknown, and no birthday probing.
  net::Endpoint reflector;

  // Behind an address-and-port-dependent NAT with sequential allocation, the peer's mapping towards
  // us will likely be just above the one the basestation saw: probe this many ports above each
  // server-reflexive candidate too.
  int predicted_ports = 8;
  // Birthday probing, when no direct path has worked for spray_after and one side's mapping is
  // endpoint-dependent while the other's is not: the hard side probes the easy side's public
  // address from spray_sockets extra local ports, the easy side sends spray_probes probes to
  // distinct random ports of the hard side's public address. With a random-port NAT over
  // 64,512 ports some pair matches with probability 1 - exp(-sockets * probes / 64512): 98% at
  // 128 x 2048, for about 150 KB of probes. 0 sockets: never (a caller that cannot bind more).
  int spray_sockets = 128;
  int spray_probes = 2048;
  absl::Duration spray_after = absl::Seconds(1);
  // Probes on a path not yet answered go out this often, for at most probe_timeout.
  absl::Duration probe_interval = absl::Milliseconds(200);
  absl::Duration probe_timeout = absl::Seconds(8);
  // Usable paths are probed this often to keep NAT mappings open and measure RTT; the active one
  // more often while data flows, and it is dropped after path_failure_timeout without answer.
  absl::Duration keepalive_interval = absl::Seconds(10);
  absl::Duration active_probe_interval = absl::Milliseconds(250);
  absl::Duration path_failure_timeout = absl::Milliseconds(1500);
  // With no authenticated packet at all for this long, the connection is over.
  absl::Duration idle_timeout = absl::Seconds(45);
  // Packets sealed under one key before both directions' keys are updated (far below the
  // 2^32 AES-GCM invocation bound).
  uint64_t key_update_interval = uint64_t{1} << 28;
};

struct PeerConnectionCounters {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t probes_sent = 0;
  uint64_t spray_probes_sent = 0;   // Easy side: to random ports of the peer's address.
  uint64_t spray_sockets_used = 0;  // Hard side: extra local ports probed from.
  uint64_t dropped_malformed = 0;
  uint64_t dropped_unauthenticated = 0;
  uint64_t dropped_replay = 0;
  uint64_t dropped_unexpected = 0;  // Authenticated, but from an address not allowed (relay only).
  uint64_t path_switches = 0;
  uint64_t key_updates = 0;
};

// Not thread-safe: owned by one event loop.
class PeerConnection {
 public:
  enum class State { kConnecting, kConnected, kClosed };
  enum class PathState { kProbing, kUsable, kFailed };

  struct Path {
    wire::Candidate::Kind kind = wire::Candidate::Kind::kHost;
    net::Endpoint remote;
    // Which of our sockets the path leaves from: 0, the main one, or an extra one of birthday
    // probing (Datagram::socket).
    uint16_t socket = 0;
    bool via_relay = false;
    PathState state = PathState::kProbing;
    absl::Duration rtt = absl::InfiniteDuration();
    absl::Time started;
    absl::Time usable_at = absl::InfiniteFuture();
    absl::Time next_probe;
    absl::Time unanswered_since = absl::InfiniteFuture();
    uint32_t probes_sent = 0;
    // The last probe sent and when, to measure RTT from its answer.
    uint32_t last_probe_id = 0;
    absl::Time last_probe_at;
    bool told_candidates = false;  // Our learned candidates went out on this path.
  };

  struct Received {
    DataKind kind;
    std::vector<uint8_t> bytes;
  };

  // New derives the session's keys; kInvalidArgument for a bad session key or ticket.
  static absl::StatusOr<std::unique_ptr<PeerConnection>> New(PeerConnectionOptions options,
                                                             crypto::RandomSource* random);

  // Start sends the first probes and the relay bind.
  void Start(absl::Time now);
  // OnPacket takes a datagram from `from` that arrived on `socket` (see Datagram::socket): a peer
  // packet of this channel (PeekChannelId) or a relay or reflector reply. Anything else is counted
  // and dropped.
  void OnPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet, absl::Time now,
                uint16_t socket = 0);
  void OnTimeout(absl::Time now);
  absl::Time next_timeout() const;
  // Datagrams to send. One with socket > 0 goes out of the connection's extra socket of that
  // number, which the caller binds (any port, same family as the main one) when first asked for
  // it and closes once WantsSocket says so.
  std::vector<net::Datagram> TakeOutgoing();
  bool WantsSocket(uint16_t socket) const;

  // Send seals `bytes` as one datagram on the active path. kFailedPrecondition before a path is
  // usable or after close; kInvalidArgument if too large (kMaxPeerPayload - 1).
  absl::Status Send(DataKind kind, absl::Span<const uint8_t> bytes, absl::Time now);
  std::vector<Received> TakeReceived();
  // Close tells the peer (on the active path) and stops.
  void Close(absl::Time now);

  // AddRemoteCandidate starts probing a candidate of the peer learned late (trickled). A
  // server-reflexive one that is not also a host address brings predicted ports with it.
  void AddRemoteCandidate(const wire::Candidate& candidate, absl::Time now);

  // OnLocalAddressChanged: our public address may have changed (the device's attach session saw a
  // new one): re-bind to the relay, ask it our address again, and re-probe every path.
  void OnLocalAddressChanged(absl::Time now);

  // Our own public address as the relay saw it (unset until it answered).
  const net::Endpoint& reflexive() const { return reflexive_; }
  // Our own public address as the reflector saw it (unset until it answered).
  const net::Endpoint& reflector_reflexive() const { return reflector_reflexive_; }
  // Our NAT's mapping behaviour as observed, and the peer's as it told us.
  NatMapping local_mapping() const { return local_mapping_; }
  NatMapping peer_mapping() const { return peer_mapping_; }

  State state() const { return state_; }
  uint64_t channel_id() const { return channel_id_; }
  Side side() const { return options_.side; }
  const Path* active_path() const;
  const std::vector<Path>& paths() const { return paths_; }
  // From Start to the first usable path / to the path in use now.
  absl::Duration time_to_first_path() const { return first_usable_ - started_; }
  const PeerConnectionCounters& counters() const { return counters_; }

  static absl::string_view PathName(const Path& path);

 private:
  PeerConnection(PeerConnectionOptions options, crypto::RandomSource* random,
                 SessionSecrets secrets, KeyChain send, KeyChain receive);

  Path* FindPath(const net::Endpoint& remote, uint16_t socket = 0);
  Path& AddPath(wire::Candidate::Kind kind, const net::Endpoint& remote, bool via_relay,
                absl::Time now, uint16_t socket = 0);
  void SendProbe(Path& path, absl::Time now);
  void SendOn(const Path& path, PeerPacketType type, absl::Span<const uint8_t> payload);
  void ChooseActivePath(absl::Time now);
  void HandleRelay(const net::Endpoint& from, absl::Span<const uint8_t> packet, absl::Time now);
  void HandleReflection(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                        absl::Time now);
  void RetellCandidates();
  // Birthday probing: starts it when it applies, sends the next burst of it, ends it.
  void MaybeStartSpray(absl::Time now);
  void SprayBurst(absl::Time now);
  void EndSpray(const Path* winner);
  bool HasUsableDirectPath() const;
  // The peer said how its NAT maps (in a probe, its answer, or CANDIDATES).
  void NotePeerMapping(uint8_t mapping, absl::Time now);
  void Rebind(absl::Time now);
  void Revive(Path& path, absl::Time now);
  void Fail(Path& path, absl::Time now);
  void AddPath(const wire::Candidate& candidate, absl::Time now);
  // Sends what we learned of our own addresses on `path`, once.
  void TellCandidates(Path& path);
  // Opens a packet under the key generation its phase bit and number say: the current one, the
  // next (the peer updated its keys: ours follow), or for a while after an update the previous
  // one (a packet sealed before the update, delivered late).
  bool OpenAndAdvance(const PeerHeader& header, absl::Span<const uint8_t> packet, absl::Time now,
                      std::vector<uint8_t>* payload);
  static int Rank(const Path& path);

  PeerConnectionOptions options_;
  crypto::RandomSource* random_;
  uint64_t channel_id_;
  KeyChain send_keys_;
  KeyChain receive_keys_;
  std::optional<KeyChain> next_receive_keys_;
  // After a key update: the generation before, until previous_receive_until_, for packets below
  // the first packet number of the current one.
  std::optional<KeyChain> previous_receive_keys_;
  absl::Time previous_receive_until_ = absl::InfinitePast();
  uint64_t receive_generation_start_ = 0;
  uint64_t tx_packet_number_ = 0;
  wire::ReplayWindow replay_;

  State state_ = State::kConnecting;
  std::vector<Path> paths_;
  int active_ = -1;  // Index into paths_.
  absl::Time started_ = absl::InfinitePast();
  absl::Time first_usable_ = absl::InfiniteFuture();
  absl::Time last_heard_ = absl::InfinitePast();
  absl::Time last_sent_data_ = absl::InfinitePast();
  absl::Time next_relay_bind_ = absl::InfiniteFuture();
  bool relay_bound_ = false;
  net::Endpoint reflexive_;            // As the relay saw us.
  net::Endpoint reflector_reflexive_;  // As the reflector saw us.
  NatMapping local_mapping_ = NatMapping::kUnknown;
  NatMapping peer_mapping_ = NatMapping::kUnknown;
  net::Endpoint peer_reflexive_;  // The peer's public address, from its candidates.

  enum class Spray { kNotYet, kSpraying, kOpening, kDone };
  Spray spray_ = Spray::kNotYet;
  absl::Time next_spray_ = absl::InfiniteFuture();
  int spray_left_ = 0;  // Easy side: probes still to send.

  std::vector<net::Datagram> outgoing_;
  std::vector<Received> received_;
  PeerConnectionCounters counters_;
};

}  // namespace edgelink::channel

#endif  // EDGELINK_COMMON_CHANNEL_PEER_CONNECTION_H_
