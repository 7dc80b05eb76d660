// CertificatePolicy: what the basestation checks about a client certificate beyond gRPC's TLS
// handshake. gRPC 1.51's SslServerCredentials verifies the chain against the client CA and the
// validity period at handshake, but has no CRL option, so revocation is checked here, per call
// (ServerCredentials installs it when given a CRL; see credentials.h).
#ifndef EDGELINK_COMMON_TLS_CERTIFICATE_POLICY_H_
#define EDGELINK_COMMON_TLS_CERTIFICATE_POLICY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/tls/x509.h"
#include "grpcpp/security/auth_context.h"

namespace edgelink::tls {

// CertificatePolicy decides whether a client certificate may be used now:
//   1. it is signed by one of the client CAs                      else kUnauthenticated
//   2. no CRL of its CA lists its serial number                   else kPermissionDenied "revoked"
//   3. notBefore <= now <= notAfter                               else kUnauthenticated
//      ("expired" / "not yet valid")
// Messages name the certificate by common name, fingerprint and serial, never by key material.
//
// Each CRL must be signed by (and name as issuer) one of the CAs; when CRLs are given, every CA
// must have one, so no certificate escapes revocation checking through a CA without a CRL. A CRL
// past its nextUpdate is still enforced: its entries stay revoked (refresh it with
// `pki.sh crl DIR`). Immutable after creation, so Check is thread-safe.
class CertificatePolicy {
 public:
  // FromPem builds a policy from the client CA certificates (one or more, PEM) and CRLs (zero or
  // more, PEM; empty means no revocation checking). `source` names the inputs in errors.
  // kInvalidArgument if a CA or CRL does not parse; kFailedPrecondition if a CRL is not signed by
  // a CA, or a CA has no CRL.
  static absl::StatusOr<std::unique_ptr<CertificatePolicy>> FromPem(absl::string_view ca_pem,
                                                                    absl::string_view crl_pem);

  // FromFiles is FromPem of two files; `crl_path` may be empty (no revocation checking). Errors
  // name the file that could not be read or parsed.
  static absl::StatusOr<std::unique_ptr<CertificatePolicy>> FromFiles(
      const std::string& ca_path, const std::string& crl_path);

  // Check applies the policy to a PEM certificate (the leaf first) at time `now`. A PEM that is
  // not a certificate is kUnauthenticated.
  absl::Status Check(absl::string_view peer_pem, absl::Time now) const;

  // Check applies the policy to the peer certificate of a gRPC call; kUnauthenticated if there
  // is none.
  absl::Status Check(const grpc::AuthContext* auth_context, absl::Time now) const;

  // Number of serial numbers revoked across all CRLs.
  int revoked_count() const;

  bool checks_revocation() const { return !crls_.empty(); }

 private:
  struct Crl {
    internal::X509CrlPtr crl;
    const X509* issuer;  // One of cas_.
  };

  CertificatePolicy(std::vector<internal::X509Ptr> cas, std::vector<Crl> crls)
      : cas_(std::move(cas)), crls_(std::move(crls)) {}

  static absl::StatusOr<std::unique_ptr<CertificatePolicy>> Build(absl::string_view ca_pem,
                                                                  absl::string_view ca_source,
                                                                  absl::string_view crl_pem,
                                                                  absl::string_view crl_source);

  std::vector<internal::X509Ptr> cas_;
  std::vector<Crl> crls_;
};

}  // namespace edgelink::tls

#endif  // EDGELINK_COMMON_TLS_CERTIFICATE_POLICY_H_
