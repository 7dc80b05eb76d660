#include "basestation/relay/relay.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "absl/time/time.h"
#include "common/channel/channel_crypto.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/hmac.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "common/wire/bytes.h"
#include "common/wire/packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::Optional;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);
const net::Endpoint kClient = net::Endpoint::Ipv4({198, 51, 100, 7}, 40000);
const net::Endpoint kDevice = net::Endpoint::Ipv4({203, 0, 113, 9}, 50000);
const net::Endpoint kStranger = net::Endpoint::Ipv4({192, 0, 2, 66}, 1234);

crypto::SecretBytes TestSecret(uint8_t fill = 0x5a) {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, fill));
}

RelayKey TestKey(uint8_t fill = 0x5a) { return *RelayKey::Derive(TestSecret(fill)); }

RelaySessionId SessionId(uint8_t n) {
  RelaySessionId id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(n * 17 + i);
  return id;
}

// The channel id of the peer channel a relay session carries, computed here independently of
// relay.cc: the first 8 bytes of the session id, big-endian, 0 becoming 1 (docs/PROTOCOL.md,
// "Keys").
uint64_t ChannelIdFor(const RelaySessionId& id) {
  uint64_t channel_id = 0;
  for (size_t i = 0; i < 8; ++i) channel_id = channel_id << 8 | id[i];
  return channel_id == 0 ? 1 : channel_id;
}

// A peer (channel) packet of `session` (SessionId(session)): 0x02 || type u8 || channel_id u64 ||
// packet_number u64 || sealed bytes. The relay reads the channel id and nothing after it.
std::vector<uint8_t> PeerPacket(size_t size, uint8_t seed, uint8_t session = 1) {
  std::vector<uint8_t> bytes(std::max<size_t>(size, 18));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(seed + i * 7);
  bytes[0] = 0x02;
  bytes[1] = 0x03;  // DATA.
  const uint64_t channel_id = ChannelIdFor(SessionId(session));
  for (int i = 0; i < 8; ++i) bytes[2 + i] = static_cast<uint8_t>(channel_id >> (56 - 8 * i));
  return bytes;
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(RelayOptions()); }

  void Restart(RelayOptions options) {
    options_ = options;
    auto relay = RelayServer::New(options, key_);
    ASSERT_THAT(relay, IsOk());
    relay_ = *std::move(relay);
  }

  RelayTicket Ticket(uint8_t session, absl::Duration valid = absl::Minutes(10)) {
    return MakeRelayTicket(key_, SessionId(session), now_ + valid);
  }

  // Sends a BIND and returns what the relay answered (to anyone).
  std::vector<net::Datagram> Bind(const net::Endpoint& from, RelaySide side,
                                  const RelayTicket& ticket) {
    const std::vector<uint8_t> bind = BuildRelayBind(side, ticket);
    EXPECT_EQ(relay_->OnPacket(from, bind, now_), std::nullopt);
    return relay_->TakeOutgoing();
  }

  // Binds both sides of `session` from the default addresses.
  void BindBoth(uint8_t session = 1, const net::Endpoint& client = kClient,
                const net::Endpoint& device = kDevice) {
    const RelayTicket ticket = Ticket(session);
    Bind(client, RelaySide::kClient, ticket);
    Bind(device, RelaySide::kDevice, ticket);
  }

  std::optional<net::Endpoint> Send(const net::Endpoint& from, absl::Span<const uint8_t> bytes) {
    return relay_->OnPacket(from, bytes, now_);
  }

  void Advance(absl::Duration d) {
    now_ += d;
    if (relay_->next_timeout() <= now_) relay_->OnTimeout(now_);
  }

  uint64_t Drops(RelayDropReason reason) const { return relay_->counters().drops(reason); }

  RelayKey key_ = TestKey();
  RelayOptions options_;
  absl::Time now_ = kStart;
  std::unique_ptr<RelayServer> relay_;
};

TEST(RelayTicketTest, MacIsHmacOfLabelSessionAndExpiryUnderHkdfKey) {
  // The wire format pinned independently of relay.cc: a peer or another implementation computes
  // exactly this.
  const crypto::SecretBytes secret = TestSecret();
  auto prk = crypto::HkdfSha256Extract({}, secret);
  ASSERT_THAT(prk, IsOk());
  auto relay_key = crypto::HkdfSha256Expand(*prk, wire::AsBytes("edgelink/1 relay"), 32);
  ASSERT_THAT(relay_key, IsOk());
  wire::ByteWriter input;
  input.WriteBytes(wire::AsBytes("edgelink/1 relay"));
  input.WriteBytes(SessionId(3));
  input.WriteU64(1700000600);
  auto mac = crypto::HmacSha256::Compute(*relay_key, input.bytes());
  ASSERT_THAT(mac, IsOk());

  const RelayKey key = TestKey();
  EXPECT_THAT(key.secret().span(), ElementsAreArray(relay_key->span()));
  const RelayTicket ticket = MakeRelayTicket(key, SessionId(3), absl::FromUnixSeconds(1700000600));
  EXPECT_EQ(ticket.expiry_unix_s, 1700000600u);
  EXPECT_THAT(ticket.mac, ElementsAreArray(mac->data(), 16));

  const auto encoded = ticket.Encode();
  ASSERT_EQ(encoded.size(), 40u);
  EXPECT_TRUE(std::equal(encoded.begin(), encoded.begin() + 16, SessionId(3).begin()));
  wire::ByteReader reader(absl::MakeConstSpan(encoded).subspan(16, 8));
  uint64_t expiry = 0;
  ASSERT_TRUE(reader.ReadU64(&expiry));
  EXPECT_EQ(expiry, 1700000600u);
  EXPECT_TRUE(std::equal(encoded.begin() + 24, encoded.end(), ticket.mac.begin()));
}

