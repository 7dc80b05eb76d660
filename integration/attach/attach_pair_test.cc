// The device attach core and the basestation attach server, driven together on virtual time over
// a lossy, scriptable link: handshake, loss of each handshake packet, keep-alives, liveness,
// re-attach, basestation restart, revocation, NAT rebinding, and hostile input.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "basestation/core/attach_server.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_matchers.h"
#include "common/testing/seeded_random.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"
#include "device/core/attach_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink {
namespace {

using basestation::AttachServer;
using basestation::AttachServerOptions;
using basestation::DeviceCredentials;
using basestation::DropReason;
using device::AttachClient;
using ::testing::Ge;
using ::testing::Le;
using wire::PacketType;

constexpr absl::Duration kOneWay = absl::Milliseconds(20);

crypto::SecretBytes FixedSecret(uint8_t fill, size_t size = 32) {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(size, fill));
}

class FakeDirectory : public basestation::DeviceDirectory {
 public:
  absl::StatusOr<DeviceCredentials> FindDevice(absl::string_view id) override {
    ++lookups;
    auto it = devices.find(id);
    if (it == devices.end()) return absl::NotFoundError("no such device");
    return DeviceCredentials{it->second.secret.Clone(), it->second.revoked};
  }
  struct Entry {
    crypto::SecretBytes secret;
    bool revoked = false;
  };
  absl::flat_hash_map<std::string, Entry> devices;
  int lookups = 0;
};

// Accepts connects from one fingerprint and counts what it was asked.
class FakeHandler : public device::RequestHandler {
 public:
  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce& device_nonce, absl::Time) override {
    ++connects;
    device_nonces.push_back(device_nonce);
    sessions.push_back(request.session_id);
    last_key.assign(request.session_key.span().begin(), request.session_key.span().end());
    wire::ConnectResponse response;
    response.verdict = request.client_fingerprint == allowed ? wire::ConnectVerdict::kAccepted
                                                             : wire::ConnectVerdict::kDenied;
    response.device_candidates = {
        {wire::Candidate::Kind::kHost, *net::Endpoint::Parse("10.0.0.2:5000")}};
    return response;
  }
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request, absl::Time) override {
    ++requests;
    return {0, 0, "echo", request.payload};
  }
  wire::Fingerprint allowed{};
  int connects = 0;
  int requests = 0;
  std::vector<uint8_t> last_key;
  std::vector<wire::SessionId> sessions;  // Of every connect the handler was asked about.
  std::vector<wire::Nonce> device_nonces;  // The attach client's fresh nonce for each.
};

PacketType TypeOf(const std::vector<uint8_t>& bytes) {
  return static_cast<PacketType>(bytes.at(1));
}

// One device behind a fixed public address, one basestation, and a link between them with
// kOneWay latency and a drop filter. Time only moves inside Run*().
class AttachPairTest : public ::testing::Test {
 protected:
  struct InFlight {
    absl::Time arrival;
    bool to_server;
    net::Endpoint from;
    std::vector<uint8_t> bytes;
  };

  void SetUp() override {
    directory_.devices["cam-1"] = {FixedSecret(0x5a)};
    StartServer(FixedSecret(0x01));
    StartDevice("cam-1", FixedSecret(0x5a));
  }

  // A fresh server and device with nothing in flight.
  void Restart() {
    link_.clear();
    StartServer(FixedSecret(0x01));
    StartDevice("cam-1", FixedSecret(0x5a));
  }

  void StartServer(crypto::SecretBytes server_key, AttachServerOptions options = {}) {
    ASSERT_OK_AND_ASSIGN(server_, AttachServer::New(options, server_key, &directory_, &random_));
  }

  void StartDevice(const std::string& id, crypto::SecretBytes secret) {
    device::AttachClientOptions options;
    options.device_id = id;
    options.secret = std::move(secret);
    options.server = server_address_;
    options.handler = &handler_;
    options.on_state_change = [this](absl::string_view state, absl::string_view) {
      device_states_.emplace_back(state);
    };
    ASSERT_OK_AND_ASSIGN(device_, AttachClient::New(std::move(options), &random_));
    device_->Start(now_);
    Flush();
  }

