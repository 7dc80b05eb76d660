#include "basestation/relay/relay.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/hash/hash.h"
#include "common/channel/channel_crypto.h"
#include "common/crypto/hkdf.h"
#include "common/status/status_macros.h"
#include "common/wire/bytes.h"
#include "common/wire/packet.h"

namespace edgelink::basestation {
namespace {

constexpr char kRelayLabel[] = "edgelink/1 relay";
constexpr size_t kRelayLabelSize = sizeof(kRelayLabel) - 1;
constexpr size_t kMacInputSize = kRelayLabelSize + kRelaySessionIdSize + 8;
constexpr int64_t kNanosPerSecond = 1000000000;

void PutU64(uint64_t value, uint8_t* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

// The ticket MAC under an already keyed HMAC (Finish re-arms it for the next message). The key is
// valid by construction, so a backend failure is a broken invariant.
std::array<uint8_t, kRelayMacSize> TicketMac(crypto::HmacSha256& hmac,
                                             const RelaySessionId& session_id,
                                             uint64_t expiry_unix_s) {
  std::array<uint8_t, kMacInputSize> input;
  std::copy_n(kRelayLabel, kRelayLabelSize, input.begin());
  std::copy(session_id.begin(), session_id.end(), input.begin() + kRelayLabelSize);
  PutU64(expiry_unix_s, input.data() + kRelayLabelSize + kRelaySessionIdSize);
  if (!hmac.Update(input).ok()) abort();
  absl::StatusOr<crypto::Sha256Digest> digest = hmac.Finish();
  if (!digest.ok()) abort();
  std::array<uint8_t, kRelayMacSize> mac;
  std::copy_n(digest->begin(), kRelayMacSize, mac.begin());
  return mac;
}

crypto::HmacSha256 KeyedHmac(const RelayKey& key) {
  absl::StatusOr<crypto::HmacSha256> hmac = crypto::HmacSha256::New(key.secret());
  if (!hmac.ok()) abort();
  return *std::move(hmac);
}

RelayTicket DecodeTicket(absl::Span<const uint8_t> bytes) {
  RelayTicket ticket;
  wire::ByteReader reader(bytes);
  reader.ReadBytes(absl::MakeSpan(ticket.session_id));
  reader.ReadU64(&ticket.expiry_unix_s);
  reader.ReadBytes(absl::MakeSpan(ticket.mac));
  return ticket;
}

// Unix nanoseconds, saturating for times out of range.
int64_t UnixNanos(absl::Time t) { return absl::ToUnixNanos(t); }

int64_t ExpiryNanos(uint64_t expiry_unix_s) {
  constexpr uint64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / kNanosPerSecond;
  return static_cast<int64_t>(std::min(expiry_unix_s, kMaxSeconds)) * kNanosPerSecond;
}

absl::Status CheckTicket(crypto::HmacSha256& hmac, const RelayTicket& ticket, int64_t now_ns) {
  const std::array<uint8_t, kRelayMacSize> expected =
      TicketMac(hmac, ticket.session_id, ticket.expiry_unix_s);
  if (!crypto::ConstantTimeEquals(expected, ticket.mac)) {
    return absl::PermissionDeniedError("relay ticket does not verify");
  }
  if (ExpiryNanos(ticket.expiry_unix_s) <= now_ns) {
    return absl::DeadlineExceededError("relay ticket expired");
  }
  return absl::OkStatus();
}

// The channel id of a peer packet (bytes 2..10), which is at least kPeerHeaderSize long.
uint64_t PacketChannelId(const uint8_t* packet) {
  uint64_t channel_id = 0;
  for (int i = 2; i < 10; ++i) channel_id = channel_id << 8 | packet[i];
  return channel_id;
}

}  // namespace

uint64_t RelayChannelId(const RelaySessionId& session_id) {
  static_assert(std::is_same_v<RelaySessionId, wire::SessionId>,
                "a relay session id is a peer session id");
  return channel::ChannelIdOf(session_id);
}

absl::StatusOr<RelayKey> RelayKey::Derive(const crypto::SecretBytes& secret) {
  if (secret.size() < 32) return absl::InvalidArgumentError("relay secret must be 32 bytes");
  ASSIGN_OR_RETURN(crypto::SecretBytes prk, crypto::HkdfSha256Extract({}, secret));
  ASSIGN_OR_RETURN(crypto::SecretBytes key,
                   crypto::HkdfSha256Expand(prk, wire::AsBytes(kRelayLabel), 32));
  return RelayKey(std::move(key));
}

std::array<uint8_t, kRelayTicketSize> RelayTicket::Encode() const {
  std::array<uint8_t, kRelayTicketSize> out;
  std::copy(session_id.begin(), session_id.end(), out.begin());
  PutU64(expiry_unix_s, out.data() + kRelaySessionIdSize);
  std::copy(mac.begin(), mac.end(), out.begin() + kRelaySessionIdSize + 8);
  return out;
}

RelayTicket MakeRelayTicket(const RelayKey& key, const RelaySessionId& session_id,
                            absl::Time expiry) {
  RelayTicket ticket;
  ticket.session_id = session_id;
  const int64_t seconds = absl::ToUnixSeconds(expiry);
  ticket.expiry_unix_s = seconds < 0 ? 0 : static_cast<uint64_t>(seconds);
  crypto::HmacSha256 hmac = KeyedHmac(key);
  ticket.mac = TicketMac(hmac, ticket.session_id, ticket.expiry_unix_s);
  return ticket;
}

absl::StatusOr<RelayTicket> VerifyRelayTicket(const RelayKey& key,
                                              absl::Span<const uint8_t> ticket, absl::Time now) {
  if (ticket.size() != kRelayTicketSize) {
    return absl::InvalidArgumentError("relay ticket must be 40 bytes");
  }
  RelayTicket decoded = DecodeTicket(ticket);
  crypto::HmacSha256 hmac = KeyedHmac(key);
  RETURN_IF_ERROR(CheckTicket(hmac, decoded, UnixNanos(now)));
  return decoded;
}

std::vector<uint8_t> BuildRelayBind(RelaySide side, const RelayTicket& ticket) {
  wire::ByteWriter out(kRelayBindSize);
  out.WriteU8(kRelayControlByte);
  out.WriteU8(kRelayBindType);
  out.WriteU8(static_cast<uint8_t>(side));
  out.WriteBytes(ticket.Encode());
  out.PadTo(kRelayBindSize);
  return out.Take();
}

absl::StatusOr<RelayBound> ParseRelayBound(absl::Span<const uint8_t> packet) {
  wire::ByteReader reader(packet);
  uint8_t control = 0, type = 0, state = 0;
  RelayBound bound;
  reader.ReadU8(&control);
  reader.ReadU8(&type);
  reader.ReadBytes(absl::MakeSpan(bound.session_id));
  reader.ReadU8(&state);
  if (!reader.done() || control != kRelayControlByte || type != kRelayBoundType ||
      (state != static_cast<uint8_t>(RelayBoundState::kWaiting) &&
       state != static_cast<uint8_t>(RelayBoundState::kBound))) {
    return absl::InvalidArgumentError("not a RELAY_BOUND");
  }
  bound.state = static_cast<RelayBoundState>(state);
  return bound;
}

absl::string_view RelayDropReasonName(RelayDropReason reason) {
  switch (reason) {
    case RelayDropReason::kMalformed:
      return "malformed";
    case RelayDropReason::kBadTicket:
      return "bad_ticket";
    case RelayDropReason::kExpiredTicket:
      return "expired_ticket";
    case RelayDropReason::kUnbound:
      return "unbound";
    case RelayDropReason::kRateLimited:
      return "rate_limited";
    case RelayDropReason::kTooManySessions:
      return "too_many_sessions";
    case RelayDropReason::kChannelCollision:
      return "channel_collision";
  }
  return "?";
}

uint64_t RelayCounters::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t n : dropped) total += n;
  return total;
}

