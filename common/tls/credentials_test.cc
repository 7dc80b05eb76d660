// Real gRPC over real TLS on 127.0.0.1 (port 0), with certificates pki.sh makes at test time.
// A fake Basestation answers GetDevice with the caller's identity as the server saw it, and
// counts calls, so a refusal is shown to happen before any handler runs.
#include "common/tls/credentials.h"

#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/tls/peer_identity.h"
#include "common/tls/test_pki.h"
#include "common/tls/x509.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/basestation.grpc.pb.h"
#include "proto/basestation.pb.h"

namespace edgelink::tls {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::edgelink::tls::testing::OpensslCliFingerprint;
using ::edgelink::tls::testing::TestPki;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Answers GetDevice with who called: device_id = fingerprint, product = common name.
class IdentityEchoService final : public proto::Basestation::Service {
 public:
  grpc::Status GetDevice(grpc::ServerContext* context, const proto::DeviceRef*,
                         proto::Device* reply) override {
    calls_.fetch_add(1);
    absl::StatusOr<PeerIdentity> identity = PeerIdentityOf(*context);
    if (!identity.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(identity.status().code()),
                          std::string(identity.status().message()));
    }
    reply->set_device_id(identity->fingerprint);
    reply->set_product(identity->common_name);
    return grpc::Status::OK;
  }

  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

class TestServer {
 public:
  explicit TestServer(const std::shared_ptr<grpc::ServerCredentials>& credentials) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() {
    if (server_ != nullptr) server_->Shutdown();
  }

  bool running() const { return server_ != nullptr && port_ != 0; }
  int port() const { return port_; }
  int calls() const { return service_.calls(); }

 private:
  IdentityEchoService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

grpc::Status GetDevice(const TestServer& server,
                       const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                       proto::Device* reply,
                       const grpc::ChannelArguments& args = grpc::ChannelArguments()) {
  std::unique_ptr<proto::Basestation::Stub> stub = proto::Basestation::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server.port()), credentials, args));
  grpc::ClientContext context;
  // A safety net only: refusals fail fast (the channel goes to TRANSIENT_FAILURE).
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  proto::DeviceRef request;
  request.set_device_id("cam-1");
  return stub->GetDevice(&context, request, reply);
}

class CredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<TestPki> pki = TestPki::Create("main");
    ASSERT_THAT(pki, IsOk());
    pki_ = new TestPki(*std::move(pki));
    absl::StatusOr<TestPki> other = TestPki::Create("other");
    ASSERT_THAT(other, IsOk());
    other_ = new TestPki(*std::move(other));
    absl::StatusOr<TestPki> wrong_name = TestPki::Create("wrong-name", "DNS:elsewhere.example");
    ASSERT_THAT(wrong_name, IsOk());
    wrong_name_ = new TestPki(*std::move(wrong_name));

    for (const char* client : {"alice", "revoked"}) ASSERT_THAT(pki_->IssueClient(client), IsOk());
    ASSERT_THAT(pki_->IssueClient("expired", {"--not-before", "20000101000000Z", "--not-after",
                                              "20010101000000Z"}),
                IsOk());
    ASSERT_THAT(pki_->IssueClient("future", {"--not-before", "20990101000000Z", "--not-after",
                                             "20991231000000Z"}),
                IsOk());
    ASSERT_THAT(pki_->Revoke("revoked"), IsOk());
    ASSERT_THAT(other_->IssueClient("mallory"), IsOk());
    ASSERT_THAT(wrong_name_->IssueClient("carol"), IsOk());
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
    delete wrong_name_;
  }

  static TlsFiles ServerFiles(const TestPki& pki) {
    return TlsFiles{pki.server_cert(), pki.server_key(), pki.client_ca(), std::nullopt};
  }
  static ClientTlsFiles ClientFiles(const TestPki& pki, const std::string& client) {
    return ClientTlsFiles{pki.server_ca(), pki.client_cert(client), pki.client_key(client)};
  }
  static std::shared_ptr<grpc::ChannelCredentials> Client(const TestPki& pki,
                                                          const std::string& client) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ChannelCredentials(ClientFiles(pki, client));
    EXPECT_THAT(credentials, IsOk());
    return credentials.ok() ? *credentials : nullptr;
  }
  static std::unique_ptr<TestServer> Serve(const TlsFiles& files,
                                           std::function<absl::Time()> clock = absl::Now) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        ServerCredentials(files, std::move(clock));
    EXPECT_THAT(credentials, IsOk());
    if (!credentials.ok()) return nullptr;
    auto server = std::make_unique<TestServer>(*credentials);
    EXPECT_TRUE(server->running());
    return server->running() ? std::move(server) : nullptr;
  }

  static TestPki* pki_;
  static TestPki* other_;
  static TestPki* wrong_name_;
};

