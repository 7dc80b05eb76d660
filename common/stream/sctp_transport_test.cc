#include "common/stream/sctp_transport.h"

#include <usrsctp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/status/status_matchers.h"
#include "common/stream/virtual_wall_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::stream {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using Role = SctpTransport::Role;
using State = SctpTransport::State;

constexpr size_t kMaxDatagram = 1200;

// One end of the pair: the transport and everything its callbacks reported.
struct Peer {
  std::unique_ptr<SctpTransport> transport;
  // Datagrams in flight towards this peer, by (arrival time, send order).
  std::map<std::pair<absl::Time, uint64_t>, std::vector<uint8_t>> inbox;
  bool connected = false;
  std::optional<absl::Status> closed;
  std::vector<uint16_t> opened;
  std::vector<uint16_t> stream_closed;
  // Bytes received on each stream when the peer's FIN arrived.
  std::map<uint16_t, size_t> received_at_close;
  std::map<uint16_t, std::vector<uint8_t>> received;
  int writable_calls = 0;
  bool blocked = false;  // A Send took less than it was given and on_writable has not come yet.
  size_t largest_datagram = 0;
  uint64_t datagrams_sent = 0;
  bool capture = false;
  std::vector<std::vector<uint8_t>> captured;  // What this peer sent, if `capture`.
};

// Two transports joined by an in-memory link with a one-way delay and seeded loss and reordering,
// on a virtual clock that usrsctp also reads as its wall clock (VirtualWallClock). A small
// discrete-event loop: packets move only when Run* delivers them (never from inside
// send_datagram), and time jumps to the next packet arrival or transport deadline.
struct Link {
  absl::Duration delay = absl::ZeroDuration();  // One way.
  double loss = 0;
  double reorder = 0;  // Share of packets held back by up to `jitter` extra.
  absl::Duration jitter = absl::Milliseconds(5);
  uint64_t seed = 1;
};

// Virtual time, shared by every harness alive: usrsctp's clock is process-wide. It only moves
// forward, across tests too, so usrsctp never sees time go back.
class World {
 public:
  static World& Get() {
    static World* const world = new World;
    return *world;
  }
  absl::Time now() const { return now_; }
  void AdvanceTo(absl::Time t) {
    if (t <= now_) return;
    now_ = t;
    if (clock_) clock_->Set(now_);
  }
  void Enter() {
    if (users_++ == 0) clock_.emplace(now_);
  }
  void Leave() {
    if (--users_ == 0) clock_.reset();
  }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  int users_ = 0;
  std::optional<testing::VirtualWallClock> clock_;
};

class Harness {
 public:
  explicit Harness(Link link = {}, SctpOptions options = {})
      : link_(link), options_(options), random_(link.seed) {
    World::Get().Enter();
    EXPECT_TRUE(testing::VirtualWallClock::Interposed())
        << "usrsctp would read the real clock: gettimeofday was not interposed";
  }

  ~Harness() {
    // Destroy while the harness (which the callbacks point into) is still whole.
    a.transport.reset();
    b.transport.reset();
    World::Get().Leave();
  }

  void Start() {
    a.transport = Make(Role::kClient, a, b);
    b.transport = Make(Role::kServer, b, a);
  }

  std::unique_ptr<SctpTransport> Make(Role role, Peer& self, Peer& other) {
    SctpTransport::Callbacks callbacks;
    callbacks.on_connected = [&self] { self.connected = true; };
    callbacks.on_stream_opened = [&self](uint16_t stream) { self.opened.push_back(stream); };
    callbacks.on_data = [&self](uint16_t stream, absl::Span<const uint8_t> data) {
      std::vector<uint8_t>& sink = self.received[stream];
      sink.insert(sink.end(), data.begin(), data.end());
    };
    callbacks.on_writable = [&self] {
      ++self.writable_calls;
      self.blocked = false;
    };
    callbacks.on_stream_closed = [&self](uint16_t stream) {
      self.stream_closed.push_back(stream);
      self.received_at_close[stream] = self.received[stream].size();
    };
    callbacks.on_closed = [&self](absl::Status reason) {
      EXPECT_FALSE(self.closed.has_value()) << "on_closed twice";
      self.closed = reason;
    };
    auto send = [this, &self, &other](absl::Span<const uint8_t> datagram) {
      self.largest_datagram = std::max(self.largest_datagram, datagram.size());
      ++self.datagrams_sent;
      if (self.capture) self.captured.emplace_back(datagram.begin(), datagram.end());
      if (cut_) return;
      if (Chance(link_.loss)) {
        ++dropped_;
        return;
      }
      absl::Duration delay = link_.delay;
      if (Chance(link_.reorder)) {
        delay += link_.jitter * std::uniform_real_distribution<double>(0.1, 1)(random_);
        ++reordered_;
      }
      other.inbox.emplace(std::make_pair(now() + delay, sequence_++),
                          std::vector<uint8_t>(datagram.begin(), datagram.end()));
    };
    auto transport = SctpTransport::New(role, send, std::move(callbacks), options_);
    EXPECT_THAT(transport.status(), IsOk());
    return *std::move(transport);
  }

