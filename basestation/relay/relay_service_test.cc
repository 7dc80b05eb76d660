#include "basestation/relay/relay_service.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "basestation/relay/relay.h"
#include "common/io/event_loop.h"
#include "common/io/run_until.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

using ::edgelink::testing::IsOk;
using ::testing::ElementsAreArray;

const net::Endpoint kLoopback = net::Endpoint::Ipv4({127, 0, 0, 1}, 0);

RelayKey TestKey() {
  return *RelayKey::Derive(crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x42)));
}

// A peer: one UDP socket watched on the test's loop, keeping what it receives.
struct Peer {
  std::unique_ptr<io::UdpSocket> socket;
  std::vector<std::vector<uint8_t>> received;
  std::optional<RelayBound> last_bound;
};

class RelayServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = io::EventLoop::New();
    ASSERT_THAT(loop, IsOk());
    loop_ = *std::move(loop);
    auto service = RelayService::Start(RelayOptions(), key_, kLoopback, loop_.get());
    ASSERT_THAT(service, IsOk());
    service_ = *std::move(service);
    EXPECT_NE(service_->local_endpoint().port(), 0);
    OpenPeer(client_);
    OpenPeer(device_);
  }

  void TearDown() override {
    for (Peer* p : {&client_, &device_}) {
      if (p->socket) loop_->Unwatch(p->socket->fd());
    }
  }

  void OpenPeer(Peer& peer) {
    if (peer.socket) loop_->Unwatch(peer.socket->fd());
    auto socket = io::UdpSocket::Bind(kLoopback);
    ASSERT_THAT(socket, IsOk());
    peer.socket = *std::move(socket);
    ASSERT_THAT(loop_->Watch(peer.socket->fd(),
                             [this, &peer] {
                               for (;;) {
                                 absl::StatusOr<size_t> n = peer.socket->ReceiveBatch(buffer_);
                                 if (!n.ok() || *n == 0) return;
                                 for (const io::ReceivedDatagram& d : buffer_.datagrams()) {
                                   if (IsRelayControl(d.bytes)) {
                                     absl::StatusOr<RelayBound> b = ParseRelayBound(d.bytes);
                                     if (b.ok()) peer.last_bound = *b;
                                   } else {
                                     peer.received.emplace_back(d.bytes.begin(), d.bytes.end());
                                   }
                                 }
                               }
                             }),
                IsOk());
  }

  void Send(Peer& peer, absl::Span<const uint8_t> bytes) {
    ASSERT_THAT(peer.socket->SendTo(service_->local_endpoint(), bytes), IsOk());
  }

  bool BoundState(const Peer& peer, RelayBoundState state) {
    return peer.last_bound.has_value() && peer.last_bound->state == state;
  }

  // Both peers bind; waits until both were told the session is complete.
  void BindBoth() {
    const RelayTicket ticket =
        MakeRelayTicket(key_, session_id_, absl::Now() + absl::Minutes(5));
    Send(client_, BuildRelayBind(RelaySide::kClient, ticket));
    ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client_.last_bound.has_value(); }));
    EXPECT_EQ(client_.last_bound->state, RelayBoundState::kWaiting);
    EXPECT_EQ(client_.last_bound->session_id, session_id_);
    Send(device_, BuildRelayBind(RelaySide::kDevice, ticket));
    ASSERT_TRUE(io::RunUntil(*loop_, [&] {
      return BoundState(client_, RelayBoundState::kBound) &&
             BoundState(device_, RelayBoundState::kBound);
    }));
  }

  RelayKey key_ = TestKey();
  RelaySessionId session_id_ = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  std::unique_ptr<io::EventLoop> loop_;
  std::unique_ptr<RelayService> service_;
  io::ReceiveBuffer buffer_;
  Peer client_;
  Peer device_;
};

// A peer packet of the fixture's session: 0x02 || type || channel id || packet number || bytes
// (at least the 18-byte header). The relay forwards by the channel id.
std::vector<uint8_t> Payload(int index, size_t size) {
  std::vector<uint8_t> bytes(std::max<size_t>(size, 18));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(index * 31 + i);
  bytes[0] = 0x02;
  bytes[1] = 0x03;
  const uint64_t channel_id =
      RelayChannelId({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});  // session_id_
  for (int i = 0; i < 8; ++i) bytes[2 + i] = static_cast<uint8_t>(channel_id >> (56 - 8 * i));
  return bytes;
}