TEST(RelayTicketTest, VerifyAcceptsGenuineAndNamesWhatIsWrong) {
  const RelayKey key = TestKey();
  const RelayTicket ticket = MakeRelayTicket(key, SessionId(1), kStart + absl::Seconds(30));
  const auto encoded = ticket.Encode();

  auto verified = VerifyRelayTicket(key, encoded, kStart);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->session_id, SessionId(1));
  EXPECT_THAT(VerifyRelayTicket(key, encoded, kStart + absl::Seconds(30)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(VerifyRelayTicket(TestKey(0x11), encoded, kStart),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(VerifyRelayTicket(key, absl::MakeConstSpan(encoded).first(39), kStart),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Every single-bit change to the ticket (id, expiry or MAC) is refused.
  for (size_t bit = 0; bit < encoded.size() * 8; ++bit) {
    auto forged = encoded;
    forged[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_THAT(VerifyRelayTicket(key, forged, kStart),
                StatusIs(absl::StatusCode::kPermissionDenied))
        << "bit " << bit;
  }
}

TEST(RelayTicketTest, KeyNeedsA32ByteSecret) {
  EXPECT_THAT(RelayKey::Derive(crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(31, 1))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RelayKey::Derive(TestSecret()), IsOk());
}

TEST(RelayTicketTest, BindIsPaddedAndBoundParsesExactly) {
  const RelayTicket ticket = MakeRelayTicket(TestKey(), SessionId(2), kStart);
  const std::vector<uint8_t> bind = BuildRelayBind(RelaySide::kDevice, ticket);
  ASSERT_EQ(bind.size(), kRelayBindSize);
  EXPECT_EQ(bind[0], 0x03);
  EXPECT_EQ(bind[1], 0x01);
  EXPECT_EQ(bind[2], 1);
  EXPECT_TRUE(std::equal(bind.begin() + 3, bind.begin() + 43, ticket.Encode().begin()));
  EXPECT_TRUE(std::all_of(bind.begin() + 43, bind.end(), [](uint8_t b) { return b == 0; }));

  std::vector<uint8_t> bound = {0x03, 0x02};
  const RelaySessionId id = SessionId(2);
  bound.insert(bound.end(), id.begin(), id.end());
  bound.push_back(2);
  auto parsed = ParseRelayBound(bound);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->session_id, id);
  EXPECT_EQ(parsed->state, RelayBoundState::kBound);
  bound.back() = 3;
  EXPECT_THAT(ParseRelayBound(bound), StatusIs(absl::StatusCode::kInvalidArgument));
  bound.back() = 1;
  bound.push_back(0);
  EXPECT_THAT(ParseRelayBound(bound), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRelayBound(bind), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RelayOptionsTest, RejectsOptionsThatCannotWork) {
  const RelayKey key = TestKey();
  RelayOptions o;
  o.idle_timeout = absl::ZeroDuration();
  EXPECT_THAT(RelayServer::New(o, key), StatusIs(absl::StatusCode::kInvalidArgument));
  o = RelayOptions();
  o.session_bytes_per_second = 0;
  EXPECT_THAT(RelayServer::New(o, key), StatusIs(absl::StatusCode::kInvalidArgument));
  o = RelayOptions();
  o.session_burst_bytes = 1000;  // Below one 1500-byte packet.
  EXPECT_THAT(RelayServer::New(o, key), StatusIs(absl::StatusCode::kInvalidArgument));
  o = RelayOptions();
  o.max_sessions = 0;
  EXPECT_THAT(RelayServer::New(o, key), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RelayServer::New(RelayOptions(), key), IsOk());
}

TEST_F(RelayTest, BindsBothSidesThenForwardsBothWaysUnchanged) {
  const RelayTicket ticket = Ticket(1);
  std::vector<net::Datagram> out = Bind(kClient, RelaySide::kClient, ticket);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, kClient);
  auto bound = ParseRelayBound(out[0].bytes);
  ASSERT_THAT(bound, IsOk());
  EXPECT_EQ(bound->session_id, SessionId(1));
  EXPECT_EQ(bound->state, RelayBoundState::kWaiting);

  // The second side completes the session: both sides hear it at once.
  out = Bind(kDevice, RelaySide::kDevice, ticket);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].to, kDevice);
  EXPECT_EQ(out[1].to, kClient);
  for (const net::Datagram& d : out) {
    auto b = ParseRelayBound(d.bytes);
    ASSERT_THAT(b, IsOk());
    EXPECT_EQ(b->state, RelayBoundState::kBound);
  }
  EXPECT_EQ(relay_->session_count(), 1u);
  EXPECT_EQ(relay_->counters().binds, 2u);
  EXPECT_EQ(relay_->counters().sessions, 1u);

  const std::vector<uint8_t> up = PeerPacket(1200, 1);
  const std::vector<uint8_t> down = PeerPacket(77, 2);
  // The core names the destination; the bytes are the caller's own buffer, sent as they are.
  EXPECT_THAT(Send(kClient, up), Optional(kDevice));
  EXPECT_THAT(Send(kDevice, down), Optional(kClient));
  // The relay reads the channel id only: any type byte, any packet number, any bytes after.
  for (uint8_t type : {0x00, 0x01, 0x85, 0xff}) {
    std::vector<uint8_t> other = PeerPacket(20, type);
    other[1] = type;
    EXPECT_THAT(Send(kClient, other), Optional(kDevice)) << int{type};
  }
  EXPECT_TRUE(relay_->TakeOutgoing().empty());
  EXPECT_EQ(relay_->counters().packets_forwarded, 6u);
  EXPECT_EQ(relay_->counters().bytes_forwarded, 1200u + 77u + 4 * 20u);
  EXPECT_EQ(relay_->counters().dropped_total(), 0u);
}

TEST_F(RelayTest, ForwardsOnlyPeerPackets) {
  BindBoth();
  // A datagram that is neither a control packet (0x03) nor a peer packet (0x02 and the 18-byte
  // header) is malformed, from a bound address too.
  for (uint8_t first : {0x00, 0x01, 0x04, 0xff}) {
    std::vector<uint8_t> other = PeerPacket(100, first);
    other[0] = first;
    EXPECT_EQ(Send(kClient, other), std::nullopt) << int{first};
  }
  const std::vector<uint8_t> packet = PeerPacket(18, 1);
  for (size_t n = 1; n < packet.size(); ++n) {
    EXPECT_EQ(Send(kClient, absl::MakeConstSpan(packet).first(n)), std::nullopt) << n;
  }
  EXPECT_EQ(Drops(RelayDropReason::kMalformed), 4u + 17u);
  EXPECT_THAT(Send(kClient, packet), Optional(kDevice));  // A bare header is enough.
  EXPECT_EQ(relay_->counters().dropped_total(), 4u + 17u);
  EXPECT_TRUE(relay_->TakeOutgoing().empty());
}

TEST_F(RelayTest, DropsPeerPacketsUntilTheOtherSideBinds) {
  Bind(kClient, RelaySide::kClient, Ticket(1));
  EXPECT_EQ(Send(kClient, PeerPacket(100, 1)), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 1u);
  Bind(kDevice, RelaySide::kDevice, Ticket(1));
  EXPECT_THAT(Send(kClient, PeerPacket(100, 1)), Optional(kDevice));
}

TEST_F(RelayTest, DropsPeerPacketsFromAnAddressBoundInNeitherSide) {
  BindBoth();
  EXPECT_EQ(Send(kStranger, PeerPacket(100, 1)), std::nullopt);
  // Same IP, other port: a different address.
  EXPECT_EQ(Send(kClient.WithPort(40001), PeerPacket(100, 1)), std::nullopt);
  // Bound in a session of its own: still neither side of session 1.
  BindBoth(2, kStranger, net::Endpoint::Ipv4({10, 0, 0, 3}, 3000));
  EXPECT_EQ(Send(kStranger, PeerPacket(100, 1, /*session=*/1)), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 3u);
  EXPECT_EQ(relay_->counters().packets_forwarded, 0u);
  relay_->TakeOutgoing();  // The BOUNDs of session 2.
  EXPECT_THAT(Send(kClient, PeerPacket(100, 1, /*session=*/1)), Optional(kDevice));
  EXPECT_TRUE(relay_->TakeOutgoing().empty());  // Drops are never answered.
}

TEST_F(RelayTest, DropsPeerPacketsWhoseChannelIdNamesAnotherSession) {
  const net::Endpoint client2 = net::Endpoint::Ipv4({10, 0, 0, 2}, 2000);
  const net::Endpoint device2 = net::Endpoint::Ipv4({10, 0, 0, 3}, 3000);
  BindBoth(1);
  BindBoth(2, client2, device2);
  // Each side of session 1 sending with session 2's channel id: not forwarded, to either session.
  EXPECT_EQ(Send(kClient, PeerPacket(100, 1, /*session=*/2)), std::nullopt);
  EXPECT_EQ(Send(kDevice, PeerPacket(100, 1, /*session=*/2)), std::nullopt);
  // A channel id no session has (session 3 never bound; 0 is never a channel id).
  EXPECT_EQ(Send(kClient, PeerPacket(100, 1, /*session=*/3)), std::nullopt);
  std::vector<uint8_t> zero = PeerPacket(100, 1);
  std::fill(zero.begin() + 2, zero.begin() + 10, 0);
  EXPECT_EQ(Send(kClient, zero), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 4u);
  EXPECT_EQ(relay_->counters().packets_forwarded, 0u);
  // Their own channel ids go through.
  EXPECT_THAT(Send(kClient, PeerPacket(100, 1, /*session=*/1)), Optional(kDevice));
  EXPECT_THAT(Send(device2, PeerPacket(100, 1, /*session=*/2)), Optional(client2));
}

TEST_F(RelayTest, RefusesForgedTicketsWithoutAnswering) {
  const RelayTicket genuine = Ticket(1);
  RelayTicket flipped = genuine;
  flipped.mac[5] ^= 0x10;
  EXPECT_TRUE(Bind(kClient, RelaySide::kClient, flipped).empty());
  // A different expiry under the old MAC (a peer trying to extend its ticket).
  RelayTicket extended = genuine;
  extended.expiry_unix_s += 3600;
  EXPECT_TRUE(Bind(kClient, RelaySide::kClient, extended).empty());
  // A ticket from a relay with another key.
  const RelayKey other = TestKey(0x33);
  EXPECT_TRUE(
      Bind(kClient, RelaySide::kClient, MakeRelayTicket(other, SessionId(1), now_ + absl::Hours(1)))
          .empty());
  EXPECT_EQ(Drops(RelayDropReason::kBadTicket), 3u);
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(relay_->counters().binds, 0u);
}

TEST_F(RelayTest, RefusesExpiredTickets) {
  const RelayTicket ticket = Ticket(1, absl::Seconds(5));
  now_ += absl::Seconds(5);
  EXPECT_TRUE(Bind(kClient, RelaySide::kClient, ticket).empty());
  EXPECT_EQ(Drops(RelayDropReason::kExpiredTicket), 1u);
  EXPECT_EQ(relay_->session_count(), 0u);
}

TEST_F(RelayTest, TicketForAnotherSessionDoesNotJoin) {
  Bind(kClient, RelaySide::kClient, Ticket(1));
  std::vector<net::Datagram> out = Bind(kDevice, RelaySide::kDevice, Ticket(2));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ParseRelayBound(out[0].bytes)->state, RelayBoundState::kWaiting);
  EXPECT_EQ(ParseRelayBound(out[0].bytes)->session_id, SessionId(2));
  EXPECT_EQ(relay_->session_count(), 2u);
  EXPECT_EQ(Send(kClient, PeerPacket(50, 1)), std::nullopt);
  EXPECT_EQ(Send(kDevice, PeerPacket(50, 1)), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 2u);
}

