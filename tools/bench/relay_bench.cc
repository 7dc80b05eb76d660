// relay_bench: throughput of the basestation relay against a raw UDP forwarder, on loopback.
//
// A child process runs RelayService on 127.0.0.1:0 (its port comes back through a pipe). Two peer
// sockets in this process bind a relay session with a ticket; then a sender thread blasts
// --size-byte datagrams from peer A with sendmmsg for --seconds, and the main thread counts what
// arrives at peer B (recvmmsg). Then, in the same run and with the same harness, a second child
// runs a minimal raw forwarder (recvmmsg, "is it from A?", sendmmsg to B: no protocol at all), and
// the same measurement is repeated. The datagrams are peer packets of the bound session (0x02, a
// type byte, the session's channel id, then filler): the relay finds the session by that id.
// Delivered throughput is measured at the receiver, which counts lengths without copying payloads
// so that it is not the bottleneck. With two or more CPUs the forwarder (relay or raw) gets a CPU
// of its own (--pin) and the peers share the rest.
// --rounds alternates the two measurements and keeps the best of each, which damps noise from
// other work on the host.
//
// The relay's per-session rate cap is lifted for the run (it would otherwise be the figure), but
// the token bucket still runs on every packet.
//
// Ends with
//   BENCH relay mbit_s=… raw_mbit_s=… ratio=…
// ratio is relay over raw.
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "basestation/relay/relay.h"
#include "basestation/relay/relay_service.h"
#include "common/crypto/secret_bytes.h"
#include "common/io/event_loop.h"
#include "common/io/sockaddr.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"

ABSL_FLAG(double, seconds, 3, "Length of each measurement (relay, then raw).");
ABSL_FLAG(int, size, 1200, "Datagram size in bytes.");
ABSL_FLAG(bool, pin, true,
          "With two or more CPUs, run the forwarder on its own CPU and the peers on the others, so "
          "the forwarder, not scheduling, limits the throughput.");
ABSL_FLAG(int, rounds, 3,
          "Measurements of each kind, alternated (relay, raw, relay, raw, ...); the best of each "
          "is reported.");

namespace edgelink::bench {
namespace {

constexpr size_t kBatch = 64;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "relay_bench: %s\n", message.c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Die(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

// CPU seconds a process has used so far, in user space and in the kernel.
struct CpuTimes {
  double user = 0;
  double system = 0;
};
CpuTimes CpuSeconds(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  if (text.empty()) return {};
  std::vector<std::string> fields = absl::StrSplit(text.substr(text.rfind(')') + 2), ' ');
  if (fields.size() < 13) return {};
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {std::stod(fields[11]) / tick, std::stod(fields[12]) / tick};
}

const net::Endpoint kLoopback = net::Endpoint::Ipv4({127, 0, 0, 1}, 0);

std::unique_ptr<io::UdpSocket> BindLoopback() {
  auto socket = Check(io::UdpSocket::Bind(kLoopback), "bind");
  (void)socket->SetReceiveBufferSize(8 << 20);
  (void)socket->SetSendBufferSize(8 << 20);
  return socket;
}

void WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, timeout_ms);
}

// CPU sets for --pin: the last CPU for the forwarder, the rest for the peers. Empty when there
// are fewer than two CPUs to split.
struct Cpus {
  bool split = false;
  cpu_set_t forwarder;
  cpu_set_t peers;
};

Cpus SplitCpus(bool pin) {
  Cpus cpus;
  cpu_set_t allowed;
  CPU_ZERO(&cpus.forwarder);
  CPU_ZERO(&cpus.peers);
  if (!pin || sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2) {
    return cpus;
  }
  int last = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) last = cpu;
  }
  cpus.peers = allowed;
  CPU_CLR(last, &cpus.peers);
  CPU_SET(last, &cpus.forwarder);
  cpus.split = true;
  return cpus;
}

// The relay child: RelayService on its own loop until killed. Its port goes up `port_pipe`.
[[noreturn]] void RunRelay(const basestation::RelayKey& key, int port_pipe) {
  auto loop = Check(io::EventLoop::New(), "relay loop");
  basestation::RelayOptions options;
  options.session_bytes_per_second = 1e15;
  options.session_burst_bytes = 1e12;
  auto service =
      Check(basestation::RelayService::Start(options, key, kLoopback, loop.get()), "relay");
  const uint16_t port = service->local_endpoint().port();
  if (write(port_pipe, &port, sizeof(port)) != sizeof(port)) _exit(1);
  close(port_pipe);
  loop->Run();
  _exit(0);
}

