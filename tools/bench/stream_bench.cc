// stream_bench: TCP tunnel throughput over a direct path on loopback, against raw UDP and raw TCP
// on the same machine in the same run.
//
//   stream   the whole stack in one process, as integration/rendezvous runs it: the basestation
//            Server (gRPC over mutual TLS with a throwaway PKI, UDP attach, relay), the reference
//            device daemon's core (DeviceDaemon, on its own event loop thread) with
//            tunnel_ports = a TCP sink on 127.0.0.1, and the client SDK (PeerSession::Tunnel, on
//            this thread). A writer thread pushes --megabytes into the tunnel's listener; the
//            sink reads them. Every byte crosses TCP -> SCTP (usrsctp) -> AES-GCM peer channel in
//            1197-byte SCTP packets -> UDP -> the same back up. Timed from the connect to the
//            sink's last byte; the path must be direct (not the relay).
//   raw_udp  the baseline: UDP datagrams of the same size as the stream's SCTP packets (1197
//            bytes), no crypto, no protocol, sent as fast as one thread can (SendTo, as the
//            bindings send) to a receiver thread (ReceiveBatch, as they receive) through sockets
//            with the same buffers. What the receiver got, over the time it took.
//   raw_tcp  for context: the same bytes through one loopback TCP connection, 64 KiB writes.
//
// Each is run --runs times and the fastest kept. Ends with
//   BENCH stream mbit_s=<tunnel goodput> raw_udp_mbit_s=<…> raw_tcp_mbit_s=<…> ratio=<stream /
//   raw_udp>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "basestation/registry/registry.h"
#include "basestation/server/server.h"
#include "client/sdk/client.h"
#include "client/sdk/peer_session.h"
#include "common/io/event_loop.h"
#include "common/io/loop_thread.h"
#include "common/io/udp_socket.h"
#include "common/tls/test_pki.h"
#include "common/tunnel/tunnel_protocol.h"
#include "device/daemon/config.h"
#include "device/daemon/daemon.h"

ABSL_FLAG(int, megabytes, 100, "Megabytes (10^6 bytes) to move in each run of each transport.");
ABSL_FLAG(int, runs, 3, "Runs of each; the fastest counts (the machine may be busy).");

namespace edgelink {
namespace {

constexpr size_t kDatagramSize = tunnel::kStreamDatagramSize;
constexpr size_t kWriteSize = 64 * 1024;
constexpr int kSocketBuffer = 2 << 20;  // As the bindings ask for.

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "stream_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Die(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) Die(absl::StrCat(what, ": ", status.ToString()));
}

double Mbits(uint64_t bytes, absl::Duration took) {
  return bytes * 8 / absl::ToDoubleSeconds(took) / 1e6;
}

int ListenLoopback(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 16) != 0) {
    Die("cannot listen on 127.0.0.1");
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *port = ntohs(address.sin_port);
  return fd;
}

int ConnectLoopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    Die("cannot connect to 127.0.0.1");
  }
  return fd;
}

// Writes `total` bytes to `fd` in 64 KiB writes, then half-closes.
void WriteBytes(int fd, uint64_t total) {
  std::vector<uint8_t> chunk(kWriteSize);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 131);
  while (total > 0) {
    const ssize_t n = send(fd, chunk.data(), std::min<uint64_t>(total, chunk.size()), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("write failed");
    total -= static_cast<uint64_t>(n);
  }
  shutdown(fd, SHUT_WR);
}

// A TCP sink: accepts one connection at a time and reads it to the end, counting.
class Sink {
 public:
  Sink() {
    fd_ = ListenLoopback(&port_);
    thread_ = std::thread([this] {
      for (;;) {
        const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        std::vector<uint8_t> buffer(kWriteSize);
        uint64_t got = 0;
        for (;;) {
          const ssize_t n = read(fd, buffer.data(), buffer.size());
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          got += static_cast<uint64_t>(n);
        }
        close(fd);
        std::lock_guard<std::mutex> lock(mu_);
        done_.push_back({got, absl::Now()});
        cv_.notify_all();
      }
    });
  }
  ~Sink() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  // The connections read to the end so far: bytes, and when the last arrived.
  std::vector<std::pair<uint64_t, absl::Time>> done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  std::pair<uint64_t, absl::Time> WaitForConnection(size_t index) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.size() > index; });
    return done_[index];
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, absl::Time>> done_;
};

using io::LoopThread;

