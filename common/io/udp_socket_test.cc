#include "common/io/udp_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/io/event_loop.h"
#include "common/io/run_until.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::io {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

const net::Endpoint kLoopback4 = net::Endpoint::Ipv4({127, 0, 0, 1}, 0);
const net::Endpoint kLoopback6 = *net::Endpoint::ParseIp("::1", 0);

std::vector<uint8_t> Payload(int index, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(index * 31 + i);
  return bytes;
}

struct Received {
  net::Endpoint source;
  std::vector<uint8_t> bytes;
  size_t length;
  bool truncated;
};

// Collects datagrams from `socket` through `loop` (Watch + ReceiveBatch until empty) until `count`
// arrived or the safety limit passes. Batch sizes seen are recorded in `batch_sizes`.
std::vector<Received> ReceiveThroughLoop(EventLoop& loop, UdpSocket& socket, size_t count,
                                         ReceiveBuffer& buffer,
                                         std::vector<size_t>* batch_sizes = nullptr) {
  std::vector<Received> received;
  EXPECT_THAT(loop.Watch(socket.fd(),
                         [&] {
                           for (;;) {
                             absl::StatusOr<size_t> n = socket.ReceiveBatch(buffer);
                             ASSERT_THAT(n, IsOk());
                             if (*n == 0) return;
                             EXPECT_EQ(buffer.size(), *n);
                             if (batch_sizes != nullptr) batch_sizes->push_back(*n);
                             for (const ReceivedDatagram& d : buffer.datagrams()) {
                               received.push_back(
                                   {d.source, {d.bytes.begin(), d.bytes.end()}, d.length,
                                    d.truncated});
                             }
                           }
                         }),
              IsOk());
  EXPECT_TRUE(RunUntil(loop, [&] { return received.size() >= count; }))
      << "got " << received.size() << " of " << count;
  loop.Unwatch(socket.fd());
  return received;
}

// Binds ::1 or skips the test when the host has no IPv6 loopback.
#define BIND_IPV6_OR_SKIP(lhs)                                                     \
  auto lhs##_or = UdpSocket::Bind(kLoopback6);                                     \
  if (!lhs##_or.ok()) GTEST_SKIP() << "no IPv6 loopback: " << lhs##_or.status(); \
  std::unique_ptr<UdpSocket> lhs = std::move(lhs##_or).value()

TEST(UdpSocketTest, BindsEphemeralPortNonBlockingAndCloseOnExec) {
  ASSERT_OK_AND_ASSIGN(auto socket, UdpSocket::Bind(kLoopback4));
  EXPECT_EQ(socket->local_endpoint().family(), net::Endpoint::Family::kIpv4);
  EXPECT_EQ(socket->local_endpoint().IpString(), "127.0.0.1");
  EXPECT_NE(socket->local_endpoint().port(), 0);
  EXPECT_TRUE(fcntl(socket->fd(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(socket->fd(), F_GETFD) & FD_CLOEXEC);
  // Non-blocking: nothing waiting is 0 at once, not a hang.
  ReceiveBuffer buffer;
  ASSERT_OK_AND_ASSIGN(const size_t n, socket->ReceiveBatch(buffer));
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(UdpSocketTest, ReceivesBatchOfFiftyWithSourcesAndContents) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto receiver, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto sender_a, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto sender_b, UdpSocket::Bind(kLoopback4));
  constexpr int kCount = 50;
  for (int i = 0; i < kCount; ++i) {
    UdpSocket& sender = (i % 2 == 0) ? *sender_a : *sender_b;
    ASSERT_THAT(sender.SendTo(receiver->local_endpoint(), Payload(i, 100 + i)), IsOk());
  }
  ReceiveBuffer buffer;  // 64 slots: all 50 may come in one batch.
  const std::vector<Received> got = ReceiveThroughLoop(*loop, *receiver, kCount, buffer);
  ASSERT_EQ(got.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    // Loopback keeps order.
    const net::Endpoint& expected =
        (i % 2 == 0) ? sender_a->local_endpoint() : sender_b->local_endpoint();
    EXPECT_EQ(got[i].source, expected) << i;
    EXPECT_EQ(got[i].bytes, Payload(i, 100 + i)) << i;
    EXPECT_EQ(got[i].length, static_cast<size_t>(100 + i));
    EXPECT_FALSE(got[i].truncated);
  }
}

TEST(UdpSocketTest, SmallBufferSplitsArrivalsIntoSeveralBatches) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto receiver, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), Payload(i, 16)), IsOk());
  }
  ReceiveBuffer buffer(/*max_datagrams=*/8, /*max_datagram_size=*/64);
  std::vector<size_t> batch_sizes;
  const std::vector<Received> got = ReceiveThroughLoop(*loop, *receiver, 20, buffer, &batch_sizes);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i].bytes, Payload(i, 16)) << i;
  EXPECT_GE(batch_sizes.size(), 3u);
  for (size_t size : batch_sizes) EXPECT_LE(size, 8u);
}