  // Delivers every packet due by now, in arrival order; false if there was none.
  bool Pump() {
    bool any = false;
    for (;;) {
      Peer* to = nullptr;
      for (Peer* peer : {&a, &b}) {
        if (peer->inbox.empty() || !peer->transport) continue;
        if (peer->inbox.begin()->first.first > now()) continue;
        if (to == nullptr || peer->inbox.begin()->first < to->inbox.begin()->first) to = peer;
      }
      if (to == nullptr) return any;
      std::vector<uint8_t> datagram = std::move(to->inbox.begin()->second);
      to->inbox.erase(to->inbox.begin());
      to->transport->OnDatagram(datagram);
      any = true;
    }
  }

  // Runs until `done`, calling `step` before each round (where tests push data). Gives up after
  // `virtual_limit` of virtual time, or a round count only a livelock reaches.
  bool RunUntil(const std::function<bool()>& done, const std::function<void()>& step = nullptr,
                absl::Duration virtual_limit = absl::Minutes(10)) {
    const absl::Time give_up = now() + virtual_limit;
    for (int64_t round = 0; round < 50'000'000; ++round) {
      if (done()) return true;
      if (step) step();
      if (Pump()) continue;
      absl::Time next = absl::InfiniteFuture();
      for (Peer* peer : {&a, &b}) {
        if (!peer->transport) continue;
        next = std::min(next, peer->transport->NextTimeout(now()));
        if (!peer->inbox.empty()) next = std::min(next, peer->inbox.begin()->first.first);
      }
      if (next == absl::InfiniteFuture() || next > give_up) return done();
      World::Get().AdvanceTo(next);
      for (Peer* peer : {&a, &b}) {
        if (peer->transport && peer->transport->NextTimeout(now()) <= now()) {
          peer->transport->OnTimeout(now());
        }
      }
    }
    return done();
  }

  // Lets `duration` of virtual time pass with `step` running.
  void RunFor(absl::Duration duration, const std::function<void()>& step = nullptr) {
    const absl::Time end = now() + duration;
    RunUntil([&] { return now() >= end; }, step, duration + absl::Seconds(1));
  }

  bool Connect() {
    Start();
    return RunUntil([&] { return a.connected && b.connected; });
  }

  bool Idle() const { return a.inbox.empty() && b.inbox.empty(); }
  void Cut() { cut_ = true; }
  absl::Time now() const { return World::Get().now(); }
  uint64_t dropped() const { return dropped_; }
  uint64_t reordered() const { return reordered_; }

  Peer a;  // Client.
  Peer b;  // Server.

 private:
  bool Chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < p;
  }

  Link link_;
  SctpOptions options_;
  std::mt19937_64 random_;
  uint64_t sequence_ = 0;
  bool cut_ = false;
  uint64_t dropped_ = 0;
  uint64_t reordered_ = 0;
};

std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<uint8_t> bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

// Pushes per-stream payloads through `sender` in writes of mixed sizes (1 byte to 64 KiB),
// honouring on_writable.
class Writer {
 public:
  Writer(Peer& sender, uint64_t seed) : sender_(sender), random_(seed) {}

  void Add(uint16_t stream, std::vector<uint8_t> payload) {
    jobs_.push_back(Job{stream, std::move(payload), 0});
  }

