// Two PeerConnections (client and device) on virtual time over a scriptable network with a
// stand-in relay: path racing, upgrade, failover, NAT rebinding, key update, hostile packets.
#include "common/channel/peer_connection.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/testing/seeded_random.h"
#include "common/wire/bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::channel {
namespace {

using ::testing::Ge;

net::Endpoint Ep(const char* text) { return *net::Endpoint::Parse(text); }

class PeerConnectionTest : public ::testing::Test {
 protected:
  struct InFlight {
    absl::Time arrival;
    net::Endpoint from;
    net::Endpoint to;
    std::vector<uint8_t> bytes;
  };

  void SetUp() override {
    session_id_.fill(0x42);
    key_ = std::vector<uint8_t>(16, 0x17);
  }

  std::unique_ptr<PeerConnection> Make(Side side, std::vector<wire::Candidate> candidates,
                                       bool relay = true, uint64_t key_update = 1 << 28) {
    PeerConnectionOptions options;
    options.side = side;
    options.session_id = session_id_;
    options.session_key = crypto::SecretBytes::CopyFrom(key_);
    options.client_nonce = client_nonce_;
    options.device_nonce = device_nonce_;
    options.remote_candidates = std::move(candidates);
    if (relay) {
      options.relay = relay_;
      options.relay_ticket = std::vector<uint8_t>(kRelayTicketSize, 0x99);
    }
    options.key_update_interval = key_update;
    absl::StatusOr<std::unique_ptr<PeerConnection>> c = PeerConnection::New(std::move(options), &random_);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  // A new connection between the two: fresh nonces from each side, as Connect gives them.
  void StartBoth(bool relay = true, uint64_t key_update = 1 << 28) {
    random_.Fill(absl::MakeSpan(client_nonce_));
    random_.Fill(absl::MakeSpan(device_nonce_));
    client_ = Make(Side::kClient, {{wire::Candidate::Kind::kHost, device_addr_}}, relay, key_update);
    device_ = Make(Side::kDevice, {{wire::Candidate::Kind::kHost, client_addr_}}, relay, key_update);
    client_->Start(now_);
    device_->Start(now_);
    Flush();
  }

  // The relay stand-in: BIND records the sender per side and answers BOUND; other datagrams go
  // to the other side's bound address.
  void AtRelay(const net::Endpoint& from, const std::vector<uint8_t>& bytes) {
    if (!bytes.empty() && bytes[0] == kRelayMarker && bytes[1] == 3) {  // REFLECT
      wire::ByteWriter reply;
      reply.WriteU8(kRelayMarker);
      reply.WriteU8(4);
      wire::WriteEndpoint(from, reply);
      Deliver(relay_, from, reply.Take(), absl::Milliseconds(15));
      return;
    }
    if (!bytes.empty() && bytes[0] == kRelayMarker) {
      bound_[bytes[2]] = from;
      std::vector<uint8_t> reply = {kRelayMarker, 2};
      reply.insert(reply.end(), session_id_.begin(), session_id_.end());
      reply.push_back(bound_.size() == 2 ? 2 : 1);
      Deliver(relay_, from, std::move(reply), absl::Milliseconds(15));
      return;
    }
    if (bound_.size() < 2) return;
    const net::Endpoint to = from == bound_[0] ? bound_[1] : bound_[0];
    Deliver(relay_, to, bytes, absl::Milliseconds(15));
  }

  void Deliver(const net::Endpoint& from, const net::Endpoint& to, std::vector<uint8_t> bytes,
               absl::Duration latency) {
    if (block_ && block_(from, to)) return;
    link_.push_back({now_ + latency, from, to, std::move(bytes)});
  }

  void Flush() {
    for (const auto& [conn, self] : {std::pair{client_.get(), client_addr_},
                                     std::pair{device_.get(), device_addr_}}) {
      for (net::Datagram& d : conn->TakeOutgoing()) {
        const absl::Duration latency =
            d.to == relay_ ? absl::Milliseconds(15) : absl::Milliseconds(5);
        Deliver(self, d.to, std::move(d.bytes), latency);
      }
    }
    for (auto& r : client_->TakeReceived()) client_got_.push_back(std::move(r.bytes));
    for (auto& r : device_->TakeReceived()) device_got_.push_back(std::move(r.bytes));
  }

  bool Step(absl::Time end) {
    auto next = std::min_element(link_.begin(), link_.end(),
                                 [](const InFlight& a, const InFlight& b) { return a.arrival < b.arrival; });
    absl::Time when = std::min(client_->next_timeout(), device_->next_timeout());
    if (next != link_.end()) when = std::min(when, next->arrival);
    if (when > end) return false;
    now_ = std::max(now_, when);
    if (next != link_.end() && next->arrival == when) {
      InFlight p = std::move(*next);
      link_.erase(next);
      if (p.to == relay_) {
        AtRelay(p.from, p.bytes);
      } else if (p.to == client_addr_) {
        client_->OnPacket(p.from, p.bytes, now_);
      } else if (p.to == device_addr_) {
        // After a NAT rebinding, what is sent to device_old_addr_ is lost.
        device_->OnPacket(p.from, p.bytes, now_);
      }
    } else {
      if (client_->next_timeout() <= now_) client_->OnTimeout(now_);
      if (device_->next_timeout() <= now_) device_->OnTimeout(now_);
    }
    Flush();
    return true;
  }

  void RunFor(absl::Duration d) {
    const absl::Time end = now_ + d;
    while (Step(end)) {
    }
    now_ = end;
  }

  absl::Duration RunUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time start = now_;
    while (!done() && Step(start + limit)) {
    }
    EXPECT_TRUE(done()) << "not reached within " << limit;
    return now_ - start;
  }

