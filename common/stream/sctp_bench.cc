// sctp_bench: in-memory throughput of SctpTransport. Two transports in one process, joined by a
// pair of queues with no loss, move --megabytes through one stream; the receiver copies every byte
// out, as an application would. Timers run on a virtual clock that jumps to the next deadline when
// the queues are empty, so only CPU time is measured. (usrsctp's own gettimeofday reads, which a
// clock running ahead upsets, only matter for loss recovery, and nothing is lost here; the number
// of jumps is printed.)
//
// Each is run --runs times and the fastest kept. Baseline, in the same run: the same payload, cut into datagrams of exactly the sizes SCTP sent
// (recorded from the data direction), copied into a queue and out again: the cost of the channel
// with no transport at all.
//
// Ends with
//   BENCH sctp_memory mbit_s=<SCTP goodput, Mbit/s> ratio=<SCTP goodput / baseline goodput>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/stream/sctp_transport.h"

ABSL_FLAG(int, megabytes, 100, "Megabytes (10^6 bytes) to move through one stream.");
ABSL_FLAG(int, runs, 3, "Runs of each; the fastest counts (the machine may be busy).");

namespace edgelink::stream {
namespace {

constexpr size_t kWriteSize = 64 * 1024;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "sctp_bench: %s\n", what);
  std::exit(1);
}

struct Side {
  std::unique_ptr<SctpTransport> transport;
  std::deque<std::vector<uint8_t>> inbox;
  bool connected = false;
  bool blocked = false;
  size_t received = 0;
};

struct Result {
  double seconds = 0;
  int timer_jumps = 0;  // Times the queues ran dry during the transfer.
  std::vector<uint16_t> data_datagram_sizes;  // Client to server.
  uint64_t ack_datagrams = 0;                 // Server to client.
};

Result RunSctp(size_t total) {
  Side client, server;
  Result result;
  std::vector<uint8_t> sink(kWriteSize);
  auto callbacks = [&sink](Side& side) {
    SctpTransport::Callbacks callbacks;
    callbacks.on_connected = [&side] { side.connected = true; };
    callbacks.on_writable = [&side] { side.blocked = false; };
    callbacks.on_data = [&side, &sink](uint16_t, absl::Span<const uint8_t> data) {
      std::memcpy(sink.data(), data.data(), std::min(data.size(), sink.size()));
      side.received += data.size();
    };
    return callbacks;
  };
  auto to_server = [&](absl::Span<const uint8_t> d) {
    result.data_datagram_sizes.push_back(static_cast<uint16_t>(d.size()));
    server.inbox.emplace_back(d.begin(), d.end());
  };
  auto to_client = [&](absl::Span<const uint8_t> d) {
    ++result.ack_datagrams;
    client.inbox.emplace_back(d.begin(), d.end());
  };
  auto c = SctpTransport::New(SctpTransport::Role::kClient, to_server, callbacks(client));
  auto s = SctpTransport::New(SctpTransport::Role::kServer, to_client, callbacks(server));
  if (!c.ok() || !s.ok()) Die("SctpTransport::New failed");
  client.transport = *std::move(c);
  server.transport = *std::move(s);

  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  auto pump = [&]() {
    bool moved = false;
    for (Side* side : {&server, &client}) {
      while (!side->inbox.empty()) {
        std::vector<uint8_t> datagram = std::move(side->inbox.front());
        side->inbox.pop_front();
        side->transport->OnDatagram(datagram);
        moved = true;
      }
    }
    return moved;
  };
  auto idle = [&]() {
    now = std::max(now, std::min(client.transport->NextTimeout(now),
                                 server.transport->NextTimeout(now)));
    client.transport->OnTimeout(now);
    server.transport->OnTimeout(now);
  };
  for (int i = 0; i < 100000 && !(client.connected && server.connected); ++i) {
    if (!pump()) idle();
  }
  if (!client.connected || !server.connected) Die("no association");
  auto stream = client.transport->OpenStream();
  if (!stream.ok()) Die("OpenStream failed");
  result.data_datagram_sizes.clear();
  result.ack_datagrams = 0;

  std::vector<uint8_t> payload(kWriteSize);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 131);
  size_t sent = 0;
  const absl::Time start = absl::Now();
  while (server.received < total) {
    while (!client.blocked && sent < total) {
      const size_t size = std::min(kWriteSize, total - sent);
      auto taken = client.transport->Send(*stream, absl::MakeConstSpan(payload).first(size));
      if (!taken.ok()) Die("Send failed");
      sent += *taken;
      if (*taken < size) client.blocked = true;
    }
    if (!pump()) {
      idle();
      ++result.timer_jumps;
    }
    if (client.transport->state() == SctpTransport::State::kClosed) Die("association closed");
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return result;
}

