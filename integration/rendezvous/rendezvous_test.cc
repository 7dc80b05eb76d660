// Client rendezvous end to end, in one process but over real sockets: the basestation Server
// (UDP attach + gRPC API over real mutual TLS), the reference device daemon's core (attach
// channel, access list, pairing), and client SDKs with certificates from a fresh test CA. The
// tunnel tests add a TCP echo server on 127.0.0.1 that the device may tunnel to.
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "basestation/registry/registry.h"
#include "basestation/server/server.h"
#include "client/sdk/client.h"
#include "client/sdk/peer_session.h"
#include "common/io/event_loop.h"
#include "common/io/loop_thread.h"
#include "common/status/status_matchers.h"
#include "common/tls/credentials.h"
#include "common/tls/test_pki.h"
#include "common/tunnel/tunnel_protocol.h"
#include "device/daemon/config.h"
#include "device/daemon/daemon.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "proto/basestation.grpc.pb.h"

namespace edgelink {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

using io::LoopThread;

bool WaitFor(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(10));  // Polling interval, not a wait for an event.
  }
  return true;
}

crypto::SecretBytes Text(absl::string_view text) {
  return crypto::SecretBytes::CopyFrom(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string AsString(const crypto::SecretBytes& bytes) {
  return std::string(bytes.span().begin(), bytes.span().end());
}

class RendezvousTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (pki_ != nullptr) return;  // Made by an earlier suite of this fixture (TunnelTest).
    pki_ = new tls::testing::TestPki(*tls::testing::TestPki::Create("rendezvous"));
    for (const char* name : {"alice", "bob", "carol", "admin", "mallory"}) {
      (*fingerprints_)[name] = *pki_->IssueClient(name);
    }
    // Certificates the handshake must refuse.
    (void)pki_->IssueClient("expired", {"--not-before", "20200101000000Z", "--not-after",
                                        "20200201000000Z"});
    (void)pki_->IssueClient("future", {"--not-before", "20990101000000Z", "--not-after",
                                       "20991231000000Z"});
    ASSERT_THAT(pki_->Revoke("mallory"), IsOk());
    other_pki_ = new tls::testing::TestPki(*tls::testing::TestPki::Create("other"));
    (void)other_pki_->IssueClient("stranger");
  }

  void SetUp() override {
    const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    mkdir(dir.c_str(), 0700);
    db_ = dir + "/registry.db";
    {
      auto registry = *basestation::Registry::Open(db_);
      for (const char* id : {"cam-1", "cam-2"}) {
        basestation::ProvisionedDevice device = *registry->Provision(id, "camera");
        secrets_[id] = std::move(device.secret);
        pairing_[id] = AsString(device.pairing_secret);
      }
    }
    basestation::ServerOptions options;
    options.registry_path = db_;
    options.attach_listen = *net::Endpoint::Parse("127.0.0.1:0");
    // Quick liveness, so a device that stops is offline within seconds.
    options.attach.keepalive_interval = absl::Seconds(1);
    options.attach.liveness_timeout = absl::Seconds(3);
    options.api_listen = *net::Endpoint::Parse("127.0.0.1:0");
    options.relay_listen = *net::Endpoint::Parse("127.0.0.1:0");
    options.zone = "devices.test";
    options.public_addresses = {*net::Endpoint::Parse("127.0.0.1:0")};
    options.tls = {pki_->server_cert(), pki_->server_key(), pki_->client_ca(), pki_->crl()};
    options.admin_fingerprints = {(*fingerprints_)["admin"]};
    options.broker.requests_per_second = 5;
    options.broker.request_burst = 20;
    ASSERT_OK_AND_ASSIGN(server_, basestation::Server::Start(std::move(options), bs_.get()));
    bs_.Start();
    api_ = absl::StrCat("127.0.0.1:", server_->api_port());

    StartDevice("cam-1", dir);
  }

  void TearDown() override {
    StopDevice();
    bs_.Stop();
    server_.reset();
  }

  // Stops the device's loop thread, then the daemon (which unregisters from the loop), then the
  // loop itself.
  void StopDevice() {
    if (device_loop_) device_loop_->Stop();
    daemon_.reset();
    device_loop_.reset();
  }

  void StartDevice(const std::string& id, const std::string& dir) {
    device::DeviceConfig config;
    config.device_id = id;
    config.secret = secrets_[id].Clone();
    config.basestation = server_->attach_endpoint();
    config.pairing_secret = Text(pairing_[id]);
    config.access_list_path = dir + "/" + id + ".access";
    config.tunnel_ports = tunnel_ports_;
    device_loop_ = std::make_unique<LoopThread>();
    ASSERT_OK_AND_ASSIGN(daemon_, device::DeviceDaemon::Start(dir + "/" + id + ".conf",
                                                             std::move(config),
                                                             device_loop_->get()));
    device_loop_->Start();
    ASSERT_TRUE(WaitFor([&] {
      return device_loop_->Run([&] {
        return daemon_->client() != nullptr &&
               daemon_->client()->state() == device::AttachClient::State::kAttached;
      });
    })) << "device never attached";
  }

  std::unique_ptr<client::Client> ClientAs(const std::string& name,
                                           const tls::testing::TestPki& pki = *pki_) {
    client::ClientOptions options;
    options.basestation = api_;
    options.tls = {pki_->server_ca(), pki.client_cert(name), pki.client_key(name)};
    options.timeout = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(options);
    EXPECT_THAT(c, IsOk());
    return *std::move(c);
  }

  std::string Fingerprint(const std::string& name) { return (*fingerprints_)[name]; }

  // The session key the device holds for `session`, read on the device's loop.
  std::string DeviceSideKey(const client::Session& session) {
    wire::SessionId id;
    std::copy(session.session_id.begin(), session.session_id.end(), id.begin());
    return device_loop_->Run([&] {
      const device::AcceptedSession* s = daemon_->handler().FindSession(id);
      return s == nullptr ? std::string() : AsString(s->session_key);
    });
  }

  static tls::testing::TestPki* pki_;
  static tls::testing::TestPki* other_pki_;
  static std::map<std::string, std::string>* fingerprints_;

  std::set<uint16_t> tunnel_ports_;  // The device's allow-list; set before SetUp.
  std::string db_;
  std::map<std::string, crypto::SecretBytes> secrets_;
  std::map<std::string, std::string> pairing_;
  LoopThread bs_;
  std::unique_ptr<basestation::Server> server_;
  std::string api_;
  std::unique_ptr<LoopThread> device_loop_;
  std::unique_ptr<device::DeviceDaemon> daemon_;
};