  void Step() {
    for (Job& job : jobs_) {
      if (sender_.blocked) return;
      if (job.offset == job.payload.size()) continue;
      const size_t size = std::min(NextSize(), job.payload.size() - job.offset);
      absl::StatusOr<size_t> taken = sender_.transport->Send(
          job.stream, absl::MakeConstSpan(job.payload).subspan(job.offset, size));
      ASSERT_THAT(taken.status(), IsOk());
      job.offset += *taken;
      if (*taken < size) sender_.blocked = true;
      if (*taken == 0) ++zero_sends_;
    }
  }

  bool Done() const {
    return std::all_of(jobs_.begin(), jobs_.end(),
                       [](const Job& job) { return job.offset == job.payload.size(); });
  }
  int zero_sends() const { return zero_sends_; }
  size_t Taken() const {
    size_t total = 0;
    for (const Job& job : jobs_) total += job.offset;
    return total;
  }

  // True once `receiver` holds every payload in full.
  bool Delivered(const Peer& receiver) const {
    for (const Job& job : jobs_) {
      auto it = receiver.received.find(job.stream);
      if (job.payload.empty()) continue;
      if (it == receiver.received.end() || it->second.size() < job.payload.size()) return false;
    }
    return true;
  }

  // Exact comparison, reporting the first difference rather than megabytes of bytes.
  void ExpectReceivedBy(const Peer& receiver) const {
    for (const Job& job : jobs_) {
      auto it = receiver.received.find(job.stream);
      ASSERT_NE(it, receiver.received.end()) << "stream " << job.stream;
      const std::vector<uint8_t>& got = it->second;
      ASSERT_EQ(got.size(), job.payload.size()) << "stream " << job.stream;
      auto mismatch = std::mismatch(got.begin(), got.end(), job.payload.begin());
      EXPECT_EQ(mismatch.first, got.end())
          << "stream " << job.stream << " differs at byte " << (mismatch.first - got.begin());
    }
  }

 private:
  struct Job {
    uint16_t stream;
    std::vector<uint8_t> payload;
    size_t offset;
  };

  size_t NextSize() {
    switch (random_() % 4) {
      case 0:
        return 1 + random_() % 100;
      case 1:
        return 1000 + random_() % 4000;
      case 2:
        return 1 + random_() % 65536;
      default:
        return 16384 + random_() % 200000;  // Larger than one message: split by Send.
    }
  }

  Peer& sender_;
  std::mt19937_64 random_;
  std::vector<Job> jobs_;
  int zero_sends_ = 0;
};

TEST(SctpTransportTest, ConnectsBothSidesWithSimultaneousOpen) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  EXPECT_EQ(h.a.transport->state(), State::kConnected);
  EXPECT_EQ(h.b.transport->state(), State::kConnected);
  EXPECT_LE(h.a.largest_datagram, kMaxDatagram);
  EXPECT_LE(h.b.largest_datagram, kMaxDatagram);
}

