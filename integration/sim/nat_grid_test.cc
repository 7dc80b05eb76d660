// Every pair of NAT types, device x client: the connect succeeds, the path the connection ends on
// is the one the NAT behaviours allow, and an RPC round trip works; at 0% and 5% loss.
#include <cctype>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "gtest/gtest.h"
#include "integration/sim/scenario.h"

namespace edgelink::sim {
namespace {

// The final path, device NAT (rows) x client NAT (columns), both in AllNatTypes() order. Why:
//
// * Endpoint-independent mapping (none, full-cone, addr-restricted, port-restricted, and a double
//   NAT of two port-restricted ones) shows every peer the address the basestation or the relay
//   saw. When both ends map that way, each end's probe to the other's server-reflexive address
//   opens its own filter for the other's probe, whatever the filtering: direct.
// * A symmetric NAT (address-and-port-dependent mapping) sends the probes to the peer from a new
//   port. They get through the peer's NAT if it has none or filters by address at most (the peer
//   has already probed the symmetric side's address); the peer learns the new port from the
//   authenticated probe and answers there: direct.
// * Against port-dependent filtering (port-restricted, double NAT, symmetric) that new port has
//   to be guessed: PeerConnection also probes server-reflexive port +1..+8. With sequential
//   allocation the flow to the peer's server-reflexive address is the second new mapping after
//   the one the basestation saw (the peer's host candidate comes first), so port +2: direct.
//   With random allocation nothing predicts it: relay.
// * Symmetric on both ends: each end's guesses are new mappings themselves. The device's port
//   d+2+m talks to the client's c+m and the client's c+2+n to the device's d+n; a pair would need
//   m = n + 2 and n = m + 2, so they never meet: relay, even when both allocate sequentially.
// * A device without NAT offers its public address as a host candidate (as the daemon does), and
//   PeerConnection::PathName calls every host-candidate path "local", even over the internet:
//   that row reads "local". (The device's own view is "local" likewise when the client has no
//   NAT; this test checks the client's view.)
constexpr int kN = kNatTypeCount;
const char* const kExpectedPath[kN][kN] = {
    //                 none      full-cone addr-r    port-r    sym-seq   sym-rand  double
    // A device without NAT offers its public address as a host candidate; once the broker adds
    // the same address as server-reflexive, the path to it is direct, not local.
    /* none         */ {"direct", "direct", "direct", "direct", "direct", "direct", "direct"},
    /* full-cone    */ {"direct", "direct", "direct", "direct", "direct", "direct", "direct"},
    /* addr-restr.  */ {"direct", "direct", "direct", "direct", "direct", "direct", "direct"},
    // Random ports against a port-restricted filter: birthday probing (kBirthday below).
    /* port-restr.  */ {"direct", "direct", "direct", "direct", "direct", "direct", "direct"},
    /* sym-seq      */ {"direct", "direct", "direct", "direct", "relay", "relay", "direct"},
    /* sym-random   */ {"direct", "direct", "direct", "direct", "relay", "relay", "direct"},
    /* double-nat   */ {"direct", "direct", "direct", "direct", "direct", "direct", "direct"},
};

// Setup time bounds without loss, in round trips between client and basestation: REFLECT (1),
// Connect through the basestation to the device and back (2), then a probe round trip over the
// path (1.6 direct, 2 through the relay). The final path may come later: a symmetric device's
// new port reaches the client only with the device's next probe.
constexpr double kMaxFirstByteRtts = 5.0;
constexpr double kMaxFinalPathRtts = 8.5;
// Birthday probing starts once no direct path worked for 1 s (20 round trips of 50 ms), then
// takes up to 1.3 s of spraying and a probe round trip.
constexpr double kMaxBirthdayFinalPathRtts = 50;

bool Birthday(NatType a, NatType b) {
  auto easy_filtered = [](NatType t) {
    return t == NatType::kPortRestricted || t == NatType::kDoubleNat;
  };
  return (a == NatType::kSymmetricRandom && easy_filtered(b)) ||
         (b == NatType::kSymmetricRandom && easy_filtered(a));
}

using GridParam = std::tuple<int, int, double>;  // Device type, client type, loss.

std::string CamelName(absl::string_view name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '-') {
      upper = true;
    } else {
      out += upper ? static_cast<char>(std::toupper(c)) : c;
      upper = false;
    }
  }
  return out;
}

class NatGridTest : public ::testing::TestWithParam<GridParam> {
 protected:
  NatType device() const { return AllNatTypes()[std::get<0>(GetParam())]; }
  NatType client() const { return AllNatTypes()[std::get<1>(GetParam())]; }
  double loss() const { return std::get<2>(GetParam()); }
  std::string expected() const {
    return kExpectedPath[std::get<0>(GetParam())][std::get<1>(GetParam())];
  }
};