size_t RelayServer::ChannelHash::operator()(uint32_t slot) const {
  return (*this)(RelayChannelId(relay->sessions_[slot].id));
}
size_t RelayServer::ChannelHash::operator()(uint64_t channel_id) const {
  return absl::Hash<uint64_t>()(channel_id);
}

absl::StatusOr<std::unique_ptr<RelayServer>> RelayServer::New(RelayOptions options,
                                                              const RelayKey& key) {
  if (options.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("relay idle timeout must be positive");
  }
  if (!(options.session_bytes_per_second > 0)) {
    return absl::InvalidArgumentError("relay session rate must be positive");
  }
  if (options.max_packet_size == 0 ||
      !(options.session_burst_bytes >= static_cast<double>(options.max_packet_size))) {
    return absl::InvalidArgumentError("relay burst must hold at least one maximal packet");
  }
  if (options.max_sessions == 0 || options.max_sessions > (size_t{1} << 30)) {
    return absl::InvalidArgumentError("relay max_sessions must be in [1, 2^30]");
  }
  ASSIGN_OR_RETURN(crypto::HmacSha256 mac, crypto::HmacSha256::New(key.secret()));
  return std::unique_ptr<RelayServer>(new RelayServer(std::move(options), std::move(mac)));
}

RelayServer::RelayServer(RelayOptions options, crypto::HmacSha256 mac)
    : options_(std::move(options)),
      idle_ns_(absl::ToInt64Nanoseconds(options_.idle_timeout)),
      mac_(std::move(mac)),
      by_channel_(0, ChannelHash{this}, ChannelEq{this}) {}

