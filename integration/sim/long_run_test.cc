// Long runs on virtual time: a day of keep-alives across NAT mapping timeouts, a basestation
// restart, the device's NAT rebinding under RPC traffic, and 1,000 devices behind one
// carrier-grade NAT.
#include <algorithm>
#include <memory>
#include <tuple>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/sim/scenario.h"

namespace edgelink::sim {
namespace {

using ::testing::Ge;
using ::testing::Le;

constexpr absl::Duration kKeepAlive = absl::Seconds(25);  // What ATTACHED says by default.

class DayOfKeepAlives : public ::testing::TestWithParam<NatType> {};

// 25 s keep-alives under a 30 s NAT mapping timeout: the mapping never lapses, so the session,
// the public address and the NAT's one mapping last the whole day.
TEST_P(DayOfKeepAlives, DeviceStaysAttachedAllDayOnOneMapping) {
  ScenarioOptions options;
  options.device_nat = GetParam();
  options.nat_timeout = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  ASSERT_EQ(s->device().attach().keepalive_interval(), kKeepAlive);
  const net::Endpoint reflexive = s->device().attach().reflexive();

  s->sim().RunFor(absl::Hours(24));

  EXPECT_TRUE(s->device().attached());
  EXPECT_TRUE(s->basestation().attach().IsAttached(std::string(Scenario::kDeviceId)));
  EXPECT_EQ(s->device().attach().counters().attaches, 1u);  // No re-attach.
  EXPECT_EQ(s->basestation().attach().counters().attaches, 1u);
  EXPECT_EQ(s->basestation().attach().counters().expired, 0u);
  EXPECT_EQ(s->device().attach().reflexive(), reflexive);
  EXPECT_EQ(s->basestation().attach().AddressOf(std::string(Scenario::kDeviceId)), reflexive);
  EXPECT_THAT(s->basestation().attach().counters().keepalives, Ge(3455u));  // 86400 s / 25 s.
  EXPECT_THAT(s->basestation().attach().counters().keepalives, Le(3457u));
  if (const Nat* nat = s->device_site().nat; nat != nullptr) {
    EXPECT_EQ(nat->counters().mappings_created, 1u);
    EXPECT_EQ(nat->counters().dropped_no_mapping, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryNat, DayOfKeepAlives, ::testing::ValuesIn(AllNatTypes()),
                         [](const ::testing::TestParamInfo<NatType>& info) {
                           std::string name;
                           for (char c : NatTypeName(info.param)) {
                             if (c != '-') name += c;
                           }
                           return name;
                         });

// The control for the test above: keep-alives slower than the NAT timeout lose the mapping each
// time, and a symmetric-random NAT then shows the basestation a new address every keep-alive.
// The session survives (an authenticated packet from a new address moves it), but in each gap a
// CONNECT_REQUEST would find no mapping.
TEST(LongRunTest, KeepAlivesSlowerThanTheNatTimeoutLoseTheMappingEveryTime) {
  ScenarioOptions options;
  options.device_nat = NatType::kSymmetricRandom;
  options.nat_timeout = absl::Seconds(30);
  options.attach.keepalive_interval = absl::Seconds(40);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  const net::Endpoint first = s->device().attach().reflexive();
  s->sim().RunFor(absl::Hours(1));
  EXPECT_TRUE(s->device().attached());
  EXPECT_THAT(s->device_site().nat->counters().mappings_created, Ge(85u));  // ~3600 / 40.
  EXPECT_NE(s->device().attach().reflexive(), first);
}

TEST(LongRunTest, RestartedBasestationHasTheDeviceBackWithinOneKeepAliveInterval) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  s->sim().RunFor(absl::Seconds(7));  // Somewhere inside a keep-alive interval.

  ASSERT_THAT(s->basestation().Restart(), testing::IsOk());
  EXPECT_FALSE(s->basestation().attach().IsAttached(std::string(Scenario::kDeviceId)));
  const absl::Time restarted = s->sim().now();
  ASSERT_TRUE(s->sim().RunUntil(
      [&] {
        return s->basestation().attach().IsAttached(std::string(Scenario::kDeviceId)) &&
               s->device().attached();
      },
      absl::Minutes(2)));
  // The next keep-alive meets an unknown session, the RESET sends the device straight back to
  // HELLO: one keep-alive interval plus a handshake (two round trips).
  EXPECT_LE(s->sim().now() - restarted, kKeepAlive + absl::Seconds(1));
  EXPECT_EQ(s->device().attach().counters().resets, 1u);
  EXPECT_EQ(s->device().attach().counters().attaches, 2u);

  // And the restarted basestation (attach server and relay) brokers a connect.
  const ConnectReport report = s->RunConnect();
  EXPECT_TRUE(report.connected);
  EXPECT_TRUE(report.rpc_ok);
}

// RPC calls every 100 ms (3 s deadline each) while the device's NAT forgets its mappings (reboot,
// conntrack flush): every flow of the device, to the client and to the relay, comes out on a new
// public port. Calls made within kRecovery of the rebinding may fail while the paths are found
// again (the active path is declared dead after path_failure_timeout, 1.5 s); every later call
// must succeed, whenever the rebinding happens relative to the peers' timers.
constexpr absl::Duration kRecovery = absl::Seconds(3);

class RebindingTest : public ::testing::TestWithParam<std::tuple<NatType, NatType>> {};

TEST_P(RebindingTest, RpcTrafficContinuesAcrossTheDevicesNatRebinding) {
  ScenarioOptions options;
  options.device_nat = std::get<0>(GetParam());
  options.client_nat = std::get<1>(GetParam());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  const ConnectReport report = s->RunConnect();
  ASSERT_TRUE(report.connected);
  ASSERT_TRUE(report.rpc_ok);

  // Shared with the callbacks, which may outlive this scope in a failing run.
  struct Calls {
    int sent = 0, ok = 0, failed = 0;
    std::vector<absl::Time> failed_sent_at;
  };
  auto calls = std::make_shared<Calls>();
  auto call_for = [&](absl::Duration duration) {
    const absl::Time end = s->sim().now() + duration;
    while (s->sim().now() < end) {
      const absl::Time sent_at = s->sim().now();
      ++calls->sent;
      s->client().Call("echo", {1, 2, 3}, sent_at + absl::Seconds(3),
                       [calls, sent_at](rpc::Reply reply) {
                         if (reply.ok()) {
                           ++calls->ok;
                         } else {
                           ++calls->failed;
                           calls->failed_sent_at.push_back(sent_at);
                         }
                       });
      s->sim().RunFor(absl::Milliseconds(100));
    }
  };
  call_for(absl::Seconds(5));
  EXPECT_EQ(calls->failed, 0);

  const net::Endpoint old_reflexive = s->device().attach().reflexive();
  s->device_site().nat->Rebind();
  const absl::Time rebound = s->sim().now();
  call_for(absl::Seconds(60));
  s->sim().RunFor(absl::Seconds(4));  // Let the last calls finish.

  EXPECT_EQ(calls->ok + calls->failed, calls->sent);
  int late_failures = 0;
  absl::Duration last_failure = absl::ZeroDuration();
  for (absl::Time t : calls->failed_sent_at) {
    if (t - rebound >= kRecovery) ++late_failures;
    last_failure = std::max(last_failure, t - rebound);
  }
  EXPECT_EQ(late_failures, 0) << "calls failed until " << last_failure << " after the rebinding";
  EXPECT_NE(s->client().path(), "none");
  // The attach session followed the device to its new address too.
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attach().reflexive() != old_reflexive; },
                                kKeepAlive));
  EXPECT_TRUE(s->device().attached());
  EXPECT_EQ(s->device().attach().counters().attaches, 1u);
}