TEST(UdpSocketTest, FlagsDatagramLargerThanItsSlotAsTruncated) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto receiver, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  const std::vector<uint8_t> big = Payload(1, 3000);
  const std::vector<uint8_t> exact = Payload(2, ReceiveBuffer::kDefaultMaxDatagramSize);
  const std::vector<uint8_t> small = Payload(3, 10);
  ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), big), IsOk());
  ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), exact), IsOk());
  ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), small), IsOk());
  ReceiveBuffer buffer;
  const std::vector<Received> got = ReceiveThroughLoop(*loop, *receiver, 3, buffer);
  ASSERT_EQ(got.size(), 3u);

  EXPECT_TRUE(got[0].truncated);
  EXPECT_EQ(got[0].length, 3000u);
  EXPECT_EQ(got[0].bytes, std::vector<uint8_t>(big.begin(), big.begin() + 2048));

  EXPECT_FALSE(got[1].truncated);  // Exactly a slot fits.
  EXPECT_EQ(got[1].bytes, exact);

  EXPECT_FALSE(got[2].truncated);
  EXPECT_EQ(got[2].bytes, small);
}

TEST(UdpSocketTest, ReceivesEmptyDatagram) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto receiver, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), {}), IsOk());
  ReceiveBuffer buffer;
  const std::vector<Received> got = ReceiveThroughLoop(*loop, *receiver, 1, buffer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].length, 0u);
  EXPECT_TRUE(got[0].bytes.empty());
  EXPECT_EQ(got[0].source, sender->local_endpoint());
}

TEST(UdpSocketTest, SendBatchDeliversToSeveralDestinationsInOrder) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto first, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(auto second, UdpSocket::Bind(kLoopback4));
  // More than one sendmmsg chunk (64), so the chunking is exercised.
  constexpr int kCount = 100;
  std::vector<std::vector<uint8_t>> payloads;
  for (int i = 0; i < kCount; ++i) payloads.push_back(Payload(i, 20 + i % 7));
  std::vector<OutgoingDatagram> batch;
  for (int i = 0; i < kCount; ++i) {
    batch.push_back({(i % 3 == 0 ? first : second)->local_endpoint(), payloads[i]});
  }
  ASSERT_OK_AND_ASSIGN(const size_t sent, sender->SendBatch(batch));
  EXPECT_EQ(sent, static_cast<size_t>(kCount));

  ReceiveBuffer buffer;
  const std::vector<Received> to_first = ReceiveThroughLoop(*loop, *first, 34, buffer);
  const std::vector<Received> to_second = ReceiveThroughLoop(*loop, *second, 66, buffer);
  ASSERT_EQ(to_first.size(), 34u);
  ASSERT_EQ(to_second.size(), 66u);
  size_t next_first = 0;
  size_t next_second = 0;
  for (int i = 0; i < kCount; ++i) {
    const Received& got = (i % 3 == 0) ? to_first[next_first++] : to_second[next_second++];
    EXPECT_EQ(got.bytes, payloads[i]) << i;
    EXPECT_EQ(got.source, sender->local_endpoint()) << i;
  }
}

TEST(UdpSocketTest, SendBatchOfNothingSendsNothing) {
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  ASSERT_OK_AND_ASSIGN(const size_t sent, sender->SendBatch({}));
  EXPECT_EQ(sent, 0u);
}

TEST(UdpSocketTest, RejectsDestinationsOfTheWrongFamilyOrUnset) {
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  const std::vector<uint8_t> bytes = {1, 2, 3};
  const net::Endpoint v6 = *net::Endpoint::Parse("[::1]:9");
  EXPECT_THAT(sender->SendTo(v6, bytes),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[::1]:9")));
  EXPECT_THAT(sender->SendTo(net::Endpoint(), bytes),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unset")));
  const std::vector<OutgoingDatagram> batch = {{kLoopback4.WithPort(9), bytes}, {v6, bytes}};
  EXPECT_THAT(sender->SendBatch(batch), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UdpSocketTest, OversizedDatagramIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback4));
  const std::vector<uint8_t> too_big(70000);  // Above the 65507-byte IPv4 UDP limit.
  EXPECT_THAT(sender->SendTo(kLoopback4.WithPort(9), too_big),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("127.0.0.1:9")));
  const std::vector<OutgoingDatagram> batch = {{kLoopback4.WithPort(9), too_big}};
  EXPECT_THAT(sender->SendBatch(batch), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UdpSocketTest, SendErrorsMapToCanonicalCodes) {
  const net::Endpoint to = *net::Endpoint::Parse("192.0.2.1:4433");
  EXPECT_THAT(internal::SendErrorStatus(EAGAIN, to),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("192.0.2.1:4433"), HasSubstr("buffer full"))));
  EXPECT_THAT(internal::SendErrorStatus(ENOBUFS, to), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(internal::SendErrorStatus(ENETUNREACH, to),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("unreachable")));
  EXPECT_THAT(internal::SendErrorStatus(EMSGSIZE, to),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(internal::SendErrorStatus(EPERM, to), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(internal::SendErrorStatus(EBADF, to),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("Bad file descriptor")));
}