TestPki* CredentialsTest::pki_ = nullptr;
TestPki* CredentialsTest::other_ = nullptr;
TestPki* CredentialsTest::wrong_name_ = nullptr;

TEST_F(CredentialsTest, ServerSeesClientFingerprintAsOpensslComputesIt) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  const grpc::Status status = GetDevice(*server, Client(*pki_, "alice"), &reply);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();

  ASSERT_OK_AND_ASSIGN(const std::string openssl, OpensslCliFingerprint(pki_->client_cert("alice")));
  ASSERT_OK_AND_ASSIGN(const std::string own, FingerprintOfPemFile(pki_->client_cert("alice")));
  EXPECT_EQ(reply.device_id(), openssl);
  EXPECT_EQ(reply.device_id(), own);
  EXPECT_EQ(reply.product(), "alice");
  EXPECT_EQ(server->calls(), 1);
}

TEST_F(CredentialsTest, ClientWithoutCertificateIsRefusedAtHandshake) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(const std::string root, internal::ReadFile(pki_->server_ca(), "root"));
  grpc::SslCredentialsOptions server_only;
  server_only.pem_root_certs = root;
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, grpc::SslCredentials(server_only), &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);
}

TEST_F(CredentialsTest, ClientCertificateFromAnotherCaIsRefusedAtHandshake) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  // Mallory trusts the right server CA but holds a certificate from another client CA (one with
  // the same name, so only the signature differs).
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ChannelCredentials> mallory,
                       ChannelCredentials({pki_->server_ca(), other_->client_cert("mallory"),
                                           other_->client_key("mallory")}));
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, mallory, &reply).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);
}

// OpenSSL's chain verification under gRPC checks the validity period at handshake.
TEST_F(CredentialsTest, ExpiredClientCertificateIsRefusedAtHandshake) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, Client(*pki_, "expired"), &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);
}

TEST_F(CredentialsTest, NotYetValidClientCertificateIsRefusedAtHandshake) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, Client(*pki_, "future"), &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);
}

// gRPC 1.51's SslServerCredentials has no CRL: without the policy, a revoked certificate works.
TEST_F(CredentialsTest, WithoutCrlRevokedCertificateIsAccepted) {
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*pki_));
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  EXPECT_TRUE(GetDevice(*server, Client(*pki_, "revoked"), &reply).ok());
  EXPECT_EQ(reply.product(), "revoked");
}

TEST_F(CredentialsTest, WithCrlRevokedCertificateIsPermissionDenied) {
  TlsFiles files = ServerFiles(*pki_);
  files.crl_pem = pki_->crl();
  std::unique_ptr<TestServer> server = Serve(files);
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  const grpc::Status revoked = GetDevice(*server, Client(*pki_, "revoked"), &reply);
  EXPECT_EQ(revoked.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(revoked.error_message(), AllOf(HasSubstr("revoked"), HasSubstr("CN=revoked")));
  EXPECT_EQ(server->calls(), 0);

  // The same server still serves a certificate that is not revoked.
  EXPECT_TRUE(GetDevice(*server, Client(*pki_, "alice"), &reply).ok());
  EXPECT_EQ(reply.product(), "alice");
  EXPECT_EQ(server->calls(), 1);
}

// The handshake checks validity once; the policy checks it on every call, so a connection made
// before a certificate expired cannot be used after.
TEST_F(CredentialsTest, WithCrlCertificateExpiringDuringConnectionIsRefusedPerCall) {
  ASSERT_OK_AND_ASSIGN(const std::string pem, internal::ReadFile(pki_->client_cert("alice"), "a"));
  ASSERT_OK_AND_ASSIGN(const internal::X509Ptr cert, internal::ParseFirstCertificate(pem, "a"));
  ASSERT_OK_AND_ASSIGN(const absl::Time not_after,
                       internal::AsnTimeToAbsl(X509_get0_notAfter(cert.get())));
  auto now = std::make_shared<std::atomic<int64_t>>(absl::ToUnixSeconds(not_after) - 60);
  TlsFiles files = ServerFiles(*pki_);
  files.crl_pem = pki_->crl();
  std::unique_ptr<TestServer> server = Serve(files, [now] { return absl::FromUnixSeconds(*now); });
  ASSERT_NE(server, nullptr);

  std::unique_ptr<proto::Basestation::Stub> stub =
      proto::Basestation::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                                                      Client(*pki_, "alice")));
  auto call = [&stub](proto::Device* reply) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->GetDevice(&context, proto::DeviceRef(), reply);
  };
  proto::Device reply;
  EXPECT_TRUE(call(&reply).ok());
  now->store(absl::ToUnixSeconds(not_after) + 1);
  const grpc::Status expired = call(&reply);
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(expired.error_message(), HasSubstr("expired at"));
  EXPECT_EQ(server->calls(), 1);
}