  // Moves what both cores want to send onto the link, through the drop filter.
  void Flush() {
    for (net::Datagram& d : device_->TakeOutgoing()) {
      EXPECT_EQ(d.to, server_address_);
      sent_by_device_.push_back(TypeOf(d.bytes));
      if (TypeOf(d.bytes) == PacketType::kProof) last_proof_ = d.bytes;
      if (drop_ && drop_(/*to_server=*/true, d.bytes)) continue;
      link_.push_back({now_ + kOneWay, true, device_public_, std::move(d.bytes)});
    }
    for (net::Datagram& d : server_->TakeOutgoing()) {
      sent_by_server_.push_back(TypeOf(d.bytes));
      if (d.to != device_public_) continue;  // Addressed to a stale mapping: lost.
      if (drop_ && drop_(/*to_server=*/false, d.bytes)) continue;
      link_.push_back({now_ + kOneWay, false, server_address_, std::move(d.bytes)});
    }
    for (basestation::PresenceEvent& change : server_->TakePresenceEvents()) {
      presence_.push_back(change);
    }
  }

  // Runs the next event (a delivery or a timer) no later than `end`; false if there is none.
  bool Step(absl::Time end) {
    auto next_packet = std::min_element(
        link_.begin(), link_.end(),
        [](const InFlight& a, const InFlight& b) { return a.arrival < b.arrival; });
    absl::Time when = std::min(device_->next_timeout(), server_->next_timeout());
    if (next_packet != link_.end()) when = std::min(when, next_packet->arrival);
    if (when > end) return false;
    now_ = std::max(now_, when);
    if (next_packet != link_.end() && next_packet->arrival == when) {
      InFlight packet = std::move(*next_packet);
      link_.erase(next_packet);
      if (packet.to_server) {
        server_->OnPacket(packet.from, packet.bytes, now_);
      } else {
        device_->OnPacket(packet.from, packet.bytes, now_);
      }
    } else {
      if (device_->next_timeout() <= now_) device_->OnTimeout(now_);
      if (server_->next_timeout() <= now_) server_->OnTimeout(now_);
    }
    Flush();
    return true;
  }

  void RunFor(absl::Duration duration) {
    const absl::Time end = now_ + duration;
    while (Step(end)) {
    }
    now_ = end;
  }

  // Runs until `done` holds, at most `limit` of virtual time; returns the time it took.
  absl::Duration RunUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time start = now_;
    const absl::Time end = now_ + limit;
    while (!done() && Step(end)) {
    }
    EXPECT_TRUE(done()) << "condition not reached within " << limit;
    return now_ - start;
  }

  bool Attached() const {
    return device_->state() == AttachClient::State::kAttached && server_->IsAttached("cam-1");
  }

  uint64_t Dropped(DropReason reason) const {
    return server_->counters().dropped[static_cast<int>(reason)];
  }

  // Replays `proof` from the device's address now: no session may come of it, and the server
  // counts it as a replay.
  void ExpectReplayRefused(const std::vector<uint8_t>& proof) {
    const uint64_t attaches = server_->counters().attaches;
    const uint64_t replays = Dropped(DropReason::kReplay);
    Inject(device_public_, proof);
    EXPECT_FALSE(server_->IsAttached("cam-1"));
    EXPECT_EQ(server_->counters().attaches, attaches);
    EXPECT_EQ(Dropped(DropReason::kReplay), replays + 1);
  }

  // Hands `bytes` to the server as if from `from`, right now.
  void Inject(const net::Endpoint& from, const std::vector<uint8_t>& bytes) {
    server_->OnPacket(from, bytes, now_);
    Flush();
  }

  testing::SeededRandom random_{7};
  FakeDirectory directory_;
  FakeHandler handler_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  const net::Endpoint server_address_ = *net::Endpoint::Parse("198.51.100.1:7000");
  net::Endpoint device_public_ = *net::Endpoint::Parse("203.0.113.5:40000");
  std::unique_ptr<AttachServer> server_;
  std::unique_ptr<AttachClient> device_;
  std::vector<InFlight> link_;
  std::function<bool(bool to_server, const std::vector<uint8_t>&)> drop_;
  std::vector<PacketType> sent_by_device_;
  std::vector<uint8_t> last_proof_;  // The last PROOF the device sent, as sent.
  std::vector<PacketType> sent_by_server_;
  std::vector<basestation::PresenceEvent> presence_;
  std::vector<std::string> device_states_;
};