TEST_F(RelayTest, RebindFromNewAddressMovesThatSide) {
  BindBoth();
  const net::Endpoint moved = net::Endpoint::Ipv4({198, 51, 100, 7}, 40999);  // NAT rebinding.
  std::vector<net::Datagram> out = Bind(moved, RelaySide::kClient, Ticket(1));
  ASSERT_EQ(out.size(), 1u);  // Still complete: only the sender hears.
  EXPECT_EQ(out[0].to, moved);
  EXPECT_EQ(ParseRelayBound(out[0].bytes)->state, RelayBoundState::kBound);
  EXPECT_THAT(relay_->AddressOf(SessionId(1), RelaySide::kClient), Optional(moved));

  EXPECT_THAT(Send(moved, PeerPacket(60, 1)), Optional(kDevice));
  EXPECT_THAT(Send(kDevice, PeerPacket(60, 2)), Optional(moved));
  EXPECT_EQ(Send(kClient, PeerPacket(60, 3)), std::nullopt);  // The old address is gone.
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 1u);
  EXPECT_EQ(relay_->counters().sessions, 1u);
}

TEST_F(RelayTest, AnAddressMayBeBoundInManySessionsButOnOneSideOfEach) {
  BindBoth(1);
  // The client's address binds the device side of session 2: session 1 keeps it.
  Bind(kClient, RelaySide::kDevice, Ticket(2));
  EXPECT_THAT(relay_->AddressOf(SessionId(1), RelaySide::kClient), Optional(kClient));
  EXPECT_THAT(relay_->AddressOf(SessionId(2), RelaySide::kDevice), Optional(kClient));
  EXPECT_THAT(Send(kDevice, PeerPacket(40, 1, /*session=*/1)), Optional(kClient));
  EXPECT_THAT(Send(kClient, PeerPacket(40, 1, /*session=*/1)), Optional(kDevice));
  EXPECT_EQ(Send(kClient, PeerPacket(40, 1, /*session=*/2)), std::nullopt);  // 2's client: none.
  // Binding the other side of its own session from one address leaves the first side, so the
  // relay never sends a packet back where it came from.
  Bind(kStranger, RelaySide::kClient, Ticket(3));
  Bind(kStranger, RelaySide::kDevice, Ticket(3));
  EXPECT_EQ(relay_->AddressOf(SessionId(3), RelaySide::kClient), std::nullopt);
  EXPECT_THAT(relay_->AddressOf(SessionId(3), RelaySide::kDevice), Optional(kStranger));
  EXPECT_EQ(Send(kStranger, PeerPacket(40, 1, /*session=*/3)), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 2u);
}