// The whole stack: basestation, device, client session with a tunnel listener to the sink.
class Stack {
 public:
  explicit Stack(const std::string& dir) {
    Check(tls::testing::TestPki::Pki(
              {"init-ca", dir + "/pki", "--server-names", "DNS:localhost,IP:127.0.0.1"}),
          "pki.sh init-ca");
    Check(tls::testing::TestPki::Pki({"issue-client", dir + "/pki", "bench"}),
          "pki.sh issue-client");
    const std::string pki = dir + "/pki";
    basestation::ProvisionedDevice device;
    {
      auto registry = Check(basestation::Registry::Open(dir + "/registry.db"), "Registry::Open");
      device = Check(registry->Provision("bench-cam", "bench"), "Provision");
    }
    basestation::ServerOptions options;
    options.registry_path = dir + "/registry.db";
    options.attach_listen = *net::Endpoint::Parse("127.0.0.1:0");
    options.api_listen = *net::Endpoint::Parse("127.0.0.1:0");
    options.relay_listen = *net::Endpoint::Parse("127.0.0.1:0");
    options.zone = "devices.bench";
    options.public_addresses = {*net::Endpoint::Parse("127.0.0.1:0")};
    options.tls = {pki + "/server.pem", pki + "/server.key", pki + "/client-ca.pem",
                   pki + "/crl.pem"};
    server_ = Check(basestation::Server::Start(std::move(options), bs_.get()), "Server::Start");
    bs_.Start();

    device::DeviceConfig config;
    config.device_id = "bench-cam";
    config.secret = device.secret.Clone();
    config.basestation = server_->attach_endpoint();
    config.pairing_secret = device.pairing_secret.Clone();
    config.access_list_path = dir + "/device.access";
    config.tunnel_ports = {sink_.port()};
    daemon_ = Check(
        device::DeviceDaemon::Start(dir + "/device.conf", std::move(config), device_loop_.get()),
        "DeviceDaemon::Start");
    device_loop_.Start();
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!device_loop_.Run([&] {
      return daemon_->client() != nullptr &&
             daemon_->client()->state() == device::AttachClient::State::kAttached;
    })) {
      if (absl::Now() > give_up) Die("the device never attached");
      absl::SleepFor(absl::Milliseconds(10));  // Polling interval, not a wait for an event.
    }

    client::ClientOptions client_options;
    client_options.basestation = absl::StrCat("127.0.0.1:", server_->api_port());
    client_options.tls = {pki + "/server-ca.pem", pki + "/clients/bench.pem",
                          pki + "/clients/bench.key"};
    client_ = Check(client::Client::Create(client_options), "Client::Create");
    Check(client_->Pair("bench-cam", device.pairing_secret, "bench"), "Pair");
    peer_ = Check(client::PeerSession::Open(*client_, "bench-cam"), "PeerSession::Open");
    listener_ =
        Check(peer_->Tunnel(*net::Endpoint::Parse("127.0.0.1:0"), sink_.port(), nullptr), "Tunnel");
  }

  ~Stack() {
    peer_.reset();
    device_loop_.Stop();
    daemon_.reset();
    bs_.Stop();
    server_.reset();
  }

  // One transfer through the tunnel; its time.
  absl::Duration Transfer(uint64_t total) {
    const size_t index = sink_.done().size();
    const absl::Time start = absl::Now();
    std::atomic<bool> written{false};
    std::thread writer([&] {
      const int fd = ConnectLoopback(listener_.port());
      WriteBytes(fd, total);
      // Wait for the tunnel to close the connection, so nothing is cut short.
      char byte;
      while (read(fd, &byte, 1) > 0) {
      }
      close(fd);
      written = true;
    });
    const bool done =
        peer_->RunUntil([&] { return written && sink_.done().size() > index; }, absl::Seconds(600));
    writer.join();
    if (!done) Die("the tunnel transfer did not finish");
    const auto [bytes, at] = sink_.WaitForConnection(index);
    if (bytes != total) Die(absl::StrCat("the sink got ", bytes, " bytes of ", total));
    return at - start;
  }

  std::string PathName() const {
    const channel::PeerConnection::Path* path = peer_->connection().active_path();
    return path ? std::string(channel::PeerConnection::PathName(*path)) : "none";
  }

 private:
  Sink sink_;
  LoopThread bs_;
  std::unique_ptr<basestation::Server> server_;
  LoopThread device_loop_;
  std::unique_ptr<device::DeviceDaemon> daemon_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::PeerSession> peer_;
  net::Endpoint listener_;
};

// Raw UDP: kDatagramSize-byte datagrams blasted by one thread, counted by another.
struct UdpResult {
  uint64_t received_bytes = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  absl::Duration took;
};

