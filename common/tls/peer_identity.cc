#include "common/tls/peer_identity.h"

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/x509.h"

namespace edgelink::tls {

absl::StatusOr<std::string> PeerPemCertificate(const grpc::AuthContext* auth_context) {
  if (auth_context == nullptr) {
    return absl::UnauthenticatedError("the call has no TLS auth context");
  }
  const std::vector<grpc::string_ref> values =
      auth_context->FindPropertyValues(kPeerPemCertProperty);
  if (values.empty() || values.front().empty()) {
    return absl::UnauthenticatedError("the peer presented no client certificate");
  }
  return std::string(values.front().data(), values.front().size());
}

absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::AuthContext* auth_context) {
  ASSIGN_OR_RETURN(const std::string pem, PeerPemCertificate(auth_context));
  return IdentityOfPem(pem);
}

absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth_context = context.auth_context();
  return PeerIdentityOf(auth_context.get());
}

absl::StatusOr<std::string> PeerFingerprint(const grpc::ServerContext& context) {
  ASSIGN_OR_RETURN(PeerIdentity identity, PeerIdentityOf(context));
  return std::move(identity.fingerprint);
}

absl::StatusOr<PeerIdentity> IdentityOfPem(absl::string_view pem) {
  ASSIGN_OR_RETURN(const internal::X509Ptr cert,
                   internal::ParseFirstCertificate(pem, "certificate"));
  PeerIdentity identity;
  ASSIGN_OR_RETURN(identity.fingerprint, internal::Sha256Fingerprint(*cert));
  identity.common_name = internal::CommonName(*cert);
  return identity;
}

absl::StatusOr<std::string> FingerprintOfPem(absl::string_view pem) {
  ASSIGN_OR_RETURN(const internal::X509Ptr cert,
                   internal::ParseFirstCertificate(pem, "certificate"));
  return internal::Sha256Fingerprint(*cert);
}

absl::StatusOr<std::string> FingerprintOfPemFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string pem, internal::ReadFile(path, "certificate"));
  ASSIGN_OR_RETURN(const internal::X509Ptr cert, internal::ParseFirstCertificate(pem, path));
  return internal::Sha256Fingerprint(*cert);
}

}  // namespace edgelink::tls