// The same payload through a queue of datagrams of the recorded sizes: copy in, queue, copy out.
double RunBaseline(size_t total, const std::vector<uint16_t>& sizes) {
  std::vector<uint8_t> payload(kWriteSize);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 131);
  std::vector<uint8_t> sink(kWriteSize);
  std::deque<std::vector<uint8_t>> queue;
  size_t moved = 0;
  size_t next = 0;
  size_t offset = 0;
  const absl::Time start = absl::Now();
  while (moved < total) {
    // A burst, as a window's worth of packets sits in the queue in the SCTP run.
    for (int i = 0; i < 64 && moved < total; ++i) {
      size_t size = std::min<size_t>(sizes[next++ % sizes.size()], total - moved);
      size = std::min(size, payload.size() - offset);
      queue.emplace_back(payload.begin() + static_cast<std::ptrdiff_t>(offset),
                         payload.begin() + static_cast<std::ptrdiff_t>(offset + size));
      offset = (offset + size) % payload.size();
      moved += size;
    }
    while (!queue.empty()) {
      const std::vector<uint8_t>& datagram = queue.front();
      std::memcpy(sink.data(), datagram.data(), datagram.size());
      queue.pop_front();
    }
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

int Main() {
  const size_t total = static_cast<size_t>(absl::GetFlag(FLAGS_megabytes)) * 1'000'000;
  const int runs = absl::GetFlag(FLAGS_runs);
  if (total == 0 || runs < 1) Die("--megabytes and --runs must be positive");
  Result sctp = RunSctp(total);
  for (int run = 1; run < runs; ++run) {
    Result again = RunSctp(total);
    if (again.seconds < sctp.seconds) sctp = std::move(again);
  }
  if (sctp.data_datagram_sizes.empty()) Die("no datagrams recorded");
  uint64_t datagram_bytes = 0;
  for (uint16_t size : sctp.data_datagram_sizes) datagram_bytes += size;
  double baseline_seconds = RunBaseline(total, sctp.data_datagram_sizes);
  for (int run = 1; run < runs; ++run) {
    baseline_seconds = std::min(baseline_seconds, RunBaseline(total, sctp.data_datagram_sizes));
  }

  const double sctp_mbps = total / sctp.seconds / 1e6;
  const double baseline_mbps = total / baseline_seconds / 1e6;
  std::printf("sctp_memory: %zu MB over one stream in %.3f s (best of %d): %.1f MB/s (%.0f Mbit/s)\n",
              total / 1'000'000, sctp.seconds, runs, sctp_mbps, sctp_mbps * 8);
  std::printf("  %zu data datagrams (mean %.0f bytes, %.1f%% overhead), %llu back, %d timer jumps\n",
              sctp.data_datagram_sizes.size(),
              static_cast<double>(datagram_bytes) / sctp.data_datagram_sizes.size(),
              100.0 * (static_cast<double>(datagram_bytes) / total - 1),
              static_cast<unsigned long long>(sctp.ack_datagrams), sctp.timer_jumps);
  std::printf("baseline (copy through a datagram queue, same sizes): %.1f MB/s (%.0f Mbit/s)\n",
              baseline_mbps, baseline_mbps * 8);
  std::printf("BENCH sctp_memory mbit_s=%.0f ratio=%.4f\n", sctp_mbps * 8,
              sctp_mbps / baseline_mbps);
  return 0;
}

}  // namespace
}  // namespace edgelink::stream

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return edgelink::stream::Main();
}