std::string PairName(const ::testing::TestParamInfo<std::tuple<NatType, NatType>>& info) {
  std::string name;
  for (absl::string_view part : {NatTypeName(std::get<0>(info.param)), absl::string_view("_"),
                                 NatTypeName(std::get<1>(info.param))}) {
    for (char c : part) {
      if (c != '-') name += c;
    }
  }
  return name;
}

// The client's NAT lets the device's new port in (endpoint-independent or address-dependent
// filtering): the client learns it from the device's next authenticated probe (peer-reflexive).
INSTANTIATE_TEST_SUITE_P(
    ClientNatAdmitsTheNewPort, RebindingTest,
    ::testing::Values(std::make_tuple(NatType::kPortRestricted, NatType::kFullCone),
                      std::make_tuple(NatType::kSymmetricRandom, NatType::kAddressRestricted)),
    PairName);

// Behind a port-restricted client NAT the device's new port is filtered until the client has sent
// to it: the device notices its new public address (attach), re-binds to the relay and asks it
// for its address again (PeerConnection::OnLocalAddressChanged), trickles it, and failed paths
// are revived once the peer shows up on them.
INSTANTIATE_TEST_SUITE_P(
    ClientNatFiltersTheNewPort, RebindingTest,
    ::testing::Values(std::make_tuple(NatType::kPortRestricted, NatType::kPortRestricted),
                      std::make_tuple(NatType::kSymmetricRandom, NatType::kPortRestricted)),
    PairName);

