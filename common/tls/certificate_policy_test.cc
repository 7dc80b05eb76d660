#include "common/tls/certificate_policy.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/tls/peer_identity.h"
#include "common/tls/test_pki.h"
#include "common/tls/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::tls {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::edgelink::tls::testing::TestPki;
using ::testing::AllOf;
using ::testing::HasSubstr;

absl::Time Utc(int year, int month, int day) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, 0, 0, 0), absl::UTCTimeZone());
}

std::string MustRead(const std::string& path) {
  absl::StatusOr<std::string> contents = internal::ReadFile(path, "test file");
  EXPECT_THAT(contents, IsOk());
  return contents.ok() ? *contents : "";
}

class CertificatePolicyTest : public ::testing::Test {
 protected:
  // Both CAs get pki.sh's default name, so their certificates and CRLs carry the same issuer
  // name: only signatures can tell them apart, which is what the policy must check.
  static void SetUpTestSuite() {
    absl::StatusOr<TestPki> pki = TestPki::Create("policy");
    ASSERT_THAT(pki, IsOk());
    pki_ = new TestPki(*std::move(pki));
    absl::StatusOr<TestPki> other = TestPki::Create("policy-other");
    ASSERT_THAT(other, IsOk());
    other_ = new TestPki(*std::move(other));

    ASSERT_THAT(pki_->IssueClient("alice"), IsOk());
    ASSERT_THAT(pki_->IssueClient("revoked"), IsOk());
    ASSERT_THAT(pki_->IssueClient("expired", {"--not-before", "20000101000000Z", "--not-after",
                                              "20010101000000Z"}),
                IsOk());
    ASSERT_THAT(pki_->IssueClient("future", {"--not-before", "20990101000000Z", "--not-after",
                                             "20991231000000Z"}),
                IsOk());
    ASSERT_THAT(pki_->Revoke("revoked"), IsOk());
    ASSERT_THAT(other_->IssueClient("mallory"), IsOk());
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_;
  }

  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(policy_, CertificatePolicy::FromFiles(pki_->client_ca(), pki_->crl()));
    alice_pem_ = MustRead(pki_->client_cert("alice"));
    ASSERT_OK_AND_ASSIGN(internal::X509Ptr alice,
                         internal::ParseFirstCertificate(alice_pem_, "alice"));
    ASSERT_OK_AND_ASSIGN(alice_not_before_,
                         internal::AsnTimeToAbsl(X509_get0_notBefore(alice.get())));
    ASSERT_OK_AND_ASSIGN(alice_not_after_, internal::AsnTimeToAbsl(X509_get0_notAfter(alice.get())));
    // Checks run at a time derived from the certificates, never the wall clock.
    alice_valid_at_ = alice_not_before_ + absl::Hours(1);
  }

  static TestPki* pki_;
  static TestPki* other_;
  std::unique_ptr<CertificatePolicy> policy_;
  std::string alice_pem_;
  absl::Time alice_not_before_;
  absl::Time alice_not_after_;
  absl::Time alice_valid_at_;
};

TestPki* CertificatePolicyTest::pki_ = nullptr;
TestPki* CertificatePolicyTest::other_ = nullptr;

TEST_F(CertificatePolicyTest, AcceptsValidCertificateFromTheCa) {
  EXPECT_TRUE(policy_->checks_revocation());
  EXPECT_EQ(policy_->revoked_count(), 1);
  EXPECT_THAT(policy_->Check(alice_pem_, alice_valid_at_), IsOk());
}

TEST_F(CertificatePolicyTest, RefusesRevokedCertificateWithPermissionDenied) {
  const std::string pem = MustRead(pki_->client_cert("revoked"));
  ASSERT_OK_AND_ASSIGN(const std::string fingerprint, FingerprintOfPem(pem));
  EXPECT_THAT(policy_->Check(pem, alice_valid_at_),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("revoked"), HasSubstr("CN=revoked"),
                             HasSubstr(fingerprint))));
}

TEST_F(CertificatePolicyTest, RefusesExpiredCertificate) {
  EXPECT_THAT(policy_->Check(MustRead(pki_->client_cert("expired")), Utc(2010, 1, 1)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("CN=expired"), HasSubstr("expired at 2001-01-01T00:00:00Z"))));
}

