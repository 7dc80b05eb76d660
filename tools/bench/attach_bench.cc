// attach_bench: N simulated devices (the real device core, one UDP socket each) attach to a real
// basestation process over loopback; then every device sends keep-alives as fast as answers come
// back. A raw UDP echo server (recvmmsg/sendmmsg, no protocol, no crypto) is measured in the same
// run with the same client harness: the physical limit of a one-core UDP request/response server.
//
// Ends with
//   BENCH attach devices=N attach_per_s=… keepalive_per_s=… bytes_per_device=… ratio=…
// keepalive_per_s is per basestation CPU-second (per core); ratio is that over the echo server's
// echoes per CPU-second.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "basestation/registry/registry.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "device/core/attach_client.h"
#include "tools/bench/bench_util.h"

ABSL_FLAG(int, devices, 10000, "Simulated devices (one UDP socket each).");
ABSL_FLAG(double, seconds, 3, "Length of the keep-alive and echo phases.");
ABSL_FLAG(std::string, basestation, "", "Path to the basestation binary.");

namespace edgelink::bench {
namespace {

// The baseline: echo every datagram back, batched, until killed.
[[noreturn]] void RunEchoServer(io::UdpSocket& socket) {
  io::ReceiveBuffer buffer;
  std::vector<io::OutgoingDatagram> out;
  for (;;) {
    absl::StatusOr<size_t> n = socket.ReceiveBatch(buffer);
    if (!n.ok() || *n == 0) {
      pollfd p{socket.fd(), POLLIN, 0};
      poll(&p, 1, -1);
      continue;
    }
    out.clear();
    for (const io::ReceivedDatagram& d : buffer.datagrams()) out.push_back({d.source, d.bytes});
    (void)socket.SendBatch(out);
  }
}

struct SimDevice {
  std::unique_ptr<io::UdpSocket> socket;
  std::unique_ptr<device::AttachClient> client;
  uint64_t echoes = 0;
};

class Bench {
 public:
  explicit Bench(int devices) : devices_(devices) {}

  void Run() {
    RaiseFileLimit(devices_ + 100);
    const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                                                    : "/tmp",
                                         "/attach_bench.", getpid());
    mkdir(dir.c_str(), 0700);
    const std::string db = dir + "/registry.db";
    std::vector<crypto::SecretBytes> secrets = Provision(db);

    loop_ = Check(io::EventLoop::New(), "event loop");
    MeasureEcho();
    auto [pid, ready] = Spawn({absl::GetFlag(FLAGS_basestation), "serve", "--registry=" + db,
                               "--listen=127.0.0.1:0", "--metrics-listen=", "--relay-listen="});
    basestation_ = pid;
    std::vector<std::string> words = absl::StrSplit(ready, ' ');
    if (words.size() < 2 || words[0] != "READY") Die("basestation did not start: " + ready);
    server_ = Check(net::Endpoint::Parse(words[1].substr(words[1].find('=') + 1)), "READY line");

    // Memory per device is the slope between half and all devices attached, so what the process
    // allocates once (first-use pools, the registry's page cache) does not count.
    sims_.resize(devices_);
    const int half = devices_ / 2;
    double attach_s = Attach(secrets, 0, half);
    const int64_t rss_half = ResidentBytes(basestation_);
    attach_s += Attach(secrets, half, devices_);
    const int64_t rss_all = ResidentBytes(basestation_);
    const double keepalive_per_cpu_s = MeasureKeepAlives();
    kill(basestation_, SIGTERM);
    waitpid(basestation_, nullptr, 0);

    const double bytes_per_device = static_cast<double>(rss_all - rss_half) / (devices_ - half);
    std::printf("attach: %d devices in %.2f s\n", devices_, attach_s);
    std::printf("basestation memory: %+.1f MiB from %d to %d sessions\n",
                (rss_all - rss_half) / 1048576.0, half, devices_);
    std::printf("keep-alives: %.0f/s wall, %.0f per basestation CPU-second\n", keepalive_wall_,
                keepalive_per_cpu_s);
    std::printf("raw UDP echo: %.0f/s wall, %.0f per echo-server CPU-second\n", echo_wall_,
                echo_per_cpu_s_);
    std::printf("BENCH attach devices=%d attach_per_s=%.0f keepalive_per_s=%.0f "
                "bytes_per_device=%.0f ratio=%.3f\n",
                devices_, devices_ / attach_s, keepalive_per_cpu_s, bytes_per_device,
                keepalive_per_cpu_s / echo_per_cpu_s_);
  }

 private:
  std::vector<crypto::SecretBytes> Provision(const std::string& db) {
    auto registry = Check(basestation::Registry::Open(db), "registry");
    std::vector<crypto::SecretBytes> secrets;
    for (int i = 0; i < devices_; ++i) {
      basestation::ProvisionedDevice d =
          Check(registry->Provision(absl::StrCat("bench-", i), "bench"), "provision");
      secrets.push_back(std::move(d.secret));
    }
    return secrets;
  }

  SimDevice& NewSocket(SimDevice& device) {
    device.socket = Check(io::UdpSocket::Bind(*net::Endpoint::Parse("127.0.0.1:0")), "bind");
    return device;
  }

