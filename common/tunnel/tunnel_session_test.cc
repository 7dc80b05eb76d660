// TunnelSession on an in-memory link: two sessions (or a session and a bare SctpTransport playing
// a misbehaving client) joined by datagram queues with no loss, fake local connections, and a
// virtual clock that jumps to the next deadline when nothing moves. Nothing is lost on the link,
// so usrsctp's own reads of the real clock (RTT samples, loss recovery) do not matter (as in
// common/stream/sctp_bench.cc).
#include "common/tunnel/tunnel_session.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/stream/sctp_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::tunnel {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;
using Kind = TunnelEvent::Kind;

// Virtual time shared by every test: usrsctp's clock is process-wide and only moves forward.
absl::Time& Now() {
  static absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  return now;
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// What a fake local connection's peer (the application) sees and does. Shared with the test, so
// it outlives the connection the session destroys.
struct FakeLocal {
  std::string written;            // What the session wrote: the application received it.
  std::string to_send;            // What the application sends, delivered while reading is on.
  bool close_after_send = false;  // Then it sends FIN.
  bool fin_sent = false;
  bool reset = false;  // Report an error instead (a reset).
  bool reading = false;
  bool shut = false;  // The session sent FIN to the application.
  bool destroyed = false;
  size_t window = std::numeric_limits<size_t>::max();  // What Write may still take.
  bool owes_writable = false;
  size_t max_buffered = 0;  // Largest session buffer seen while this one blocked.
  // Device side only: how connect() ends.
  enum class Connect { kPending, kSucceed, kRefuse, kDone } connect = Connect::kDone;
  uint16_t port = 0;
  LocalConnection::Listener* listener = nullptr;
};

class FakeConnection : public LocalConnection {
 public:
  explicit FakeConnection(std::shared_ptr<FakeLocal> local) : local_(std::move(local)) {}
  ~FakeConnection() override {
    local_->destroyed = true;
    local_->listener = nullptr;
  }
  void Start(Listener* listener) override { local_->listener = listener; }
  void SetReading(bool on) override { local_->reading = on; }
  absl::StatusOr<size_t> Write(absl::Span<const uint8_t> data) override {
    EXPECT_FALSE(local_->shut) << "write after FIN";
    const size_t n = std::min(data.size(), local_->window);
    local_->written.append(reinterpret_cast<const char*>(data.data()), n);
    local_->window -= n;
    if (n < data.size()) local_->owes_writable = true;
    return n;
  }
  void ShutdownWrite() override { local_->shut = true; }

 private:
  std::shared_ptr<FakeLocal> local_;
};

class FakeConnector : public LocalConnector {
 public:
  absl::StatusOr<std::unique_ptr<LocalConnection>> Connect(uint16_t port) override {
    auto local = std::make_shared<FakeLocal>();
    local->port = port;
    local->connect = refuse_next ? FakeLocal::Connect::kRefuse : FakeLocal::Connect::kSucceed;
    if (hold_connects) local->connect = FakeLocal::Connect::kPending;
    made.push_back(local);
    return std::unique_ptr<LocalConnection>(new FakeConnection(local));
  }
  bool refuse_next = false;
  bool hold_connects = false;  // Leave connect() pending until the test says.
  std::vector<std::shared_ptr<FakeLocal>> made;
};

// One end of the link: a tunnel session or a bare transport.
struct Node {
  std::function<void(absl::Span<const uint8_t>)> on_datagram;
  std::function<absl::Time(absl::Time)> next_timeout;
  std::function<void(absl::Time)> on_timeout;
  std::deque<std::vector<uint8_t>> inbox;
};

class Harness {
 public:
  Harness() { allowed_ = {80, 554}; }
  ~Harness() {
    client_.reset();
    device_.reset();
    raw_.reset();
  }

  void StartSessions(TunnelSessionOptions device_options = {}) {
    device_options.side = TunnelSessionOptions::Side::kDevice;
    device_options.connector = &connector_;
    device_options.port_allowed = [this](uint16_t port) { return allowed_.count(port) > 0; };
    TunnelSessionOptions client_options;
    client_options.side = TunnelSessionOptions::Side::kClient;
    client_options.local_buffer_limit = device_options.local_buffer_limit;
    client_options.session_buffer_limit = device_options.session_buffer_limit;
    absl::StatusOr<std::unique_ptr<TunnelSession>> client = TunnelSession::New(
        client_options, [this](absl::Span<const uint8_t> d) { Queue(device_node_, d); },
        {[this](const TunnelEvent& e) { client_events_.push_back(e); }, nullptr});
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
    absl::StatusOr<std::unique_ptr<TunnelSession>> device = TunnelSession::New(
        device_options, [this](absl::Span<const uint8_t> d) { Queue(client_node_, d); },
        {[this](const TunnelEvent& e) { device_events_.push_back(e); }, nullptr});
    ASSERT_THAT(device, IsOk());
    device_ = *std::move(device);
    Bind(client_node_, client_.get());
    Bind(device_node_, device_.get());
  }

  // A device session facing a bare SCTP client that sends whatever the test writes.
  void StartRawClient() {
    TunnelSessionOptions options;
    options.side = TunnelSessionOptions::Side::kDevice;
    options.connector = &connector_;
    options.port_allowed = [this](uint16_t port) { return allowed_.count(port) > 0; };
    absl::StatusOr<std::unique_ptr<TunnelSession>> device = TunnelSession::New(
        options, [this](absl::Span<const uint8_t> d) { Queue(client_node_, d); },
        {[this](const TunnelEvent& e) { device_events_.push_back(e); }, nullptr});
    ASSERT_THAT(device, IsOk());
    device_ = *std::move(device);
    Bind(device_node_, device_.get());
    stream::SctpTransport::Callbacks callbacks;
    callbacks.on_connected = [this] { raw_connected_ = true; };
    callbacks.on_data = [this](uint16_t stream, absl::Span<const uint8_t> data) {
      raw_received_[stream].append(reinterpret_cast<const char*>(data.data()), data.size());
    };
    callbacks.on_stream_closed = [this](uint16_t stream) { raw_closed_.push_back(stream); };
    absl::StatusOr<std::unique_ptr<stream::SctpTransport>> raw = stream::SctpTransport::New(
        stream::SctpTransport::Role::kClient,
        [this](absl::Span<const uint8_t> d) { Queue(device_node_, d); }, callbacks,
        DefaultTunnelSctpOptions());
    ASSERT_THAT(raw, IsOk());
    raw_ = *std::move(raw);
    stream::SctpTransport* t = raw_.get();
    client_node_.on_datagram = [t](absl::Span<const uint8_t> d) { t->OnDatagram(d); };
    client_node_.next_timeout = [t](absl::Time now) { return t->NextTimeout(now); };
    client_node_.on_timeout = [t](absl::Time now) { t->OnTimeout(now); };
  }

  // Opens a client tunnel to `port` over a fresh fake local connection.
  std::shared_ptr<FakeLocal> Open(uint16_t port, uint64_t* id = nullptr) {
    auto local = std::make_shared<FakeLocal>();
    absl::StatusOr<uint64_t> opened =
        client_->Open(port, std::unique_ptr<LocalConnection>(new FakeConnection(local)));
    EXPECT_THAT(opened, IsOk());
    if (id != nullptr && opened.ok()) *id = *opened;
    client_locals_.push_back(local);
    return local;
  }

  // Runs until `done`, moving datagrams and local events, and jumping the clock when idle.
  bool RunUntil(const std::function<bool()>& done, int max_rounds = 2'000'000) {
    for (int round = 0; round < max_rounds; ++round) {
      if (done()) return true;
      if (!Step()) {
        absl::Time next = absl::InfiniteFuture();
        for (Node* node : {&client_node_, &device_node_}) {
          if (node->next_timeout) next = std::min(next, node->next_timeout(Now()));
        }
        if (next == absl::InfiniteFuture()) return done();
        Now() = std::max(Now(), next);
        for (Node* node : {&client_node_, &device_node_}) {
          if (node->on_timeout && node->next_timeout(Now()) <= Now()) node->on_timeout(Now());
        }
      }
    }
    return done();
  }

  // Lets the link settle (timers included) for `duration` of virtual time.
  void RunFor(absl::Duration duration) {
    const absl::Time end = Now() + duration;
    RunUntil([&] { return Now() >= end; });
  }

  TunnelSession& client() { return *client_; }
  TunnelSession& device() { return *device_; }
  stream::SctpTransport& raw() { return *raw_; }
  FakeConnector& connector() { return connector_; }
  std::set<uint16_t>& allowed() { return allowed_; }
  const std::vector<TunnelEvent>& client_events() const { return client_events_; }
  const std::vector<TunnelEvent>& device_events() const { return device_events_; }
  bool raw_connected() const { return raw_connected_; }
  std::map<uint16_t, std::string>& raw_received() { return raw_received_; }
  const std::vector<uint16_t>& raw_closed() const { return raw_closed_; }

 private:
  static void Queue(Node& node, absl::Span<const uint8_t> datagram) {
    node.inbox.emplace_back(datagram.begin(), datagram.end());
  }

  static void Bind(Node& node, TunnelSession* session) {
    node.on_datagram = [session](absl::Span<const uint8_t> d) { session->OnDatagram(d); };
    node.next_timeout = [session](absl::Time now) { return session->NextTimeout(now); };
    node.on_timeout = [session](absl::Time now) { session->OnTimeout(now); };
  }

  bool Step() {
    bool moved = false;
    for (Node* node : {&device_node_, &client_node_}) {
      while (!node->inbox.empty()) {
        std::vector<uint8_t> datagram = std::move(node->inbox.front());
        node->inbox.pop_front();
        node->on_datagram(datagram);
        moved = true;
      }
    }
    std::vector<std::shared_ptr<FakeLocal>> locals = client_locals_;
    locals.insert(locals.end(), connector_.made.begin(), connector_.made.end());
    for (const std::shared_ptr<FakeLocal>& local : locals) moved |= DriveLocal(*local);
    for (Node* node : {&client_node_, &device_node_}) {
      if (node->on_timeout && node->next_timeout(Now()) <= Now()) {
        node->on_timeout(Now());
        moved = true;
      }
    }
    return moved;
  }

  // One event of the application behind `local`, if it has one.
  bool DriveLocal(FakeLocal& local) {
    if (local.destroyed || local.listener == nullptr) return false;
    if (local.connect == FakeLocal::Connect::kSucceed) {
      local.connect = FakeLocal::Connect::kDone;
      local.listener->OnConnected();
      return true;
    }
    if (local.connect == FakeLocal::Connect::kRefuse) {
      local.connect = FakeLocal::Connect::kDone;
      local.listener->OnError(absl::UnavailableError("connect: Connection refused"));
      return true;
    }
    if (local.connect == FakeLocal::Connect::kPending) return false;
    if (local.reset) {
      local.reset = false;
      local.listener->OnError(absl::UnavailableError("Connection reset by peer"));
      return true;
    }
    if (local.owes_writable && local.window > 0) {
      local.owes_writable = false;
      local.listener->OnWritable();
      return true;
    }
    if (!local.reading) return false;
    if (!local.to_send.empty()) {
      const size_t n = std::min<size_t>(local.to_send.size(), 64 * 1024);
      const std::string chunk = local.to_send.substr(0, n);
      local.to_send.erase(0, n);
      local.listener->OnData(Bytes(chunk));
      return true;
    }
    if (local.close_after_send && !local.fin_sent) {
      local.fin_sent = true;
      local.listener->OnEnd();
      return true;
    }
    return false;
  }

  std::set<uint16_t> allowed_;
  FakeConnector connector_;
  Node client_node_;
  Node device_node_;
  std::unique_ptr<TunnelSession> client_;
  std::unique_ptr<TunnelSession> device_;
  std::unique_ptr<stream::SctpTransport> raw_;
  std::vector<std::shared_ptr<FakeLocal>> client_locals_;
  std::vector<TunnelEvent> client_events_;
  std::vector<TunnelEvent> device_events_;
  bool raw_connected_ = false;
  std::map<uint16_t, std::string> raw_received_;
  std::vector<uint16_t> raw_closed_;
};

std::vector<Kind> Kinds(const std::vector<TunnelEvent>& events) {
  std::vector<Kind> kinds;
  for (const TunnelEvent& e : events) kinds.push_back(e.kind);
  return kinds;
}

TEST(TunnelSessionTest, BytesFlowBothWaysAndFinsBecomeShutdowns) {
  Harness h;
  h.StartSessions();
  std::shared_ptr<FakeLocal> client = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return !h.connector().made.empty() && client->reading; }));
  std::shared_ptr<FakeLocal> device = h.connector().made[0];
  EXPECT_EQ(device->port, 80);
  ASSERT_THAT(Kinds(h.client_events()), ::testing::ElementsAre(Kind::kOpened));

  const std::string up = RandomBytes(3'000'000, 1);
  const std::string down = RandomBytes(2'000'000, 2);
  client->to_send = up;
  device->to_send = down;
  ASSERT_TRUE(h.RunUntil([&] {
    return device->written.size() == up.size() && client->written.size() == down.size();
  }));
  EXPECT_TRUE(device->written == up);
  EXPECT_TRUE(client->written == down);

  // The application behind the client closes its sending side: the device's service reads EOF,
  // and can still answer.
  client->close_after_send = true;
  ASSERT_TRUE(h.RunUntil([&] { return device->shut; }));
  EXPECT_FALSE(client->shut);
  device->to_send = "last words";
  device->close_after_send = true;
  ASSERT_TRUE(h.RunUntil([&] { return client->destroyed && device->destroyed; }));
  EXPECT_TRUE(client->shut);
  EXPECT_EQ(client->written, down + "last words");
  ASSERT_TRUE(
      h.RunUntil([&] { return h.client().tunnel_count() == 0 && h.device().tunnel_count() == 0; }));

  ASSERT_THAT(Kinds(h.client_events()), ::testing::ElementsAre(Kind::kOpened, Kind::kClosed));
  const TunnelEvent& closed = h.client_events()[1];
  EXPECT_THAT(closed.status, IsOk());
  EXPECT_EQ(closed.bytes_sent, up.size());
  EXPECT_EQ(closed.bytes_received, down.size() + 10);
  EXPECT_EQ(h.device().counters().bytes_received, up.size());
  EXPECT_EQ(h.device().counters().bytes_sent, down.size() + 10);
  EXPECT_EQ(h.device().counters().opened, 1u);
  EXPECT_EQ(h.device().counters().failed, 0u);
}