TEST_F(RelayServiceTest, PeersExchangeThroughTheRelayByteForByte) {
  BindBoth();
  constexpr int kEach = 200;
  constexpr int kWindow = 10;  // In flight at once: well within the sockets' buffers.
  for (int i = 0; i < kEach; ++i) {
    Send(client_, Payload(i, 1 + (i * 37) % 1400));
    Send(device_, Payload(1000 + i, 1 + (i * 53) % 1400));
    if ((i + 1) % kWindow == 0) {
      const size_t sent = static_cast<size_t>(i + 1);
      ASSERT_TRUE(io::RunUntil(*loop_, [&] {
        return client_.received.size() == sent && device_.received.size() == sent;
      })) << client_.received.size() << " " << device_.received.size() << " of " << sent;
    }
  }
  // Loopback keeps order; every datagram arrives exactly as sent.
  for (int i = 0; i < kEach; ++i) {
    EXPECT_THAT(device_.received[i], ElementsAreArray(Payload(i, 1 + (i * 37) % 1400)));
    EXPECT_THAT(client_.received[i], ElementsAreArray(Payload(1000 + i, 1 + (i * 53) % 1400)));
  }
  EXPECT_EQ(service_->counters().packets_forwarded, 2u * kEach);
  EXPECT_EQ(service_->counters().binds, 2u);
  EXPECT_EQ(service_->counters().dropped_total(), 0u);
  EXPECT_EQ(service_->service_counters().send_failures, 0u);
}

TEST_F(RelayServiceTest, DropsAndCountsWhatItMustNotForward) {
  Peer stranger;
  OpenPeer(stranger);
  // Before binding: unbound.
  Send(client_, Payload(1, 100));
  // Oversized (truncated by the binding's receive slot): malformed.
  Send(stranger, std::vector<uint8_t>(3000, 0x02));
  ASSERT_TRUE(io::RunUntil(*loop_, [&] {
    return service_->counters().drops(RelayDropReason::kUnbound) == 1 &&
           service_->counters().drops(RelayDropReason::kMalformed) == 1;
  }));
  BindBoth();
  Send(stranger, Payload(2, 100));
  ASSERT_TRUE(io::RunUntil(
      *loop_, [&] { return service_->counters().drops(RelayDropReason::kUnbound) == 2; }));
  EXPECT_TRUE(stranger.received.empty());
  EXPECT_TRUE(client_.received.empty());
  EXPECT_TRUE(device_.received.empty());
  loop_->Unwatch(stranger.socket->fd());
}

TEST_F(RelayServiceTest, RebindingMovesTheFlowToTheNewSocket) {
  BindBoth();
  // The client's NAT mapping changes: a new socket, the same ticket.
  OpenPeer(client_);
  client_.last_bound.reset();
  const RelayTicket ticket = MakeRelayTicket(key_, session_id_, absl::Now() + absl::Minutes(5));
  Send(client_, BuildRelayBind(RelaySide::kClient, ticket));
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return BoundState(client_, RelayBoundState::kBound); }));
  Send(device_, Payload(7, 300));
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client_.received.size() == 1; }));
  EXPECT_THAT(client_.received[0], ElementsAreArray(Payload(7, 300)));
}

TEST_F(RelayServiceTest, IdleSessionsExpireOnTheLoopsTimer) {
  // A fresh service with a short idle timeout.
  RelayOptions options;
  options.idle_timeout = absl::Milliseconds(50);
  auto service = RelayService::Start(options, key_, kLoopback, loop_.get());
  ASSERT_THAT(service, IsOk());
  service_ = *std::move(service);
  BindBoth();
  EXPECT_EQ(service_->session_count(), 1u);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return service_->session_count() == 0; }));
  EXPECT_EQ(service_->counters().sessions_expired, 1u);
}

}  // namespace
}  // namespace edgelink::basestation
