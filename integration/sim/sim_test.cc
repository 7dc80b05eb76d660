// The simulator's own behaviour: event order, alarms, link impairments, and each RFC 4787 NAT
// behaviour, checked packet by packet, so the grid's results rest on a model that is itself tested.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/sim/network.h"
#include "integration/sim/simulator.h"

namespace edgelink::sim {
namespace {

using ::testing::ElementsAre;

TEST(SimulatorTest, RunsEventsInTimeOrderAndTiesInSchedulingOrder) {
  Simulator sim(1);
  const absl::Time t0 = sim.now();
  std::vector<int> order;
  sim.Schedule(t0 + absl::Seconds(2), [&] { order.push_back(3); });
  sim.Schedule(t0 + absl::Seconds(1), [&] { order.push_back(1); });
  sim.Schedule(t0 + absl::Seconds(1), [&] {
    order.push_back(2);
    sim.Schedule(sim.now(), [&] { order.push_back(25); });  // Same time, scheduled later.
  });
  sim.RunFor(absl::Seconds(1));
  EXPECT_THAT(order, ElementsAre(1, 2, 25));
  EXPECT_EQ(sim.now(), t0 + absl::Seconds(1));
  sim.RunFor(absl::Seconds(5));
  EXPECT_THAT(order, ElementsAre(1, 2, 25, 3));
  EXPECT_EQ(sim.now(), t0 + absl::Seconds(6));
}

TEST(SimulatorTest, RunUntilStopsAtTheConditionOrTheLimit) {
  Simulator sim(1);
  const absl::Time t0 = sim.now();
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    sim.Schedule(sim.now() + absl::Seconds(1), tick);
  };
  sim.Schedule(t0, tick);
  EXPECT_TRUE(sim.RunUntil([&] { return ticks == 3; }, absl::Seconds(10)));
  EXPECT_EQ(sim.now(), t0 + absl::Seconds(2));
  EXPECT_FALSE(sim.RunUntil([&] { return ticks == 100; }, absl::Seconds(10)));
  EXPECT_EQ(sim.now(), t0 + absl::Seconds(12));
}

TEST(SimulatorTest, AlarmFiresOnceAtItsLastSettingAndNeverAfterCancelOrDestruction) {
  Simulator sim(1);
  const absl::Time t0 = sim.now();
  std::vector<absl::Time> fired;
  Alarm alarm(&sim, [&] { fired.push_back(sim.now()); });
  alarm.Set(t0 + absl::Seconds(5));
  alarm.Set(t0 + absl::Seconds(2));  // Moved earlier: the 5 s event is stale.
  sim.RunFor(absl::Seconds(10));
  EXPECT_THAT(fired, ElementsAre(t0 + absl::Seconds(2)));
  alarm.Set(sim.now() + absl::Seconds(1));
  alarm.Cancel();
  {
    Alarm doomed(&sim, [&] { fired.push_back(absl::InfinitePast()); });
    doomed.Set(sim.now() + absl::Seconds(1));
  }
  sim.RunFor(absl::Seconds(10));
  EXPECT_EQ(fired.size(), 1u);
}

TEST(SimulatorTest, SameSeedSameRandomness) {
  Simulator a(42), b(42), c(43);
  std::vector<uint8_t> x(16), y(16), z(16);
  a.random().Fill(absl::MakeSpan(x));
  b.random().Fill(absl::MakeSpan(y));
  c.random().Fill(absl::MakeSpan(z));
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

// A little world: servers on the internet, and a host behind one NAT, each with a socket that
// records what it receives.
class NetTest : public ::testing::Test {
 protected:
  struct Received {
    net::Endpoint from;
    std::vector<uint8_t> bytes;
    absl::Time at;
  };
  struct Endpointed {
    std::unique_ptr<Socket> socket;
    std::vector<Received> got;
  };

  std::unique_ptr<Endpointed> Open(Host& host, uint16_t port) {
    auto e = std::make_unique<Endpointed>();
    Endpointed* raw = e.get();
    auto socket = host.Bind(port, [this, raw](const net::Endpoint& from,
                                              absl::Span<const uint8_t> bytes) {
      raw->got.push_back({from, {bytes.begin(), bytes.end()}, sim_.now()});
    });
    EXPECT_TRUE(socket.ok()) << socket.status();
    e->socket = *std::move(socket);
    return e;
  }

  void BuildNat(const NatConfig& config) {
    LinkConfig link;
    link.latency = absl::Milliseconds(5);
    nat_ = &internet_.AddNat("nat", Ip("5.5.5.5"), config, link);
    inside_host_ = &nat_->inside().AddHost("inside", Ip("192.168.0.2"), link);
    inside_ = Open(*inside_host_, 4000);
  }

  void Send(Endpointed& from, const net::Endpoint& to, uint8_t tag = 0) {
    from.socket->SendTo(to, {tag});
    sim_.RunFor(absl::Milliseconds(100));
  }

  Simulator sim_{7};
  Network internet_{&sim_, "internet"};
  Host& server1_ = internet_.AddHost("s1", Ip("1.1.1.1"), {});
  Host& server2_ = internet_.AddHost("s2", Ip("2.2.2.2"), {});
  std::unique_ptr<Endpointed> s1a_ = Open(server1_, 100);
  std::unique_ptr<Endpointed> s1b_ = Open(server1_, 200);
  std::unique_ptr<Endpointed> s2_ = Open(server2_, 100);
  Nat* nat_ = nullptr;
  Host* inside_host_ = nullptr;
  std::unique_ptr<Endpointed> inside_;
};

TEST_F(NetTest, LinkAddsLatencyAndDropsAboutTheConfiguredShare) {
  LinkConfig lossy;
  lossy.latency = absl::Milliseconds(30);
  lossy.loss = 0.2;
  Host& far = internet_.AddHost("far", Ip("3.3.3.3"), lossy);
  auto e = Open(far, 1);
  const absl::Time t0 = sim_.now();
  for (int i = 0; i < 5000; ++i) s1a_->socket->SendTo(e->socket->local(), {1});
  sim_.RunFor(absl::Seconds(1));
  ASSERT_FALSE(e->got.empty());
  EXPECT_EQ(e->got.front().at, t0 + absl::Milliseconds(30));
  EXPECT_EQ(e->got.front().from, s1a_->socket->local());
  EXPECT_GT(e->got.size(), 3800u);
  EXPECT_LT(e->got.size(), 4200u);
  EXPECT_EQ(far.downlink().counters().lost + e->got.size(), 5000u);
}

TEST_F(NetTest, RateLimitQueuesThenDropsAtTheTail) {
  LinkConfig slow;
  slow.bytes_per_second = 10000;
  slow.queue_bytes = 5000;
  Host& far = internet_.AddHost("far", Ip("3.3.3.3"), slow);
  auto e = Open(far, 1);
  const absl::Time t0 = sim_.now();
  for (int i = 0; i < 10; ++i) s1a_->socket->SendTo(e->socket->local(), std::vector<uint8_t>(1000));
  sim_.RunFor(absl::Seconds(2));
  // 5 fit the queue (the first starts at once); each takes 100 ms on the wire.
  ASSERT_EQ(e->got.size(), 5u);
  EXPECT_EQ(far.downlink().counters().queue_dropped, 5u);
  EXPECT_EQ(e->got[0].at, t0 + absl::Milliseconds(100));
  EXPECT_EQ(e->got[4].at, t0 + absl::Milliseconds(500));
}

TEST_F(NetTest, JitterKeepsOrderUnlessReorderingIsOn) {
  LinkConfig jittery;
  jittery.latency = absl::Milliseconds(10);
  jittery.jitter = absl::Milliseconds(20);
  Host& far = internet_.AddHost("far", Ip("3.3.3.3"), jittery);
  auto e = Open(far, 1);
  auto send_numbered = [&] {
    e->got.clear();
    for (int i = 0; i < 200; ++i) {
      s1a_->socket->SendTo(e->socket->local(), {static_cast<uint8_t>(i)});
      sim_.RunFor(absl::Milliseconds(1));
    }
    sim_.RunFor(absl::Seconds(1));
    int inversions = 0;
    for (size_t i = 1; i < e->got.size(); ++i) inversions += e->got[i].bytes[0] < e->got[i - 1].bytes[0];
    return inversions;
  };
  EXPECT_EQ(send_numbered(), 0);
  far.downlink().config().reorder = 0.1;
  EXPECT_GT(send_numbered(), 5);
  EXPECT_EQ(e->got.size(), 200u);
}

TEST_F(NetTest, EndpointIndependentMappingUsesOnePortForEveryDestination) {
  BuildNat(NatConfig::PortRestricted());
  Send(*inside_, s1a_->socket->local());
  Send(*inside_, s1b_->socket->local());
  Send(*inside_, s2_->socket->local());
  ASSERT_EQ(s1a_->got.size(), 1u);
  ASSERT_EQ(s2_->got.size(), 1u);
  EXPECT_EQ(s1a_->got[0].from, Ip("5.5.5.5").WithPort(4000));  // Port preserved.
  EXPECT_EQ(s1b_->got[0].from, s1a_->got[0].from);
  EXPECT_EQ(s2_->got[0].from, s1a_->got[0].from);
  EXPECT_EQ(nat_->counters().mappings_created, 1u);
}

TEST_F(NetTest, AddressDependentMappingSharesAPortPerRemoteAddress) {
  NatConfig config = NatConfig::PortRestricted();
  config.mapping = NatMapping::kAddressDependent;
  BuildNat(config);
  Send(*inside_, s1a_->socket->local());
  Send(*inside_, s1b_->socket->local());
  Send(*inside_, s2_->socket->local());
  EXPECT_EQ(s1a_->got[0].from, s1b_->got[0].from);
  EXPECT_NE(s2_->got[0].from, s1a_->got[0].from);
  EXPECT_EQ(nat_->counters().mappings_created, 2u);
}

TEST_F(NetTest, SymmetricSequentialNatCountsPortsUp) {
  BuildNat(NatConfig::SymmetricSequential());
  Send(*inside_, s1a_->socket->local());
  Send(*inside_, s1b_->socket->local());
  Send(*inside_, s2_->socket->local());
  const uint16_t first = s1a_->got[0].from.port();
  EXPECT_EQ(s1b_->got[0].from.port(), first + 1);
  EXPECT_EQ(s2_->got[0].from.port(), first + 2);
  Send(*inside_, s1a_->socket->local());  // An existing flow keeps its port.
  EXPECT_EQ(s1a_->got[1].from.port(), first);
}

TEST_F(NetTest, SymmetricRandomNatScattersPorts) {
  BuildNat(NatConfig::SymmetricRandom());
  Send(*inside_, s1a_->socket->local());
  Send(*inside_, s1b_->socket->local());
  Send(*inside_, s2_->socket->local());
  const int a = s1a_->got[0].from.port(), b = s1b_->got[0].from.port(),
            c = s2_->got[0].from.port();
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_FALSE(b == a + 1 && c == b + 1);
}

TEST_F(NetTest, EndpointIndependentFilteringLetsAnyoneIn) {
  BuildNat(NatConfig::FullCone());
  Send(*inside_, s1a_->socket->local());
  const net::Endpoint mapped = s1a_->got[0].from;
  Send(*s2_, mapped, 2);
  Send(*s1b_, mapped, 3);
  ASSERT_EQ(inside_->got.size(), 2u);
  EXPECT_EQ(inside_->got[0].from, s2_->socket->local());  // Source is not rewritten inbound.
}

TEST_F(NetTest, AddressDependentFilteringLetsInOnlyAddressesContacted) {
  BuildNat(NatConfig::AddressRestricted());
  Send(*inside_, s1a_->socket->local());
  const net::Endpoint mapped = s1a_->got[0].from;
  Send(*s1b_, mapped, 2);  // Same address, other port: in.
  Send(*s2_, mapped, 3);   // Never contacted: filtered.
  ASSERT_EQ(inside_->got.size(), 1u);
  EXPECT_EQ(inside_->got[0].bytes[0], 2);
  EXPECT_EQ(nat_->counters().dropped_filtered, 1u);
}

TEST_F(NetTest, AddressAndPortDependentFilteringLetsInOnlyExactEndpointsContacted) {
  BuildNat(NatConfig::PortRestricted());
  Send(*inside_, s1a_->socket->local());
  const net::Endpoint mapped = s1a_->got[0].from;
  Send(*s1b_, mapped, 2);
  Send(*s1a_, mapped, 3);
  ASSERT_EQ(inside_->got.size(), 1u);
  EXPECT_EQ(inside_->got[0].bytes[0], 3);
  EXPECT_EQ(nat_->counters().dropped_filtered, 1u);
}

TEST_F(NetTest, MappingExpiresWithoutOutboundTrafficAndInboundDoesNotRefreshIt) {
  BuildNat(NatConfig::FullCone());
  Send(*inside_, s1a_->socket->local());
  const net::Endpoint mapped = s1a_->got[0].from;
  for (int i = 0; i < 5; ++i) {  // 25 s of inbound only.
    sim_.RunFor(absl::Seconds(5));
    Send(*s1a_, mapped);
  }
  EXPECT_EQ(inside_->got.size(), 5u);
  sim_.RunFor(absl::Seconds(5));  // 30 s since the last outbound packet.
  Send(*s1a_, mapped);
  EXPECT_EQ(inside_->got.size(), 5u);
  EXPECT_EQ(nat_->counters().dropped_no_mapping, 1u);
  EXPECT_EQ(nat_->live_mappings(), 0u);
}

TEST_F(NetTest, OutboundTrafficEvery25SecondsHoldsTheMappingForAnHour) {
  BuildNat(NatConfig::SymmetricRandom());
  for (int i = 0; i < 144; ++i) {
    Send(*inside_, s1a_->socket->local());
    sim_.RunFor(absl::Seconds(25) - absl::Milliseconds(100));
  }
  Send(*s1a_, s1a_->got[0].from);
  EXPECT_EQ(nat_->counters().mappings_created, 1u);
  EXPECT_EQ(inside_->got.size(), 1u);
}

TEST_F(NetTest, HairpinningLoopsBackOnlyWhenEnabled) {
  for (bool hairpin : {false, true}) {
    NatConfig config = NatConfig::PortRestricted();
    config.hairpinning = hairpin;
    Simulator sim(3);
    Network internet(&sim, "internet");
    Nat& nat = internet.AddNat("nat", Ip("5.5.5.5"), config, {});
    Host& a = nat.inside().AddHost("a", Ip("192.168.0.2"), {});
    Host& b = nat.inside().AddHost("b", Ip("192.168.0.3"), {});
    int b_got = 0;
    net::Endpoint b_saw;
    auto sa = *a.Bind(3000, [](const net::Endpoint&, absl::Span<const uint8_t>) {});
    auto sb = *b.Bind(4000, [&](const net::Endpoint& from, absl::Span<const uint8_t>) {
      ++b_got;
      b_saw = from;
    });
    // b opens its mapping towards a's public endpoint (5.5.5.5:3000, preserved), then a sends to
    // b's public endpoint.
    sb->SendTo(Ip("5.5.5.5").WithPort(3000), {1});
    sa->SendTo(Ip("5.5.5.5").WithPort(4000), {2});
    sim.RunFor(absl::Seconds(1));
    EXPECT_EQ(b_got, hairpin ? 1 : 0) << "hairpinning " << hairpin;
    if (hairpin) {
      EXPECT_EQ(b_saw, Ip("5.5.5.5").WithPort(3000));  // a's public endpoint.
    }
    EXPECT_EQ(nat.counters().dropped_hairpin, hairpin ? 0u : 2u);
  }
}

TEST_F(NetTest, DoubleNatTranslatesTwiceAndRepliesFindTheWayBack) {
  LinkConfig link;
  link.latency = absl::Milliseconds(5);
  Nat& cgn = internet_.AddNat("cgn", Ip("6.6.6.6"), NatConfig::SymmetricRandom(), link);
  Nat& home = cgn.inside().AddNat("home", Ip("100.64.0.2"), NatConfig::PortRestricted(), link);
  Host& h = home.inside().AddHost("h", Ip("192.168.0.2"), link);
  auto e = Open(h, 4000);
  Send(*e, s1a_->socket->local());
  ASSERT_EQ(s1a_->got.size(), 1u);
  const net::Endpoint seen = s1a_->got[0].from;
  EXPECT_EQ(seen.WithPort(0), Ip("6.6.6.6"));
  EXPECT_EQ(home.ExternalFor(e->socket->local(), s1a_->socket->local()),
            Ip("100.64.0.2").WithPort(4000));
  Send(*s1a_, seen, 9);
  ASSERT_EQ(e->got.size(), 1u);
  EXPECT_EQ(e->got[0].from, s1a_->socket->local());
  EXPECT_EQ(h.RoundTripToRoot(), absl::Milliseconds(30));
}

TEST_F(NetTest, RebindGivesFlowsNewPortsAndDropsTrafficToTheOldOnes) {
  BuildNat(NatConfig::PortRestricted());
  Send(*inside_, s1a_->socket->local());
  const net::Endpoint before = s1a_->got[0].from;
  nat_->Rebind();
  Send(*s1a_, before);
  EXPECT_TRUE(inside_->got.empty());
  Send(*inside_, s1a_->socket->local());
  ASSERT_EQ(s1a_->got.size(), 2u);
  EXPECT_NE(s1a_->got[1].from, before);
}

TEST_F(NetTest, UnknownDestinationsAndClosedPortsAreCountedDrops) {
  Send(*s1a_, Ip("9.9.9.9").WithPort(1));
  EXPECT_EQ(internet_.dropped_no_route(), 1u);
  Send(*s1a_, s2_->socket->local().WithPort(999));
  EXPECT_EQ(server2_.dropped_no_socket(), 1u);
  EXPECT_THAT(server1_.Bind(100, nullptr).status(),
              testing::StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace edgelink::sim