// Two live sessions cannot share a channel id (2^-64 for random ids, but the relay must not mix
// them up): the BIND that would create the second is dropped, unanswered.
TEST_F(RelayTest, ChannelIdCollisionDropsTheLaterBind) {
  const RelayTicket first = Ticket(1);
  RelaySessionId colliding = SessionId(1);
  colliding[15] ^= 0xff;  // Same first 8 bytes, another session.
  ASSERT_EQ(RelayChannelId(colliding), RelayChannelId(SessionId(1)));
  const RelayTicket second = MakeRelayTicket(key_, colliding, now_ + absl::Minutes(10));
  const net::Endpoint client2 = net::Endpoint::Ipv4({10, 0, 0, 2}, 2000);
  Bind(kClient, RelaySide::kClient, first);
  Bind(kDevice, RelaySide::kDevice, first);
  EXPECT_TRUE(Bind(client2, RelaySide::kClient, second).empty());
  EXPECT_TRUE(Bind(kDevice, RelaySide::kDevice, second).empty());
  EXPECT_EQ(Drops(RelayDropReason::kChannelCollision), 2u);
  EXPECT_EQ(relay_->session_count(), 1u);
  EXPECT_EQ(relay_->counters().binds, 2u);
  EXPECT_EQ(relay_->AddressOf(colliding, RelaySide::kDevice), std::nullopt);
  EXPECT_THAT(relay_->AddressOf(SessionId(1), RelaySide::kDevice), Optional(kDevice));
  EXPECT_THAT(Send(kClient, PeerPacket(100, 1)), Optional(kDevice));
  EXPECT_EQ(Send(client2, PeerPacket(100, 1)), std::nullopt);
  // Once the first has ended, the second may bind.
  Advance(absl::Seconds(60));
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(Bind(client2, RelaySide::kClient, second).size(), 1u);
  EXPECT_THAT(relay_->AddressOf(colliding, RelaySide::kClient), Optional(client2));
  EXPECT_EQ(relay_->AddressOf(SessionId(1), RelaySide::kClient), std::nullopt);
}