TEST_P(NatGridTest, ConnectsOnTheExpectedPathAndRpcWorks) {
  ScenarioOptions options;
  options.device_nat = device();
  options.client_nat = client();
  options.loss = loss();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  const ConnectReport report = scenario->RunConnect();
  SCOPED_TRACE(absl::StrCat(NatTypeName(device()), " x ", NatTypeName(client()), ", loss ", loss(),
                            ": path ", report.path, " (device ", report.device_path,
                            "), first byte ", report.first_byte_rtts, " RTTs, final path ",
                            report.final_path_rtts, " RTTs"));
  ASSERT_TRUE(report.attached);
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_TRUE(report.connected);
  EXPECT_TRUE(report.rpc_ok);
  EXPECT_EQ(scenario->device().rpc_served(), 1u);
  if (loss() > 0) return;  // Under loss only connecting is promised; the path may differ.

  EXPECT_EQ(report.path, expected());
  // Both ends settle on the same kind of path (relay or not).
  EXPECT_EQ(report.device_path == "relay", report.path == "relay") << report.device_path;
  const basestation::RelayCounters& relay = scenario->basestation().relay().counters();
  if (expected() == "relay") {
    EXPECT_GT(relay.packets_forwarded, 0u);
    EXPECT_EQ(scenario->client().connection()->active_path()->remote,
              scenario->basestation().relay_address());
  }
  EXPECT_GT(report.first_byte_rtts, 0);
  EXPECT_LE(report.first_byte_rtts, kMaxFirstByteRtts);
  EXPECT_LE(report.final_path_rtts,
            Birthday(device(), client()) ? kMaxBirthdayFinalPathRtts : kMaxFinalPathRtts);
}

INSTANTIATE_TEST_SUITE_P(
    EveryPair, NatGridTest,
    ::testing::Combine(::testing::Range(0, kN), ::testing::Range(0, kN),
                       ::testing::Values(0.0, 0.05)),
    [](const ::testing::TestParamInfo<GridParam>& info) {
      return absl::StrCat("Device", CamelName(NatTypeName(AllNatTypes()[std::get<0>(info.param)])),
                          "Client", CamelName(NatTypeName(AllNatTypes()[std::get<1>(info.param)])),
                          "Loss", static_cast<int>(std::get<2>(info.param) * 100));
    });

TEST(NatGridExtrasTest, ClientOnTheDevicesLanTalksLocally) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  options.client_on_device_lan = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  const ConnectReport report = scenario->RunConnect();
  EXPECT_TRUE(report.connected);
  EXPECT_TRUE(report.rpc_ok);
  EXPECT_EQ(report.path, "local");
  EXPECT_EQ(report.device_path, "local");
  // Host to host on the LAN, not through the NAT.
  EXPECT_EQ(scenario->client().connection()->active_path()->remote,
            scenario->device_site().host->ip().WithPort(DeviceApp::kPort));
}

TEST(NatGridExtrasTest, ClientLearnsItsPublicAddressFromTheRelay) {
  ScenarioOptions options;
  options.client_nat = NatType::kPortRestricted;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  scenario->RunConnect();
  ASSERT_TRUE(scenario->client().reflexive().has_value());
  EXPECT_EQ(*scenario->client().reflexive(),
            scenario->client_site().nat->ip().WithPort(ClientApp::kPort));  // Port preserved.
  // Once before Connect, then by both ends' peer channels.
  EXPECT_GE(scenario->basestation().relay().counters().reflections, 3u);
}

// A random-port NAT against a port-restricted one: each side learns how its own NAT maps (relay and
// attach port see the same public port, or not) and tells the other; the client, behind the
// random-port NAT, probes from 128 extra ports while the device sprays random ports of the
// client's address; one match makes a direct path, and the losing sockets are closed.
TEST(NatGridExtrasTest, BirthdayProbingFindsARandomPortNatsMapping) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  options.client_nat = NatType::kSymmetricRandom;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  const ConnectReport report = scenario->RunConnect();
  ASSERT_TRUE(report.connected);
  EXPECT_EQ(report.path, "direct");
  const channel::PeerConnection& client = *scenario->client().connection();
  const channel::PeerConnection& device = *scenario->device().peer();
  EXPECT_EQ(client.local_mapping(), channel::NatMapping::kEndpointDependent);
  EXPECT_EQ(client.peer_mapping(), channel::NatMapping::kEndpointIndependent);
  EXPECT_EQ(device.local_mapping(), channel::NatMapping::kEndpointIndependent);
  EXPECT_EQ(device.peer_mapping(), channel::NatMapping::kEndpointDependent);
  EXPECT_EQ(client.counters().spray_sockets_used, 128u);
  EXPECT_EQ(client.counters().spray_probes_sent, 0u);
  EXPECT_GT(device.counters().spray_probes_sent, 0u);
  EXPECT_LE(device.counters().spray_probes_sent, 2048u);
  // The data leaves from the extra socket that matched; the other 127 are closed.
  EXPECT_NE(client.active_path()->socket, 0);
  EXPECT_EQ(scenario->client().extra_sockets(), 1u);
}

// Without the attach port's reflection a side cannot tell how its NAT maps, so no birthday
// probing: the pair falls back on the relay.
TEST(NatGridExtrasTest, NoBirthdayProbingWithoutASecondReflection) {
  ScenarioOptions options;
  options.device_nat = NatType::kPortRestricted;
  options.client_nat = NatType::kSymmetricRandom;
  options.attach_port_reflects = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  const ConnectReport report = scenario->RunConnect();
  ASSERT_TRUE(report.connected);
  EXPECT_EQ(report.path, "relay");
  EXPECT_EQ(scenario->client().connection()->local_mapping(), channel::NatMapping::kUnknown);
  EXPECT_EQ(scenario->device().peer()->counters().spray_probes_sent, 0u);
}

TEST(NatGridExtrasTest, ConnectToAnOfflineDeviceFailsUnavailable) {
  ScenarioOptions options;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Scenario> scenario, Scenario::New(options));
  scenario->client().Connect("cam-404");
  scenario->sim().RunFor(absl::Seconds(2));
  EXPECT_EQ(scenario->client().state(), ClientApp::State::kFailed);
  EXPECT_THAT(scenario->client().status(), testing::StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace edgelink::sim