TEST(TunnelSessionTest, PortNotOnTheListIsRefusedWithStatusOne) {
  Harness h;
  h.StartSessions();
  std::shared_ptr<FakeLocal> client = h.Open(22);
  ASSERT_TRUE(h.RunUntil([&] { return client->destroyed; }));
  EXPECT_TRUE(h.connector().made.empty());  // The device never tried to connect.
  ASSERT_THAT(Kinds(h.client_events()), ::testing::ElementsAre(Kind::kRefused));
  EXPECT_THAT(h.client_events()[0].status,
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("port 22")));
  EXPECT_EQ(h.client().counters().port_refused, 1u);
  EXPECT_EQ(h.device().counters().port_refused, 1u);
  ASSERT_TRUE(
      h.RunUntil([&] { return h.client().tunnel_count() == 0 && h.device().tunnel_count() == 0; }));
  // The session still serves allowed ports.
  std::shared_ptr<FakeLocal> second = h.Open(554);
  ASSERT_TRUE(h.RunUntil([&] { return second->reading; }));
}

TEST(TunnelSessionTest, AllowListIsAskedForEachRequest) {
  Harness h;
  h.StartSessions();
  h.allowed().erase(80);
  std::shared_ptr<FakeLocal> refused = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return refused->destroyed; }));
  h.allowed().insert(80);  // A reloaded config.
  std::shared_ptr<FakeLocal> accepted = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return accepted->reading; }));
}