std::optional<net::Endpoint> RelayServer::OnPacket(const net::Endpoint& from,
                                                   absl::Span<const uint8_t> packet,
                                                   absl::Time now) {
  ++counters_.packets_received;
  if (packet.empty() || packet.size() > options_.max_packet_size) {
    Drop(RelayDropReason::kMalformed);
    return std::nullopt;
  }
  const int64_t now_ns = UnixNanos(now);
  if (packet[0] == kRelayControlByte) {
    if (packet.size() >= 2 && packet[1] == kRelayReflectType) {
      HandleReflect(from, packet);
    } else {
      HandleBind(from, packet, now_ns);
    }
    return std::nullopt;
  }

  // The hot path: one hash lookup (by channel id), the sender's side, a deadline check and the
  // token bucket.
  if (packet[0] != channel::kPeerPacketMarker || packet.size() < channel::kPeerHeaderSize) {
    Drop(RelayDropReason::kMalformed);
    return std::nullopt;
  }
  auto it = by_channel_.find(PacketChannelId(packet.data()));
  if (it == by_channel_.end()) {
    Drop(RelayDropReason::kUnbound);
    return std::nullopt;
  }
  const uint32_t slot = *it;
  Session& session = sessions_[slot];
  // The sides' addresses differ (HandleBind); an unbound side's is unset, never a real source.
  const int side = from == session.peer[0] ? 0 : from == session.peer[1] ? 1 : -1;
  if (side < 0 || !from.is_set()) {
    Drop(RelayDropReason::kUnbound);
    return std::nullopt;
  }
  if (now_ns >= SessionDeadline(session)) {
    // Over its deadline before OnTimeout ran: it is already gone.
    ++counters_.sessions_expired;
    EndSession(slot);
    Drop(RelayDropReason::kUnbound);
    return std::nullopt;
  }
  Touch(session, now_ns);
  const net::Endpoint& to = session.peer[side ^ 1];
  if (!to.is_set()) {
    Drop(RelayDropReason::kUnbound);
    return std::nullopt;
  }
  const double size = static_cast<double>(packet.size());
  if (session.tokens < size) {
    Drop(RelayDropReason::kRateLimited);
    return std::nullopt;
  }
  session.tokens -= size;
  ++counters_.packets_forwarded;
  counters_.bytes_forwarded += packet.size();
  return to;
}