TEST_F(AttachPairTest, AttachesInTwoRoundTrips) {
  const absl::Duration took = RunUntil([&] { return Attached(); }, absl::Seconds(10));
  EXPECT_EQ(took, 4 * kOneWay);  // HELLO, CHALLENGE, PROOF, ATTACHED.
  EXPECT_EQ(device_->reflexive(), device_public_);
  EXPECT_EQ(device_->keepalive_interval(), absl::Seconds(25));
  EXPECT_EQ(server_->AddressOf("cam-1"), device_public_);
  ASSERT_EQ(presence_.size(), 1u);
  EXPECT_TRUE(presence_[0].online);
  EXPECT_EQ(presence_[0].device_id, "cam-1");
  EXPECT_EQ(directory_.lookups, 1);
  EXPECT_THAT(device_states_, ::testing::ElementsAre("hello", "proof", "attached"));
  EXPECT_EQ(server_->counters().dropped_total(), 0u);
}

class LoseOneHandshakePacket : public AttachPairTest,
                               public ::testing::WithParamInterface<PacketType> {};

TEST_P(LoseOneHandshakePacket, StillAttachesAfterRetransmission) {
  const PacketType lost = GetParam();
  int losses = 0;
  drop_ = [&](bool, const std::vector<uint8_t>& bytes) {
    if (TypeOf(bytes) == lost && losses == 0) return ++losses > 0;
    return false;
  };
  Restart();  // So the filter sees the first HELLO.
  const absl::Duration took = RunUntil([&] { return Attached(); }, absl::Seconds(30));
  EXPECT_EQ(losses, 1);
  EXPECT_GT(took, 4 * kOneWay);
  EXPECT_LT(took, absl::Seconds(3));
  // The server made exactly one session, whatever was lost.
  EXPECT_EQ(server_->counters().attaches, 1u);
  EXPECT_EQ(server_->attached_count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(EachHandshakePacket, LoseOneHandshakePacket,
                         ::testing::Values(PacketType::kHello, PacketType::kChallenge,
                                           PacketType::kProof, PacketType::kAttached));

TEST_F(AttachPairTest, KeepAlivesHoldTheSessionForAnHour) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  RunFor(absl::Hours(1));
  EXPECT_TRUE(Attached());
  EXPECT_EQ(server_->counters().attaches, 1u);
  // One keep-alive per 25 s.
  EXPECT_THAT(server_->counters().keepalives, Ge(143u));
  EXPECT_THAT(server_->counters().keepalives, Le(145u));
  EXPECT_EQ(server_->counters().dropped_total(), 0u);
}

TEST_F(AttachPairTest, DeviceReattachesAfterBasestationGoesQuietThenReturns) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  bool blackout = true;
  drop_ = [&](bool, const std::vector<uint8_t>&) { return blackout; };
  // Three unanswered keep-alives: the device gives up the session and backs off.
  RunUntil([&] { return device_->state() != AttachClient::State::kAttached; }, absl::Minutes(3));
  RunFor(absl::Minutes(2));
  EXPECT_FALSE(server_->IsAttached("cam-1"));  // Expired on the server side too.
  ASSERT_FALSE(presence_.empty());
  EXPECT_FALSE(presence_.back().online);
  blackout = false;
  // Back-off is capped at 60 s (+20% jitter) and the handshake takes 80 ms.
  const absl::Duration took = RunUntil([&] { return Attached(); }, absl::Seconds(80));
  EXPECT_LE(took, absl::Seconds(73));
  EXPECT_EQ(server_->counters().expired, 1u);
}

TEST_F(AttachPairTest, OneLostKeepAliveAnswerDoesNotDropTheSession) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  int acks = 0;
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    return !to_server && TypeOf(bytes) == PacketType::kKeepAliveAck && acks++ == 0;
  };
  RunFor(absl::Minutes(5));
  EXPECT_GE(acks, 10);
  EXPECT_TRUE(Attached());
  EXPECT_EQ(server_->counters().attaches, 1u);
}

TEST_F(AttachPairTest, RestartedBasestationResetsDeviceAtItsNextKeepAlive) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  StartServer(FixedSecret(0x01));  // Same server key: a restart, all sessions lost.
  const absl::Duration took = RunUntil([&] { return Attached(); }, absl::Minutes(2));
  EXPECT_LE(took, absl::Seconds(27));  // One keep-alive interval, then a fresh handshake.
  EXPECT_EQ(device_->counters().resets, 1u);
  EXPECT_EQ(Dropped(DropReason::kUnknownSession), 1u);
}

