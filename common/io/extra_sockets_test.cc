#include "common/io/extra_sockets.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/io/event_loop.h"
#include "common/io/run_until.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace edgelink::io {
namespace {

using ::edgelink::testing::IsOk;

const net::Endpoint kLoopback = net::Endpoint::Ipv4({127, 0, 0, 1}, 0);
constexpr absl::Duration kLimit = absl::Seconds(5);

std::vector<uint8_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }

class ExtraSocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(loop_, EventLoop::New());
    ASSERT_OK_AND_ASSIGN(peer_, UdpSocket::Bind(kLoopback));
  }

  // Reads what reached the peer socket: text by source.
  absl::flat_hash_map<net::Endpoint, std::string> DrainPeer(size_t want) {
    absl::flat_hash_map<net::Endpoint, std::string> got;
    ReceiveBuffer buffer;
    RunUntil(*loop_, [&] {
      absl::StatusOr<size_t> n = peer_->ReceiveBatch(buffer);
      for (size_t i = 0; n.ok() && i < *n; ++i) {
        got[buffer[i].source] = std::string(buffer[i].bytes.begin(), buffer[i].bytes.end());
      }
      return got.size() >= want;
    }, kLimit);
    return got;
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<UdpSocket> peer_;
};

TEST_F(ExtraSocketsTest, BindsEachSocketOnFirstUseAndTagsWhatComesBack) {
  std::map<uint16_t, std::string> received;
  ExtraSockets extra(loop_.get(), kLoopback,
                     [&](uint16_t socket, const net::Endpoint&, absl::Span<const uint8_t> b) {
                       received[socket] = std::string(b.begin(), b.end());
                     });
  ASSERT_THAT(extra.Send({peer_->local_endpoint(), Bytes("three"), 3}), IsOk());
  ASSERT_THAT(extra.Send({peer_->local_endpoint(), Bytes("seven"), 7}), IsOk());
  ASSERT_THAT(extra.Send({peer_->local_endpoint(), Bytes("seven again"), 7}), IsOk());
  EXPECT_EQ(extra.size(), 2u);

  // Two sockets, so two source ports; the peer answers each from where it came.
  absl::flat_hash_map<net::Endpoint, std::string> got = DrainPeer(2);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& [source, text] : got) {
    ASSERT_THAT(peer_->SendTo(source, Bytes("re " + text)), IsOk());
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return received.size() == 2; }, kLimit));
  EXPECT_EQ(received[3], "re three");
  EXPECT_EQ(received[7], "re seven again");
}

TEST_F(ExtraSocketsTest, RetainClosesTheSocketsNoLongerWanted) {
  int received = 0;
  ExtraSockets extra(loop_.get(), kLoopback,
                     [&](uint16_t, const net::Endpoint&, absl::Span<const uint8_t>) {
                       ++received;
                     });
  for (uint16_t socket = 1; socket <= 4; ++socket) {
    ASSERT_THAT(extra.Send({peer_->local_endpoint(), Bytes("hi"), socket}), IsOk());
  }
  absl::flat_hash_map<net::Endpoint, std::string> got = DrainPeer(4);
  ASSERT_EQ(got.size(), 4u);
  extra.Retain([](uint16_t socket) { return socket == 2; });
  EXPECT_EQ(extra.size(), 1u);
  // The kept socket still sends from its port.
  ASSERT_THAT(extra.Send({peer_->local_endpoint(), Bytes("still here"), 2}), IsOk());
  absl::flat_hash_map<net::Endpoint, std::string> again = DrainPeer(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(got.count(again.begin()->first), 1u);
}

TEST_F(ExtraSocketsTest, TheReceiverMayCloseTheSocketItIsReading) {
  int received = 0;
  std::unique_ptr<ExtraSockets> extra;
  extra = std::make_unique<ExtraSockets>(
      loop_.get(), kLoopback, [&](uint16_t, const net::Endpoint&, absl::Span<const uint8_t>) {
        ++received;
        extra->Retain([](uint16_t) { return false; });
      });
  ASSERT_THAT(extra->Send({peer_->local_endpoint(), Bytes("hi"), 1}), IsOk());
  absl::flat_hash_map<net::Endpoint, std::string> got = DrainPeer(1);
  ASSERT_EQ(got.size(), 1u);
  // Several answers queued at once: the batch is read, then the socket closes under them.
  for (int i = 0; i < 5; ++i) ASSERT_THAT(peer_->SendTo(got.begin()->first, Bytes("x")), IsOk());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return extra->size() == 0; }, kLimit));
  EXPECT_GE(received, 1);
}

}  // namespace
}  // namespace edgelink::io