TEST(TunnelSessionTest, RefusedConnectAnswersStatusTwo) {
  Harness h;
  h.StartSessions();
  h.connector().refuse_next = true;
  std::shared_ptr<FakeLocal> client = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return client->destroyed; }));
  ASSERT_THAT(Kinds(h.client_events()), ::testing::ElementsAre(Kind::kRefused));
  EXPECT_THAT(h.client_events()[0].status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("could not connect")));
  EXPECT_EQ(h.device().counters().connect_failed, 1u);
  ASSERT_THAT(Kinds(h.device_events()), ::testing::ElementsAre(Kind::kRefused));
  EXPECT_THAT(h.device_events()[0].status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
}

TEST(TunnelSessionTest, ManyConnectionsShareOneAssociation) {
  Harness h;
  h.StartSessions();
  std::vector<std::shared_ptr<FakeLocal>> clients;
  std::vector<std::string> up, down;
  for (int i = 0; i < 24; ++i) {
    clients.push_back(h.Open(i % 2 == 0 ? 80 : 554));
    up.push_back(RandomBytes(50'000 + i * 1000, 100 + i));
    down.push_back(RandomBytes(40'000 + i * 1000, 200 + i));
    clients.back()->to_send = up.back();
    clients.back()->close_after_send = true;
  }
  ASSERT_TRUE(h.RunUntil([&] { return h.connector().made.size() == clients.size(); }));
  // Device connections come in the order the streams were opened.
  for (size_t i = 0; i < clients.size(); ++i) {
    h.connector().made[i]->to_send = down[i];
    h.connector().made[i]->close_after_send = true;
  }
  ASSERT_TRUE(
      h.RunUntil([&] { return h.client().tunnel_count() == 0 && h.device().tunnel_count() == 0; }));
  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(h.connector().made[i]->written == up[i]) << i;
    EXPECT_TRUE(clients[i]->written == down[i]) << i;
    EXPECT_TRUE(clients[i]->shut && h.connector().made[i]->shut) << i;
  }
  EXPECT_EQ(h.device().counters().opened, clients.size());
}

TEST(TunnelSessionTest, SlowLocalReaderPausesTheAssociationWithBoundedMemory) {
  Harness h;
  TunnelSessionOptions options;
  options.local_buffer_limit = 128 * 1024;
  h.StartSessions(options);
  std::shared_ptr<FakeLocal> client = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return !h.connector().made.empty() && client->reading; }));
  std::shared_ptr<FakeLocal> device = h.connector().made[0];
  device->window = 0;  // The service stops reading.
  const std::string up = RandomBytes(8'000'000, 3);
  client->to_send = up;
  size_t device_peak = 0;
  size_t client_peak = 0;
  auto track = [&] {
    device_peak = std::max(device_peak, h.device().buffered_bytes());
    client_peak = std::max(client_peak, h.client().buffered_bytes());
  };
  // Until the pressure reaches the client's application, then a while longer. (Not for long:
  // with the window shut, usrsctp's zero-window probes are "lost", and its loss recovery reads
  // the real clock, which does not move with this test's; see the file comment.)
  ASSERT_TRUE(h.RunUntil([&] {
    track();
    return h.device().receiving_paused() && !client->reading;
  }));
  const absl::Time end = Now() + absl::Milliseconds(100);
  h.RunUntil([&] {
    track();
    return Now() >= end;
  });
  EXPECT_TRUE(h.device().receiving_paused());
  EXPECT_FALSE(h.device().closed());
  EXPECT_GE(h.device().counters().receive_pauses, 1u);
  // Held by the device: at most its limit plus one SCTP message; by the client: one read.
  EXPECT_LE(device_peak, options.local_buffer_limit + 64 * 1024);
  EXPECT_LE(client_peak, 64 * 1024u);
  // The backpressure reached the client's application: it is not being read.
  EXPECT_FALSE(client->reading);
  EXPECT_FALSE(client->to_send.empty());

  device->window = std::numeric_limits<size_t>::max();  // The service reads again.
  ASSERT_TRUE(h.RunUntil([&] { return device->written.size() == up.size(); }));
  EXPECT_TRUE(device->written == up);
  EXPECT_FALSE(h.device().receiving_paused());
}

