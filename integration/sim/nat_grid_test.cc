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
    /* port-restr.  */ {"direct", "direct", "direct", "direct", "direct", "relay", "direct"},
    /* sym-seq      */ {"direct", "direct", "direct", "direct", "relay", "relay", "direct"},
    /* sym-random   */ {"direct", "direct", "direct", "relay", "relay", "relay", "relay"},
    /* double-nat   */ {"direct", "direct", "direct", "direct", "direct", "relay", "direct"},
};

// Setup time bounds without loss, in round trips between client and basestation: REFLECT (1),
// Connect through the basestation to the device and back (2), then a probe round trip over the
// path (1.6 direct, 2 through the relay). The final path may come later: a symmetric device's
// new port reaches the client only with the device's next probe.
constexpr double kMaxFirstByteRtts = 5.0;
constexpr double kMaxFinalPathRtts = 8.5;

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
  EXPECT_LE(report.final_path_rtts, kMaxFinalPathRtts);
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