  // Sends `n` numbered datagrams from the client, one every `gap`, while the network runs.
  void SendNumbered(int n, absl::Duration gap) {
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> bytes = {static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      ASSERT_THAT(client_->Send(DataKind::kRpc, bytes, now_), testing::IsOk()) << i;
      Flush();
      RunFor(gap);
    }
  }

  std::string ActivePath(const PeerConnection& c) {
    return c.active_path() ? std::string(PeerConnection::PathName(*c.active_path())) : "none";
  }

  testing::SeededRandom random_{3};
  wire::SessionId session_id_{};
  std::vector<uint8_t> key_;
  wire::Nonce client_nonce_{};
  wire::Nonce device_nonce_{};
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  net::Endpoint client_addr_ = Ep("10.0.0.1:1000");
  net::Endpoint device_addr_ = Ep("10.0.0.2:2000");
  net::Endpoint device_old_addr_;
  net::Endpoint relay_ = Ep("198.51.100.1:7001");
  std::map<uint8_t, net::Endpoint> bound_;
  std::function<bool(const net::Endpoint& from, const net::Endpoint& to)> block_;
  std::vector<InFlight> link_;
  std::unique_ptr<PeerConnection> client_, device_;
  std::vector<std::vector<uint8_t>> client_got_, device_got_;
};

TEST_F(PeerConnectionTest, DirectPathWinsAndCarriesDataBothWays) {
  StartBoth();
  const absl::Duration took = RunUntil([&] {
    return client_->state() == PeerConnection::State::kConnected &&
           device_->state() == PeerConnection::State::kConnected;
  }, absl::Seconds(2));
  EXPECT_LE(took, absl::Milliseconds(20));  // One round trip of 10 ms.
  RunFor(absl::Milliseconds(200));
  // No NAT here: the relay reflects each side's own address back, so the path is direct.
  EXPECT_EQ(ActivePath(*client_), "direct");
  EXPECT_EQ(ActivePath(*device_), "direct");
  ASSERT_THAT(client_->Send(DataKind::kRpc, std::vector<uint8_t>{1, 2, 3}, now_), testing::IsOk());
  ASSERT_THAT(device_->Send(DataKind::kStream, std::vector<uint8_t>{4}, now_), testing::IsOk());
  Flush();
  RunFor(absl::Milliseconds(50));
  ASSERT_EQ(device_got_.size(), 1u);
  EXPECT_EQ(device_got_[0], (std::vector<uint8_t>{1, 2, 3}));
  ASSERT_EQ(client_got_.size(), 1u);
  EXPECT_EQ(client_got_[0], (std::vector<uint8_t>{4}));
}

TEST_F(PeerConnectionTest, RelayCarriesDataWhenDirectIsBlocked) {
  block_ = [&](const net::Endpoint& from, const net::Endpoint& to) {
    return from != relay_ && to != relay_;
  };
  StartBoth();
  RunUntil([&] { return client_->state() == PeerConnection::State::kConnected; }, absl::Seconds(3));
  EXPECT_EQ(ActivePath(*client_), "relay");
  SendNumbered(50, absl::Milliseconds(10));
  RunFor(absl::Milliseconds(100));
  EXPECT_EQ(device_got_.size(), 50u);
  RunFor(absl::Seconds(10));
  EXPECT_EQ(client_->paths()[0].state, PeerConnection::PathState::kFailed);  // Direct gave up.
}

TEST_F(PeerConnectionTest, UpgradesFromRelayToDirectWithoutLosingData) {
  bool direct_blocked = true;
  block_ = [&](const net::Endpoint& from, const net::Endpoint& to) {
    return direct_blocked && from != relay_ && to != relay_;
  };
  StartBoth();
  RunUntil([&] { return client_->state() == PeerConnection::State::kConnected; }, absl::Seconds(3));
  ASSERT_EQ(ActivePath(*client_), "relay");
  SendNumbered(20, absl::Milliseconds(20));
  direct_blocked = false;  // E.g. the NAT pinhole opened.
  SendNumbered(180, absl::Milliseconds(20));
  RunFor(absl::Milliseconds(200));
  EXPECT_EQ(ActivePath(*client_), "direct");
  EXPECT_GE(client_->counters().path_switches, 1u);
  ASSERT_EQ(device_got_.size(), 200u);  // Nothing lost across the switch.
}

TEST_F(PeerConnectionTest, FallsBackToRelayWhenDirectPathDies) {
  bool direct_blocked = false;
  block_ = [&](const net::Endpoint& from, const net::Endpoint& to) {
    return direct_blocked && from != relay_ && to != relay_;
  };
  StartBoth();
  RunFor(absl::Seconds(1));
  ASSERT_EQ(ActivePath(*client_), "direct");
  direct_blocked = true;
  SendNumbered(400, absl::Milliseconds(20));  // 8 s of traffic.
  EXPECT_EQ(ActivePath(*client_), "relay");
  // What was sent into the dead path before failover (at most one active probe interval plus
  // path_failure_timeout: 1.75 s) is lost; the reliable layers above retransmit it.
  EXPECT_GE(device_got_.size(), 400u - 1750 / 20 - 5);
}

TEST_F(PeerConnectionTest, SurvivesTheDevicesNatRebinding) {
  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  device_old_addr_ = device_addr_;
  device_addr_ = Ep("10.0.0.2:2999");  // The NAT gave the device a new port; the old is gone.
  // The device talks first (as a camera streaming would), then both keep sending.
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(device_->Send(DataKind::kStream, std::vector<uint8_t>{7}, now_), testing::IsOk());
    SendNumbered(1, absl::Milliseconds(20));
  }
  ASSERT_NE(client_->active_path(), nullptr);
  EXPECT_EQ(client_->active_path()->remote, device_addr_);
  device_got_.clear();
  SendNumbered(10, absl::Milliseconds(20));
  RunFor(absl::Milliseconds(50));
  EXPECT_EQ(device_got_.size(), 10u);
}