tls::testing::TestPki* RendezvousTest::pki_ = nullptr;
tls::testing::TestPki* RendezvousTest::other_pki_ = nullptr;
std::map<std::string, std::string>* RendezvousTest::fingerprints_ =
    new std::map<std::string, std::string>();

TEST_F(RendezvousTest, PairAddConnectRemoveWithMatchingSessionKeys) {
  auto alice = ClientAs("alice");
  auto bob = ClientAs("bob");
  EXPECT_EQ(alice->fingerprint(), Fingerprint("alice"));

  // Nobody is on a new device's list, so nobody connects.
  EXPECT_THAT(alice->Connect("cam-1"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(alice->Pair("cam-1", Text("WRNG-WRNG-WRNG-WRNG"), "alice"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_THAT(alice->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  // Pairing closes behind the owner.
  EXPECT_THAT(bob->Pair("cam-1", Text(pairing_["cam-1"]), "bob"),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_OK_AND_ASSIGN(std::vector<client::DeviceInfo> devices, alice->ListDevices());
  ASSERT_THAT(devices, SizeIs(1));
  EXPECT_EQ(devices[0].device_id, "cam-1");
  EXPECT_TRUE(devices[0].online);
  EXPECT_THAT(*bob->ListDevices(), SizeIs(0));  // Bob sees no device until let in.

  ASSERT_THAT(alice->AddUser("cam-1", bob->fingerprint(), "user", "bob"), IsOk());
  EXPECT_THAT(bob->AddUser("cam-1", Fingerprint("carol"), "user", "carol"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(std::vector<client::User> users, alice->ListUsers("cam-1"));
  EXPECT_THAT(users, SizeIs(2));

  ASSERT_OK_AND_ASSIGN(client::Session session, bob->Connect("cam-1"));
  EXPECT_EQ(session.session_key.size(), 16u);
  EXPECT_EQ(DeviceSideKey(session), AsString(session.session_key));
  EXPECT_FALSE(session.device_candidates.empty());
  ASSERT_OK_AND_ASSIGN(client::Session second, bob->Connect("cam-1"));
  EXPECT_NE(AsString(second.session_key), AsString(session.session_key));  // Fresh per connect.

  ASSERT_THAT(alice->RemoveUser("cam-1", bob->fingerprint()), IsOk());
  EXPECT_EQ(DeviceSideKey(session), "");  // The device ended Bob's sessions.
  EXPECT_THAT(bob->Connect("cam-1"), StatusIs(absl::StatusCode::kPermissionDenied,
                                              HasSubstr("refused")));
  EXPECT_THAT(alice->Connect("cam-1"), IsOk());
}

TEST_F(RendezvousTest, PeerChannelCarriesRpcToTheDevice) {
  auto alice = ClientAs("alice");
  ASSERT_THAT(alice->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::PeerSession> peer,
                       client::PeerSession::Open(*alice, "cam-1"));
  ASSERT_NE(peer->connection().active_path(), nullptr);
  EXPECT_EQ(channel::PeerConnection::PathName(*peer->connection().active_path()), "local");
  const std::vector<uint8_t> hello = {'h', 'e', 'l', 'l', 'o'};
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> echoed, peer->Call("echo", hello));
  EXPECT_EQ(echoed, hello);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> status, peer->Call("status", {}));
  EXPECT_THAT(std::string(status.begin(), status.end()), HasSubstr("device_id=cam-1"));
  EXPECT_THAT(peer->Call("no-such-method", {}), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(device_loop_->Run([&] { return daemon_->peer_count(); }), 1u);
}

TEST_F(RendezvousTest, RelayOnlySessionCarriesRpcThroughTheBasestation) {
  auto alice = ClientAs("alice");
  ASSERT_THAT(alice->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  client::PeerSessionOptions options;
  options.relay_only = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::PeerSession> peer,
                       client::PeerSession::Open(*alice, "cam-1", options));
  ASSERT_NE(peer->connection().active_path(), nullptr);
  EXPECT_EQ(channel::PeerConnection::PathName(*peer->connection().active_path()), "relay");
  EXPECT_EQ(peer->session().relay, *server_->relay_endpoint());
  const std::vector<uint8_t> hello(1000, 'r');
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> echoed, peer->Call("echo", hello));
    EXPECT_EQ(echoed, hello);
  }
  EXPECT_EQ(peer->connection().counters().path_switches, 0u);  // Stayed on the relay.
}

TEST_F(RendezvousTest, WatchDeviceStreamsOnlineThenOffline) {
  auto credentials = *tls::ChannelCredentials(
      {pki_->server_ca(), pki_->client_cert("alice"), pki_->client_key("alice")});
  auto stub = proto::Basestation::NewStub(grpc::CreateChannel(api_, credentials));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  proto::DeviceRef ref;
  ref.set_device_id("cam-1");
  auto reader = stub->WatchDevice(&context, ref);
  proto::Device update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.device_id(), "cam-1");
  EXPECT_TRUE(update.online());  // The device is attached, so the registry says online.
  // The device goes quiet (its daemon stops); the basestation expires it and says so.
  StopDevice();
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_FALSE(update.online());
  context.TryCancel();
}

TEST_F(RendezvousTest, BadDeviceIdsGetTheirDocumentedStatusWithoutEchoingThem) {
  auto alice = ClientAs("alice");
  EXPECT_THAT(alice->Connect("Cam-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::Status huge = alice->Connect(std::string(10240, 'x')).status();
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(huge.message().size(), 200u);
  EXPECT_THAT(alice->Connect("cam-404"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(alice->GetDevice("cam-404"), StatusIs(absl::StatusCode::kNotFound));
  // Provisioned but never attached: offline.
  EXPECT_THAT(alice->Connect("cam-2"), StatusIs(absl::StatusCode::kUnavailable,
                                                HasSubstr("offline")));
}

TEST_F(RendezvousTest, CertificatesTheHandshakeMustRefuse) {
  for (const char* name : {"expired", "future"}) {
    auto c = ClientAs(name);
    EXPECT_THAT(c->ListDevices(), StatusIs(absl::StatusCode::kUnavailable)) << name;
  }
  auto stranger = ClientAs("stranger", *other_pki_);
  EXPECT_THAT(stranger->ListDevices(), StatusIs(absl::StatusCode::kUnavailable));
  auto mallory = ClientAs("mallory");  // Revoked: the CRL check refuses every call.
  EXPECT_THAT(mallory->ListDevices(), StatusIs(absl::StatusCode::kPermissionDenied,
                                               HasSubstr("revoked")));

  // TLS without a client certificate.
  grpc::SslCredentialsOptions ssl;
  std::ifstream ca(pki_->server_ca());
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(ca), {});
  auto channel = grpc::CreateChannel(api_, grpc::SslCredentials(ssl));
  auto stub = proto::Basestation::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  proto::ListDevicesResponse response;
  EXPECT_EQ(stub->ListDevices(&context, {}, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RendezvousTest, AdminServiceIsForAdminsOnly) {
  auto call = [&](const std::string& name) {
    auto credentials = *tls::ChannelCredentials(
        {pki_->server_ca(), pki_->client_cert(name), pki_->client_key(name)});
    auto stub = proto::Admin::NewStub(grpc::CreateChannel(api_, credentials));
    grpc::ClientContext context;
    proto::ListDevicesResponse response;
    grpc::Status status = stub->ListDevices(&context, {}, &response);
    return std::make_pair(status.error_code(), response.devices_size());
  };
  EXPECT_EQ(call("admin"), std::make_pair(grpc::StatusCode::OK, 2));
  EXPECT_EQ(call("alice").first, grpc::StatusCode::PERMISSION_DENIED);
  // An admin also sees every device through the client API.
  EXPECT_THAT(*ClientAs("admin")->ListDevices(), SizeIs(2));
}

TEST_F(RendezvousTest, ConnectFloodIsThrottledAndDeviceStaysAttached) {
  auto alice = ClientAs("alice");
  ASSERT_THAT(alice->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  int ok = 0, throttled = 0, other = 0;
  for (int i = 0; i < 60; ++i) {
    absl::Status s = alice->Connect("cam-1").status();
    if (s.ok()) {
      ++ok;
    } else if (s.code() == absl::StatusCode::kResourceExhausted) {
      ++throttled;
    } else {
      ++other;
    }
  }
  EXPECT_GE(ok, 19);  // The burst of 20, less the token Pair used.
  EXPECT_GE(throttled, 1);
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(device_loop_->Run([&] {
    return daemon_->client()->state() == device::AttachClient::State::kAttached;
  }));
}

TEST_F(RendezvousTest, SilentDeviceGivesDeadlineExceeded) {
  auto alice = ClientAs("alice");
  ASSERT_THAT(alice->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  // Freeze the device's loop: still attached as far as the basestation knows, but silent.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  device_loop_->get()->Post([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  EXPECT_THAT(alice->Connect("cam-1"), StatusIs(absl::StatusCode::kDeadlineExceeded));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST_F(RendezvousTest, RepeatedWrongPairingSecretsLockPairingOut) {
  auto mallet = ClientAs("carol");
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(mallet->Pair("cam-1", Text("WRNG-WRNG-WRNG-WRNG"), "x"),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
  // Now even the right secret waits out the lockout; nothing changed on the device.
  EXPECT_THAT(mallet->Pair("cam-1", Text(pairing_["cam-1"]), "x"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry after")));
  EXPECT_THAT(mallet->Connect("cam-1"), StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace edgelink

namespace edgelink {
namespace {

// SHA-256 over the OpenSSL EVP interface, as hex.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &length);
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
      absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
    }
    return hex;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

int ListenLoopback(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 16) != 0) {
    ADD_FAILURE() << "cannot listen on 127.0.0.1: " << std::strerror(errno);
    return -1;
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *port = ntohs(address.sin_port);
  return fd;
}

bool WriteAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A TCP echo server on 127.0.0.1 (the device's local service), one thread per connection; it
// hashes what it receives, echoes it, and half-closes once the peer has.
class EchoServer {
 public:
  struct Result {
    uint64_t bytes = 0;
    std::string sha256;
  };

  EchoServer() {
    fd_ = ListenLoopback(&port_);
    acceptor_ = std::thread([this] {
      for (;;) {
        const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          return;  // Shut down.
        }
        std::lock_guard<std::mutex> lock(mu_);
        connections_.push_back(fd);
        threads_.emplace_back([this, fd] { Serve(fd); });
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    close(fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : connections_) shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  uint16_t port() const { return port_; }
  std::vector<Result> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }

 private:
  void Serve(int fd) {
    Sha256 hash;
    Result result;
    std::vector<uint8_t> buffer(64 * 1024);
    for (;;) {
      const ssize_t n = read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      hash.Update(buffer.data(), static_cast<size_t>(n));
      result.bytes += static_cast<uint64_t>(n);
      if (!WriteAll(fd, buffer.data(), static_cast<size_t>(n))) break;
    }
    shutdown(fd, SHUT_WR);
    result.sha256 = hash.Hex();
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(result);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> connections_;
  std::vector<std::thread> threads_;
  std::vector<Result> results_;
};

// One application connection through the tunnel listener: a writer thread sends `total` seeded
// pseudo-random bytes and half-closes; a reader thread reads to end of file. Both hash.
class Transfer {
 public:
  Transfer(uint16_t port, uint64_t total, uint32_t seed) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    // The kernel completes the handshake; the SDK accepts when its loop runs.
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      return;
    }
    writer_ = std::thread([this, total, seed] {
      std::mt19937_64 random(seed);
      std::vector<uint64_t> chunk(8 * 1024);
      Sha256 hash;
      uint64_t left = total;
      while (left > 0) {
        for (uint64_t& word : chunk) word = random();
        const size_t n = std::min<uint64_t>(left, chunk.size() * sizeof(uint64_t));
        hash.Update(chunk.data(), n);
        if (!WriteAll(fd_, reinterpret_cast<const uint8_t*>(chunk.data()), n)) break;
        sent_ += n;
        left -= n;
      }
      shutdown(fd_, SHUT_WR);
      sent_sha256_ = hash.Hex();
      writer_done_ = true;
    });
    reader_ = std::thread([this] {
      Sha256 hash;
      std::vector<uint8_t> buffer(64 * 1024);
      for (;;) {
        const ssize_t n = read(fd_, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        hash.Update(buffer.data(), static_cast<size_t>(n));
        received_ += static_cast<uint64_t>(n);
      }
      received_sha256_ = hash.Hex();
      reader_done_ = true;
    });
  }
  ~Transfer() {
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);  // Unblocks the threads if a test failed early.
    if (writer_.joinable()) writer_.join();
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) close(fd_);
  }

  bool done() const { return writer_done_ && reader_done_; }
  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }
  // Valid once done().
  const std::string& sent_sha256() const { return sent_sha256_; }
  const std::string& received_sha256() const { return received_sha256_; }

 private:
  int fd_ = -1;
  std::thread writer_;
  std::thread reader_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<bool> writer_done_{false};
  std::atomic<bool> reader_done_{false};
  std::string sent_sha256_;
  std::string received_sha256_;
};

class TunnelTest : public RendezvousTest {
 protected:
  void SetUp() override {
    echo_ = std::make_unique<EchoServer>();
    // A port on the list where nothing listens: taken, then freed.
    const int fd = ListenLoopback(&dead_port_);
    close(fd);
    tunnel_ports_ = {echo_->port(), dead_port_};
    RendezvousTest::SetUp();
    alice_ = ClientAs("alice");
    ASSERT_THAT(alice_->Pair("cam-1", Text(pairing_["cam-1"]), "alice"), IsOk());
  }
  void TearDown() override {
    RendezvousTest::TearDown();
    echo_.reset();
  }

  // Opens a session to cam-1 and a tunnel listener to `device_port`; events land in events_.
  std::unique_ptr<client::PeerSession> OpenTunnel(uint16_t device_port, net::Endpoint* bound) {
    absl::StatusOr<std::unique_ptr<client::PeerSession>> peer =
        client::PeerSession::Open(*alice_, "cam-1");
    EXPECT_THAT(peer, IsOk());
    if (!peer.ok()) return nullptr;
    absl::StatusOr<net::Endpoint> listening =
        (*peer)->Tunnel(*net::Endpoint::Parse("127.0.0.1:0"), device_port,
                        [this](const client::TunnelEvent& e) { events_.push_back(e); });
    EXPECT_THAT(listening, IsOk());
    if (listening.ok()) *bound = *listening;
    return *std::move(peer);
  }

  std::optional<client::TunnelEvent> Event(client::TunnelEvent::Kind kind) const {
    for (const client::TunnelEvent& e : events_) {
      if (e.kind == kind) return e;
    }
    return std::nullopt;
  }

  tunnel::TunnelCounters DeviceTunnels() {
    return device_loop_->Run([&] { return daemon_->tunnel_counters(); });
  }

  std::unique_ptr<EchoServer> echo_;
  uint16_t dead_port_ = 0;
  std::unique_ptr<client::Client> alice_;
  std::vector<client::TunnelEvent> events_;  // On the test thread, which runs the session.
};

TEST_F(TunnelTest, HundredMegabytesThroughATunnelArriveIntactBothWays) {
  constexpr uint64_t kTotal = 100'000'000;
  net::Endpoint bound;
  std::unique_ptr<client::PeerSession> peer = OpenTunnel(echo_->port(), &bound);
  ASSERT_NE(peer, nullptr);
  const absl::Time start = absl::Now();
  Transfer transfer(bound.port(), kTotal, 7);
  ASSERT_TRUE(peer->RunUntil([&] { return transfer.done(); }, absl::Seconds(120)))
      << "sent " << transfer.sent() << ", echoed back " << transfer.received();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(transfer.sent(), kTotal);
  EXPECT_EQ(transfer.received(), kTotal);
  EXPECT_EQ(transfer.received_sha256(), transfer.sent_sha256());
  ASSERT_TRUE(WaitFor([&] { return echo_->results().size() == 1; }));
  EXPECT_EQ(echo_->results()[0].bytes, kTotal);
  EXPECT_EQ(echo_->results()[0].sha256, transfer.sent_sha256());

  ASSERT_TRUE(peer->RunUntil([&] { return Event(client::TunnelEvent::Kind::kClosed).has_value(); },
                             absl::Seconds(10)));
  const client::TunnelEvent closed = *Event(client::TunnelEvent::Kind::kClosed);
  EXPECT_THAT(closed.status, IsOk());
  EXPECT_EQ(closed.bytes_sent, kTotal);
  EXPECT_EQ(closed.bytes_received, kTotal);
  EXPECT_EQ(closed.from.IpString(), "127.0.0.1");
  EXPECT_EQ(channel::PeerConnection::PathName(*peer->connection().active_path()), "local");
  const tunnel::TunnelCounters device = DeviceTunnels();
  EXPECT_EQ(device.opened, 1u);
  EXPECT_EQ(device.bytes_received, kTotal);
  EXPECT_EQ(device.bytes_sent, kTotal);
  std::printf("100 MB each way through the tunnel in %s (%.0f Mbit/s each way)\n",
              absl::FormatDuration(took).c_str(), kTotal * 8 / absl::ToDoubleSeconds(took) / 1e6);
}

TEST_F(TunnelTest, PortNotOnTheListIsRefusedAndTheConnectionClosed) {
  net::Endpoint bound;
  const uint16_t not_allowed = echo_->port() == 9 ? 10 : 9;
  std::unique_ptr<client::PeerSession> peer = OpenTunnel(not_allowed, &bound);
  ASSERT_NE(peer, nullptr);
  Transfer transfer(bound.port(), 1000, 1);
  ASSERT_TRUE(peer->RunUntil([&] { return Event(client::TunnelEvent::Kind::kRefused).has_value(); },
                             absl::Seconds(10)));
  const client::TunnelEvent refused = *Event(client::TunnelEvent::Kind::kRefused);
  EXPECT_THAT(refused.status, StatusIs(absl::StatusCode::kPermissionDenied,
                                       HasSubstr(absl::StrCat("port ", not_allowed))));
  EXPECT_FALSE(Event(client::TunnelEvent::Kind::kOpened).has_value());
  // The application sees its connection closed with nothing in it.
  ASSERT_TRUE(peer->RunUntil([&] { return transfer.done(); }, absl::Seconds(10)));
  EXPECT_EQ(transfer.received(), 0u);
  EXPECT_TRUE(echo_->results().empty());
  EXPECT_EQ(DeviceTunnels().port_refused, 1u);
  EXPECT_EQ(peer->tunnel_counters().port_refused, 1u);
}

TEST_F(TunnelTest, AllowedPortWithNothingListeningIsStatusTwo) {
  net::Endpoint bound;
  std::unique_ptr<client::PeerSession> peer = OpenTunnel(dead_port_, &bound);
  ASSERT_NE(peer, nullptr);
  Transfer transfer(bound.port(), 1000, 1);
  ASSERT_TRUE(peer->RunUntil([&] { return Event(client::TunnelEvent::Kind::kRefused).has_value(); },
                             absl::Seconds(10)));
  EXPECT_THAT(Event(client::TunnelEvent::Kind::kRefused)->status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("could not connect")));
  EXPECT_EQ(DeviceTunnels().connect_failed, 1u);
}

// Path changes under a transfer, made deterministic by a test hook in the client's session: a
// filter that drops every datagram to or from addresses it does not allow, as if those paths
// stopped working. The tests check that the switch really happened and that every byte arrived.
// For failure messages: every path of `c` and its state, and the channel's counters.
std::string DescribePaths(const channel::PeerConnection& c) {
  std::string out;
  for (const channel::PeerConnection::Path& p : c.paths()) {
    absl::StrAppend(&out, "\n  ", channel::PeerConnection::PathName(p), " ", p.remote.ToString(),
                    " state ", static_cast<int>(p.state), " probes ", p.probes_sent);
  }
  const channel::PeerConnectionCounters& n = c.counters();
  absl::StrAppend(&out, "\n  sent ", n.packets_sent, " received ", n.packets_received,
                  " malformed ", n.dropped_malformed, " unauthenticated ",
                  n.dropped_unauthenticated, " replay ", n.dropped_replay, " switches ",
                  n.path_switches);
  return out;
}

bool IsLoopbackOrRelay(const net::Endpoint& e, const net::Endpoint& relay) {
  return e == relay || e.IpString() == "127.0.0.1";
}

// The product's usual case: the session starts on the relay (direct paths blocked), and
// mid-transfer the direct paths start to work: both sides move to the local path.
TEST_F(TunnelTest, UpgradeFromRelayToLocalMidTransferLosesNothing) {
  constexpr uint64_t kTotal = 24'000'000;
  bool blocked = true;
  net::Endpoint relay;
  client::PeerSessionOptions options;
  options.path_filter_for_test = [&](const net::Endpoint& e) { return !blocked || e == relay; };
  relay = *server_->relay_endpoint();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::PeerSession> peer,
                       client::PeerSession::Open(*alice_, "cam-1", options));
  ASSERT_EQ(channel::PeerConnection::PathName(*peer->connection().active_path()), "relay");
  ASSERT_OK_AND_ASSIGN(net::Endpoint bound,
                       peer->Tunnel(*net::Endpoint::Parse("127.0.0.1:0"), echo_->port(),
                                    [this](const client::TunnelEvent& e) {
                                      events_.push_back(e);
                                    }));
  Transfer transfer(bound.port(), kTotal, 13);
  bool unblocked = false;
  ASSERT_TRUE(peer->RunUntil(
      [&] {
        if (!unblocked && transfer.received() >= kTotal / 4) {
          unblocked = true;
          blocked = false;  // The direct paths' probes now get through.
        }
        return transfer.done();
      },
      absl::Seconds(60)))
      << "sent " << transfer.sent() << ", echoed back " << transfer.received();
  EXPECT_EQ(transfer.received(), kTotal);
  EXPECT_EQ(transfer.received_sha256(), transfer.sent_sha256());
  ASSERT_TRUE(WaitFor([&] { return echo_->results().size() == 1; }));
  EXPECT_EQ(echo_->results()[0].sha256, transfer.sent_sha256());
  EXPECT_NE(channel::PeerConnection::PathName(*peer->connection().active_path()), "relay");
  EXPECT_GE(peer->connection().counters().path_switches, 1u);
}

// The hard case: the local path dies mid-transfer (the client's network changed; it says so, as a
// client that notices does) and both sides fall back to the relay; SCTP retransmits what the dead
// path swallowed. From the start the filter lets through only loopback and the relay, so each side
// has exactly one direct path to lose, whatever interfaces the machine has: failing over to a
// second direct path that is dead too takes PeerConnection up to a keep-alive interval longer, and
// an outage that long makes SCTP mark its only path down until a heartbeat (30 s) revives it.
TEST_F(TunnelTest, LocalPathLostMidTransferFallsBackToTheRelayLosingNothing) {
  constexpr uint64_t kTotal = 24'000'000;
  const net::Endpoint relay = *server_->relay_endpoint();
  client::PeerSessionOptions options;
  options.path_filter_for_test = [relay](const net::Endpoint& e) {
    return IsLoopbackOrRelay(e, relay);
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::PeerSession> peer,
                       client::PeerSession::Open(*alice_, "cam-1", options));
  ASSERT_NE(channel::PeerConnection::PathName(*peer->connection().active_path()), "relay");
  auto relay_usable = [&] {
    for (const channel::PeerConnection::Path& p : peer->connection().paths()) {
      if (p.via_relay && p.state == channel::PeerConnection::PathState::kUsable) return true;
    }
    return false;
  };
  ASSERT_TRUE(peer->RunUntil(relay_usable, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(net::Endpoint bound,
                       peer->Tunnel(*net::Endpoint::Parse("127.0.0.1:0"), echo_->port(),
                                    [this](const client::TunnelEvent& e) {
                                      events_.push_back(e);
                                    }));
  Transfer transfer(bound.port(), kTotal, 11);
  bool switched = false;
  absl::Time switched_at;
  ASSERT_TRUE(peer->RunUntil(
      [&] {
        if (!switched && transfer.received() >= kTotal / 4) {
          switched = true;
          switched_at = absl::Now();
          peer->SetPathFilterForTest([relay](const net::Endpoint& e) { return e == relay; },
                                     /*network_changed=*/true);
        }
        return transfer.done();
      },
      absl::Seconds(120)))
      << "sent " << transfer.sent() << ", echoed back " << transfer.received() << "; paths:"
      << DescribePaths(peer->connection());
  EXPECT_EQ(transfer.received(), kTotal);
  EXPECT_EQ(transfer.received_sha256(), transfer.sent_sha256());
  ASSERT_TRUE(WaitFor([&] { return echo_->results().size() == 1; }));
  EXPECT_EQ(echo_->results()[0].sha256, transfer.sent_sha256());
  EXPECT_EQ(channel::PeerConnection::PathName(*peer->connection().active_path()), "relay");
  EXPECT_GE(peer->connection().counters().path_switches, 1u);
  std::printf("local path lost at %llu of %llu bytes; the rest took %s over the relay\n",
              static_cast<unsigned long long>(kTotal / 4),
              static_cast<unsigned long long>(kTotal),
              absl::FormatDuration(absl::Now() - switched_at).c_str());
}

}  // namespace
}  // namespace edgelink
