// The TCP glue on real loopback sockets and a real EventLoop.
#include "common/tunnel/posix_tcp.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/io/event_loop.h"
#include "common/io/run_until.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::tunnel {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Records every event of one connection.
struct Recorder : LocalConnection::Listener {
  void OnConnected() override { connected = true; }
  void OnData(absl::Span<const uint8_t> data) override {
    received.append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  void OnEnd() override { ended = true; }
  void OnWritable() override { ++writable; }
  void OnError(absl::Status status) override { error = status; }

  bool connected = false;
  std::string received;
  bool ended = false;
  int writable = 0;
  std::optional<absl::Status> error;
};

class PosixTcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(loop_, io::EventLoop::New());
    ASSERT_OK_AND_ASSIGN(io_, TcpIo::New(loop_.get()));
    ASSERT_OK_AND_ASSIGN(
        listener_,
        TcpListener::Listen(io_.get(), *net::Endpoint::Parse("127.0.0.1:0"),
                            [this](std::unique_ptr<LocalConnection> c, const net::Endpoint& from) {
                              accepted_.push_back(std::move(c));
                              from_.push_back(from);
                            }));
  }
  void TearDown() override {
    accepted_.clear();
    listener_.reset();
  }

  // Connects to the listener through LoopbackConnector; returns both ends, started.
  void ConnectPair(Recorder& client, Recorder& server, std::unique_ptr<LocalConnection>& c,
                   std::unique_ptr<LocalConnection>& s) {
    LoopbackConnector connector(io_.get());
    ASSERT_OK_AND_ASSIGN(c, connector.Connect(listener_->local_endpoint().port()));
    c->Start(&client);
    ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client.connected && !accepted_.empty(); }));
    s = std::move(accepted_.back());
    accepted_.pop_back();
    s->Start(&server);
  }

  std::unique_ptr<io::EventLoop> loop_;
  std::unique_ptr<TcpIo> io_;
  std::unique_ptr<TcpListener> listener_;
  std::vector<std::unique_ptr<LocalConnection>> accepted_;
  std::vector<net::Endpoint> from_;
};

TEST_F(PosixTcpTest, ConnectsCarriesBytesAndHalfCloses) {
  Recorder client, server;
  std::unique_ptr<LocalConnection> c, s;
  ConnectPair(client, server, c, s);
  EXPECT_EQ(from_[0].IpString(), "127.0.0.1");
  ASSERT_OK_AND_ASSIGN(size_t n, c->Write(Bytes("hello")));
  EXPECT_EQ(n, 5u);
  loop_->RunOnce(absl::Milliseconds(20));
  EXPECT_EQ(server.received, "");  // Reading starts off.
  s->SetReading(true);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return server.received == "hello"; }));
  c->ShutdownWrite();
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return server.ended; }));
  EXPECT_THAT(c->Write(Bytes("x")), StatusIs(absl::StatusCode::kFailedPrecondition));
  // The other direction still works after the half-close.
  ASSERT_THAT(s->Write(Bytes("reply")), IsOk());
  s->ShutdownWrite();
  c->SetReading(true);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client.ended; }));
  EXPECT_EQ(client.received, "reply");
  EXPECT_FALSE(client.error.has_value());
}

TEST_F(PosixTcpTest, FullSocketReportsWritableOnceTheReaderDrains) {
  Recorder client, server;
  std::unique_ptr<LocalConnection> c, s;
  ConnectPair(client, server, c, s);
  const std::string chunk(256 * 1024, 'w');
  size_t written = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK_AND_ASSIGN(size_t n, c->Write(Bytes(chunk)));
    written += n;
    if (n < chunk.size()) break;
  }
  ASSERT_LT(written, 1000 * chunk.size()) << "the socket never filled";
  loop_->RunOnce(absl::Milliseconds(20));
  EXPECT_EQ(client.writable, 0);  // Nobody reads yet: no room.
  s->SetReading(true);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client.writable > 0; }));
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return server.received.size() == written; }));
}

TEST_F(PosixTcpTest, RefusedConnectIsAnErrorEvent) {
  // A port nobody listens on: take one, then free it.
  uint16_t port;
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<TcpListener> probe,
        TcpListener::Listen(io_.get(), *net::Endpoint::Parse("127.0.0.1:0"),
                            [](std::unique_ptr<LocalConnection>, const net::Endpoint&) {}));
    port = probe->local_endpoint().port();
  }
  LoopbackConnector connector(io_.get());
  Recorder recorder;
  absl::StatusOr<std::unique_ptr<LocalConnection>> c = connector.Connect(port);
  if (!c.ok()) {
    // Refused at once is allowed too.
    EXPECT_THAT(c.status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
    return;
  }
  (*c)->Start(&recorder);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return recorder.error.has_value(); }));
  EXPECT_THAT(*recorder.error, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
  EXPECT_FALSE(recorder.connected);
}

TEST_F(PosixTcpTest, ListenerDestroyedFromInsideAnEventIsSafe) {
  // A listener call that destroys its connection (as TunnelSession does) must not crash.
  struct Destroyer : LocalConnection::Listener {
    void OnConnected() override {}
    void OnData(absl::Span<const uint8_t>) override { connection.reset(); }
    void OnEnd() override { connection.reset(); }
    void OnWritable() override {}
    void OnError(absl::Status) override { connection.reset(); }
    std::unique_ptr<LocalConnection> connection;
  };
  Recorder client, server;
  std::unique_ptr<LocalConnection> c, s;
  ConnectPair(client, server, c, s);
  Destroyer destroyer;
  destroyer.connection = std::move(s);
  destroyer.connection->Start(&destroyer);
  destroyer.connection->SetReading(true);
  ASSERT_THAT(c->Write(Bytes("bye")), IsOk());
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return destroyer.connection == nullptr; }));
  c->SetReading(true);
  ASSERT_TRUE(io::RunUntil(*loop_, [&] { return client.ended || client.error.has_value(); }));
}

TEST_F(PosixTcpTest, ListenErrorsHaveCanonicalCodes) {
  EXPECT_THAT(TcpListener::Listen(io_.get(), listener_->local_endpoint(),
                                  [](std::unique_ptr<LocalConnection>, const net::Endpoint&) {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(TcpListener::Listen(io_.get(), *net::Endpoint::Parse("192.0.2.123:0"),
                                  [](std::unique_ptr<LocalConnection>, const net::Endpoint&) {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace edgelink::tunnel
