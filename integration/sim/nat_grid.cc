// nat_grid: connects a client to a device for every pair of NAT types in the simulator and prints
// which path won and how long it took, in round trips between client and basestation.
//
//   bazel run //integration/sim:nat_grid -- [--loss=0.05] [--seed=1] [--reflect_first=false]
//       [--predicted_ports=0]
//   bazel run //integration/sim:nat_grid -- --only=sym-random,port-restricted --verbose [--trace]
//
// The last line is machine-readable:
//   BENCH nat_grid pairs=49 connected=<n> direct=<n> relay=<n> median_rtts=<x>
// connected: connect and one RPC round trip worked; direct: the final path is not the relay
// ("direct" or "local"); median_rtts: median over connected pairs of the time from the Connect
// call to the first authenticated packet from the device.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "integration/sim/scenario.h"

ABSL_FLAG(double, loss, 0.0,
          "Packet loss on the device's and the client's own links, each direction (0.05 = 5%).");
ABSL_FLAG(uint64_t, seed, 1, "The seed of every run (one run per pair).");
ABSL_FLAG(std::string, only, "",
          "Run one pair only, as <device type>,<client type> (e.g. sym-random,port-restricted).");
ABSL_FLAG(bool, reflect_first, true,
          "The client asks the relay for its public address before Connect and offers it as a "
          "candidate (one round trip more); otherwise only the peer channel's trickle tells it.");
ABSL_FLAG(int, predicted_ports, -1,
          "Ports above each server-reflexive candidate both ends also probe (-1: PeerConnection's "
          "default).");
ABSL_FLAG(bool, trace, false, "Print every packet sent, delivered and dropped (use with --only).");
ABSL_FLAG(bool, verbose, false,
          "After each pair, print both ends' paths and counters and the NATs' counters.");