TEST(TunnelSessionTest, LocalResetClosesTheStreamAndThePeerSeesEof) {
  Harness h;
  h.StartSessions();
  std::shared_ptr<FakeLocal> client = h.Open(80);
  ASSERT_TRUE(h.RunUntil([&] { return !h.connector().made.empty() && client->reading; }));
  std::shared_ptr<FakeLocal> device = h.connector().made[0];
  client->to_send = "request";
  ASSERT_TRUE(h.RunUntil([&] { return device->written == "request"; }));
  device->reset = true;  // The service crashes.
  ASSERT_TRUE(h.RunUntil([&] { return client->shut && device->destroyed; }));
  // The application sees end of file, closes, and the tunnel is gone on both sides.
  client->close_after_send = true;
  ASSERT_TRUE(
      h.RunUntil([&] { return h.client().tunnel_count() == 0 && h.device().tunnel_count() == 0; }));
  ASSERT_THAT(Kinds(h.device_events()), ::testing::ElementsAre(Kind::kOpened, Kind::kClosed));
  EXPECT_THAT(h.device_events()[1].status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(h.device().counters().failed, 1u);
  ASSERT_THAT(Kinds(h.client_events()), ::testing::ElementsAre(Kind::kOpened, Kind::kClosed));
  EXPECT_THAT(h.client_events()[1].status, IsOk());
}

TEST(TunnelSessionTest, EarlyBytesWaitForTheConnectAndEarlyFinFollowsThem) {
  Harness h;
  h.StartRawClient();
  h.connector().hold_connects = true;
  ASSERT_TRUE(h.RunUntil([&] { return h.raw_connected(); }));
  ASSERT_OK_AND_ASSIGN(uint16_t stream, h.raw().OpenStream());
  const auto request = EncodeRequest(80);
  std::string message(request.begin(), request.end());
  message += "early bytes";
  ASSERT_THAT(h.raw().Send(stream, Bytes(message)), IsOk());
  ASSERT_THAT(h.raw().CloseStream(stream), IsOk());
  ASSERT_TRUE(h.RunUntil([&] { return !h.connector().made.empty(); }));
  std::shared_ptr<FakeLocal> device = h.connector().made[0];
  h.RunFor(absl::Milliseconds(50));
  EXPECT_EQ(device->written, "");  // Not connected yet.
  device->connect = FakeLocal::Connect::kSucceed;
  ASSERT_TRUE(h.RunUntil([&] { return device->shut; }));
  EXPECT_EQ(device->written, "early bytes");
  ASSERT_TRUE(h.RunUntil([&] { return !h.raw_received()[stream].empty(); }));
  EXPECT_EQ(h.raw_received()[stream], std::string(1, '\0'));  // STATUS 0.
}

TEST(TunnelSessionTest, GarbageRequestsGetStatusThreeOrAPlainClose) {
  Harness h;
  h.StartRawClient();
  ASSERT_TRUE(h.RunUntil([&] { return h.raw_connected(); }));
  // An unknown version.
  ASSERT_OK_AND_ASSIGN(uint16_t bad_version, h.raw().OpenStream());
  const std::string garbage(
      "\x7f\x00\x50"
      "GET / HTTP/1.0\r\n",
      3 + 16);
  ASSERT_THAT(h.raw().Send(bad_version, Bytes(garbage)), IsOk());
  // A request cut short by FIN.
  ASSERT_OK_AND_ASSIGN(uint16_t truncated, h.raw().OpenStream());
  ASSERT_THAT(h.raw().Send(truncated, Bytes(std::string("\x01", 1))), IsOk());
  ASSERT_THAT(h.raw().CloseStream(truncated), IsOk());
  // Port 0 is never on a list.
  ASSERT_OK_AND_ASSIGN(uint16_t port_zero, h.raw().OpenStream());
  ASSERT_THAT(h.raw().Send(port_zero, Bytes(std::string("\x01\x00\x00", 3))), IsOk());

  auto closed = [&](uint16_t s) {
    return std::count(h.raw_closed().begin(), h.raw_closed().end(), s) > 0;
  };
  ASSERT_TRUE(
      h.RunUntil([&] { return closed(bad_version) && closed(truncated) && closed(port_zero); }));
  EXPECT_EQ(h.raw_received()[bad_version], std::string(1, '\x03'));
  EXPECT_EQ(h.raw_received()[truncated], "");
  EXPECT_EQ(h.raw_received()[port_zero], std::string(1, '\x01'));
  EXPECT_TRUE(h.connector().made.empty());
  EXPECT_EQ(h.device().counters().bad_requests, 1u);
  EXPECT_EQ(h.device().counters().port_refused, 1u);
  // Closing our ends lets the device forget all three.
  ASSERT_THAT(h.raw().CloseStream(bad_version), IsOk());
  ASSERT_THAT(h.raw().CloseStream(port_zero), IsOk());
  ASSERT_TRUE(h.RunUntil([&] { return h.device().tunnel_count() == 0; }));
}

TEST(TunnelSessionTest, OnlyTheClientOpensTunnels) {
  Harness h;
  h.StartSessions();
  auto local = std::make_shared<FakeLocal>();
  EXPECT_THAT(h.device().Open(80, std::unique_ptr<LocalConnection>(new FakeConnection(local))),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(local->destroyed);
}

TEST(TunnelSessionTest, OptionsAreChecked) {
  TunnelSessionOptions device;
  device.side = TunnelSessionOptions::Side::kDevice;
  EXPECT_THAT(TunnelSession::New(device, [](absl::Span<const uint8_t>) {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("connector")));
  TunnelSessionOptions big;
  big.sctp.max_datagram_size = 1200;
  EXPECT_THAT(TunnelSession::New(big, [](absl::Span<const uint8_t>) {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1197")));
}

}  // namespace
}  // namespace edgelink::tunnel