TEST_F(CredentialsTest, ClientRefusesServerWhoseNameDoesNotMatch) {
  // The server's certificate names only elsewhere.example; the client dials 127.0.0.1.
  std::unique_ptr<TestServer> server = Serve(ServerFiles(*wrong_name_));
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, Client(*wrong_name_, "carol"), &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);

  // Only the name was wrong: expecting elsewhere.example succeeds.
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("elsewhere.example");
  EXPECT_TRUE(GetDevice(*server, Client(*wrong_name_, "carol"), &reply, args).ok());
  EXPECT_EQ(server->calls(), 1);
}

TEST_F(CredentialsTest, ClientRefusesServerCertificateFromAnotherCa) {
  // The server accepts our clients but presents a certificate from another server CA.
  std::unique_ptr<TestServer> server = Serve(
      TlsFiles{other_->server_cert(), other_->server_key(), pki_->client_ca(), std::nullopt});
  ASSERT_NE(server, nullptr);
  proto::Device reply;
  EXPECT_EQ(GetDevice(*server, Client(*pki_, "alice"), &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->calls(), 0);
}

TEST_F(CredentialsTest, InsecureCallHasNoPeerIdentity) {
  TestServer server(grpc::InsecureServerCredentials());
  ASSERT_TRUE(server.running());
  proto::Device reply;
  const grpc::Status status = GetDevice(server, grpc::InsecureChannelCredentials(), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(server.calls(), 1);
}

TEST_F(CredentialsTest, ServerCredentialsErrorsNameTheFile) {
  TlsFiles files = ServerFiles(*pki_);
  files.private_key_pem = pki_->dir() + "/missing.key";
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(files.private_key_pem)));

  files = ServerFiles(*pki_);
  files.client_ca_pem = pki_->dir() + "/missing-ca.pem";
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(files.client_ca_pem)));

  files = ServerFiles(*pki_);
  files.crl_pem = pki_->dir() + "/missing-crl.pem";
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(*files.crl_pem)));

  files = ServerFiles(*pki_);
  files.private_key_pem = pki_->client_key("alice");
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("does not match"), HasSubstr(files.private_key_pem))));

  files = ServerFiles(*pki_);
  files.private_key_pem = pki_->server_cert();
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("private key"), HasSubstr(files.private_key_pem))));

  files = ServerFiles(*pki_);
  files.crl_pem = other_->crl();
  EXPECT_THAT(ServerCredentials(files),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(other_->crl())));
}

TEST_F(CredentialsTest, ChannelCredentialsErrorsNameTheFile) {
  ClientTlsFiles files = ClientFiles(*pki_, "alice");
  files.cert_chain_pem = pki_->dir() + "/clients/nobody.pem";
  EXPECT_THAT(ChannelCredentials(files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(files.cert_chain_pem)));

  files = ClientFiles(*pki_, "alice");
  files.private_key_pem = pki_->client_key("revoked");
  EXPECT_THAT(ChannelCredentials(files),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));

  files = ClientFiles(*pki_, "alice");
  files.root_ca_pem = pki_->client_key("alice");
  const absl::Status status = ChannelCredentials(files).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(files.root_ca_pem), HasSubstr("no PEM certificate"))));
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("PRIVATE KEY")));
}

}  // namespace
}  // namespace edgelink::tls