TEST_F(PeerConnectionTest, TrickledReflexiveCandidateOpensTheDirectPath) {
  // The device's NAT filters: the client gets in only after the device sent to it. The device is
  // not told any client address up front; it learns the client's public address through the
  // relay (the client asks the relay for it and trickles it over the relay path).
  std::set<std::pair<std::string, std::string>> sent;
  block_ = [&](const net::Endpoint& from, const net::Endpoint& to) {
    if (from == device_addr_) sent.insert({from.ToString(), to.ToString()});
    return from == client_addr_ && to == device_addr_ &&
           !sent.count({device_addr_.ToString(), client_addr_.ToString()});
  };
  client_ = Make(Side::kClient, {{wire::Candidate::Kind::kHost, device_addr_}});
  device_ = Make(Side::kDevice, {});
  client_->Start(now_);
  device_->Start(now_);
  Flush();
  RunFor(absl::Seconds(2));
  EXPECT_EQ(client_->reflexive(), client_addr_);
  EXPECT_EQ(ActivePath(*client_), "direct");
  EXPECT_EQ(ActivePath(*device_), "direct");  // The trickled server-reflexive address.
}

TEST_F(PeerConnectionTest, HostPathsAreLocalWithoutARelayToSayOtherwise) {
  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  EXPECT_EQ(ActivePath(*client_), "local");
  EXPECT_EQ(ActivePath(*device_), "local");
}

TEST_F(PeerConnectionTest, FailedPathIsRevivedWhenThePeerShowsUpOnIt) {
  bool blocked = true;
  block_ = [&](const net::Endpoint& from, const net::Endpoint& to) {
    return blocked && from != relay_ && to != relay_;
  };
  StartBoth();
  RunFor(absl::Seconds(10));  // Past the probe timeout: the direct path is given up.
  ASSERT_EQ(client_->paths()[0].state, PeerConnection::PathState::kFailed);
  ASSERT_EQ(ActivePath(*client_), "relay");
  blocked = false;
  RunFor(absl::Seconds(12));  // Failed paths are re-probed every keep-alive interval.
  EXPECT_EQ(ActivePath(*client_), "direct");
}