  // Attaches devices [begin, end) and returns how long that took.
  double Attach(std::vector<crypto::SecretBytes>& secrets, int begin, int end) {
    const absl::Time start = absl::Now();
    for (int i = begin; i < end; ++i) {
      SimDevice& sim = sims_[i];
      if (!sim.socket) NewSocket(sim);
      device::AttachClientOptions options;
      options.device_id = absl::StrCat("bench-", i);
      options.secret = std::move(secrets[i]);
      options.server = server_;
      sim.client = Check(device::AttachClient::New(std::move(options), &random_), "client");
      (void)loop_->Watch(sim.socket->fd(), [this, &sim] { Receive(sim); });
      sim.client->Start(absl::Now());
      Flush(sim);
    }
    // Retransmissions are driven by each client's own timer.
    int attached = 0;
    const absl::Time give_up = start + absl::Seconds(120);
    while (attached < end - begin) {
      loop_->RunOnce(absl::Milliseconds(20));
      attached = 0;
      const absl::Time now = absl::Now();
      for (int i = begin; i < end; ++i) {
        SimDevice& sim = sims_[i];
        if (sim.client->next_timeout() <= now) {
          sim.client->OnTimeout(now);
          Flush(sim);
        }
        attached += sim.client->state() == device::AttachClient::State::kAttached;
      }
      if (now > give_up) Die(absl::StrCat("only ", attached, " of ", end - begin, " attached"));
    }
    return absl::ToDoubleSeconds(absl::Now() - start);
  }

  void Receive(SimDevice& sim) {
    absl::StatusOr<size_t> n = sim.socket->ReceiveBatch(buffer_);
    if (!n.ok()) return;
    for (const io::ReceivedDatagram& d : buffer_.datagrams()) {
      if (sim.client) {
        sim.client->OnPacket(d.source, d.bytes, absl::Now());
        Flush(sim);
      } else {
        ++sim.echoes;
      }
    }
  }

  void Flush(SimDevice& sim) {
    for (const net::Datagram& d : sim.client->TakeOutgoing()) (void)sim.socket->SendTo(d.to, d.bytes);
  }

  // Rounds of one keep-alive per device, each round waiting for the answers (or 200 ms).
  double MeasureKeepAlives() {
    const double cpu_start = CpuSeconds(basestation_);
    const absl::Time start = absl::Now();
    uint64_t acks = 0;
    while (absl::Now() - start < absl::Seconds(absl::GetFlag(FLAGS_seconds))) {
      uint64_t received_before = 0;
      for (SimDevice& sim : sims_) received_before += sim.client->counters().packets_received;
      for (SimDevice& sim : sims_) {
        sim.client->OnTimeout(sim.client->next_timeout());  // Due now: sends a keep-alive.
        Flush(sim);
      }
      uint64_t received = 0;
      const absl::Time round_end = absl::Now() + absl::Milliseconds(200);
      while (received < received_before + devices_ && absl::Now() < round_end) {
        loop_->RunOnce(absl::Milliseconds(5));
        received = 0;
        for (SimDevice& sim : sims_) received += sim.client->counters().packets_received;
      }
      acks += received - received_before;
    }
    const double wall = absl::ToDoubleSeconds(absl::Now() - start);
    keepalive_wall_ = acks / wall;
    return acks / (CpuSeconds(basestation_) - cpu_start);
  }

  // The same harness against the raw echo server, with keep-alive-sized datagrams.
  void MeasureEcho() {
    auto socket = Check(io::UdpSocket::Bind(*net::Endpoint::Parse("127.0.0.1:0")), "echo bind");
    (void)socket->SetReceiveBufferSize(8 << 20);
    (void)socket->SetSendBufferSize(8 << 20);
    const net::Endpoint echo = socket->local_endpoint();
    const pid_t pid = fork();
    if (pid == 0) RunEchoServer(*socket);
    socket.reset();
    sims_.resize(devices_);
    for (SimDevice& sim : sims_) {
      NewSocket(sim);
      (void)loop_->Watch(sim.socket->fd(), [this, &sim] { Receive(sim); });
    }
    const std::vector<uint8_t> datagram(34, 0x42);  // A keep-alive's size.
    const double cpu_start = CpuSeconds(pid);
    const absl::Time start = absl::Now();
    uint64_t echoes = 0;
    auto total = [this] {
      uint64_t n = 0;
      for (const SimDevice& sim : sims_) n += sim.echoes;
      return n;
    };
    while (absl::Now() - start < absl::Seconds(absl::GetFlag(FLAGS_seconds))) {
      const uint64_t before = total();
      for (SimDevice& sim : sims_) (void)sim.socket->SendTo(echo, datagram);
      const absl::Time round_end = absl::Now() + absl::Milliseconds(200);
      while (total() < before + devices_ && absl::Now() < round_end) {
        loop_->RunOnce(absl::Milliseconds(5));
      }
      echoes += total() - before;
    }
    echo_wall_ = echoes / absl::ToDoubleSeconds(absl::Now() - start);
    echo_per_cpu_s_ = echoes / (CpuSeconds(pid) - cpu_start);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    for (SimDevice& sim : sims_) loop_->Unwatch(sim.socket->fd());
  }

  const int devices_;
  std::unique_ptr<io::EventLoop> loop_;
  crypto::SystemRandom random_;
  io::ReceiveBuffer buffer_{8};
  std::vector<SimDevice> sims_;
  pid_t basestation_ = 0;
  net::Endpoint server_;
  double keepalive_wall_ = 0;
  double echo_wall_ = 0;
  double echo_per_cpu_s_ = 0;
};

}  // namespace
}  // namespace edgelink::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_basestation).empty()) {
    std::fprintf(stderr, "attach_bench: --basestation=PATH is required\n");
    return 2;
  }
  edgelink::bench::Bench(absl::GetFlag(FLAGS_devices)).Run();
  return 0;
}
