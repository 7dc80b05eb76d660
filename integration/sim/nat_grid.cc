// nat_grid: connects a client to a device for every pair of NAT types in the simulator and prints
// which path won and how long it took, in round trips between client and basestation.
//
//   bazel run //integration/sim:nat_grid -- [--loss=0.05] [--seed=1]
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
ABSL_FLAG(bool, trace, false, "Print every packet sent, delivered and dropped (use with --only).");
ABSL_FLAG(bool, verbose, false,
          "After each pair, print both ends' paths and counters and the NATs' counters.");

namespace edgelink::sim {
namespace {

void DescribePaths(const char* who, const channel::PeerConnection* c) {
  if (c == nullptr) {
    std::printf("  %s: no peer connection\n", who);
    return;
  }
  const auto& n = c->counters();
  std::printf("  %s: active %s; sent %llu (probes %llu) received %llu; dropped malformed %llu "
              "unauthenticated %llu replay %llu; switches %llu\n",
              who, c->active_path() ? std::string(channel::PeerConnection::PathName(*c->active_path())).c_str() : "none",
              (unsigned long long)n.packets_sent, (unsigned long long)n.probes_sent,
              (unsigned long long)n.packets_received, (unsigned long long)n.dropped_malformed,
              (unsigned long long)n.dropped_unauthenticated, (unsigned long long)n.dropped_replay,
              (unsigned long long)n.path_switches);
  for (const auto& p : c->paths()) {
    const char* state = p.state == channel::PeerConnection::PathState::kUsable   ? "usable"
                        : p.state == channel::PeerConnection::PathState::kFailed ? "failed"
                                                                                 : "probing";
    std::printf("    %-6s %-22s %-8s rtt %s probes %u\n",
                std::string(channel::PeerConnection::PathName(p)).c_str(),
                p.remote.ToString().c_str(), state, absl::FormatDuration(p.rtt).c_str(),
                p.probes_sent);
  }
}

void DescribeNat(const char* who, const Nat* nat) {
  if (nat == nullptr) return;
  const NatCounters& n = nat->counters();
  std::printf("  %s: mappings %llu, out %llu, in %llu, dropped filtered %llu no-mapping %llu\n",
              who, (unsigned long long)n.mappings_created, (unsigned long long)n.translated_out,
              (unsigned long long)n.translated_in, (unsigned long long)n.dropped_filtered,
              (unsigned long long)n.dropped_no_mapping);
}

void Describe(Scenario& s, NatType device, NatType client, const ConnectReport& r) {
  std::printf("%s x %s: attached %d connected %d rpc %d status %s client reflexive %s\n",
              std::string(NatTypeName(device)).c_str(), std::string(NatTypeName(client)).c_str(),
              r.attached, r.connected, r.rpc_ok, r.status.ToString().c_str(),
              s.client().reflexive() ? s.client().reflexive()->ToString().c_str() : "none");
  DescribePaths("client", s.client().connection());
  DescribePaths("device", s.device().peer());
  DescribeNat("device nat", s.device_site().nat);
  DescribeNat("device inner nat", s.device_site().inner);
  DescribeNat("client nat", s.client_site().nat);
  DescribeNat("client inner nat", s.client_site().inner);
  std::printf("  rpc: client calls %llu retransmissions %llu; device served %llu\n",
              (unsigned long long)s.client().rpc_counters().calls,
              (unsigned long long)s.client().rpc_counters().retransmissions,
              (unsigned long long)s.device().rpc_served());
  const auto& relay = s.basestation().relay().counters();
  std::printf("  relay: binds %llu forwarded %llu dropped %llu\n", (unsigned long long)relay.binds,
              (unsigned long long)relay.packets_forwarded, (unsigned long long)relay.dropped_total());
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