TEST_F(PeerConnectionTest, KeysUpdateAndDataKeepsFlowing) {
  StartBoth(/*relay=*/false, /*key_update=*/64);
  RunFor(absl::Seconds(1));
  SendNumbered(1000, absl::Milliseconds(1));
  RunFor(absl::Milliseconds(50));
  EXPECT_EQ(device_got_.size(), 1000u);
  EXPECT_THAT(client_->counters().key_updates, Ge(10u));
}

TEST_F(PeerConnectionTest, ForgedReplayedAndForeignPacketsAreDroppedAndCounted) {
  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  // Capture a sealed data packet on its way.
  ASSERT_THAT(client_->Send(DataKind::kRpc, std::vector<uint8_t>{9}, now_), testing::IsOk());
  std::vector<net::Datagram> out = client_->TakeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  const std::vector<uint8_t> packet = out[0].bytes;
  device_->OnPacket(client_addr_, packet, now_);
  device_->OnPacket(client_addr_, packet, now_);  // Replay.
  EXPECT_EQ(device_->counters().dropped_replay, 1u);
  std::vector<uint8_t> forged = packet;
  forged.back() ^= 1;
  forged[17] ^= 0x40;  // A fresh packet number, a bad tag.
  device_->OnPacket(client_addr_, forged, now_);
  EXPECT_EQ(device_->counters().dropped_unauthenticated, 1u);
  // A probe from someone without the session key makes no path.
  const size_t paths = device_->paths().size();
  PeerConnectionOptions stranger;
  stranger.session_id = session_id_;
  stranger.session_key = crypto::SecretBytes(16);
  auto other = *PeerConnection::New(std::move(stranger), &random_);
  other->AddRemoteCandidate({wire::Candidate::Kind::kHost, device_addr_}, now_);
  // It has the session's channel id (public: the session id's), but no key: every packet refused.
  auto refused = [&] {
    const auto& c = device_->counters();
    return c.dropped_malformed + c.dropped_replay + c.dropped_unauthenticated;
  };
  const uint64_t refused_before = refused();
  const std::vector<net::Datagram> from_stranger = other->TakeOutgoing();
  ASSERT_FALSE(from_stranger.empty());
  for (const net::Datagram& d : from_stranger) device_->OnPacket(Ep("192.0.2.9:9"), d.bytes, now_);
  EXPECT_EQ(device_->paths().size(), paths);
  EXPECT_EQ(refused(), refused_before + from_stranger.size());
  for (size_t n = 0; n < packet.size(); ++n) {
    device_->OnPacket(client_addr_, absl::MakeConstSpan(packet).first(n), now_);
  }
  EXPECT_EQ(device_got_.size(), 0u);
  for (auto& r : device_->TakeReceived()) device_got_.push_back(r.bytes);
  EXPECT_EQ(device_got_.size(), 1u);  // Only the genuine one.
}

TEST_F(PeerConnectionTest, CloseReachesThePeerAndIdleConnectionsEnd) {
  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  client_->Close(now_);
  Flush();
  RunFor(absl::Milliseconds(50));
  EXPECT_EQ(device_->state(), PeerConnection::State::kClosed);
  EXPECT_THAT(client_->Send(DataKind::kRpc, std::vector<uint8_t>{1}, now_),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition));

  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  block_ = [](const net::Endpoint&, const net::Endpoint&) { return true; };
  RunFor(absl::Seconds(60));
  EXPECT_EQ(client_->state(), PeerConnection::State::kClosed);
  EXPECT_EQ(device_->state(), PeerConnection::State::kClosed);
}