// The relay's channel id of a session is the peer channel's (channel_crypto.h), so a packet the
// channel really seals is forwarded.
TEST_F(RelayTest, ForwardsWhatThePeerChannelSealsByItsChannelId) {
  for (uint8_t n : {0, 1, 2, 200}) {
    EXPECT_EQ(RelayChannelId(SessionId(n)), ChannelIdFor(SessionId(n))) << int{n};
    EXPECT_EQ(RelayChannelId(SessionId(n)), channel::ChannelIdOf(SessionId(n))) << int{n};
  }
  EXPECT_EQ(RelayChannelId(RelaySessionId{}), 1u);  // 0 means "not a peer packet".
  EXPECT_EQ(RelayChannelId(RelaySessionId{0, 0, 0, 0, 0, 0, 0, 0, 0xff}), 1u);
  EXPECT_EQ(RelayChannelId(RelaySessionId{1, 2, 3, 4, 5, 6, 7, 8, 9}), 0x0102030405060708u);

  const crypto::SecretBytes session_key =
      crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(wire::kSessionKeySize, 0x21));
  wire::Nonce client_nonce, device_nonce;
  client_nonce.fill(0x31);
  device_nonce.fill(0x41);
  auto secrets = channel::DeriveSessionSecrets(SessionId(1), session_key, client_nonce,
                                               device_nonce);
  ASSERT_THAT(secrets, IsOk());
  EXPECT_EQ(secrets->channel_id, RelayChannelId(SessionId(1)));
  auto chain = channel::KeyChain::New(secrets->client_to_device.Clone());
  ASSERT_THAT(chain, IsOk());
  const channel::PeerHeader header{channel::PeerPacketType::kData, false, secrets->channel_id, 7};
  auto sealed = channel::SealPeerPacket(*chain, header, std::vector<uint8_t>{3, 'h', 'i'});
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(channel::PeekChannelId(*sealed), RelayChannelId(SessionId(1)));

  BindBoth(1);
  EXPECT_THAT(Send(kClient, *sealed), Optional(kDevice));
  EXPECT_EQ(relay_->counters().packets_forwarded, 1u);
}

