// Faults on virtual time: the basestation killed mid-connect, the relay restarted under traffic, a
// device power-cycled, NAT mappings expiring, loss bursts, and the device's clock stepped. Each
// test says what must hold afterwards.
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/sim/scenario.h"

namespace edgelink::sim {
namespace {

using ::testing::Le;

constexpr absl::Duration kKeepAlive = absl::Seconds(25);  // What ATTACHED says by default.
constexpr absl::string_view kDevice = Scenario::kDeviceId;

// A client of its own on the internet (no NAT), for a connect after a fault.
std::unique_ptr<ClientApp> NewClient(Scenario& s, const std::string& name, absl::string_view ip) {
  LinkConfig link;
  link.latency = absl::Milliseconds(20);
  Host& host = s.internet().AddHost(name, Ip(ip), link);
  absl::StatusOr<std::unique_ptr<ClientApp>> client =
      ClientApp::New(&host, &s.basestation(), s.client_rtt() / 2);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

struct ConnectResult {
  absl::Status status;
  bool connected = false;
  bool rpc_ok = false;
  absl::Duration took;
};

// Connect, then one echo on the peer channel once it is up.
ConnectResult ConnectAndEcho(Simulator& sim, ClientApp& client) {
  ConnectResult result;
  const absl::Time start = sim.now();
  client.Connect(std::string(kDevice));
  sim.RunUntil([&] { return client.connected() || client.state() == ClientApp::State::kFailed; },
               absl::Seconds(25));
  result.took = sim.now() - start;
  result.status = client.status();
  result.connected = client.connected();
  if (!result.connected) return result;
  auto ok = std::make_shared<std::optional<bool>>();
  client.Call("echo", {'h', 'i'}, sim.now() + absl::Seconds(5), [ok](rpc::Reply reply) {
    *ok = reply.ok() && *reply == std::vector<uint8_t>{'h', 'i'};
  });
  sim.RunUntil([&] { return ok->has_value(); }, absl::Seconds(6));
  result.rpc_ok = ok->value_or(false);
  return result;
}

// RPC calls every 100 ms, 3 s deadline each. Shared with the callbacks, which may outlive a
// failing test's scope.
struct CallLog {
  struct Call {
    absl::Time sent;
    std::optional<bool> ok;
  };
  std::vector<Call> calls;

  // Failed calls sent in [from, to), and the calls with no answer yet.
  int FailedBetween(absl::Time from, absl::Time to) const {
    int n = 0;
    for (const Call& c : calls) n += c.sent >= from && c.sent < to && c.ok == false;
    return n;
  }
  int Unanswered() const {
    int n = 0;
    for (const Call& c : calls) n += !c.ok.has_value();
    return n;
  }
  absl::Time LastFailure() const {
    absl::Time last = absl::InfinitePast();
    for (const Call& c : calls) {
      if (c.ok == false) last = std::max(last, c.sent);
    }
    return last;
  }
};

// CallFor makes calls for `duration`; `each` runs after every step (to watch state).
void CallFor(Simulator& sim, ClientApp& client, absl::Duration duration,
             const std::shared_ptr<CallLog>& log, const std::function<void()>& each = nullptr) {
  const absl::Time end = sim.now() + duration;
  while (sim.now() < end) {
    const size_t index = log->calls.size();
    log->calls.push_back({sim.now(), std::nullopt});
    client.Call("echo", {1, 2, 3}, sim.now() + absl::Seconds(3),
                [log, index](rpc::Reply reply) { log->calls[index].ok = reply.ok(); });
    sim.RunFor(absl::Milliseconds(100));
    if (each) each();
  }
}

absl::Time Now(Scenario& s) { return s.sim().now(); }

// A NAT type's name without dashes, for test names.
std::string TestName(NatType type) {
  std::string name;
  for (char c : NatTypeName(type)) {
    if (c != '-') name += c;
  }
  return name;
}

// --- 1. Basestation killed mid-connect ---------------------------------------------------------

// What must hold: the connect pending when the basestation restarts ends at once with kUnavailable
// (Basestation::Restart, "pending connects fail"), neither hanging until its deadline nor
// crashing; the device is attached again within one keep-alive interval; a new connect and an RPC
// work; the session the device opened for the lost connect is reaped (idle timeout).
TEST(FaultTest, BasestationRestartMidConnectFailsItAndTheNextConnectWorks) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  s->sim().RunFor(absl::Seconds(3));

  s->client().Connect(std::string(kDevice));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->basestation().pending_connects() == 1; },
                                absl::Seconds(2)));
  s->sim().RunFor(absl::Milliseconds(10));  // The CONNECT_REQUEST is on its way to the device.
  ASSERT_EQ(s->basestation().pending_connects(), 1u);
  ASSERT_THAT(s->basestation().Restart(), testing::IsOk());
  const absl::Time restarted = Now(*s);
  EXPECT_EQ(s->basestation().pending_connects(), 0u);

  ASSERT_TRUE(s->sim().RunUntil([&] { return s->client().state() == ClientApp::State::kFailed; },
                                absl::Seconds(1)));
  EXPECT_EQ(s->client().status().code(), absl::StatusCode::kUnavailable) << s->client().status();
  EXPECT_THAT(Now(*s) - restarted, Le(s->client_rtt()));  // The control channel's way back.

  ASSERT_TRUE(s->sim().RunUntil(
      [&] { return s->basestation().attach().IsAttached(kDevice) && s->device().attached(); },
      kKeepAlive + absl::Seconds(1)));

  std::unique_ptr<ClientApp> second = NewClient(*s, "client-2", "192.0.2.20");
  ASSERT_NE(second, nullptr);
  const ConnectResult result = ConnectAndEcho(s->sim(), *second);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.connected);
  EXPECT_TRUE(result.rpc_ok);
  EXPECT_EQ(s->basestation().attach().attached_count(), 1u);
  // The device accepted the lost connect and opened a session nobody will use: gone after the
  // peer idle timeout, while the live one stays.
  s->sim().RunFor(channel::PeerConnectionOptions().idle_timeout + absl::Seconds(1));
  EXPECT_EQ(s->device().peer_count(), 1u);
  EXPECT_TRUE(second->connected());
}