std::optional<std::vector<uint8_t>> AnswerReflect(const net::Endpoint& from,
                                                  absl::Span<const uint8_t> packet) {
  if (packet.size() != kRelayReflectSize || packet[0] != kRelayControlByte ||
      packet[1] != kRelayReflectType ||
      !std::all_of(packet.begin() + 2, packet.end(), [](uint8_t b) { return b == 0; })) {
    return std::nullopt;
  }
  wire::ByteWriter out;
  out.WriteU8(kRelayControlByte);
  out.WriteU8(kRelayReflectionType);
  wire::WriteEndpoint(from, out);
  return out.Take();
}

void RelayServer::HandleReflect(const net::Endpoint& from, absl::Span<const uint8_t> packet) {
  std::optional<std::vector<uint8_t>> reflection = AnswerReflect(from, packet);
  if (!reflection.has_value()) return Drop(RelayDropReason::kMalformed);
  ++counters_.reflections;
  outgoing_.push_back({from, *std::move(reflection)});
}

void RelayServer::HandleBind(const net::Endpoint& from, absl::Span<const uint8_t> packet,
                             int64_t now_ns) {
  // 0x03 0x01 side ticket[40] zeros...
  constexpr size_t kTicketOffset = 3;
  if (packet.size() < kRelayBindSize || packet[1] != kRelayBindType || packet[2] > 1 ||
      !std::all_of(packet.begin() + kTicketOffset + kRelayTicketSize, packet.end(),
                   [](uint8_t b) { return b == 0; })) {
    return Drop(RelayDropReason::kMalformed);
  }
  const int side = packet[2];
  const RelayTicket ticket = DecodeTicket(packet.subspan(kTicketOffset, kRelayTicketSize));
  const absl::Status checked = CheckTicket(mac_, ticket, now_ns);
  if (checked.code() == absl::StatusCode::kPermissionDenied) {
    return Drop(RelayDropReason::kBadTicket);
  }
  if (!checked.ok()) return Drop(RelayDropReason::kExpiredTicket);

  const int64_t expiry_ns = ExpiryNanos(ticket.expiry_unix_s);
  uint32_t slot;
  auto it = by_channel_.find(RelayChannelId(ticket.session_id));
  if (it != by_channel_.end() && now_ns >= SessionDeadline(sessions_[*it])) {
    // Idle past its timeout but not yet swept: start over rather than revive stale addresses.
    ++counters_.sessions_expired;
    EndSession(*it);
    it = by_channel_.end();
  }
  if (it != by_channel_.end() && sessions_[*it].id != ticket.session_id) {
    // Another live session has this channel id: its packets could not be told apart.
    return Drop(RelayDropReason::kChannelCollision);
  }
  if (it == by_channel_.end()) {
    if (by_channel_.size() >= options_.max_sessions) {
      return Drop(RelayDropReason::kTooManySessions);
    }
    slot = NewSession(ticket.session_id, expiry_ns, now_ns);
  } else {
    slot = *it;
    Session& session = sessions_[slot];
    session.expiry_ns = std::max(session.expiry_ns, expiry_ns);
    Touch(session, now_ns);
  }
  ++counters_.binds;
  Session& session = sessions_[slot];
  const bool was_complete = session.peer[0].is_set() && session.peer[1].is_set();
  // A side moves to the BIND's address (NAT rebinding); other sessions bound at that address keep
  // it. Within this session the address leaves the other side if it was there.
  if (session.peer[side ^ 1] == from) session.peer[side ^ 1] = net::Endpoint();
  session.peer[side] = from;
  const bool complete = session.peer[0].is_set() && session.peer[1].is_set();
  QueueBound(from, session.id, complete ? RelayBoundState::kBound : RelayBoundState::kWaiting);
  if (complete && !was_complete) {
    QueueBound(session.peer[side ^ 1], session.id, RelayBoundState::kBound);
  }
}