// A device serves every peer session from one socket, so two relayed sessions of one device (two
// phones on one camera, or an old session still alive when a new one starts) bind its device
// sides from the same address. Each BIND, first or repeated, must leave the other session alone,
// and the device's packets go to the session their channel id names.
TEST_F(RelayTest, TwoSessionsFromOneDeviceAddressBothForward) {
  const net::Endpoint client2 = net::Endpoint::Ipv4({198, 51, 100, 8}, 40002);
  BindBoth(1, kClient, kDevice);
  BindBoth(2, client2, kDevice);
  // Both keep re-binding (as peers do every 20 s), in either order.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    EXPECT_THAT(relay_->AddressOf(SessionId(1), RelaySide::kDevice), Optional(kDevice));
    EXPECT_THAT(relay_->AddressOf(SessionId(2), RelaySide::kDevice), Optional(kDevice));
    EXPECT_THAT(Send(kClient, PeerPacket(100, 1, /*session=*/1)), Optional(kDevice));
    EXPECT_THAT(Send(client2, PeerPacket(100, 2, /*session=*/2)), Optional(kDevice));
    EXPECT_THAT(Send(kDevice, PeerPacket(100, 3, /*session=*/1)), Optional(kClient));
    EXPECT_THAT(Send(kDevice, PeerPacket(100, 4, /*session=*/2)), Optional(client2));
    Bind(kDevice, RelaySide::kDevice, Ticket(round % 2 ? 2 : 1));
  }
  EXPECT_EQ(relay_->counters().dropped_total(), 0u);
  EXPECT_EQ(relay_->counters().packets_forwarded, 12u);
}