TEST_F(AttachPairTest, ResetFromABasestationWithAnotherKeyIsIgnored) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  StartServer(FixedSecret(0x02));  // Not the key that issued the session's reset token.
  const absl::Duration took = RunUntil([&] { return Attached(); }, absl::Minutes(5));
  EXPECT_EQ(device_->counters().resets, 0u);
  EXPECT_THAT(device_->counters().dropped_unauthenticated, Ge(1u));
  // Without a valid RESET the device notices only through missed keep-alives.
  EXPECT_GT(took, absl::Seconds(25));
}

TEST_F(AttachPairTest, RevokedDeviceIsDetachedAndCannotReattach) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  directory_.devices["cam-1"].revoked = true;
  server_->Revoke("cam-1", now_);
  Flush();
  RunFor(absl::Seconds(1));
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_EQ(device_->state(), AttachClient::State::kBackoff);
  RunFor(absl::Hours(1));
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_THAT(Dropped(DropReason::kRevoked), Ge(1u));
  // The device learns it was revoked (authenticated) and tries only every 10 minutes.
  EXPECT_THAT(Dropped(DropReason::kRevoked), Le(8u));
  EXPECT_THAT(device_states_, ::testing::Contains("backoff"));
}

TEST_F(AttachPairTest, WrongSecretNeverAttaches) {
  StartDevice("cam-1", FixedSecret(0x5b));
  RunFor(absl::Minutes(5));
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_THAT(Dropped(DropReason::kBadProof), Ge(2u));
  EXPECT_EQ(server_->attached_count(), 0u);
}

TEST_F(AttachPairTest, UnknownDeviceNeverAttaches) {
  StartDevice("cam-404", FixedSecret(0x5a));
  RunFor(absl::Minutes(1));
  EXPECT_EQ(server_->attached_count(), 0u);
  EXPECT_THAT(Dropped(DropReason::kUnknownDevice), Ge(1u));
}

TEST_F(AttachPairTest, NatRebindingMovesTheSessionToTheNewAddress) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  const net::Endpoint old_public = device_public_;
  device_public_ = *net::Endpoint::Parse("203.0.113.5:41234");  // The NAT picked a new port.
  RunUntil([&] { return device_->reflexive() == device_public_; }, absl::Seconds(30));
  EXPECT_EQ(server_->AddressOf("cam-1"), device_public_);
  EXPECT_NE(device_public_, old_public);
  EXPECT_EQ(presence_.back().address, device_public_);
  EXPECT_TRUE(presence_.back().online);
  EXPECT_EQ(server_->counters().attaches, 1u);  // Same session throughout.
}

TEST_F(AttachPairTest, MasterSwitchOffSendsNothingAndServerMarksOffline) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  device_->Stop();
  const size_t sent_before = device_->counters().packets_sent;
  RunFor(absl::Hours(2));
  EXPECT_EQ(device_->counters().packets_sent, sent_before);
  EXPECT_EQ(device_->next_timeout(), absl::InfiniteFuture());
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_FALSE(presence_.back().online);
  device_->Start(now_);
  Flush();
  RunUntil([&] { return Attached(); }, absl::Seconds(1));
}

TEST_F(AttachPairTest, DetachTakesTheDeviceOfflineAtOnce) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  device_->Detach();
  Flush();
  RunFor(absl::Milliseconds(100));
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_FALSE(presence_.back().online);
  EXPECT_EQ(server_->counters().expired, 0u);  // Told, not timed out.
  EXPECT_EQ(device_->state(), AttachClient::State::kStopped);
}

TEST_F(AttachPairTest, ReplayedKeepAliveIsDroppedAndCounted) {
  std::vector<std::vector<uint8_t>> keepalives;
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    if (to_server && TypeOf(bytes) == PacketType::kKeepAlive) keepalives.push_back(bytes);
    return false;
  };
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  RunFor(absl::Seconds(60));
  ASSERT_GE(keepalives.size(), 2u);
  const uint64_t before = server_->counters().keepalives;
  for (const auto& k : keepalives) Inject(device_public_, k);
  EXPECT_EQ(Dropped(DropReason::kReplay), keepalives.size());
  EXPECT_EQ(server_->counters().keepalives, before);
  EXPECT_TRUE(Attached());
}