// The baseline child: forwards every datagram from `from` to `to`, batched, until killed. As
// little as a forwarder can do: one recvmmsg and one sendmmsg per batch, buffers reused in place.
[[noreturn]] void RunRawForwarder(io::UdpSocket& socket, const net::Endpoint& from,
                                  const net::Endpoint& to) {
  sockaddr_storage from_address, to_address;
  const socklen_t from_length = *io::ToSockaddr(from, &from_address);
  const socklen_t to_length = *io::ToSockaddr(to, &to_address);
  constexpr size_t kSlot = 2048;
  std::vector<uint8_t> storage(kBatch * kSlot);
  iovec in_iov[kBatch], out_iov[kBatch];
  sockaddr_storage sources[kBatch];
  mmsghdr in[kBatch], out[kBatch];
  std::memset(in, 0, sizeof(in));
  std::memset(out, 0, sizeof(out));
  for (size_t i = 0; i < kBatch; ++i) {
    in_iov[i] = {storage.data() + i * kSlot, kSlot};
    in[i].msg_hdr.msg_iov = &in_iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
    in[i].msg_hdr.msg_name = &sources[i];
    out[i].msg_hdr.msg_iov = &out_iov[i];
    out[i].msg_hdr.msg_iovlen = 1;
    out[i].msg_hdr.msg_name = &to_address;
    out[i].msg_hdr.msg_namelen = to_length;
  }
  for (;;) {
    for (size_t i = 0; i < kBatch; ++i) in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    const int n = recvmmsg(socket.fd(), in, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      WaitReadable(socket.fd(), -1);
      continue;
    }
    unsigned int m = 0;
    for (int i = 0; i < n; ++i) {
      if (in[i].msg_hdr.msg_namelen != from_length ||
          std::memcmp(&sources[i], &from_address, from_length) != 0) {
        continue;
      }
      out_iov[m] = {in_iov[i].iov_base, in[i].msg_len};
      ++m;
    }
    if (m > 0) (void)sendmmsg(socket.fd(), out, m, 0);
  }
}

struct Measurement {
  double mbit_s = 0;
  double sent_mbit_s = 0;
  double forwarder_cpu = 0;   // CPU-seconds of the forwarder per wall second.
  double forwarder_user = 0;  // Of which in user space.
};