TEST_F(CertificatePolicyTest, RefusesNotYetValidCertificate) {
  EXPECT_THAT(policy_->Check(MustRead(pki_->client_cert("future")), Utc(2050, 1, 1)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not yet valid (valid from 2099-01-01T00:00:00Z)")));
  EXPECT_THAT(policy_->Check(MustRead(pki_->client_cert("future")), Utc(2099, 6, 1)), IsOk());
}

TEST_F(CertificatePolicyTest, ValidityPeriodIncludesBothEnds) {
  EXPECT_THAT(policy_->Check(alice_pem_, alice_not_before_), IsOk());
  EXPECT_THAT(policy_->Check(alice_pem_, alice_not_after_), IsOk());
  EXPECT_THAT(policy_->Check(alice_pem_, alice_not_before_ - absl::Seconds(1)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not yet valid")));
  EXPECT_THAT(policy_->Check(alice_pem_, alice_not_after_ + absl::Seconds(1)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired at")));
}

TEST_F(CertificatePolicyTest, RefusesCertificateFromAnotherCaWithTheSameName) {
  EXPECT_THAT(policy_->Check(MustRead(other_->client_cert("mallory")), alice_valid_at_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not issued by a trusted client CA")));
}

TEST_F(CertificatePolicyTest, RefusesCertificateWithAFlippedSignatureBit) {
  ASSERT_OK_AND_ASSIGN(internal::X509Ptr alice, internal::ParseFirstCertificate(alice_pem_, "a"));
  unsigned char* der = nullptr;
  const int der_len = i2d_X509(alice.get(), &der);
  ASSERT_GT(der_len, 0);
  std::vector<unsigned char> bytes(der, der + der_len);
  OPENSSL_free(der);
  bytes.back() ^= 0x01;  // The last byte belongs to the signature.
  const unsigned char* p = bytes.data();
  internal::X509Ptr tampered(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  ASSERT_NE(tampered, nullptr);
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_X509(bio.get(), tampered.get()), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  const std::string tampered_pem(data, static_cast<size_t>(len));
  ASSERT_NE(tampered_pem, alice_pem_);

  EXPECT_THAT(policy_->Check(tampered_pem, alice_valid_at_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not issued by")));
}

TEST_F(CertificatePolicyTest, GarbageIsUnauthenticated) {
  EXPECT_THAT(policy_->Check("", alice_valid_at_), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(policy_->Check("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                             alice_valid_at_),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(policy_->Check(static_cast<const grpc::AuthContext*>(nullptr), alice_valid_at_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(CertificatePolicyTest, WithoutCrlRevokedCertificatePasses) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CertificatePolicy> no_crl,
                       CertificatePolicy::FromFiles(pki_->client_ca(), ""));
  EXPECT_FALSE(no_crl->checks_revocation());
  EXPECT_THAT(no_crl->Check(MustRead(pki_->client_cert("revoked")), alice_valid_at_), IsOk());
  EXPECT_THAT(no_crl->Check(MustRead(pki_->client_cert("expired")), alice_valid_at_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

TEST_F(CertificatePolicyTest, RefusesCrlSignedByAnotherCaWithTheSameName) {
  EXPECT_THAT(CertificatePolicy::FromFiles(pki_->client_ca(), other_->crl()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(other_->crl()), HasSubstr("not signed by any CA"))));
}

TEST_F(CertificatePolicyTest, EveryCaNeedsACrl) {
  const std::string both_cas = MustRead(pki_->client_ca()) + MustRead(other_->client_ca());
  EXPECT_THAT(CertificatePolicy::FromPem(both_cas, MustRead(pki_->crl())),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no CRL for CA")));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CertificatePolicy> both,
      CertificatePolicy::FromPem(both_cas, MustRead(pki_->crl()) + MustRead(other_->crl())));
  EXPECT_THAT(both->Check(MustRead(other_->client_cert("mallory")), alice_valid_at_), IsOk());
  EXPECT_THAT(both->Check(MustRead(pki_->client_cert("revoked")), alice_valid_at_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
}

TEST_F(CertificatePolicyTest, FileErrorsNameTheFile) {
  const std::string missing = pki_->dir() + "/no-such-crl.pem";
  EXPECT_THAT(CertificatePolicy::FromFiles(pki_->client_ca(), missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(CertificatePolicy::FromFiles(missing, pki_->crl()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  // A certificate where the CRL belongs.
  EXPECT_THAT(CertificatePolicy::FromFiles(pki_->client_ca(), pki_->client_ca()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(pki_->client_ca()), HasSubstr("no PEM CRL"))));
}

}  // namespace
}  // namespace edgelink::tls