TEST_F(AttachPairTest, ReplayedProofDoesNotReplaceTheSession) {
  std::vector<uint8_t> proof;
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    if (to_server && TypeOf(bytes) == PacketType::kProof) proof = bytes;
    return false;
  };
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  const uint64_t connection_id = device_->connection_id();
  Inject(device_public_, proof);  // Same nonce: answered with ATTACHED again, same session.
  RunFor(absl::Seconds(1));
  EXPECT_EQ(device_->connection_id(), connection_id);
  EXPECT_EQ(server_->counters().attaches, 1u);
  RunFor(absl::Seconds(40));
  Inject(device_public_, proof);  // Cookie expired by now.
  EXPECT_EQ(Dropped(DropReason::kBadCookie), 1u);
  EXPECT_TRUE(Attached());
}

TEST_F(AttachPairTest, ProofFromAnotherAddressFailsTheCookie) {
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    return to_server && TypeOf(bytes) == PacketType::kProof;
  };
  std::vector<uint8_t> proof;
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    if (to_server && TypeOf(bytes) == PacketType::kProof) {
      proof = bytes;
      return true;
    }
    return false;
  };
  RunFor(absl::Milliseconds(100));
  ASSERT_FALSE(proof.empty());
  Inject(*net::Endpoint::Parse("192.0.2.66:40000"), proof);
  EXPECT_EQ(Dropped(DropReason::kBadCookie), 1u);
  EXPECT_EQ(server_->attached_count(), 0u);
  EXPECT_EQ(directory_.lookups, 0);  // Spoofed sources never reach the registry.
}

TEST_F(AttachPairTest, SpoofedHelloFloodAllocatesNothingAndIsRateLimited) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  std::mt19937 rng(1);
  const auto hello = wire::BuildHello({"cam-1", {}});
  for (int i = 0; i < 20000; ++i) {
    Inject(net::Endpoint::Ipv4({192, 0, 2, static_cast<uint8_t>(rng())},
                               static_cast<uint16_t>(rng())),
           hello);
  }
  EXPECT_EQ(server_->attached_count(), 1u);
  EXPECT_EQ(directory_.lookups, 1);
  EXPECT_THAT(Dropped(DropReason::kRateLimited), Ge(9000u));
  // No CHALLENGE is larger than a HELLO: no amplification.
  EXPECT_LE(wire::BuildChallenge({}).size(), hello.size());
  RunFor(absl::Minutes(2));
  EXPECT_TRUE(Attached());
}

TEST_F(AttachPairTest, TruncatedAndOversizedPacketsAreDroppedAsMalformed) {
  std::vector<uint8_t> proof;
  drop_ = [&](bool to_server, const std::vector<uint8_t>& bytes) {
    if (to_server && TypeOf(bytes) == PacketType::kProof) proof = bytes;
    return false;
  };
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  ASSERT_FALSE(proof.empty());
  for (size_t size = 0; size < proof.size(); ++size) {
    Inject(device_public_, std::vector<uint8_t>(proof.begin(), proof.begin() + size));
  }
  EXPECT_EQ(Dropped(DropReason::kMalformed), proof.size());
  std::vector<uint8_t> oversized = proof;
  oversized.resize(wire::kMaxPacketSize + 1);
  Inject(device_public_, oversized);
  EXPECT_EQ(Dropped(DropReason::kMalformed), proof.size() + 1);
  EXPECT_EQ(directory_.lookups, 1);
  EXPECT_TRUE(Attached());
}