// --- 2. Relay restarted mid-stream -------------------------------------------------------------

// What the code does: the relay forgets every binding, so the active relay path goes unanswered;
// after path_failure_timeout both peers mark it failed and re-bind at once with the ticket they
// hold (the relay key comes from the server key, so the restarted relay accepts it); a failed path
// is probed again after keepalive_interval, and the first probe through restores it on both ends.
// What must hold, as a user would expect of a session that outlives a relay restart: it never
// closes, no reconnect is needed, it is back on the relay within kRelayRecovery, and every call
// made after that succeeds. (A restart of the whole basestation does the same to the relay, and
// the device re-attaches besides.)
const absl::Duration kRelayRecovery = channel::PeerConnectionOptions().path_failure_timeout +
                                      channel::PeerConnectionOptions().keepalive_interval +
                                      absl::Seconds(1);

class RelayRestartTest : public ::testing::TestWithParam<bool> {};

TEST_P(RelayRestartTest, RelayCarriedSessionResumesThroughTheRestartedRelay) {
  const bool whole_basestation = GetParam();
  ScenarioOptions options;
  options.device_nat = NatType::kSymmetricSequential;  // Symmetric on both ends: relay only.
  options.client_nat = NatType::kSymmetricRandom;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  const ConnectReport report = s->RunConnect();
  ASSERT_TRUE(report.rpc_ok);
  ASSERT_EQ(report.path, "relay");
  const channel::PeerConnection* connection = s->client().connection();
  const channel::PeerConnection* device_side = s->device().peer();

  auto log = std::make_shared<CallLog>();
  bool closed = false;
  auto watch = [&] {
    closed |= s->client().connection() != connection || s->device().peer() != device_side ||
              connection->state() == channel::PeerConnection::State::kClosed;
  };
  CallFor(s->sim(), s->client(), absl::Seconds(5), log, watch);
  ASSERT_EQ(log->FailedBetween(absl::InfinitePast(), absl::InfiniteFuture()), 0);

  const absl::Time restarted = Now(*s);
  if (whole_basestation) {
    ASSERT_THAT(s->basestation().Restart(), testing::IsOk());
  } else {
    ASSERT_THAT(s->basestation().RestartRelay(), testing::IsOk());
  }
  ASSERT_EQ(s->basestation().relay().session_count(), 0u);
  CallFor(s->sim(), s->client(), absl::Seconds(40), log, watch);
  s->sim().RunFor(absl::Seconds(4));  // Let the last calls finish.

  EXPECT_FALSE(closed);
  EXPECT_EQ(log->Unanswered(), 0);
  EXPECT_EQ(log->FailedBetween(restarted + kRelayRecovery, absl::InfiniteFuture()), 0)
      << "calls failed until " << (log->LastFailure() - restarted) << " after the restart";
  EXPECT_EQ(s->client().path(), "relay");
  // Both sides bound again, to one session, with the tickets from before the restart.
  const basestation::RelayServer& relay = s->basestation().relay();
  EXPECT_EQ(relay.session_count(), 1u);
  EXPECT_EQ(relay.counters().drops(basestation::RelayDropReason::kBadTicket), 0u);
  EXPECT_EQ(relay.counters().drops(basestation::RelayDropReason::kExpiredTicket), 0u);
  EXPECT_GT(relay.counters().packets_forwarded, 0u);
  if (whole_basestation) {
    EXPECT_TRUE(s->basestation().attach().IsAttached(kDevice));
    EXPECT_TRUE(s->device().attached());
  }
}

