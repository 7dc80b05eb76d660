// RelayService: the relay (relay.h) on a real UDP socket. It drains the socket with recvmmsg,
// hands every datagram to the RelayServer core, sends the forwarded datagrams straight out of the
// receive buffer with sendmmsg (no copy, no allocation per packet), sends the core's RELAY_BOUND
// answers, and arms a timer for the core's next deadline.
#ifndef EDGELINK_BASESTATION_RELAY_RELAY_SERVICE_H_
#define EDGELINK_BASESTATION_RELAY_RELAY_SERVICE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "basestation/relay/relay.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"

namespace edgelink::basestation {

// Send-side results the core cannot see.
struct RelayServiceCounters {
  uint64_t receive_batches = 0;
  uint64_t send_failures = 0;  // Datagrams the kernel refused (buffer full, unreachable, ...).
};

// Not thread-safe: lives on its EventLoop's thread, including every accessor.
class RelayService {
 public:
  // Start binds a UDP socket to `listen` (port 0 picks one; see local_endpoint()) and serves on
  // `loop`, which must outlive the service. Fails with the core's kInvalidArgument for bad
  // options, or with UdpSocket::Bind's or EventLoop::Watch's error.
  static absl::StatusOr<std::unique_ptr<RelayService>> Start(RelayOptions options,
                                                            const RelayKey& key,
                                                            const net::Endpoint& listen,
                                                            io::EventLoop* loop);
  // Stops watching the socket, then closes it.
  ~RelayService();
  RelayService(const RelayService&) = delete;
  RelayService& operator=(const RelayService&) = delete;

  const net::Endpoint& local_endpoint() const { return socket_->local_endpoint(); }
  const RelayCounters& counters() const { return relay_->counters(); }
  const RelayServiceCounters& service_counters() const { return service_counters_; }
  size_t session_count() const { return relay_->session_count(); }

 private:
  RelayService(io::EventLoop* loop, std::unique_ptr<RelayServer> relay,
               std::unique_ptr<io::UdpSocket> socket, size_t max_packet_size);

  void OnReadable();
  void OnTimer();
  void Send(absl::Span<const io::OutgoingDatagram> datagrams);
  // Sends the core's control answers and re-arms the timer.
  void AfterInput();

  io::EventLoop* const loop_;
  const std::unique_ptr<RelayServer> relay_;
  const std::unique_ptr<io::UdpSocket> socket_;
  // One byte over the largest packet the core accepts, so a truncated datagram reaches the core
  // oversized and is dropped as malformed.
  io::ReceiveBuffer receive_buffer_;
  std::vector<io::OutgoingDatagram> forward_;  // Reused: capacity for one receive batch.
  io::Timer timer_;
  RelayServiceCounters service_counters_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_RELAY_RELAY_SERVICE_H_