// Key update must survive reordering: a DATA packet sealed in generation g that arrives after the
// receiver already moved to g+1 still opens (the receiver keeps one generation back). Once the
// receiver has moved on again (g+2), generation g is gone: a late packet sealed in it is dropped
// and counted, not delivered.
TEST_F(PeerConnectionTest, PacketFromThePreviousKeyGenerationStillOpensAfterAKeyUpdate) {
  StartBoth(/*relay=*/false, /*key_update=*/16);
  RunFor(absl::Seconds(1));
  // Seal 60 numbered DATA packets without running the network, so their order is ours.
  std::vector<std::vector<uint8_t>> packets;
  for (int i = 0; i < 60; ++i) {
    ASSERT_THAT(client_->Send(DataKind::kRpc, std::vector<uint8_t>{static_cast<uint8_t>(i)}, now_),
                testing::IsOk());
    std::vector<net::Datagram> out = client_->TakeOutgoing();
    ASSERT_EQ(out.size(), 1u);
    packets.push_back(std::move(out[0].bytes));
  }
  auto phase = [&](int i) { return (packets[i][1] & 0x80) != 0; };
  // The first key update inside the batch: packets[first_new] is the first of generation g+1, and
  // packets[second_new] the first of g+2.
  int first_new = 1;
  while (first_new < 60 && phase(first_new) == phase(first_new - 1)) ++first_new;
  int second_new = first_new + 1;
  while (second_new < 60 && phase(second_new) == phase(second_new - 1)) ++second_new;
  ASSERT_GE(first_new, 2);
  ASSERT_LT(second_new, 60);
  const int held = first_new - 1;       // The last of generation g: delivered late.
  const int held_longer = first_new - 2;  // Also of g: delivered after g+2 began.

  std::vector<std::vector<uint8_t>> got;
  auto deliver = [&](int i) {
    device_->OnPacket(client_addr_, packets[i], now_);
    for (auto& r : device_->TakeReceived()) got.push_back(std::move(r.bytes));
  };
  for (int i = 0; i < held_longer; ++i) deliver(i);
  for (int i = first_new; i < second_new; ++i) deliver(i);  // Receiver switches to g+1.
  got.clear();
  deliver(held);
  EXPECT_EQ(got, (std::vector<std::vector<uint8_t>>{{static_cast<uint8_t>(held)}}))
      << "a generation-g packet reordered behind generation g+1 was not received";

  deliver(second_new);  // Receiver switches to g+2: generation g is gone.
  got.clear();
  const uint64_t dropped =
      device_->counters().dropped_unauthenticated + device_->counters().dropped_replay;
  deliver(held_longer);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(device_->counters().dropped_unauthenticated + device_->counters().dropped_replay,
            dropped + 1);
}


// A connect request handled twice (a duplicate the device did not recognise) gets a new device
// nonce, and with it keys of its own (not a channel id of its own: that is the session id's, for
// the relay to forward by), so the second channel can never seal under the first one's
// (key, nonce) pairs, and the client, which knows only the first answer's nonce, accepts none of
// its packets.
TEST_F(PeerConnectionTest, ConnectHandledTwiceGetsItsOwnKeys) {
  StartBoth(/*relay=*/false);
  RunFor(absl::Seconds(1));
  ASSERT_NE(ActivePath(*client_), "none");
  const wire::Nonce first_device_nonce = device_nonce_;
  random_.Fill(absl::MakeSpan(device_nonce_));  // The second handling's nonce.
  std::unique_ptr<PeerConnection> duplicate =
      Make(Side::kDevice, {{wire::Candidate::Kind::kHost, client_addr_}}, /*relay=*/false);
  EXPECT_EQ(duplicate->channel_id(), ChannelIdOf(session_id_));
  EXPECT_EQ(duplicate->channel_id(), device_->channel_id());
  duplicate->Start(now_);
  auto refused = [&] {
    const auto& c = client_->counters();
    return c.dropped_malformed + c.dropped_replay + c.dropped_unauthenticated;
  };
  const uint64_t refused_before = refused();
  client_->TakeReceived();
  const std::vector<net::Datagram> sent = duplicate->TakeOutgoing();
  ASSERT_FALSE(sent.empty());
  for (const net::Datagram& d : sent) client_->OnPacket(device_addr_, d.bytes, now_);
  EXPECT_EQ(refused(), refused_before + sent.size());
  EXPECT_TRUE(client_->TakeReceived().empty());
  // Same inputs but the device nonce: the derivation itself differs in every secret.
  ASSERT_OK_AND_ASSIGN(SessionSecrets a, DeriveSessionSecrets(session_id_,
                                                             crypto::SecretBytes::CopyFrom(key_),
                                                             client_nonce_, first_device_nonce));
  ASSERT_OK_AND_ASSIGN(SessionSecrets b, DeriveSessionSecrets(session_id_,
                                                             crypto::SecretBytes::CopyFrom(key_),
                                                             client_nonce_, device_nonce_));
  EXPECT_NE(a.client_to_device.span(), b.client_to_device.span());
  EXPECT_NE(a.device_to_client.span(), b.device_to_client.span());
}

}  // namespace
}  // namespace edgelink::channel