INSTANTIATE_TEST_SUITE_P(RelayOrWholeBasestation, RelayRestartTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WholeBasestation" : "RelayOnly";
                         });

// --- 3. Device power-cycled ---------------------------------------------------------------------

// What must hold: the fresh device (new socket, no state) attaches at once, and the basestation
// replaces the old session rather than keeping two; the client's session with the old device ends
// by its idle timeout (nothing answers it any more); a new connect and an RPC work; and what the
// old session held (its relay binding) is reaped. Off briefly (the NAT mapping survives), or for
// longer than the NAT timeout behind a NAT that then picks a new public port.
class PowerCycleTest : public ::testing::TestWithParam<std::tuple<NatType, int>> {};

TEST_P(PowerCycleTest, PowerCycledDeviceReattachesOnceAndTakesNewConnects) {
  ScenarioOptions options;
  options.device_nat = std::get<0>(GetParam());
  const absl::Duration off_for = absl::Seconds(std::get<1>(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  const ConnectReport report = s->RunConnect();
  ASSERT_TRUE(report.rpc_ok);
  const channel::PeerConnection* old_session = s->client().connection();
  const net::Endpoint old_address = s->device().attach().reflexive();

  s->PowerOffDevice();
  const absl::Time off = Now(*s);
  s->sim().RunFor(off_for);
  ASSERT_THAT(s->PowerOnDevice(), testing::IsOk());
  // HELLO, CHALLENGE, PROOF, ATTACHED: two round trips.
  ASSERT_TRUE(s->sim().RunUntil(
      [&] { return s->device().attached() && s->basestation().attach().IsAttached(kDevice); },
      absl::Seconds(1)));
  EXPECT_EQ(s->basestation().attach().attached_count(), 1u);
  EXPECT_EQ(s->basestation().attach().counters().attaches, 2u);
  EXPECT_EQ(s->basestation().attach().AddressOf(kDevice), s->device().attach().reflexive());
  if (off_for > options.nat_timeout && options.device_nat == NatType::kSymmetricRandom) {
    EXPECT_NE(s->device().attach().reflexive(), old_address);
  }

  const absl::Duration idle = channel::PeerConnectionOptions().idle_timeout;
  ASSERT_TRUE(s->sim().RunUntil(
      [&] { return old_session->state() == channel::PeerConnection::State::kClosed; },
      off + idle + absl::Seconds(1) - Now(*s)));

  std::unique_ptr<ClientApp> second = NewClient(*s, "client-2", "192.0.2.20");
  ASSERT_NE(second, nullptr);
  const ConnectResult result = ConnectAndEcho(s->sim(), *second);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.rpc_ok);

  // The old relay session ends a relay idle timeout (60 s) after the old client stopped
  // re-binding; the new one stays.
  s->sim().RunFor(absl::Seconds(65));
  EXPECT_EQ(s->basestation().relay().session_count(), 1u);
  EXPECT_EQ(s->device().peer_count(), 1u);
  EXPECT_EQ(s->basestation().attach().attached_count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(NatAndOffTime, PowerCycleTest,
                         ::testing::Values(std::make_tuple(NatType::kPortRestricted, 5),
                                           std::make_tuple(NatType::kSymmetricRandom, 40)),
                         [](const ::testing::TestParamInfo<std::tuple<NatType, int>>& info) {
                           return absl::StrCat(TestName(std::get<0>(info.param)), "_off",
                                               std::get<1>(info.param), "s");
                         });

// --- 4. NAT mapping expiring -------------------------------------------------------------------

std::string NatName(const ::testing::TestParamInfo<NatType>& info) { return TestName(info.param); }

// A NAT that forgets idle mappings after 20 s, under 25 s keep-alives: for 5 s of every interval
// the device cannot be reached. (long_run_test covers the attach session surviving this; here the
// angle is a connect made in that gap.) What must hold: a connect issued the moment the mapping
// expired works: the broker resends its CONNECT_REQUEST to wherever the device's next keep-alive
// comes from, well within its 10 s deadline; so it takes at most the gap and a few round trips;
// the basestation then has the device's current address, and the device never re-attached.
class MappingExpiryTest : public ::testing::TestWithParam<NatType> {};

TEST_P(MappingExpiryTest, ConnectMadeRightAfterTheMappingExpiredWorks) {
  ScenarioOptions options;
  options.device_nat = GetParam();
  options.nat_timeout = absl::Seconds(20);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  s->sim().RunFor(absl::Seconds(40));
  Nat& nat = *s->device_site().nat;
  ASSERT_GT(nat.live_mappings(), 0u);
  while (nat.live_mappings() > 0) s->sim().RunFor(absl::Milliseconds(100));
  const absl::Duration gap = kKeepAlive - options.nat_timeout;

  const ConnectResult result = ConnectAndEcho(s->sim(), s->client());
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.connected);
  EXPECT_TRUE(result.rpc_ok);
  EXPECT_THAT(result.took, Le(gap + absl::Seconds(1)));
  EXPECT_EQ(s->basestation().attach().AddressOf(kDevice), s->device().attach().reflexive());
  EXPECT_EQ(s->device().attach().counters().attaches, 1u);
  EXPECT_EQ(s->basestation().counters().connects, 1u);
}

INSTANTIATE_TEST_SUITE_P(DeviceNat, MappingExpiryTest,
                         ::testing::Values(NatType::kPortRestricted, NatType::kSymmetricRandom,
                                           NatType::kDoubleNat),
                         NatName);

// A long gap instead: the device's link is dead for 150 s, past the basestation's liveness timeout
// (80 s) and the NAT's, and the NAT gives the device a new port when it returns. What must hold:
// the basestation shows the device offline and a connect meanwhile fails at once with kUnavailable;
// once the link is back the device attaches again within its longest back-off (60 s, +20% jitter)
// and a HELLO exchange with its retransmissions, from the new address, which the basestation has;
// a connect then works.
TEST(FaultTest, DeviceSilentPastTheLivenessTimeoutIsOfflineThenBackAtItsNewAddress) {
  ScenarioOptions options;
  options.device_nat = NatType::kSymmetricRandom;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  s->sim().RunFor(absl::Seconds(10));
  const net::Endpoint old_address = s->device().attach().reflexive();

  Host& device = *s->device_site().host;
  device.uplink().config().loss = 1;
  device.downlink().config().loss = 1;
  const absl::Time cut = Now(*s);
  const basestation::AttachServerOptions attach_options;
  ASSERT_TRUE(s->sim().RunUntil([&] { return !s->basestation().attach().IsAttached(kDevice); },
                                attach_options.liveness_timeout + absl::Seconds(5)));
  EXPECT_EQ(s->basestation().attach().counters().expired, 1u);
  const ConnectResult offline = ConnectAndEcho(s->sim(), s->client());
  EXPECT_EQ(offline.status.code(), absl::StatusCode::kUnavailable) << offline.status;
  EXPECT_THAT(offline.took, Le(2 * s->client_rtt()));  // REFLECT, then Connect: no waiting.

  s->sim().RunFor(cut + absl::Seconds(150) - Now(*s));
  device.uplink().config().loss = 0;
  device.downlink().config().loss = 0;
  const device::AttachClientOptions device_options;
  ASSERT_TRUE(s->sim().RunUntil(
      [&] { return s->device().attached() && s->basestation().attach().IsAttached(kDevice); },
      device_options.max_backoff * 1.2 + absl::Seconds(16)));
  EXPECT_NE(s->device().attach().reflexive(), old_address);
  EXPECT_EQ(s->basestation().attach().AddressOf(kDevice), s->device().attach().reflexive());
  EXPECT_EQ(s->basestation().attach().attached_count(), 1u);

  std::unique_ptr<ClientApp> second = NewClient(*s, "client-2", "192.0.2.20");
  ASSERT_NE(second, nullptr);
  const ConnectResult result = ConnectAndEcho(s->sim(), *second);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.rpc_ok);
}

// --- 5. Loss bursts ---------------------------------------------------------------------------

// Three bursts of 30% loss (each direction) on the device's link, 10 s each, 20 s apart, under RPC
// calls every 100 ms, on a direct and on a relayed session. Calls during a burst may fail. What
// must hold: every call made after a burst ended succeeds, the session never closes (same
// connection object, never kClosed), and the device stays attached on its one session.
class LossBurstTest : public ::testing::TestWithParam<std::tuple<NatType, NatType>> {};

TEST_P(LossBurstTest, CallsAfterEachBurstSucceedAndNothingCloses) {
  ScenarioOptions options;
  options.device_nat = std::get<0>(GetParam());
  options.client_nat = std::get<1>(GetParam());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  const ConnectReport report = s->RunConnect();
  ASSERT_TRUE(report.rpc_ok);
  const channel::PeerConnection* connection = s->client().connection();
  auto log = std::make_shared<CallLog>();
  bool closed = false;
  auto watch = [&] {
    closed |= s->client().connection() != connection ||
              connection->state() == channel::PeerConnection::State::kClosed;
  };

  Host& device = *s->device_site().host;
  std::vector<absl::Time> burst_ends;
  int failed_in_bursts = 0;
  for (int burst = 0; burst < 3; ++burst) {
    CallFor(s->sim(), s->client(), absl::Seconds(20), log, watch);
    const absl::Time from = Now(*s);
    device.uplink().config().loss = 0.3;
    device.downlink().config().loss = 0.3;
    CallFor(s->sim(), s->client(), absl::Seconds(10), log, watch);
    device.uplink().config().loss = 0;
    device.downlink().config().loss = 0;
    burst_ends.push_back(Now(*s));
    failed_in_bursts += log->FailedBetween(from, Now(*s));
  }
  CallFor(s->sim(), s->client(), absl::Seconds(20), log, watch);
  s->sim().RunFor(absl::Seconds(4));  // Let the last calls finish.

  EXPECT_EQ(log->Unanswered(), 0);
  for (int burst = 0; burst < 3; ++burst) {
    const absl::Time next =
        burst < 2 ? burst_ends[burst] + absl::Seconds(20) : absl::InfiniteFuture();
    EXPECT_EQ(log->FailedBetween(burst_ends[burst], next), 0) << "after burst " << burst;
  }
  EXPECT_GT(failed_in_bursts, 0);  // The bursts did bite.
  EXPECT_FALSE(closed);
  EXPECT_TRUE(s->device().attached());
  EXPECT_EQ(s->device().attach().counters().attaches, 1u);
  EXPECT_EQ(s->basestation().attach().counters().expired, 0u);
}

std::string PairName(const ::testing::TestParamInfo<std::tuple<NatType, NatType>>& info) {
  return absl::StrCat(TestName(std::get<0>(info.param)), "_", TestName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(
    DirectAndRelayed, LossBurstTest,
    ::testing::Values(std::make_tuple(NatType::kPortRestricted, NatType::kNone),
                      std::make_tuple(NatType::kSymmetricSequential, NatType::kSymmetricRandom)),
    PairName);

// --- 6. The device's clock stepped -----------------------------------------------------------

// The cores take `now` from their driver and use it for deadlines only: nothing the device sends
// carries its own clock. The PROOF echoes the CHALLENGE's timestamp (the basestation's clock, and
// checked against it), relay tickets are made and checked on the basestation's clock, peer
// packets carry none. So a step of the device's clock cannot get a handshake refused. What it could
// move are the device's deadlines, if its cores were driven by a clock that steps: the reference
// daemon runs its loop on io::MonotonicClock, which does not; these tests give the cores a stepped
// clock (DeviceApp::set_clock_offset) for an SDK user who drives them with the wall clock.

// Forward: every deadline is due at the device's next wake-up. What must hold: the device keeps
// its attach session (one early keep-alive, no re-attach, never offline at the basestation), and
// a new connect and an RPC work right away. (An open peer session ends at the step if a device
// timer runs before the next packet from the client arrives: by the new clock it has heard nothing
// for an hour. The client's side then ends by its idle timeout. Not asserted: it depends on which
// comes first.)
TEST(FaultTest, DeviceClockSteppedForwardKeepsTheAttachmentAndConnectsWork) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  const ConnectReport report = s->RunConnect();
  ASSERT_TRUE(report.rpc_ok);

  s->device().set_clock_offset(absl::Hours(1));
  const absl::Time stepped = Now(*s);
  bool offline = false;
  while (Now(*s) < stepped + 2 * kKeepAlive) {
    s->sim().RunFor(absl::Milliseconds(100));
    offline |= !s->device().attached() || !s->basestation().attach().IsAttached(kDevice);
  }
  EXPECT_FALSE(offline);
  EXPECT_EQ(s->device().attach().counters().attaches, 1u);
  EXPECT_EQ(s->basestation().attach().counters().attaches, 1u);

  std::unique_ptr<ClientApp> second = NewClient(*s, "client-2", "192.0.2.20");
  ASSERT_NE(second, nullptr);
  const ConnectResult result = ConnectAndEcho(s->sim(), *second);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.rpc_ok);
}

// Backward: the device's deadlines move an hour away, so it sends nothing until its clock has
// caught up. The protocol itself recovers, with no help: its first keep-alive after that meets
// the RESET of a basestation that expired the session, and it attaches again. What must hold (and
// what does not, until the device's event loop runs on a monotonic clock): a connect while it is
// away fails at once with kUnavailable rather than hanging; the device is back within the step,
// one keep-alive interval and a handshake; a connect then works.
TEST(FaultTest, DeviceClockSteppedBackIsAwayForTheStepThenReattaches) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> s, Scenario::New(options));
  ASSERT_TRUE(s->sim().RunUntil([&] { return s->device().attached(); }, absl::Seconds(10)));
  s->sim().RunFor(absl::Seconds(3));

  const absl::Duration step = absl::Hours(1);
  s->device().set_clock_offset(-step);
  const absl::Time stepped = Now(*s);
  const basestation::AttachServerOptions attach_options;
  ASSERT_TRUE(s->sim().RunUntil([&] { return !s->basestation().attach().IsAttached(kDevice); },
                                attach_options.liveness_timeout + absl::Seconds(5)));
  const ConnectResult away = ConnectAndEcho(s->sim(), s->client());
  EXPECT_EQ(away.status.code(), absl::StatusCode::kUnavailable) << away.status;

  ASSERT_TRUE(s->sim().RunUntil([&] { return s->basestation().attach().IsAttached(kDevice); },
                                step + kKeepAlive + absl::Seconds(1)));
  EXPECT_THAT(Now(*s) - stepped, Le(step + kKeepAlive + absl::Seconds(1)));
  EXPECT_EQ(s->device().attach().counters().resets, 1u);
  EXPECT_EQ(s->basestation().attach().counters().dropped[static_cast<int>(
                basestation::DropReason::kBadCookie)],
            0u);

  std::unique_ptr<ClientApp> second = NewClient(*s, "client-2", "192.0.2.20");
  ASSERT_NE(second, nullptr);
  const ConnectResult result = ConnectAndEcho(s->sim(), *second);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.rpc_ok);
}

}  // namespace
}  // namespace edgelink::sim
