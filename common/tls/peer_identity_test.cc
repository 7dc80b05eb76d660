#include "common/tls/peer_identity.h"

#include <string>

#include "absl/strings/str_split.h"
#include "common/status/status_matchers.h"
#include "common/tls/test_pki.h"
#include "common/tls/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::tls {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::edgelink::tls::testing::OpensslCliFingerprint;
using ::edgelink::tls::testing::TestPki;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

class PeerIdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<TestPki> pki = TestPki::Create("identity");
    ASSERT_THAT(pki, IsOk());
    pki_ = new TestPki(*std::move(pki));
    absl::StatusOr<std::string> fingerprint = pki_->IssueClient("alice");
    ASSERT_THAT(fingerprint, IsOk());
    alice_fingerprint_ = new std::string(*fingerprint);
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete alice_fingerprint_;
  }

  static TestPki* pki_;
  static std::string* alice_fingerprint_;
};

TestPki* PeerIdentityTest::pki_ = nullptr;
std::string* PeerIdentityTest::alice_fingerprint_ = nullptr;

TEST_F(PeerIdentityTest, FingerprintOfPemFileMatchesOpensslCliAndPkiScript) {
  ASSERT_OK_AND_ASSIGN(const std::string ours, FingerprintOfPemFile(pki_->client_cert("alice")));
  ASSERT_OK_AND_ASSIGN(const std::string openssl, OpensslCliFingerprint(pki_->client_cert("alice")));
  EXPECT_THAT(ours, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(ours, openssl);
  EXPECT_EQ(ours, *alice_fingerprint_);
}

TEST_F(PeerIdentityTest, DifferentCertificatesHaveDifferentFingerprints) {
  ASSERT_OK_AND_ASSIGN(const std::string alice, FingerprintOfPemFile(pki_->client_cert("alice")));
  ASSERT_OK_AND_ASSIGN(const std::string server, FingerprintOfPemFile(pki_->server_cert()));
  EXPECT_NE(alice, server);
}

TEST_F(PeerIdentityTest, IdentityOfPemHasFingerprintAndCommonName) {
  ASSERT_OK_AND_ASSIGN(const std::string pem,
                       internal::ReadFile(pki_->client_cert("alice"), "test certificate"));
  ASSERT_OK_AND_ASSIGN(const PeerIdentity identity, IdentityOfPem(pem));
  EXPECT_EQ(identity.fingerprint, *alice_fingerprint_);
  EXPECT_EQ(identity.common_name, "alice");
  ASSERT_OK_AND_ASSIGN(const std::string fingerprint, FingerprintOfPem(pem));
  EXPECT_EQ(fingerprint, *alice_fingerprint_);
}

TEST_F(PeerIdentityTest, FingerprintOfChainIsThatOfTheLeaf) {
  ASSERT_OK_AND_ASSIGN(const std::string leaf,
                       internal::ReadFile(pki_->client_cert("alice"), "test certificate"));
  ASSERT_OK_AND_ASSIGN(const std::string ca, internal::ReadFile(pki_->client_ca(), "test CA"));
  ASSERT_OK_AND_ASSIGN(const std::string fingerprint, FingerprintOfPem(leaf + ca));
  EXPECT_EQ(fingerprint, *alice_fingerprint_);
}

TEST_F(PeerIdentityTest, MissingFileIsNotFoundAndNamesThePath) {
  const std::string path = pki_->dir() + "/clients/nobody.pem";
  EXPECT_THAT(FingerprintOfPemFile(path), StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST_F(PeerIdentityTest, NonCertificateIsInvalidArgument) {
  EXPECT_THAT(FingerprintOfPem(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FingerprintOfPem("not pem at all"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FingerprintOfPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PeerIdentityTest, KeyPassedAsCertificateIsRefusedWithoutEchoingIt) {
  const std::string key_path = pki_->client_key("alice");
  ASSERT_OK_AND_ASSIGN(const std::string key, internal::ReadFile(key_path, "test key"));
  const absl::Status status = FingerprintOfPem(key).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  const absl::Status file_status = FingerprintOfPemFile(key_path).status();
  EXPECT_THAT(file_status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(key_path)));
  for (absl::string_view line : absl::StrSplit(key, '\n')) {
    if (line.size() < 16 || line.front() == '-') continue;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(std::string(line))));
    EXPECT_THAT(std::string(file_status.message()), Not(HasSubstr(std::string(line))));
  }
}

TEST_F(PeerIdentityTest, NoAuthContextIsUnauthenticated) {
  EXPECT_THAT(PeerIdentityOf(static_cast<const grpc::AuthContext*>(nullptr)),
              StatusIs(absl::StatusCode::kUnauthenticated, AllOf(HasSubstr("no TLS"))));
}

}  // namespace
}  // namespace edgelink::tls