namespace edgelink::sim {
namespace {

// --verbose: both ends' paths and counters, the NATs' and the relay's counters.
void DescribePaths(absl::string_view who, const channel::PeerConnection* c) {
  if (c == nullptr) {
    absl::PrintF("  %s: no peer connection\n", who);
    return;
  }
  const channel::PeerConnectionCounters& n = c->counters();
  absl::PrintF("  %s: active %s; sent %d (probes %d) received %d; dropped malformed %d "
               "unauthenticated %d replay %d; path switches %d\n",
               who,
               c->active_path() != nullptr ? channel::PeerConnection::PathName(*c->active_path())
                                           : "none",
               n.packets_sent, n.probes_sent, n.packets_received, n.dropped_malformed,
               n.dropped_unauthenticated, n.dropped_replay, n.path_switches);
  for (const channel::PeerConnection::Path& p : c->paths()) {
    const char* state = p.state == channel::PeerConnection::PathState::kUsable   ? "usable"
                        : p.state == channel::PeerConnection::PathState::kFailed ? "failed"
                                                                                 : "probing";
    absl::PrintF("    %-6s %-22s %-8s rtt %s probes %d\n", channel::PeerConnection::PathName(p),
                 p.remote.ToString(), state, absl::FormatDuration(p.rtt), p.probes_sent);
  }
}

void DescribeNat(absl::string_view who, const Nat* nat) {
  if (nat == nullptr) return;
  const NatCounters& n = nat->counters();
  absl::PrintF("  %s: mappings %d, out %d, in %d, dropped filtered %d no-mapping %d\n", who,
               n.mappings_created, n.translated_out, n.translated_in, n.dropped_filtered,
               n.dropped_no_mapping);
}

void Describe(Scenario& s, NatType device, NatType client, const ConnectReport& r) {
  absl::PrintF("%s x %s: attached %d connected %d rpc %d status %s client reflexive %s\n",
               NatTypeName(device), NatTypeName(client), r.attached, r.connected, r.rpc_ok,
               r.status.ToString(),
               s.client().reflexive() ? s.client().reflexive()->ToString() : "none");
  DescribePaths("client", s.client().connection());
  DescribePaths("device", s.device().peer());
  DescribeNat("device nat", s.device_site().nat);
  DescribeNat("device inner nat", s.device_site().inner);
  DescribeNat("client nat", s.client_site().nat);
  DescribeNat("client inner nat", s.client_site().inner);
  absl::PrintF("  rpc: client calls %d retransmissions %d; device served %d\n",
               s.client().rpc_counters().calls, s.client().rpc_counters().retransmissions,
               s.device().rpc_served());
  const basestation::RelayCounters& relay = s.basestation().relay().counters();
  absl::PrintF("  relay: binds %d reflections %d forwarded %d dropped %d\n", relay.binds,
               relay.reflections, relay.packets_forwarded, relay.dropped_total());
}

int Main() {
  const double loss = absl::GetFlag(FLAGS_loss);
  const std::vector<NatType> types = AllNatTypes();
  struct Cell {
    NatType device, client;
    ConnectReport report;
  };
  std::vector<Cell> cells;
  const std::string only = absl::GetFlag(FLAGS_only);
  for (NatType device : types) {
    for (NatType client : types) {
      if (!only.empty() && only != absl::StrCat(NatTypeName(device), ",", NatTypeName(client))) {
        continue;
      }
      ScenarioOptions options;
      options.seed = absl::GetFlag(FLAGS_seed);
      options.device_nat = device;
      options.client_nat = client;
      options.loss = loss;
      options.client_reflects_first = absl::GetFlag(FLAGS_reflect_first);
      if (absl::GetFlag(FLAGS_predicted_ports) >= 0) {
        options.predicted_ports = absl::GetFlag(FLAGS_predicted_ports);
      }
      absl::StatusOr<std::unique_ptr<Scenario>> scenario = Scenario::New(options);
      if (!scenario.ok()) {
        std::fprintf(stderr, "cannot build scenario: %s\n", scenario.status().ToString().c_str());
        return 1;
      }
      if (absl::GetFlag(FLAGS_trace)) {
        const absl::Time start = (*scenario)->sim().now();
        (*scenario)->sim().set_tracer([start](absl::Time at, const std::string& line) {
          std::printf("%10.3f %s\n", absl::ToDoubleSeconds(at - start), line.c_str());
        });
      }
      cells.push_back({device, client, (*scenario)->RunConnect()});
      if (absl::GetFlag(FLAGS_verbose)) Describe(**scenario, device, client, cells.back().report);
    }
  }

  if (cells.empty()) {
    std::fprintf(stderr, "no such pair: %s\n", only.c_str());
    return 1;
  }
  std::printf("NAT grid: device (rows) x client (columns), loss %.0f%% on each end's own link, "
              "client<->basestation RTT %s\n",
              loss * 100, absl::FormatDuration(cells[0].report.rtt).c_str());
  std::printf("cell: path first-authenticated-byte/final-path (round trips to the basestation); "
              "FAIL = no connection or RPC failed; * = the device's view differs (listed below)\n\n");
  std::printf("%-16s", "device \\ client");
  for (NatType client : types) std::printf(" %-17s", std::string(NatTypeName(client)).c_str());
  std::printf("\n");
  std::vector<std::string> differing;
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& c = cells[i];
    if (i % types.size() == 0) std::printf("%-16s", std::string(NatTypeName(c.device)).c_str());
    std::string text;
    if (!c.report.connected || !c.report.rpc_ok) {
      text = absl::StrFormat("FAIL %s", c.report.path);
    } else {
      text = absl::StrFormat("%s %.1f/%.1f", c.report.path, c.report.first_byte_rtts,
                             c.report.final_path_rtts);
    }
    if (c.report.device_path != c.report.path) {
      text += "*";
      differing.push_back(absl::StrFormat("%s x %s: client %s, device %s",
                                          NatTypeName(c.device), NatTypeName(c.client),
                                          c.report.path, c.report.device_path));
    }
    std::printf(" %-17s", text.c_str());
    if (i % types.size() == types.size() - 1) std::printf("\n");
  }
  if (!differing.empty()) {
    std::printf("\nviews that differ:\n");
    for (const std::string& line : differing) std::printf("  %s\n", line.c_str());
  }

  int connected = 0, direct = 0, relay = 0;
  std::vector<double> rtts;
  for (const Cell& c : cells) {
    if (!c.report.connected || !c.report.rpc_ok) continue;
    ++connected;
    if (c.report.path == "relay") {
      ++relay;
    } else {
      ++direct;
    }
    rtts.push_back(c.report.first_byte_rtts);
  }
  double median = 0;
  if (!rtts.empty()) {
    std::sort(rtts.begin(), rtts.end());
    median = rtts.size() % 2 == 1 ? rtts[rtts.size() / 2]
                                  : (rtts[rtts.size() / 2 - 1] + rtts[rtts.size() / 2]) / 2;
  }
  std::printf("\nBENCH nat_grid pairs=%zu connected=%d direct=%d relay=%d median_rtts=%.2f\n",
              cells.size(), connected, direct, relay, median);
  return 0;
}

}  // namespace
}  // namespace edgelink::sim

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return edgelink::sim::Main();
}