TEST_F(AttachPairTest, ConnectRequestReachesDeviceAndItsVerdictComesBack) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  handler_.allowed.fill(0xAA);
  wire::ConnectRequest request;
  request.request_id = 42;
  request.client_fingerprint.fill(0xAA);
  request.session_key = crypto::SecretArray<16>::CopyFrom(std::vector<uint8_t>(16, 0x5C));
  ASSERT_THAT(server_->SendConnectRequest("cam-1", request), edgelink::testing::IsOk());
  Flush();
  std::vector<basestation::DeviceReply> replies;
  RunUntil([&] {
    for (auto& r : server_->TakeReplies()) replies.push_back(std::move(r));
    return !replies.empty();
  }, absl::Seconds(1));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].device_id, "cam-1");
  const auto& response = std::get<wire::ConnectResponse>(replies[0].reply);
  EXPECT_EQ(response.request_id, 42u);
  EXPECT_EQ(response.verdict, wire::ConnectVerdict::kAccepted);
  ASSERT_EQ(response.device_candidates.size(), 1u);
  EXPECT_EQ(handler_.last_key, std::vector<uint8_t>(16, 0x5C));

  // A retransmitted request is answered from the device's cache: the handler runs once.
  ASSERT_THAT(server_->SendConnectRequest("cam-1", request), edgelink::testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(100));
  EXPECT_EQ(server_->TakeReplies().size(), 1u);
  EXPECT_EQ(handler_.connects, 1);

  request.request_id = 43;
  request.session_id.fill(0x43);  // Every Connect brokers a session of its own.
  request.client_fingerprint.fill(0xBB);
  ASSERT_THAT(server_->SendConnectRequest("cam-1", request), edgelink::testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(100));
  replies = server_->TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(std::get<wire::ConnectResponse>(replies[0].reply).verdict,
            wire::ConnectVerdict::kDenied);
  EXPECT_TRUE(Attached());
}

TEST_F(AttachPairTest, DeviceRequestRoundTripsAndOfflineDeviceIsUnavailable) {
  EXPECT_THAT(server_->SendDeviceRequest("cam-1", {}),
              edgelink::testing::StatusIs(absl::StatusCode::kUnavailable));
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  ASSERT_THAT(server_->SendDeviceRequest("cam-1", {7, {}, "alice", "echo", {1, 2, 3}}),
              edgelink::testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(100));
  std::vector<basestation::DeviceReply> replies = server_->TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  const auto& response = std::get<wire::DeviceResponse>(replies[0].reply);
  EXPECT_EQ(response.request_id, 7u);
  EXPECT_EQ(response.payload, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(handler_.requests, 1);
}

TEST_F(AttachPairTest, GarbageIsDroppedAndAttachedDevicesStayAttached) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  std::mt19937 rng(2);
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> junk(rng() % 1600);
    for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
    if (!junk.empty() && i % 2 == 0) junk[0] = wire::kProtocolVersion;  // Get past the version.
    if (junk.size() > 1 && i % 4 == 0) junk[1] = static_cast<uint8_t>(1 + rng() % 8);
    Inject(device_public_, junk);
  }
  EXPECT_EQ(server_->attached_count(), 1u);
  EXPECT_THAT(server_->counters().dropped_total(), Ge(4000u));
  RunFor(absl::Minutes(2));
  EXPECT_TRUE(Attached());
}

// A PROOF is a one-time credential: once its session ended (here by the device's DETACH), the
// same PROOF replayed from the device's address within the cookie lifetime must not bring the
// session back. Required: no session, no attach counted, the PROOF dropped as a replay.
TEST_F(AttachPairTest, ReplayedProofAfterDetachIsRefused) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  const std::vector<uint8_t> proof = last_proof_;
  ASSERT_FALSE(proof.empty());
  device_->Detach();
  Flush();
  RunFor(absl::Milliseconds(100));
  ASSERT_FALSE(server_->IsAttached("cam-1"));
  RunFor(absl::Seconds(5));  // Well inside the 30 s cookie lifetime.
  ExpectReplayRefused(proof);
}

// The master-switch case: the device goes silent (Stop sends nothing) and the server expires the
// session. A replay of the device's PROOF, still inside the cookie lifetime, must not re-create
// it (the device is off; someone else would hold an "online" session in its name). Required: no
// session, no attach counted, dropped as a replay.
TEST_F(AttachPairTest, ReplayedProofAfterSessionExpiredIsRefused) {
  AttachServerOptions options;
  options.keepalive_interval = absl::Seconds(5);
  options.liveness_timeout = absl::Seconds(12);  // cookie_lifetime stays 30 s.
  link_.clear();
  StartServer(FixedSecret(0x01), options);
  StartDevice("cam-1", FixedSecret(0x5a));
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  const std::vector<uint8_t> proof = last_proof_;
  ASSERT_FALSE(proof.empty());
  device_->Stop();
  RunFor(absl::Seconds(15));
  ASSERT_FALSE(server_->IsAttached("cam-1"));
  ASSERT_EQ(server_->counters().expired, 1u);
  ExpectReplayRefused(proof);
}

