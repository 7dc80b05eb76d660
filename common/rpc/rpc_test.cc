#include "common/rpc/rpc.h"

#include <random>
#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::rpc {
namespace {

using ::edgelink::testing::StatusIs;

class RpcTest : public ::testing::Test {
 protected:
  // Moves datagrams between the endpoints; `lose` drops the n-th datagram when true.
  void Pump(int rounds = 1) {
    for (int i = 0; i < rounds; ++i) {
      for (auto& d : a_.TakeOutgoing()) {
        if (!lose_ || !lose_(sent_++)) b_.OnDatagram(d, now_);
      }
      for (auto& d : b_.TakeOutgoing()) {
        if (!lose_ || !lose_(sent_++)) a_.OnDatagram(d, now_);
      }
    }
  }

  void Advance(absl::Duration d) {
    now_ += d;
    a_.OnTimeout(now_);
    b_.OnTimeout(now_);
    Pump();
  }

  RpcEndpoint a_, b_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::function<bool(int)> lose_;
  int sent_ = 0;
};

TEST_F(RpcTest, CallReturnsTheHandlersAnswer) {
  b_.Handle("echo", [](absl::Span<const uint8_t> p) { return std::vector<uint8_t>(p.begin(), p.end()); });
  std::optional<Reply> got;
  a_.Call("echo", std::vector<uint8_t>{1, 2, 3}, now_ + absl::Seconds(1), [&](Reply r) { got = r; }, now_);
  Pump(2);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ(**got, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(a_.pending(), 0u);
}

TEST_F(RpcTest, RemoteErrorsAndUnknownMethodsComeBackAsStatus) {
  b_.Handle("fail", [](absl::Span<const uint8_t>) -> Reply {
    return absl::PermissionDeniedError("owners only");
  });
  std::optional<Reply> denied, unknown;
  a_.Call("fail", {}, now_ + absl::Seconds(1), [&](Reply r) { denied = r; }, now_);
  a_.Call("nope", {}, now_ + absl::Seconds(1), [&](Reply r) { unknown = r; }, now_);
  Pump(2);
  EXPECT_THAT(*denied, StatusIs(absl::StatusCode::kPermissionDenied, "owners only"));
  EXPECT_THAT(*unknown, StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(b_.counters().unknown_method, 1u);
}

TEST_F(RpcTest, LostRequestsAndAnswersAreRetransmittedAndHandledOnce) {
  int runs = 0;
  b_.Handle("count", [&](absl::Span<const uint8_t>) { ++runs; return std::vector<uint8_t>{}; });
  // Lose the first request and the first answer.
  lose_ = [](int n) { return n == 0 || n == 2; };
  std::optional<Reply> got;
  a_.Call("count", {}, now_ + absl::Seconds(5), [&](Reply r) { got = r; }, now_);
  Pump();
  for (int i = 0; i < 20 && !got.has_value(); ++i) Advance(absl::Milliseconds(100));
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->ok());
  EXPECT_EQ(runs, 1);
  EXPECT_GE(a_.counters().retransmissions, 2u);
  EXPECT_EQ(b_.counters().answered_from_cache, 1u);
}

TEST_F(RpcTest, DeadlinePassesWithDeadlineExceeded) {
  lose_ = [](int) { return true; };
  std::optional<Reply> got;
  a_.Call("x", {}, now_ + absl::Seconds(1), [&](Reply r) { got = r; }, now_);
  for (int i = 0; i < 12; ++i) Advance(absl::Milliseconds(100));
  EXPECT_THAT(*got, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(a_.next_timeout(), absl::InfiniteFuture());
}

TEST_F(RpcTest, OversizedCallsAndGarbageAreRefused) {
  std::optional<Reply> got;
  a_.Call("x", std::vector<uint8_t>(kMaxRpcPayload + 1), now_ + absl::Seconds(1),
          [&](Reply r) { got = r; }, now_);
  EXPECT_THAT(*got, StatusIs(absl::StatusCode::kInvalidArgument));
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> junk(rng() % 64);
    for (auto& b : junk) b = static_cast<uint8_t>(rng() % 4);  // Small values hit the framing.
    b_.OnDatagram(junk, now_);
  }
  EXPECT_GT(b_.counters().dropped_malformed, 1000u);
  a_.CancelAll(absl::UnavailableError("closed"));
}

}  // namespace
}  // namespace edgelink::rpc