// 1,000 homes, each a port-restricted NAT in 100.64.0.0/10, behind one carrier-grade NAT
// (endpoint-independent mapping, port-dependent filtering, random ports) on one public address.
// Every device binds the same port at home, so the CGN must tell 1,000 flows apart by port.
TEST(LongRunTest, ThousandDevicesBehindOneCarrierGradeNatAllAttach) {
  constexpr int kDevices = 1000;
  Simulator sim(11);
  Network internet(&sim, "internet");
  LinkConfig bs_link;
  bs_link.latency = absl::Milliseconds(5);
  Host& bs_host = internet.AddHost("basestation", Ip("198.51.100.1"), bs_link);
  crypto::SecretBytes server_key(32);
  sim.random().Fill(server_key.mutable_span());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Basestation> bs,
                       Basestation::New(&bs_host, std::move(server_key), {}));

  NatConfig cgn_config = NatConfig::PortRestricted();
  cgn_config.ports = PortAllocation::kRandom;
  LinkConfig cgn_link;
  cgn_link.latency = absl::Milliseconds(15);
  Nat& cgn = internet.AddNat("cgn", Ip("203.0.113.1"), cgn_config, cgn_link);
  LinkConfig home_link;
  home_link.latency = absl::Milliseconds(2);

  std::vector<std::unique_ptr<DeviceApp>> devices;
  for (int i = 0; i < kDevices; ++i) {
    const std::string id = absl::StrCat("dev-", i);
    const net::Endpoint home_ip =
        Ip(absl::StrCat("100.64.", 1 + i / 250, ".", 1 + i % 250));
    Nat& home = cgn.inside().AddNat(absl::StrCat("home-", i), home_ip, NatConfig::PortRestricted(),
                                    home_link);
    Host& host = home.inside().AddHost(id, Ip("192.168.1.2"), home_link);
    crypto::SecretBytes secret(32);
    sim.random().Fill(secret.mutable_span());
    bs->AddDevice(id, secret);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<DeviceApp> device,
                         DeviceApp::New(&host, id, std::move(secret), bs->attach_address()));
    // Power comes back over a second, not at one instant.
    DeviceApp* raw = device.get();
    sim.Schedule(sim.now() + absl::Milliseconds(sim.UniformInt(0, 999)), [raw] { raw->Start(); });
    devices.push_back(std::move(device));
  }

  auto all_attached = [&] {
    for (const auto& d : devices) {
      if (!d->attached()) return false;
    }
    return bs->attach().attached_count() == static_cast<size_t>(kDevices);
  };
  ASSERT_TRUE(sim.RunUntil(all_attached, absl::Seconds(30)));
  sim.RunFor(absl::Minutes(5));  // A dozen keep-alives each through two NATs.

  EXPECT_TRUE(all_attached());
  EXPECT_EQ(bs->attach().counters().attaches, static_cast<uint64_t>(kDevices));  // No re-attach.
  EXPECT_EQ(bs->attach().counters().dropped_total(), 0u);
  absl::flat_hash_set<net::Endpoint> reflexive;
  for (const auto& d : devices) {
    EXPECT_EQ(d->attach().reflexive().WithPort(0), cgn.ip());
    reflexive.insert(d->attach().reflexive());
  }
  EXPECT_EQ(reflexive.size(), static_cast<size_t>(kDevices));  // One CGN port per device.
  EXPECT_EQ(cgn.live_mappings(), static_cast<size_t>(kDevices));
  EXPECT_EQ(cgn.counters().mappings_created, static_cast<uint64_t>(kDevices));
}

}  // namespace
}  // namespace edgelink::sim
