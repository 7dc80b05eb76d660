#include "common/tls/certificate_policy.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/peer_identity.h"

namespace edgelink::tls {
namespace {

std::string FormatUtc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// IsIssuedBy reports whether `ca` issued `cert`: names and key identifiers match and the
// signature verifies under the CA's key.
bool IsIssuedBy(X509* cert, const X509* ca) {
  const bool issued = X509_check_issued(const_cast<X509*>(ca), cert) == X509_V_OK &&
                      X509_verify(cert, X509_get0_pubkey(ca)) == 1;
  ERR_clear_error();
  return issued;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificatePolicy>> CertificatePolicy::FromPem(
    absl::string_view ca_pem, absl::string_view crl_pem) {
  return Build(ca_pem, "client CA", crl_pem, "CRL");
}

absl::StatusOr<std::unique_ptr<CertificatePolicy>> CertificatePolicy::FromFiles(
    const std::string& ca_path, const std::string& crl_path) {
  ASSIGN_OR_RETURN(const std::string ca_pem, internal::ReadFile(ca_path, "client CA"));
  std::string crl_pem;
  if (!crl_path.empty()) {
    ASSIGN_OR_RETURN(crl_pem, internal::ReadFile(crl_path, "CRL"));
    if (crl_pem.empty()) return absl::InvalidArgumentError(absl::StrCat(crl_path, ": empty CRL file"));
  }
  return Build(ca_pem, ca_path, crl_pem, crl_path);
}

absl::StatusOr<std::unique_ptr<CertificatePolicy>> CertificatePolicy::Build(
    absl::string_view ca_pem, absl::string_view ca_source, absl::string_view crl_pem,
    absl::string_view crl_source) {
  ASSIGN_OR_RETURN(std::vector<internal::X509Ptr> cas,
                   internal::ParseCertificates(ca_pem, ca_source));
  std::vector<Crl> crls;
  if (!crl_pem.empty()) {
    ASSIGN_OR_RETURN(std::vector<internal::X509CrlPtr> parsed,
                     internal::ParseCrls(crl_pem, crl_source));
    for (internal::X509CrlPtr& crl : parsed) {
      const X509* issuer = nullptr;
      for (const internal::X509Ptr& ca : cas) {
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) == 0 &&
            X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1) {
          issuer = ca.get();
          break;
        }
      }
      ERR_clear_error();
      if (issuer == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            crl_source, ": CRL issued by ", internal::NameToString(X509_CRL_get_issuer(crl.get())),
            " is not signed by any CA in ", ca_source));
      }
      crls.push_back(Crl{std::move(crl), issuer});
    }
    for (const internal::X509Ptr& ca : cas) {
      bool covered = false;
      for (const Crl& crl : crls) covered = covered || crl.issuer == ca.get();
      if (!covered) {
        return absl::FailedPreconditionError(
            absl::StrCat(crl_source, ": no CRL for CA ",
                         internal::NameToString(X509_get_subject_name(ca.get())), " of ", ca_source));
      }
    }
  }
  return std::unique_ptr<CertificatePolicy>(new CertificatePolicy(std::move(cas), std::move(crls)));
}

absl::Status CertificatePolicy::Check(absl::string_view peer_pem, absl::Time now) const {
  absl::StatusOr<internal::X509Ptr> parsed =
      internal::ParseFirstCertificate(peer_pem, "peer certificate");
  if (!parsed.ok()) return absl::UnauthenticatedError(parsed.status().message());
  X509* cert = parsed->get();

  ASSIGN_OR_RETURN(const std::string fingerprint, internal::Sha256Fingerprint(*cert));
  const std::string serial = internal::SerialToHex(X509_get0_serialNumber(cert));
  const std::string who = absl::StrCat("client certificate CN=", internal::CommonName(*cert),
                                       " (fingerprint ", fingerprint, ", serial ", serial, ")");

  const X509* issuer = nullptr;
  for (const internal::X509Ptr& ca : cas_) {
    if (IsIssuedBy(cert, ca.get())) {
      issuer = ca.get();
      break;
    }
  }
  if (issuer == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        who, " is not issued by a trusted client CA (issuer ",
        internal::NameToString(X509_get_issuer_name(cert)), ")"));
  }

  for (const Crl& crl : crls_) {
    if (crl.issuer != issuer) continue;
    X509_REVOKED* entry = nullptr;
    // 1: listed as revoked; 2: listed as removeFromCRL (no longer on hold), i.e. not revoked.
    if (X509_CRL_get0_by_serial(crl.crl.get(), &entry, X509_get0_serialNumber(cert)) == 1) {
      ERR_clear_error();
      return absl::PermissionDeniedError(absl::StrCat(
          who, " was revoked by ", internal::NameToString(X509_CRL_get_issuer(crl.crl.get()))));
    }
    ERR_clear_error();
  }

  ASSIGN_OR_RETURN(const absl::Time not_before, internal::AsnTimeToAbsl(X509_get0_notBefore(cert)));
  ASSIGN_OR_RETURN(const absl::Time not_after, internal::AsnTimeToAbsl(X509_get0_notAfter(cert)));
  if (now < not_before) {
    return absl::UnauthenticatedError(
        absl::StrCat(who, " is not yet valid (valid from ", FormatUtc(not_before), ")"));
  }
  if (now > not_after) {
    return absl::UnauthenticatedError(
        absl::StrCat(who, " expired at ", FormatUtc(not_after)));
  }
  return absl::OkStatus();
}

absl::Status CertificatePolicy::Check(const grpc::AuthContext* auth_context,
                                      absl::Time now) const {
  ASSIGN_OR_RETURN(const std::string pem, PeerPemCertificate(auth_context));
  return Check(pem, now);
}

int CertificatePolicy::revoked_count() const {
  int count = 0;
  for (const Crl& crl : crls_) {
    const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.crl.get());
    if (revoked != nullptr) count += sk_X509_REVOKED_num(revoked);
  }
  return count;
}

}  // namespace edgelink::tls