uint32_t RelayServer::NewSession(const RelaySessionId& id, int64_t expiry_ns, int64_t now_ns) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(sessions_.size());
    sessions_.emplace_back();
  }
  Session& session = sessions_[slot];
  session.id = id;
  session.peer[0] = session.peer[1] = net::Endpoint();
  session.expiry_ns = expiry_ns;
  session.last_ns = now_ns;
  session.tokens = options_.session_burst_bytes;
  session.in_use = true;
  by_channel_.insert(slot);
  ++counters_.sessions;
  PushDeadline(slot);
  return slot;
}

void RelayServer::EndSession(uint32_t slot) {
  // Erased by key while the slot still holds the id the index hashed.
  by_channel_.erase(slot);
  Session& session = sessions_[slot];
  session.peer[0] = session.peer[1] = net::Endpoint();
  session.in_use = false;
  ++session.generation;
  free_slots_.push_back(slot);
}

void RelayServer::Touch(Session& session, int64_t now_ns) {
  // A clock that stepped back neither refunds nor moves the deadline earlier.
  if (now_ns <= session.last_ns) return;
  // Multiplied before dividing, so whole numbers of bytes come out exact and do not drift.
  session.tokens = std::min(options_.session_burst_bytes,
                            session.tokens + static_cast<double>(now_ns - session.last_ns) *
                                                 options_.session_bytes_per_second /
                                                 kNanosPerSecond);
  session.last_ns = now_ns;
}

int64_t RelayServer::SessionDeadline(const Session& session) const {
  const int64_t idle_deadline = session.last_ns > std::numeric_limits<int64_t>::max() - idle_ns_
                                    ? std::numeric_limits<int64_t>::max()
                                    : session.last_ns + idle_ns_;
  return std::min(session.expiry_ns, idle_deadline);
}

void RelayServer::PushDeadline(uint32_t slot) {
  const Session& session = sessions_[slot];
  deadlines_.push_back({SessionDeadline(session), slot, session.generation});
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<Deadline>());
}

void RelayServer::QueueBound(const net::Endpoint& to, const RelaySessionId& id,
                             RelayBoundState state) {
  std::vector<uint8_t> bound(kRelayBoundSize);
  bound[0] = kRelayControlByte;
  bound[1] = kRelayBoundType;
  std::copy(id.begin(), id.end(), bound.begin() + 2);
  bound[2 + kRelaySessionIdSize] = static_cast<uint8_t>(state);
  outgoing_.push_back({to, std::move(bound)});
}

void RelayServer::OnTimeout(absl::Time now) {
  const int64_t now_ns = UnixNanos(now);
  while (!deadlines_.empty() && deadlines_.front().at_ns <= now_ns) {
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<Deadline>());
    const Deadline due = deadlines_.back();
    deadlines_.pop_back();
    const Session& session = sessions_[due.slot];
    if (!session.in_use || session.generation != due.generation) continue;  // Already ended.
    if (now_ns >= SessionDeadline(session)) {
      ++counters_.sessions_expired;
      EndSession(due.slot);
    } else {
      PushDeadline(due.slot);  // Active since: its deadline moved on.
    }
  }
}

absl::Time RelayServer::next_timeout() const {
  if (deadlines_.empty()) return absl::InfiniteFuture();
  return absl::FromUnixNanos(deadlines_.front().at_ns);
}

std::optional<net::Endpoint> RelayServer::AddressOf(const RelaySessionId& session_id,
                                                    RelaySide side) const {
  auto it = by_channel_.find(RelayChannelId(session_id));
  if (it == by_channel_.end() || sessions_[*it].id != session_id) return std::nullopt;
  const net::Endpoint& address = sessions_[*it].peer[static_cast<int>(side)];
  if (!address.is_set()) return std::nullopt;
  return address;
}

}  // namespace edgelink::basestation