class Bench {
 public:
  Bench(double seconds, size_t size, bool pin)
      : seconds_(seconds),
        size_(size),
        cpus_(SplitCpus(pin)),
        key_(Check(basestation::RelayKey::Derive(
                       crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x42))),
                   "relay key")) {}

  void Run(int rounds) {
    // The relay child is forked before this process has any thread or peer socket.
    StartRelay();
    if (cpus_.split) sched_setaffinity(0, sizeof(cpus_.peers), &cpus_.peers);
    peer_a_ = BindLoopback();
    peer_b_ = BindLoopback();
    BindRelaySession();
    Measurement relay, raw;
    for (int round = 0; round < rounds; ++round) {
      Measurement r = Measure(relay_endpoint_, relay_pid_);
      Print("relay", r);
      if (r.mbit_s > relay.mbit_s) relay = r;
      if (round == 0) StartRaw();
      Measurement w = Measure(raw_endpoint_, raw_pid_);
      Print("raw  ", w);
      if (w.mbit_s > raw.mbit_s) raw = w;
    }
    for (pid_t pid : {relay_pid_, raw_pid_}) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    std::printf("%zu-byte datagrams, %.1f s each, %s\n", size_, seconds_,
                cpus_.split ? "forwarder on its own CPU" : "not pinned");
    // Less sensitive to other work on the host than wall-clock throughput.
    const double relay_per_cpu = relay.forwarder_cpu > 0 ? relay.mbit_s / relay.forwarder_cpu : 0;
    const double raw_per_cpu = raw.forwarder_cpu > 0 ? raw.mbit_s / raw.forwarder_cpu : 0;
    std::printf("per forwarder CPU-second: relay %.0f Mbit, raw %.0f Mbit (ratio %.3f)\n",
                relay_per_cpu, raw_per_cpu, raw_per_cpu > 0 ? relay_per_cpu / raw_per_cpu : 0.0);
    std::printf("BENCH relay mbit_s=%.0f raw_mbit_s=%.0f ratio=%.3f\n", relay.mbit_s, raw.mbit_s,
                raw.mbit_s > 0 ? relay.mbit_s / raw.mbit_s : 0.0);
  }

 private:
  static void Print(const char* name, const Measurement& m) {
    std::printf("%s: %.0f Mbit/s delivered (%.0f sent), forwarder %.0f%% CPU (%.0f%% user)\n",
                name, m.mbit_s, m.sent_mbit_s, 100 * m.forwarder_cpu, 100 * m.forwarder_user);
  }

  void StartRelay() {
    int fds[2];
    if (pipe(fds) != 0) Die("pipe");
    std::fflush(stdout);
    relay_pid_ = fork();
    if (relay_pid_ < 0) Die("fork");
    if (relay_pid_ == 0) {
      if (cpus_.split) sched_setaffinity(0, sizeof(cpus_.forwarder), &cpus_.forwarder);
      close(fds[0]);
      RunRelay(key_, fds[1]);
    }
    close(fds[1]);
    uint16_t port = 0;
    if (read(fds[0], &port, sizeof(port)) != sizeof(port)) Die("relay did not start");
    close(fds[0]);
    relay_endpoint_ = kLoopback.WithPort(port);
  }

  void StartRaw() {
    auto socket = BindLoopback();
    raw_endpoint_ = socket->local_endpoint();
    std::fflush(stdout);
    raw_pid_ = fork();
    if (raw_pid_ < 0) Die("fork");
    if (raw_pid_ == 0) {
      if (cpus_.split) sched_setaffinity(0, sizeof(cpus_.forwarder), &cpus_.forwarder);
      RunRawForwarder(*socket, peer_a_->local_endpoint(), peer_b_->local_endpoint());
    }
  }

  // Both peers bind with one ticket, retrying until each hears "both bound".
  void BindRelaySession() {
    basestation::RelaySessionId id;
    for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i + 1);
    channel_id_ = basestation::RelayChannelId(id);
    const basestation::RelayTicket ticket =
        basestation::MakeRelayTicket(key_, id, absl::Now() + absl::Hours(1));
    const std::vector<uint8_t> bind_a = BuildRelayBind(basestation::RelaySide::kClient, ticket);
    const std::vector<uint8_t> bind_b = BuildRelayBind(basestation::RelaySide::kDevice, ticket);
    bool a_bound = false, b_bound = false;
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    io::ReceiveBuffer buffer(8);
    while (!(a_bound && b_bound)) {
      if (absl::Now() > give_up) Die("peers could not bind a relay session");
      if (!a_bound) (void)peer_a_->SendTo(relay_endpoint_, bind_a);
      if (!b_bound) (void)peer_b_->SendTo(relay_endpoint_, bind_b);
      for (auto [peer, bound] : {std::pair{peer_a_.get(), &a_bound}, {peer_b_.get(), &b_bound}}) {
        WaitReadable(peer->fd(), 50);
        if (!peer->ReceiveBatch(buffer).ok()) continue;
        for (const io::ReceivedDatagram& d : buffer.datagrams()) {
          absl::StatusOr<basestation::RelayBound> b = basestation::ParseRelayBound(d.bytes);
          if (b.ok() && b->state == basestation::RelayBoundState::kBound) *bound = true;
        }
      }
    }
  }

  // Blasts from A to `target` for the measurement window and counts what reaches B.
  Measurement Measure(const net::Endpoint& target, pid_t forwarder) {
    Drain();
    // A peer packet of the session: 0x02 || type (DATA) || channel id || packet number, sealed
    // bytes (filler here: the relay never opens them).
    std::vector<uint8_t> payload(size_, 0x5a);
    payload[0] = 0x02;
    payload[1] = 0x03;
    for (int i = 0; i < 8; ++i) payload[2 + i] = static_cast<uint8_t>(channel_id_ >> (56 - 8 * i));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent{0};
    std::thread sender([&] { Blast(target, payload, stop, sent); });

    // Warm up (the forwarder's caches, the sockets' queues), then count for the window.
    const absl::Duration warmup = std::min(absl::Seconds(seconds_ / 5), absl::Milliseconds(300));
    Receive(absl::Now() + warmup);
    const uint64_t sent_before = sent.load();
    const CpuTimes cpu_before = CpuSeconds(forwarder);
    const absl::Time start = absl::Now();
    const uint64_t bytes = Receive(start + absl::Seconds(seconds_));
    const double wall = absl::ToDoubleSeconds(absl::Now() - start);
    const CpuTimes cpu_after = CpuSeconds(forwarder);
    const uint64_t sent_bytes = (sent.load() - sent_before) * size_;
    stop = true;
    sender.join();
    Measurement m;
    m.mbit_s = bytes * 8 / wall / 1e6;
    m.sent_mbit_s = sent_bytes * 8 / wall / 1e6;
    m.forwarder_user = (cpu_after.user - cpu_before.user) / wall;
    m.forwarder_cpu = m.forwarder_user + (cpu_after.system - cpu_before.system) / wall;
    return m;
  }

  void Blast(const net::Endpoint& target, const std::vector<uint8_t>& payload,
             std::atomic<bool>& stop, std::atomic<uint64_t>& sent) {
    sockaddr_storage address;
    const socklen_t length = *io::ToSockaddr(target, &address);
    iovec iov[kBatch];
    mmsghdr headers[kBatch];
    std::memset(headers, 0, sizeof(headers));
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {const_cast<uint8_t*>(payload.data()), payload.size()};
      headers[i].msg_hdr.msg_iov = &iov[i];
      headers[i].msg_hdr.msg_iovlen = 1;
      headers[i].msg_hdr.msg_name = &address;
      headers[i].msg_hdr.msg_namelen = length;
    }
    while (!stop.load(std::memory_order_relaxed)) {
      const int n = sendmmsg(peer_a_->fd(), headers, kBatch, 0);
      if (n > 0) {
        sent.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      } else {
        pollfd p{peer_a_->fd(), POLLOUT, 0};
        poll(&p, 1, 10);
      }
    }
  }

  // Counts bytes arriving at B until `until`.
  uint64_t Receive(absl::Time until) {
    uint64_t bytes = 0;
    for (;;) {
      const absl::Time now = absl::Now();
      if (now >= until) return bytes;
      absl::StatusOr<size_t> n = peer_b_->ReceiveBatch(receive_buffer_);
      if (!n.ok() || *n == 0) {
        WaitReadable(peer_b_->fd(),
                     static_cast<int>(absl::ToInt64Milliseconds(until - now)) + 1);
        continue;
      }
      for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) bytes += d.length;
    }
  }

  // Empties B's queue between measurements.
  void Drain() {
    for (;;) {
      WaitReadable(peer_b_->fd(), 50);
      absl::StatusOr<size_t> n = peer_b_->ReceiveBatch(receive_buffer_);
      if (!n.ok() || *n == 0) return;
    }
  }

  const double seconds_;
  const size_t size_;
  const Cpus cpus_;
  const basestation::RelayKey key_;
  uint64_t channel_id_ = 0;  // Of the bound relay session.
  pid_t relay_pid_ = 0;
  pid_t raw_pid_ = 0;
  net::Endpoint relay_endpoint_;
  net::Endpoint raw_endpoint_;
  std::unique_ptr<io::UdpSocket> peer_a_;
  std::unique_ptr<io::UdpSocket> peer_b_;
  // Small slots: the receiver counts lengths (recvmmsg reports the full length of a truncated
  // datagram) and skips copying payloads, so it is cheaper than the forwarder it measures.
  io::ReceiveBuffer receive_buffer_{kBatch, 64};
};

}  // namespace
}  // namespace edgelink::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int size = absl::GetFlag(FLAGS_size);
  if (size < 18 || size > 1400) {  // At least a peer packet header.
    std::fprintf(stderr, "relay_bench: --size must be in [18, 1400]\n");
    return 2;
  }
  edgelink::bench::Bench(absl::GetFlag(FLAGS_seconds), static_cast<size_t>(size),
                         absl::GetFlag(FLAGS_pin))
      .Run(std::max(1, absl::GetFlag(FLAGS_rounds)));
  return 0;
}