TEST_F(RelayTest, ExpiresIdleSessions) {
  BindBoth();
  EXPECT_EQ(relay_->next_timeout(), now_ + absl::Seconds(60));
  Advance(absl::Seconds(59));
  EXPECT_EQ(relay_->session_count(), 1u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(relay_->counters().sessions_expired, 1u);
  EXPECT_EQ(relay_->next_timeout(), absl::InfiniteFuture());
  EXPECT_EQ(Send(kClient, PeerPacket(10, 1)), std::nullopt);
  EXPECT_EQ(Drops(RelayDropReason::kUnbound), 1u);
  // The peers can bind again with their (still valid) ticket.
  BindBoth();
  EXPECT_THAT(Send(kClient, PeerPacket(10, 1)), Optional(kDevice));
  EXPECT_EQ(relay_->counters().sessions, 2u);
}

TEST_F(RelayTest, TrafficEitherWayKeepsASessionAlive) {
  BindBoth();
  for (int i = 0; i < 10; ++i) {
    Advance(absl::Seconds(50));
    const net::Endpoint& from = i % 2 ? kClient : kDevice;
    ASSERT_TRUE(Send(from, PeerPacket(10, 1)).has_value()) << i;
  }
  EXPECT_EQ(relay_->counters().sessions_expired, 0u);
  Advance(absl::Seconds(60));
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(relay_->counters().sessions_expired, 1u);
}

TEST_F(RelayTest, ASessionEndsAtItsTicketsExpiryEvenWhenBusy) {
  const RelayTicket ticket = Ticket(1, absl::Seconds(90));
  Bind(kClient, RelaySide::kClient, ticket);
  Bind(kDevice, RelaySide::kDevice, ticket);
  for (int i = 0; i < 8; ++i) {
    Advance(absl::Seconds(10));
    ASSERT_TRUE(Send(kClient, PeerPacket(10, 1)).has_value());
  }
  EXPECT_EQ(relay_->next_timeout(), kStart + absl::Seconds(90));
  Advance(absl::Seconds(10));
  EXPECT_EQ(relay_->session_count(), 0u);
  // A later ticket for the same session id extends it instead.
  const RelayTicket short_lived = Ticket(2, absl::Seconds(20));
  Bind(kClient, RelaySide::kClient, short_lived);
  Bind(kDevice, RelaySide::kDevice, Ticket(2, absl::Seconds(200)));
  Advance(absl::Seconds(30));
  EXPECT_THAT(Send(kClient, PeerPacket(10, 1, /*session=*/2)), Optional(kDevice));
}

TEST_F(RelayTest, APacketPastTheDeadlineFindsTheSessionGoneBeforeTheTimerRuns) {
  BindBoth();
  now_ += absl::Seconds(61);  // No OnTimeout.
  EXPECT_EQ(Send(kClient, PeerPacket(10, 1)), std::nullopt);
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(relay_->counters().sessions_expired, 1u);
  relay_->OnTimeout(now_);  // The stale deadline is ignored.
  EXPECT_EQ(relay_->counters().sessions_expired, 1u);
}

TEST_F(RelayTest, RateCapDropsTheExcessAndLeavesOtherSessionsAlone) {
  RelayOptions options;
  options.session_bytes_per_second = 100000;
  options.session_burst_bytes = 10000;
  Restart(options);
  BindBoth(1);
  const net::Endpoint client2 = net::Endpoint::Ipv4({10, 0, 0, 2}, 2000);
  const net::Endpoint device2 = net::Endpoint::Ipv4({10, 0, 0, 3}, 3000);
  BindBoth(2, client2, device2);

  // Session 1 sends 100 x 1000 bytes at one instant: the burst (10 packets) passes, the rest not.
  const std::vector<uint8_t> packet = PeerPacket(1000, 1);
  int forwarded = 0;
  for (int i = 0; i < 100; ++i) forwarded += Send(i % 2 ? kDevice : kClient, packet).has_value();
  EXPECT_EQ(forwarded, 10);
  EXPECT_EQ(Drops(RelayDropReason::kRateLimited), 90u);
  // Session 2 has its own bucket.
  const std::vector<uint8_t> packet2 = PeerPacket(1000, 1, /*session=*/2);
  for (int i = 0; i < 10; ++i) ASSERT_THAT(Send(client2, packet2), Optional(device2)) << i;
  EXPECT_EQ(Drops(RelayDropReason::kRateLimited), 90u);
  // 10 ms refills 1000 bytes: one more packet, then a drop.
  now_ += absl::Milliseconds(10);
  EXPECT_THAT(Send(kClient, packet), Optional(kDevice));
  EXPECT_EQ(Send(kClient, packet), std::nullopt);
  // Over one second at the cap, what passes is the cap (plus nothing: the bucket started empty).
  int passed = 0;
  for (int ms = 0; ms < 1000; ++ms) {
    now_ += absl::Milliseconds(1);
    for (int i = 0; i < 5; ++i) passed += Send(kClient, packet).has_value();
  }
  EXPECT_NEAR(passed, 100, 1);
}

TEST_F(RelayTest, CapsTheNumberOfSessions) {
  RelayOptions options;
  options.max_sessions = 3;
  Restart(options);
  for (uint8_t s = 1; s <= 3; ++s) {
    EXPECT_EQ(Bind(net::Endpoint::Ipv4({10, 0, 0, s}, 1), RelaySide::kClient, Ticket(s)).size(), 1u);
  }
  EXPECT_TRUE(Bind(net::Endpoint::Ipv4({10, 0, 0, 4}, 1), RelaySide::kClient, Ticket(4)).empty());
  EXPECT_EQ(Drops(RelayDropReason::kTooManySessions), 1u);
  // Existing sessions still take their second side.
  EXPECT_EQ(Bind(net::Endpoint::Ipv4({10, 0, 1, 1}, 1), RelaySide::kDevice, Ticket(1)).size(), 2u);
  // Once one expires there is room again.
  Advance(absl::Seconds(60));
  EXPECT_EQ(relay_->session_count(), 0u);
  EXPECT_EQ(Bind(net::Endpoint::Ipv4({10, 0, 0, 4}, 1), RelaySide::kClient, Ticket(4)).size(), 1u);
}

TEST_F(RelayTest, BoundIsNeverLargerThanTheBindThatProvokedIt) {
  const RelayTicket ticket = Ticket(1);
  const std::vector<uint8_t> bind = BuildRelayBind(RelaySide::kClient, ticket);
  std::vector<net::Datagram> first = Bind(kClient, RelaySide::kClient, ticket);
  std::vector<net::Datagram> second = Bind(kDevice, RelaySide::kDevice, ticket);
  std::vector<net::Datagram> again = Bind(kDevice, RelaySide::kDevice, ticket);
  for (const auto* answers : {&first, &second, &again}) {
    size_t total = 0;
    for (const net::Datagram& d : *answers) {
      EXPECT_EQ(d.bytes.size(), kRelayBoundSize);
      total += d.bytes.size();
    }
    EXPECT_LE(total, bind.size());
  }
  // A BIND shorter than 64 bytes is refused outright, so the ratio holds for every answered one.
  std::vector<uint8_t> short_bind = bind;
  short_bind.resize(kRelayBindSize - 1);
  EXPECT_EQ(Send(kClient, short_bind), std::nullopt);
  EXPECT_TRUE(relay_->TakeOutgoing().empty());
  EXPECT_EQ(Drops(RelayDropReason::kMalformed), 1u);
}

TEST_F(RelayTest, ControlPacketsAreParsedExactlyAndNeverForwarded) {
  BindBoth();
  const std::vector<uint8_t> bind = BuildRelayBind(RelaySide::kClient, Ticket(1));
  std::vector<std::vector<uint8_t>> bad;
  bad.push_back({0x03});                               // Bare control byte.
  bad.push_back(bind);
  bad.back()[1] = 0x02;                                // A BOUND sent to the relay.
  bad.push_back(bind);
  bad.back()[1] = 0x07;                                // Unknown type.
  bad.push_back(bind);
  bad.back()[2] = 2;                                   // No such side.
  bad.push_back(bind);
  bad.back()[63] = 1;                                  // Non-zero padding.
  bad.push_back(std::vector<uint8_t>(options_.max_packet_size + 1, 0x02));  // Oversized.
  bad.push_back({});                                   // Empty.
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(Send(kClient, bad[i]), std::nullopt) << i;
  }
  EXPECT_EQ(Drops(RelayDropReason::kMalformed), bad.size());
  EXPECT_TRUE(relay_->TakeOutgoing().empty());
  // A longer, zero-padded BIND is fine.
  std::vector<uint8_t> padded = bind;
  padded.resize(200, 0);
  EXPECT_EQ(Send(kClient, padded), std::nullopt);
  EXPECT_EQ(relay_->TakeOutgoing().size(), 1u);
}