UdpResult RawUdp(uint64_t total) {
  const net::Endpoint any = *net::Endpoint::Parse("127.0.0.1:0");
  std::unique_ptr<io::UdpSocket> receiver = Check(io::UdpSocket::Bind(any), "bind");
  std::unique_ptr<io::UdpSocket> sender = Check(io::UdpSocket::Bind(any), "bind");
  (void)receiver->SetReceiveBufferSize(kSocketBuffer);
  (void)sender->SetSendBufferSize(kSocketBuffer);
  const net::Endpoint to = receiver->local_endpoint();
  const uint64_t count = (total + kDatagramSize - 1) / kDatagramSize;
  std::atomic<bool> sender_done{false};
  UdpResult result;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last = absl::InfinitePast();
  std::thread receive([&] {
    io::ReceiveBuffer buffer(16, 2048);
    pollfd p = {receiver->fd(), POLLIN, 0};
    for (;;) {
      // Done once the sender is and nothing arrived for a while.
      if (poll(&p, 1, 100) == 0 && sender_done) break;
      for (;;) {
        absl::StatusOr<size_t> n = receiver->ReceiveBatch(buffer);
        if (!n.ok() || *n == 0) break;
        const absl::Time now = absl::Now();
        if (first == absl::InfiniteFuture()) first = now;
        last = now;
        for (const io::ReceivedDatagram& d : buffer.datagrams()) {
          result.received_bytes += d.bytes.size();
          ++result.received;
        }
      }
    }
  });
  std::vector<uint8_t> datagram(kDatagramSize, 0x5a);
  for (uint64_t i = 0; i < count; ++i) {
    // A full send buffer is the kernel's drop, as for the tunnel's datagrams.
    if (sender->SendTo(to, datagram).ok()) ++result.sent;
  }
  sender_done = true;
  receive.join();
  result.took = last - first;
  return result;
}

absl::Duration RawTcp(uint64_t total) {
  uint16_t port;
  const int listen_fd = ListenLoopback(&port);
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    const int fd = ConnectLoopback(port);
    WriteBytes(fd, total);
    close(fd);
  });
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  std::vector<uint8_t> buffer(kWriteSize);
  uint64_t got = 0;
  for (;;) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<uint64_t>(n);
  }
  const absl::Duration took = absl::Now() - start;
  writer.join();
  close(fd);
  close(listen_fd);
  if (got != total) Die("raw TCP lost bytes");
  return took;
}

int Main() {
  const uint64_t total = static_cast<uint64_t>(absl::GetFlag(FLAGS_megabytes)) * 1'000'000;
  const int runs = absl::GetFlag(FLAGS_runs);
  if (total == 0 || runs < 1) Die("--megabytes and --runs must be positive");
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/stream_bench.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) Die("cannot make a temporary directory");

  double stream_mbps = 0;
  std::string path;
  {
    Stack stack(dir);
    path = stack.PathName();
    if (path == "relay" || path == "none") Die("the session is not on a direct path: " + path);
    for (int run = 0; run < runs; ++run) {
      const absl::Duration took = stack.Transfer(total);
      stream_mbps = std::max(stream_mbps, Mbits(total, took));
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);

  UdpResult udp;
  double udp_mbps = 0;
  for (int run = 0; run < runs; ++run) {
    UdpResult r = RawUdp(total);
    const double mbps = Mbits(r.received_bytes, r.took);
    if (mbps > udp_mbps) {
      udp_mbps = mbps;
      udp = r;
    }
  }
  double tcp_mbps = 0;
  for (int run = 0; run < runs; ++run) tcp_mbps = std::max(tcp_mbps, Mbits(total, RawTcp(total)));

  std::printf("stream:  %llu MB through a TCP tunnel on the %s path: %.0f Mbit/s (best of %d)\n",
              static_cast<unsigned long long>(total / 1'000'000), path.c_str(), stream_mbps, runs);
  std::printf("raw UDP: %zu-byte datagrams, %llu sent, %llu received (%.1f%% lost): %.0f Mbit/s\n",
              kDatagramSize, static_cast<unsigned long long>(udp.sent),
              static_cast<unsigned long long>(udp.received),
              udp.sent ? 100.0 * (udp.sent - udp.received) / udp.sent : 0.0, udp_mbps);
  std::printf("raw TCP: one loopback connection, 64 KiB writes: %.0f Mbit/s\n", tcp_mbps);
  std::printf("BENCH stream mbit_s=%.0f raw_udp_mbit_s=%.0f raw_tcp_mbit_s=%.0f ratio=%.4f\n",
              stream_mbps, udp_mbps, tcp_mbps, stream_mbps / udp_mbps);
  return 0;
}

}  // namespace
}  // namespace edgelink

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return edgelink::Main();
}