// A restarted basestation has forgotten which PROOFs it already accepted, so cookies must carry a
// per-boot value: a PROOF answered before the restart must not verify after it, even inside the
// cookie lifetime. Required: no session, dropped as a bad cookie.
TEST_F(AttachPairTest, ProofFromBeforeABasestationRestartDoesNotVerify) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  const std::vector<uint8_t> proof = last_proof_;
  ASSERT_FALSE(proof.empty());
  StartServer(FixedSecret(0x01));  // Same server key: a restart of the basestation only.
  Inject(device_public_, proof);
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_EQ(server_->counters().attaches, 0u);
  EXPECT_EQ(Dropped(DropReason::kBadCookie), 1u);
}

wire::ConnectRequest MakeConnect(uint64_t request_id, uint8_t session_fill) {
  wire::ConnectRequest request;
  request.request_id = request_id;
  request.session_id.fill(session_fill);
  request.session_key = crypto::SecretArray<16>::CopyFrom(std::vector<uint8_t>(16, session_fill));
  request.client_fingerprint.fill(0xAA);
  request.valid_ms = 5000;
  return request;
}

// A repeated CONNECT_REQUEST (same request id, same session) must run the handler once even when
// the device's small answer cache no longer holds it: a pairing attempt or a session counts once.
// Required: the handler saw session S1 once, and the second answer is the first one again.
TEST_F(AttachPairTest, DuplicateConnectRequestAfterAnswerCacheEvictionRunsHandlerOnce) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  handler_.allowed.fill(0xAA);
  auto send_and_collect = [&](const wire::ConnectRequest& request) {
    EXPECT_THAT(server_->SendConnectRequest("cam-1", request), edgelink::testing::IsOk());
    Flush();
    RunFor(absl::Milliseconds(100));
    std::vector<std::vector<uint8_t>> answers;
    for (auto& r : server_->TakeReplies()) {
      answers.push_back(wire::EncodeConnectResponse(std::get<wire::ConnectResponse>(r.reply)));
    }
    return answers;
  };
  const wire::ConnectRequest r1 = MakeConnect(1, 0x01);
  const auto first = send_and_collect(r1);
  ASSERT_EQ(first.size(), 1u);
  for (uint64_t id = 2; id <= 5; ++id) {  // Four others: R1 falls out of the 4-entry cache.
    ASSERT_EQ(send_and_collect(MakeConnect(id, static_cast<uint8_t>(id))).size(), 1u);
  }
  const auto second = send_and_collect(r1);
  ASSERT_EQ(second.size(), 1u);
  wire::SessionId s1;
  s1.fill(0x01);
  EXPECT_EQ(std::count(handler_.sessions.begin(), handler_.sessions.end(), s1), 1);
  EXPECT_EQ(handler_.connects, 5);
  EXPECT_EQ(second[0], first[0]);
}

// The same duplicate across a re-attach (the basestation restarted and RESET the device): the
// request is still the same request. Required: the handler is not run again for session S1.
TEST_F(AttachPairTest, DuplicateConnectRequestAcrossAReattachRunsHandlerOnce) {
  RunUntil([&] { return Attached(); }, absl::Seconds(10));
  handler_.allowed.fill(0xAA);
  wire::ConnectRequest r1 = MakeConnect(1, 0x01);
  r1.valid_ms = 60'000;  // A client with a long deadline: resent for a minute.
  ASSERT_THAT(server_->SendConnectRequest("cam-1", r1), edgelink::testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(100));
  ASSERT_EQ(server_->TakeReplies().size(), 1u);
  ASSERT_EQ(handler_.connects, 1);

  StartServer(FixedSecret(0x01));  // Restart: the next keep-alive is answered with a RESET.
  RunUntil([&] { return Attached(); }, absl::Minutes(2));
  ASSERT_EQ(device_->counters().resets, 1u);
  ASSERT_EQ(device_->counters().attaches, 2u);

  ASSERT_THAT(server_->SendConnectRequest("cam-1", r1), edgelink::testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(100));
  EXPECT_EQ(server_->TakeReplies().size(), 1u);
  wire::SessionId s1;
  s1.fill(0x01);
  EXPECT_EQ(std::count(handler_.sessions.begin(), handler_.sessions.end(), s1), 1);
  EXPECT_EQ(handler_.connects, 1);
}

}  // namespace
}  // namespace edgelink