TEST(SctpTransportTest, RejectsUnusableOptions) {
  auto send = [](absl::Span<const uint8_t>) {};
  SctpOptions options;
  options.max_datagram_size = 100;
  EXPECT_THAT(SctpTransport::New(Role::kClient, send, {}, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = SctpOptions();
  options.rto_min = absl::Seconds(5);
  EXPECT_THAT(SctpTransport::New(Role::kClient, send, {}, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SctpTransport::New(Role::kClient, nullptr, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SctpTransportTest, RefusesStreamsBeforeConnected) {
  Harness h;
  h.Start();
  EXPECT_THAT(h.a.transport->OpenStream().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(h.a.transport->Send(0, std::vector<uint8_t>{1}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SctpTransportTest, StreamIdsFollowRolesAndPeerSeesOpens) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t a0, h.a.transport->OpenStream());
  ASSERT_OK_AND_ASSIGN(uint16_t a1, h.a.transport->OpenStream());
  ASSERT_OK_AND_ASSIGN(uint16_t b0, h.b.transport->OpenStream());
  EXPECT_EQ(a0, 0);
  EXPECT_EQ(a1, 2);
  EXPECT_EQ(b0, 1);
  ASSERT_TRUE(h.RunUntil([&] { return h.b.opened.size() == 2 && h.a.opened.size() == 1; }));
  EXPECT_THAT(h.b.opened, ::testing::ElementsAre(0, 2));
  EXPECT_THAT(h.a.opened, ::testing::ElementsAre(1));
  EXPECT_THAT(h.a.transport->Send(7, std::vector<uint8_t>{1}).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(SctpTransportTest, CarriesTenMegabytesOnThreeStreamsIntactAndInOrder) {
  Harness h(Link{.delay = absl::Milliseconds(5)});
  ASSERT_TRUE(h.Connect());
  std::vector<uint16_t> streams;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(uint16_t id, h.a.transport->OpenStream());
    streams.push_back(id);
  }
  Writer forward(h.a, 11);
  forward.Add(streams[0], RandomBytes(5'000'000, 1));
  forward.Add(streams[1], RandomBytes(3'000'000, 2));
  forward.Add(streams[2], RandomBytes(2'000'000, 3));
  // The server answers on one of the client's streams at the same time.
  ASSERT_TRUE(h.RunUntil([&] { return h.b.opened.size() == 3; }));
  Writer backward(h.b, 12);
  backward.Add(streams[1], RandomBytes(1'000'000, 4));
  ASSERT_TRUE(h.RunUntil([&] { return forward.Delivered(h.b) && backward.Delivered(h.a); },
                         [&] {
                           forward.Step();
                           backward.Step();
                         }));
  forward.ExpectReceivedBy(h.b);
  backward.ExpectReceivedBy(h.a);
  EXPECT_GT(h.a.writable_calls, 0) << "10 MB should have filled a 1 MiB send buffer";
  EXPECT_LE(h.a.largest_datagram, kMaxDatagram);
  EXPECT_LE(h.b.largest_datagram, kMaxDatagram);
  EXPECT_GE(h.a.largest_datagram, kMaxDatagram - 16) << "full-size packets expected";
  EXPECT_EQ(h.a.transport->stats().protocol_violations, 0u);
  EXPECT_EQ(h.b.transport->stats().protocol_violations, 0u);
}

TEST(SctpTransportTest, CarriesDataIntactThroughLossAndReordering) {
  Harness h(Link{.delay = absl::Milliseconds(10), .loss = 0.05, .reorder = 0.05, .seed = 42});
  ASSERT_TRUE(h.Connect());
  std::vector<uint16_t> streams;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(uint16_t id, h.a.transport->OpenStream());
    streams.push_back(id);
  }
  Writer forward(h.a, 21);
  forward.Add(streams[0], RandomBytes(5'000'000, 5));
  forward.Add(streams[1], RandomBytes(3'000'000, 6));
  forward.Add(streams[2], RandomBytes(2'000'000, 7));
  const absl::Time start = h.now();
  ASSERT_TRUE(h.RunUntil([&] { return forward.Delivered(h.b); }, [&] { forward.Step(); },
                         absl::Hours(2)))
      << "taken " << forward.Taken() << ", received " << h.b.received[streams[0]].size() << "+"
      << h.b.received[streams[1]].size() << "+" << h.b.received[streams[2]].size() << " in "
      << (h.now() - start) << " of virtual time";
  ::testing::Test::RecordProperty("virtual_ms",
                                  static_cast<int>(absl::ToInt64Milliseconds(h.now() - start)));
  forward.ExpectReceivedBy(h.b);
  EXPECT_GT(h.dropped(), 100u);
  EXPECT_GT(h.reordered(), 100u);
  EXPECT_EQ(h.a.transport->state(), State::kConnected);
}

TEST(SctpTransportTest, PausedReceiverStopsSenderUntilResumed) {
  Harness h(Link{.delay = absl::Milliseconds(5)});
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  ASSERT_TRUE(h.RunUntil([&] { return !h.b.opened.empty(); }));
  h.b.transport->PauseReceiving();
  Writer writer(h.a, 31);
  writer.Add(stream, RandomBytes(8'000'000, 8));
  // The sender fills the peer's window, then its own buffer; then Send takes nothing. Window
  // probes trickle a chunk at a time into what the receive buffer has left beyond the advertised
  // window (about 30 s of virtual time here), so look after that. The writer here keeps calling
  // Send although it was told to wait for on_writable, to see it return 0.
  auto eager = [&] {
    h.a.blocked = false;
    writer.Step();
  };
  h.RunFor(absl::Seconds(40), eager);
  const size_t taken_when_full = writer.Taken();
  const int zero_sends_before = writer.zero_sends();
  h.RunFor(absl::Seconds(20), eager);
  EXPECT_EQ(writer.Taken(), taken_when_full) << "Send took data with both buffers full";
  EXPECT_GT(writer.zero_sends(), zero_sends_before) << "Send did not return 0";
  EXPECT_TRUE(h.b.received.empty()) << "paused receiver still delivered";
  // Both 1 MiB buffers, no more.
  EXPECT_GE(taken_when_full, 2u * (1 << 20) - 64 * 1024);
  EXPECT_LE(taken_when_full, 2u * (1 << 20) + 64 * 1024);
  EXPECT_GE(h.a.transport->BufferedAmount(), (1u << 20) - 64 * 1024);
  h.a.blocked = true;  // From here on, wait for on_writable.
  const int writable_before = h.a.writable_calls;

  h.b.transport->ResumeReceiving();
  ASSERT_TRUE(h.RunUntil([&] { return writer.Delivered(h.b); }, [&] { writer.Step(); }));
  writer.ExpectReceivedBy(h.b);
  EXPECT_GT(h.a.writable_calls, writable_before);
}

TEST(SctpTransportTest, StreamCloseReachesPeerAfterItsDataAndIsHalfClose) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  const std::vector<uint8_t> payload = RandomBytes(300'000, 9);
  Writer writer(h.a, 41);
  writer.Add(stream, payload);
  ASSERT_TRUE(h.RunUntil([&] { return writer.Done(); }, [&] { writer.Step(); }));
  ASSERT_THAT(h.a.transport->CloseStream(stream), IsOk());
  EXPECT_THAT(h.a.transport->Send(stream, payload).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(h.a.transport->CloseStream(stream), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(h.RunUntil([&] { return !h.b.stream_closed.empty(); }));
  EXPECT_THAT(h.b.stream_closed, ::testing::ElementsAre(stream));
  EXPECT_EQ(h.b.received_at_close[stream], payload.size());
  writer.ExpectReceivedBy(h.b);

  // The other direction stays open until the server closes it too.
  const std::vector<uint8_t> reply = {'o', 'k'};
  ASSERT_OK_AND_ASSIGN(size_t taken, h.b.transport->Send(stream, reply));
  EXPECT_EQ(taken, reply.size());
  ASSERT_THAT(h.b.transport->CloseStream(stream), IsOk());
  ASSERT_TRUE(h.RunUntil([&] { return !h.a.stream_closed.empty(); }));
  EXPECT_EQ(h.a.received[stream], reply);
  EXPECT_THAT(h.b.transport->Send(stream, reply).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SctpTransportTest, StreamIdsRunOutAndComeBackAfterBothSidesClose) {
  SctpOptions options;
  options.max_streams = 4;  // Client ids 0 and 2.
  Harness h({}, options);
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t first, h.a.transport->OpenStream());
  ASSERT_OK_AND_ASSIGN(uint16_t second, h.a.transport->OpenStream());
  EXPECT_NE(first, second);
  EXPECT_THAT(h.a.transport->OpenStream().status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_TRUE(h.RunUntil([&] { return h.b.opened.size() == 2; }));
  ASSERT_THAT(h.a.transport->CloseStream(first), IsOk());
  ASSERT_THAT(h.b.transport->CloseStream(first), IsOk());
  ASSERT_TRUE(h.RunUntil([&] { return !h.a.stream_closed.empty() && !h.b.stream_closed.empty(); }));
  ASSERT_OK_AND_ASSIGN(uint16_t reused, h.a.transport->OpenStream());
  EXPECT_EQ(reused, first);
  // The reopened stream works end to end, from a fresh start.
  const std::vector<uint8_t> hello = {'h', 'i'};
  ASSERT_OK_AND_ASSIGN(size_t taken, h.a.transport->Send(reused, hello));
  EXPECT_EQ(taken, hello.size());
  ASSERT_TRUE(h.RunUntil([&] { return h.b.opened.size() == 3; }));
  EXPECT_EQ(h.b.opened.back(), first);
  EXPECT_EQ(h.a.transport->stats().protocol_violations, 0u);
  EXPECT_EQ(h.b.transport->stats().protocol_violations, 0u);
}

TEST(SctpTransportTest, GracefulCloseDeliversQueuedDataThenClosesBothSides) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  const std::vector<uint8_t> payload = RandomBytes(500'000, 10);
  ASSERT_OK_AND_ASSIGN(size_t taken, h.a.transport->Send(stream, payload));
  ASSERT_EQ(taken, payload.size());  // Fits the 1 MiB send buffer.
  h.a.transport->Close();            // With all of it still queued.
  EXPECT_THAT(h.a.transport->Send(stream, payload).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(h.RunUntil([&] { return h.a.closed.has_value() && h.b.closed.has_value(); }));
  EXPECT_THAT(*h.a.closed, IsOk());
  EXPECT_THAT(*h.b.closed, IsOk());
  EXPECT_EQ(h.b.received[stream], payload);
  EXPECT_EQ(h.a.transport->state(), State::kClosed);
  EXPECT_EQ(h.b.transport->state(), State::kClosed);
  EXPECT_EQ(h.a.transport->NextTimeout(h.now()), absl::InfiniteFuture());
}

TEST(SctpTransportTest, AbortIsReportedOnBothSides) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  h.a.transport->Abort();
  ASSERT_TRUE(h.a.closed.has_value());
  EXPECT_THAT(*h.a.closed, StatusIs(absl::StatusCode::kCancelled));
  ASSERT_TRUE(h.RunUntil([&] { return h.b.closed.has_value(); }));
  EXPECT_THAT(*h.b.closed, StatusIs(absl::StatusCode::kUnavailable));
}

TEST(SctpTransportTest, VanishedPeerIsDetectedByHeartbeats) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  const uint64_t sent_before = h.a.datagrams_sent;
  h.a.transport.reset();  // Silently: nothing goes out.
  EXPECT_EQ(h.a.datagrams_sent, sent_before);
  const absl::Time start = h.now();
  ASSERT_TRUE(h.RunUntil([&] { return h.b.closed.has_value(); }, nullptr, absl::Hours(1)));
  EXPECT_THAT(*h.b.closed, StatusIs(absl::StatusCode::kUnavailable));
  // Idle association: found by unanswered heartbeats (30 s apart, then retried with backoff).
  EXPECT_GT(h.now() - start, absl::Seconds(30));
}

TEST(SctpTransportTest, PausedReceiverStillLearnsOfAbort) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  h.b.transport->PauseReceiving();
  h.a.transport->Abort();
  ASSERT_TRUE(h.RunUntil([&] { return h.b.closed.has_value(); }));
  EXPECT_THAT(*h.b.closed, StatusIs(absl::StatusCode::kUnavailable));
}

TEST(SctpTransportTest, SilentPeerIsDetectedByRetransmissionTimeouts) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  h.Cut();
  ASSERT_OK_AND_ASSIGN(size_t taken, h.a.transport->Send(stream, RandomBytes(10'000, 11)));
  EXPECT_EQ(taken, 10'000u);
  ASSERT_TRUE(h.RunUntil([&] { return h.a.closed.has_value(); }, nullptr, absl::Hours(1)));
  EXPECT_THAT(*h.a.closed, StatusIs(absl::StatusCode::kUnavailable));
}

TEST(SctpTransportTest, CannotConnectToNobody) {
  Harness h;
  h.Start();
  h.Cut();
  ASSERT_TRUE(h.RunUntil([&] { return h.a.closed.has_value(); }, nullptr, absl::Hours(1)));
  EXPECT_THAT(*h.a.closed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(h.a.connected);
}

TEST(SctpTransportTest, MayBeDestroyedFromOnClosed) {
  std::unique_ptr<SctpTransport> transport;
  SctpTransport::Callbacks callbacks;
  bool closed = false;
  callbacks.on_closed = [&](absl::Status) {
    closed = true;
    transport.reset();
  };
  ASSERT_OK_AND_ASSIGN(transport, SctpTransport::New(
                                      Role::kClient, [](absl::Span<const uint8_t>) {}, callbacks));
  transport->Close();  // Not connected: aborts, on_closed destroys it.
  EXPECT_TRUE(closed);
  EXPECT_EQ(transport, nullptr);
}

TEST(SctpTransportTest, GarbageDatagramsAreDroppedWithoutHarm) {
  Harness h;
  ASSERT_TRUE(h.Connect());
  std::mt19937_64 random(99);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk = RandomBytes(1 + random() % 1600, random());
    (i % 2 ? h.a : h.b).transport->OnDatagram(junk);
  }
  h.a.transport->OnDatagram({});
  EXPECT_EQ(h.a.transport->stats().datagrams_dropped, 1u);
  // Packets with our ports (and a valid checksum) but a wrong verification tag.
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> forged = RandomBytes(12 + random() % 1188, random());
    forged[0] = forged[2] = 0x13;  // Port 5000 both ways.
    forged[1] = forged[3] = 0x88;
    std::memset(&forged[8], 0, 4);
    const uint32_t crc = usrsctp_crc32c(forged.data(), forged.size());
    std::memcpy(&forged[8], &crc, 4);
    h.b.transport->OnDatagram(forged);
  }
  ASSERT_TRUE(h.RunUntil([&] { return h.Idle(); }));
  EXPECT_EQ(h.a.transport->state(), State::kConnected);
  EXPECT_EQ(h.b.transport->state(), State::kConnected);
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  Writer writer(h.a, 51);
  writer.Add(stream, RandomBytes(200'000, 12));
  ASSERT_TRUE(h.RunUntil([&] { return writer.Delivered(h.b); }, [&] { writer.Step(); }));
  writer.ExpectReceivedBy(h.b);
}

// Real packets of a live association, so with the right ports and verification tag, with bits
// flipped, bytes cut off or chunk lengths changed: they reach usrsctp's chunk parsers. (The
// checksum is recomputed too, in case checking is ever turned back on.) The association may or
// may not survive (a mutated ABORT may legitimately end it); nothing may crash, and each side
// must end connected or report on_closed.
TEST(SctpTransportTest, MutatedPacketsOfTheAssociationDoNotCrash) {
  Harness h;
  h.a.capture = true;
  ASSERT_TRUE(h.Connect());
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
  Writer writer(h.a, 61);
  writer.Add(stream, RandomBytes(100'000, 13));
  ASSERT_TRUE(h.RunUntil([&] { return writer.Delivered(h.b); }, [&] { writer.Step(); }));
  const std::vector<std::vector<uint8_t>> captured = h.a.captured;
  ASSERT_FALSE(captured.empty());
  std::mt19937_64 random(7);
  for (int i = 0; i < 3000 && h.b.transport->state() != State::kClosed; ++i) {
    std::vector<uint8_t> packet = captured[random() % captured.size()];
    switch (random() % 3) {
      case 0:
        for (int flips = 1 + random() % 4; flips > 0; --flips) {
          packet[12 + random() % (packet.size() - 12)] ^= uint8_t{1} << (random() % 8);
        }
        break;
      case 1:
        packet.resize(12 + random() % (packet.size() - 11));
        break;
      default:
        if (packet.size() > 16) {  // Inflate or shrink the first chunk's length field.
          packet[14] = static_cast<uint8_t>(random());
          packet[15] = static_cast<uint8_t>(random());
        }
        break;
    }
    std::memset(&packet[8], 0, 4);
    const uint32_t crc = usrsctp_crc32c(packet.data(), packet.size());
    std::memcpy(&packet[8], &crc, 4);
    h.b.transport->OnDatagram(packet);
    h.Pump();
  }
  h.RunFor(absl::Seconds(5));
  for (Peer* peer : {&h.a, &h.b}) {
    EXPECT_EQ(peer->transport->state() == State::kClosed, peer->closed.has_value());
  }
}

TEST(SctpTransportTest, TwoPairsInOneProcessStayApart) {
  Harness first;
  Harness second;
  first.Start();
  second.Start();
  ASSERT_TRUE(first.RunUntil([&] { return first.a.connected && first.b.connected; }));
  ASSERT_TRUE(second.RunUntil([&] { return second.a.connected && second.b.connected; }));
  ASSERT_OK_AND_ASSIGN(uint16_t s1, first.a.transport->OpenStream());
  ASSERT_OK_AND_ASSIGN(uint16_t s2, second.a.transport->OpenStream());
  Writer w1(first.a, 71);
  Writer w2(second.a, 72);
  w1.Add(s1, RandomBytes(300'000, 14));
  w2.Add(s2, RandomBytes(300'000, 15));
  ASSERT_TRUE(first.RunUntil([&] { return w1.Delivered(first.b); }, [&] { w1.Step(); }));
  ASSERT_TRUE(second.RunUntil([&] { return w2.Delivered(second.b); }, [&] { w2.Step(); }));
  w1.ExpectReceivedBy(first.b);
  w2.ExpectReceivedBy(second.b);
}

TEST(SctpTransportTest, WorksAgainAfterEveryTransportWasDestroyed) {
  for (int round = 0; round < 3; ++round) {
    Harness h;
    ASSERT_TRUE(h.Connect()) << "round " << round;
    ASSERT_OK_AND_ASSIGN(uint16_t stream, h.a.transport->OpenStream());
    ASSERT_OK_AND_ASSIGN(size_t taken, h.a.transport->Send(stream, RandomBytes(1000, 16)));
    EXPECT_EQ(taken, 1000u);
    ASSERT_TRUE(h.RunUntil([&] { return h.b.received[stream].size() == 1000; }));
  }
}

// Two pairs driven by two threads at once, as two event loops in one process would. usrsctp's
// timers are process-wide, so one thread's OnTimeout runs the other pair's timers and usrsctp
// calls back into that pair's transport from the wrong thread; the transports only queue there.
// Both threads use the real clock (the usrsctp clock must be shared) and wait for deadlines with
// short bounded sleeps. Mostly for TSan.
TEST(SctpTransportTest, PairsOnTwoThreadsDoNotInterfere) {
  auto run = [](uint64_t seed, bool* ok) {
    std::deque<std::vector<uint8_t>> inbox_a, inbox_b;
    std::deque<std::vector<uint8_t>>* to_a = &inbox_a;
    std::deque<std::vector<uint8_t>>* to_b = &inbox_b;
    Peer a, b;
    auto callbacks = [](Peer& self) {
      SctpTransport::Callbacks c;
      c.on_connected = [&self] { self.connected = true; };
      c.on_stream_opened = [&self](uint16_t s) { self.opened.push_back(s); };
      c.on_data = [&self](uint16_t s, absl::Span<const uint8_t> d) {
        self.received[s].insert(self.received[s].end(), d.begin(), d.end());
      };
      c.on_writable = [&self] { self.blocked = false; };
      return c;
    };
    a.transport = *SctpTransport::New(
        Role::kClient,
        [to_b](absl::Span<const uint8_t> d) { to_b->emplace_back(d.begin(), d.end()); },
        callbacks(a));
    b.transport = *SctpTransport::New(
        Role::kServer,
        [to_a](absl::Span<const uint8_t> d) { to_a->emplace_back(d.begin(), d.end()); },
        callbacks(b));
    Writer writer(a, seed);
    std::optional<uint16_t> stream;
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (absl::Now() < give_up) {
      if (a.connected && !stream) {
        stream = *a.transport->OpenStream();
        writer.Add(*stream, RandomBytes(2'000'000, seed));
      }
      if (stream && writer.Delivered(b)) break;
      if (stream) writer.Step();
      bool moved = false;
      for (int i = 0; i < 64; ++i) {
        for (auto [to, inbox] : {std::make_pair(&a, to_a), std::make_pair(&b, to_b)}) {
          if (inbox->empty()) continue;
          std::vector<uint8_t> d = std::move(inbox->front());
          inbox->pop_front();
          to->transport->OnDatagram(d);
          moved = true;
        }
      }
      if (moved) continue;
      const absl::Time now = absl::Now();
      const absl::Time next =
          std::min(a.transport->NextTimeout(now), b.transport->NextTimeout(now));
      if (next > now) absl::SleepFor(std::min(next - now, absl::Milliseconds(10)));
      a.transport->OnTimeout(absl::Now());
      b.transport->OnTimeout(absl::Now());
    }
    *ok = stream.has_value() && writer.Delivered(b);
    a.transport.reset();  // Before the inboxes their send callbacks fill.
    b.transport.reset();
    if (*ok) writer.ExpectReceivedBy(b);
  };
  bool ok1 = false;
  bool ok2 = false;
  std::thread t1(run, 81, &ok1);
  std::thread t2(run, 82, &ok2);
  t1.join();
  t2.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
}

}  // namespace
}  // namespace edgelink::stream