TEST_F(RelayTest, GarbageAndTruncationsNeverCrash) {
  BindBoth(1);
  std::mt19937_64 rng(20240611);
  const std::vector<uint8_t> bind = BuildRelayBind(RelaySide::kDevice, Ticket(2));
  // Every truncation of a valid BIND is malformed.
  for (size_t n = 0; n < bind.size(); ++n) {
    EXPECT_EQ(Send(kStranger, absl::MakeConstSpan(bind).first(n)), std::nullopt);
  }
  EXPECT_EQ(Drops(RelayDropReason::kMalformed), bind.size());
  // Random datagrams (mutations of a valid BIND, of peer packets of sessions 1 and 2, and random
  // bytes, half of them control packets) from random and bound addresses, with time moving.
  const std::vector<net::Endpoint> sources = {kClient, kDevice, kStranger};
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> bytes;
    if (i % 4 == 0) {
      bytes = bind;
      bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      if (rng() % 2) bytes.resize(rng() % (bytes.size() + 100), 0);
    } else if (i % 4 == 1) {
      bytes = PeerPacket(rng() % 1600, static_cast<uint8_t>(rng()),
                         static_cast<uint8_t>(1 + rng() % 2));
      if (rng() % 2) bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    } else {
      bytes.resize(rng() % 1600);
      for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
      if (!bytes.empty() && rng() % 2) bytes[0] = 0x03;
    }
    const net::Endpoint from =
        rng() % 4 ? sources[rng() % sources.size()]
                  : net::Endpoint::Ipv4({10, 1, static_cast<uint8_t>(rng()),
                                         static_cast<uint8_t>(rng())},
                                        static_cast<uint16_t>(rng()));
    (void)Send(from, bytes);
    relay_->TakeOutgoing();
    if (i % 100 == 0) Advance(absl::Milliseconds(rng() % 3000));
  }
  const RelayCounters& c = relay_->counters();
  EXPECT_EQ(c.packets_received,
            c.packets_forwarded + c.dropped_total() + c.binds);
  EXPECT_EQ(c.dropped[static_cast<int>(RelayDropReason::kExpiredTicket)], 0u);
  EXPECT_LE(relay_->session_count(), 2u);
}

}  // namespace
}  // namespace edgelink::basestation

namespace edgelink::basestation {
namespace {

TEST(RelayReflectTest, AnswersWithTheSourceAddressAndNeverAmplifies) {
  crypto::SecretBytes secret = crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 7));
  auto relay = *RelayServer::New({}, *RelayKey::Derive(secret));
  const net::Endpoint from = *net::Endpoint::Parse("203.0.113.9:40001");
  std::vector<uint8_t> reflect(kRelayReflectSize, 0);
  reflect[0] = kRelayControlByte;
  reflect[1] = kRelayReflectType;
  EXPECT_FALSE(relay->OnPacket(from, reflect, absl::Now()).has_value());
  std::vector<net::Datagram> out = relay->TakeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, from);
  EXPECT_LE(out[0].bytes.size(), reflect.size());
  wire::ByteReader in(absl::MakeConstSpan(out[0].bytes).subspan(2));
  net::Endpoint seen;
  ASSERT_TRUE(wire::ReadEndpoint(in, &seen));
  EXPECT_EQ(seen, from);
  EXPECT_EQ(relay->counters().reflections, 1u);
  // Short, long or non-zero padding: dropped, unanswered.
  for (size_t size : {size_t{2}, kRelayReflectSize - 1, kRelayReflectSize + 1}) {
    std::vector<uint8_t> bad(size, 0);
    bad[0] = kRelayControlByte;
    bad[1] = kRelayReflectType;
    (void)relay->OnPacket(from, bad, absl::Now());
  }
  reflect[20] = 1;
  (void)relay->OnPacket(from, reflect, absl::Now());
  EXPECT_TRUE(relay->TakeOutgoing().empty());
  EXPECT_EQ(relay->counters().drops(RelayDropReason::kMalformed), 4u);
}

}  // namespace
}  // namespace edgelink::basestation
