// A TLS client's identity (DESIGN.md, trust model 2): the SHA-256 fingerprint of its X.509
// certificate, as the basestation sees it on a gRPC call and as the client computes it from its
// own certificate file. Both sides produce the same 64 lower-case hex digits, which equal
// `openssl x509 -noout -fingerprint -sha256` without colons, lower-cased (and `pki.sh fingerprint`).
#ifndef EDGELINK_COMMON_TLS_PEER_IDENTITY_H_
#define EDGELINK_COMMON_TLS_PEER_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"

namespace edgelink::tls {

// The gRPC auth-context property that holds the peer's leaf certificate in PEM.
inline constexpr char kPeerPemCertProperty[] = "x509_pem_cert";

// PeerIdentity is who a verified TLS peer is.
struct PeerIdentity {
  // SHA-256 of the certificate's DER encoding: 64 lower-case hex digits. The identity.
  std::string fingerprint;
  // The subject's commonName ("" if none). Informational only: a CA may issue the same CN twice,
  // so never authorize on it.
  std::string common_name;
};

// PeerIdentityOf reads the peer certificate from a call's auth context. kUnauthenticated if there
// is no auth context or no certificate in it (an insecure or server-only-TLS call);
// kInvalidArgument if the certificate cannot be parsed (gRPC verified it, so that means a bug).
absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::AuthContext* auth_context);
absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::ServerContext& context);

// PeerFingerprint is PeerIdentityOf(context)->fingerprint, with the same errors.
absl::StatusOr<std::string> PeerFingerprint(const grpc::ServerContext& context);

// PeerPemCertificate returns the peer's leaf certificate (PEM) from an auth context;
// kUnauthenticated if there is none.
absl::StatusOr<std::string> PeerPemCertificate(const grpc::AuthContext* auth_context);

// FingerprintOfPem is the fingerprint of the first certificate in `pem` (a leaf, possibly
// followed by its chain). kInvalidArgument if there is no certificate; the message never quotes
// the input, so passing a key by mistake does not echo it.
absl::StatusOr<std::string> FingerprintOfPem(absl::string_view pem);

// FingerprintOfPemFile is FingerprintOfPem of a file's contents; the client uses it on its own
// certificate to know its identity. Errors name the file (kNotFound if it does not exist).
absl::StatusOr<std::string> FingerprintOfPemFile(const std::string& path);

// IdentityOfPem is the fingerprint and common name of the first certificate in `pem`.
absl::StatusOr<PeerIdentity> IdentityOfPem(absl::string_view pem);

}  // namespace edgelink::tls

#endif  // EDGELINK_COMMON_TLS_PEER_IDENTITY_H_