TEST(UdpSocketTest, BindingAnAddressInUseFailsClearly) {
  ASSERT_OK_AND_ASSIGN(auto first, UdpSocket::Bind(kLoopback4));
  const net::Endpoint taken = first->local_endpoint();
  EXPECT_THAT(UdpSocket::Bind(taken),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr(taken.ToString()), HasSubstr("in use"))));
}

TEST(UdpSocketTest, BindRejectsUnsetFamilyAndForeignAddress) {
  EXPECT_THAT(UdpSocket::Bind(net::Endpoint()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown family")));
  // TEST-NET-1 is assigned to no host.
  EXPECT_THAT(UdpSocket::Bind(*net::Endpoint::Parse("192.0.2.1:0")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("192.0.2.1:0")));
}

TEST(UdpSocketTest, BufferSizeSettersReportTheEffectiveSize) {
  ASSERT_OK_AND_ASSIGN(auto socket, UdpSocket::Bind(kLoopback4));
  // Linux doubles the request for bookkeeping; it never grants less than asked at this size
  // (the minimum and the default rmem_max are both above 8 KiB).
  ASSERT_OK_AND_ASSIGN(const int receive, socket->SetReceiveBufferSize(8192));
  EXPECT_GE(receive, 8192);
  ASSERT_OK_AND_ASSIGN(const int smaller, socket->SetReceiveBufferSize(4096));
  EXPECT_LT(smaller, receive);
  ASSERT_OK_AND_ASSIGN(const int send, socket->SetSendBufferSize(16384));
  EXPECT_GE(send, 16384);
  EXPECT_THAT(socket->SetSendBufferSize(-1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UdpSocketTest, Ipv6LoopbackRoundTrip) {
  BIND_IPV6_OR_SKIP(receiver);
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  ASSERT_OK_AND_ASSIGN(auto sender, UdpSocket::Bind(kLoopback6));
  EXPECT_EQ(receiver->local_endpoint().IpString(), "::1");
  EXPECT_NE(receiver->local_endpoint().port(), 0);
  const std::vector<uint8_t> hello = {'h', 'i', '6'};
  ASSERT_THAT(sender->SendTo(receiver->local_endpoint(), hello), IsOk());
  const std::vector<OutgoingDatagram> batch = {{receiver->local_endpoint(), hello}};
  ASSERT_OK_AND_ASSIGN(const size_t sent, sender->SendBatch(batch));
  EXPECT_EQ(sent, 1u);
  ReceiveBuffer buffer;
  const std::vector<Received> got = ReceiveThroughLoop(*loop, *receiver, 2, buffer);
  ASSERT_EQ(got.size(), 2u);
  for (const Received& r : got) {
    EXPECT_EQ(r.source, sender->local_endpoint());
    EXPECT_EQ(r.bytes, hello);
  }
  EXPECT_THAT(sender->SendTo(kLoopback4.WithPort(9), hello),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UdpSocketTest, Ipv6SocketIsV6OnlySoIpv4CanTakeTheSamePort) {
  auto wildcard6_or = UdpSocket::Bind(*net::Endpoint::ParseIp("::", 0));
  if (!wildcard6_or.ok()) GTEST_SKIP() << "no IPv6: " << wildcard6_or.status();
  std::unique_ptr<UdpSocket> wildcard6 = std::move(wildcard6_or).value();
  int v6only = 0;
  socklen_t length = sizeof(v6only);
  ASSERT_EQ(getsockopt(wildcard6->fd(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &length), 0);
  EXPECT_EQ(v6only, 1);
  // Without IPV6_V6ONLY, [::]:p would also hold 0.0.0.0:p and this bind would fail in use.
  const uint16_t port = wildcard6->local_endpoint().port();
  EXPECT_THAT(UdpSocket::Bind(net::Endpoint::Ipv4({0, 0, 0, 0}, port)), IsOk());
}

}  // namespace
}  // namespace edgelink::io
