// example_device: the smallest program that puts the Edgelink device core on a real network.
//
//   example_device BASESTATION_ADDRESS:PORT DEVICE_ID SECRET_HEX
//
// It attaches to the basestation with the device's id and secret (from `basestation provision`),
// keeps the session alive, logs every state change to stderr and, on SIGINT or SIGTERM, tells the
// basestation it is leaving (DETACH) and exits 0.
//
// The shape is the one every port of the core has (docs/DEVICE-SDK.md):
//   * the core (edgelink::device::AttachClient) does no I/O: it is handed each datagram that
//     arrives and the current time, and is asked for the datagrams to send and its next deadline;
//   * the binding, here the SDK's POSIX pieces (io::EventLoop on epoll, io::UdpSocket), owns the
//     socket, the clock and the timer, and moves bytes between them and the core.
// Connect and device requests from clients are refused here (no RequestHandler is given); the
// reference daemon, bin/edgelink-device, shows the full set: access list, pairing, peer sessions.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "device/core/attach_client.h"

namespace {

using edgelink::crypto::SecretBytes;
using edgelink::device::AttachClient;
using edgelink::io::EventLoop;
using edgelink::io::UdpSocket;
using edgelink::net::Endpoint;

void Log(absl::string_view line) {
  std::fprintf(stderr, "%s %.*s\n",
               absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()).c_str(),
               static_cast<int>(line.size()), line.data());
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The secret as `basestation provision` prints it: an even number of hex digits. Never echoed.
absl::StatusOr<SecretBytes> ParseSecret(absl::string_view hex) {
  if (hex.empty() || hex.size() % 2 != 0) {
    return absl::InvalidArgumentError("the secret must be an even number of hex digits");
  }
  SecretBytes secret(hex.size() / 2);
  for (size_t i = 0; i < secret.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("the secret is not hex");
    secret.mutable_span()[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return secret;
}

// The binding: one UDP socket, one timer, one core. Not thread-safe: lives on the loop's thread.
class Device {
 public:
  static absl::StatusOr<std::unique_ptr<Device>> Start(EventLoop* loop, Endpoint basestation,
                                                       std::string device_id,
                                                       SecretBytes secret) {
    auto device = std::unique_ptr<Device>(new Device(loop));
    const Endpoint any = *Endpoint::Parse(
        basestation.family() == Endpoint::Family::kIpv6 ? "[::]:0" : "0.0.0.0:0");
    absl::StatusOr<std::unique_ptr<UdpSocket>> socket = UdpSocket::Bind(any);
    if (!socket.ok()) return socket.status();
    device->socket_ = *std::move(socket);

    edgelink::device::AttachClientOptions options;
    options.device_id = std::move(device_id);
    options.secret = std::move(secret);
    options.server = basestation;
    options.on_state_change = [](absl::string_view state, absl::string_view reason) {
      Log(absl::StrCat("state=", state, " ", reason));
    };
    absl::StatusOr<std::unique_ptr<AttachClient>> client =
        AttachClient::New(std::move(options), &device->random_);
    if (!client.ok()) return client.status();
    device->client_ = *std::move(client);

    Device* d = device.get();
    absl::Status watched = loop->Watch(d->socket_->fd(), [d] { d->OnReadable(); });
    if (!watched.ok()) return watched;
    d->client_->Start(loop->Now());
    d->Flush();
    return device;
  }

  ~Device() {
    if (socket_) loop_->Unwatch(socket_->fd());
  }

  // Tells the basestation we are leaving, so it shows the device offline at once.
  void Detach() {
    client_->Detach();
    Flush();
  }

 private:
  explicit Device(EventLoop* loop)
      : loop_(loop), timer_(loop, [this] {
          client_->OnTimeout(loop_->Now());
          Flush();
        }) {}

  void OnReadable() {
    for (;;) {
      absl::StatusOr<size_t> n = socket_->ReceiveBatch(buffer_);
      if (!n.ok() || *n == 0) break;
      for (const edgelink::io::ReceivedDatagram& d : buffer_.datagrams()) {
        // A truncated datagram is oversized for the protocol: the core would drop it anyway.
        if (!d.truncated) client_->OnPacket(d.source, d.bytes, loop_->Now());
      }
    }
    Flush();
  }

  // Sends what the core produced and re-arms the timer for its next deadline.
  void Flush() {
    for (const edgelink::net::Datagram& d : client_->TakeOutgoing()) {
      // UDP: a datagram that cannot go out now is lost; the core retransmits.
      (void)socket_->SendTo(d.to, d.bytes);
    }
    timer_.Schedule(client_->next_timeout());
  }

  EventLoop* loop_;
  edgelink::crypto::SystemRandom random_;
  std::unique_ptr<UdpSocket> socket_;
  std::unique_ptr<AttachClient> client_;
  edgelink::io::ReceiveBuffer buffer_{8};
  edgelink::io::Timer timer_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s BASESTATION_ADDRESS:PORT DEVICE_ID SECRET_HEX\n", argv[0]);
    return 2;
  }
  absl::StatusOr<Endpoint> basestation = Endpoint::Parse(argv[1]);
  if (!basestation.ok()) {
    std::fprintf(stderr, "example_device: %s\n", std::string(basestation.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<SecretBytes> secret = ParseSecret(argv[3]);
  if (!secret.ok()) {
    std::fprintf(stderr, "example_device: %s\n", std::string(secret.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::New();
  if (!loop.ok()) {
    std::fprintf(stderr, "example_device: %s\n", std::string(loop.status().message()).c_str());
    return 1;
  }
  EventLoop& l = **loop;
  // Signals before anything else starts, so they arrive on the loop (see EventLoop::OnSignal).
  if (!l.OnSignal(SIGINT, [&l] { l.Stop(); }).ok() ||
      !l.OnSignal(SIGTERM, [&l] { l.Stop(); }).ok()) {
    std::fprintf(stderr, "example_device: cannot take SIGINT/SIGTERM\n");
    return 1;
  }
  Log(absl::StrCat("example_device: attaching to ", basestation->ToString(), " as ", argv[2]));
  absl::StatusOr<std::unique_ptr<Device>> device =
      Device::Start(&l, *basestation, argv[2], *std::move(secret));
  if (!device.ok()) {
    std::fprintf(stderr, "example_device: %s\n", std::string(device.status().message()).c_str());
    return 1;
  }
  l.Run();
  Log("example_device: stopping");
  (*device)->Detach();
  return 0;
}
