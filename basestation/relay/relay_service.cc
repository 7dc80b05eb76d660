#include "basestation/relay/relay_service.h"

#include <optional>
#include <utility>

#include "common/status/status_macros.h"

namespace edgelink::basestation {
namespace {

// Datagrams per recvmmsg. Rounds per readable event are capped so timers and other sockets on the
// loop get their turn under a flood.
constexpr size_t kBatch = 64;
constexpr int kMaxRoundsPerEvent = 64;

}  // namespace

absl::StatusOr<std::unique_ptr<RelayService>> RelayService::Start(RelayOptions options,
                                                                  const RelayKey& key,
                                                                  const net::Endpoint& listen,
                                                                  io::EventLoop* loop) {
  const size_t max_packet_size = options.max_packet_size;
  ASSIGN_OR_RETURN(std::unique_ptr<RelayServer> relay, RelayServer::New(std::move(options), key));
  ASSIGN_OR_RETURN(std::unique_ptr<io::UdpSocket> socket, io::UdpSocket::Bind(listen));
  // Room for bursts of forwarded traffic; the kernel caps what it grants.
  (void)socket->SetReceiveBufferSize(8 << 20);
  (void)socket->SetSendBufferSize(8 << 20);
  std::unique_ptr<RelayService> service(
      new RelayService(loop, std::move(relay), std::move(socket), max_packet_size));
  RelayService* raw = service.get();
  RETURN_IF_ERROR(loop->Watch(raw->socket_->fd(), [raw] { raw->OnReadable(); }));
  return service;
}

RelayService::RelayService(io::EventLoop* loop, std::unique_ptr<RelayServer> relay,
                           std::unique_ptr<io::UdpSocket> socket, size_t max_packet_size)
    : loop_(loop),
      relay_(std::move(relay)),
      socket_(std::move(socket)),
      receive_buffer_(kBatch, max_packet_size + 1),
      timer_(loop, [this] { OnTimer(); }) {
  forward_.reserve(kBatch);
}

RelayService::~RelayService() { loop_->Unwatch(socket_->fd()); }

void RelayService::OnReadable() {
  for (int round = 0; round < kMaxRoundsPerEvent; ++round) {
    absl::StatusOr<size_t> n = socket_->ReceiveBatch(receive_buffer_);
    // A socket-level error (an ICMP unreachable for an earlier send) is consumed: go on.
    if (!n.ok()) continue;
    if (*n == 0) break;
    ++service_counters_.receive_batches;
    const absl::Time now = loop_->Now();
    forward_.clear();
    for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) {
      if (!d.source.is_set()) continue;  // A family Endpoint cannot hold: nothing to answer.
      if (std::optional<net::Endpoint> to = relay_->OnPacket(d.source, d.bytes, now)) {
        forward_.push_back({*to, d.bytes});
      }
    }
    Send(forward_);
    if (*n < receive_buffer_.max_datagrams()) break;
  }
  AfterInput();
}

void RelayService::OnTimer() {
  relay_->OnTimeout(loop_->Now());
  AfterInput();
}

void RelayService::AfterInput() {
  std::vector<net::Datagram> answers = relay_->TakeOutgoing();
  if (!answers.empty()) {
    std::vector<io::OutgoingDatagram> batch;
    batch.reserve(answers.size());
    for (const net::Datagram& d : answers) batch.push_back({d.to, d.bytes});
    Send(batch);
  }
  timer_.Schedule(relay_->next_timeout());
}

void RelayService::Send(absl::Span<const io::OutgoingDatagram> datagrams) {
  size_t sent = 0;
  while (sent < datagrams.size()) {
    absl::StatusOr<size_t> n = socket_->SendBatch(datagrams.subspan(sent));
    if (n.ok() && *n > 0) {
      sent += *n;
      continue;
    }
    if (!n.ok() && n.status().code() == absl::StatusCode::kUnavailable) {
      // Almost always a full send buffer, which the rest of the batch would meet too: UDP, so
      // drop them rather than spend a syscall on each.
      service_counters_.send_failures += datagrams.size() - sent;
      return;
    }
    // This one datagram is bad (refused by a firewall, too large): skip it, send the rest.
    ++service_counters_.send_failures;
    ++sent;
  }
}

}  // namespace edgelink::basestation
