// gRPC credentials for Edgelink's client <-> basestation mutual TLS (DESIGN.md, trust model 2),
// built from PEM files as tools/pki/pki.sh lays them out:
//
//   basestation: ServerCredentials({.cert_chain_pem = "DIR/server.pem",
//                                   .private_key_pem = "DIR/server.key",
//                                   .client_ca_pem = "DIR/client-ca.pem",
//                                   .crl_pem = "DIR/crl.pem"})
//   client:      ChannelCredentials({.root_ca_pem = "DIR/server-ca.pem",
//                                    .cert_chain_pem = "DIR/clients/NAME.pem",
//                                    .private_key_pem = "DIR/clients/NAME.key"})
//
// Both read and check every file up front, so a bad path or a key that does not match its
// certificate is an error here, naming the file, rather than a server that silently fails to
// start or a channel that never connects. Private key bytes are wiped from this code's buffers
// after gRPC has copied them, and never appear in an error.
#ifndef EDGELINK_COMMON_TLS_CREDENTIALS_H_
#define EDGELINK_COMMON_TLS_CREDENTIALS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace edgelink::tls {

// Files the basestation serves TLS with. Paths, not contents.
struct TlsFiles {
  std::string cert_chain_pem;   // The server's certificate, then any intermediates.
  std::string private_key_pem;  // Its unencrypted private key.
  std::string client_ca_pem;    // CA certificate(s) that client certificates must chain to.
  // The client CA's CRL(s). When set, every call from a revoked client certificate fails with
  // PERMISSION_DENIED before it reaches a handler (see CertificatePolicy).
  std::optional<std::string> crl_pem;
};

// ServerCredentials returns TLS server credentials that require and verify a client certificate
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY): a client with no certificate, or
// one that does not chain to `client_ca_pem`, or one outside its validity period, fails the
// handshake, and its calls end UNAVAILABLE. With `crl_pem`, a CertificatePolicy runs on every
// call too (as the credentials' AuthMetadataProcessor, with `clock` as its time source): revoked
// certificates get PERMISSION_DENIED ("... was revoked by ..."). The CRL is read once, here: to
// apply a newer one, build new credentials (restart the server).
//
// Errors: a file that cannot be read keeps its errno code (kNotFound, kPermissionDenied, ...) and
// names the path; unparsable contents or a key that does not match the certificate are
// kInvalidArgument; a CRL not signed by the client CA is kFailedPrecondition.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files, std::function<absl::Time()> clock = absl::Now);

// Files a client authenticates with and verifies the basestation with. Paths, not contents.
struct ClientTlsFiles {
  std::string root_ca_pem;      // CA certificate(s) the basestation's certificate must chain to.
  std::string cert_chain_pem;   // The client's certificate (its fingerprint is its identity).
  std::string private_key_pem;  // Its unencrypted private key.
};

// ChannelCredentials returns TLS channel credentials that present the client certificate and
// verify the server against `root_ca_pem` (and, as gRPC does, its name against the target or
// GRPC_SSL_TARGET_NAME_OVERRIDE_ARG). Errors as for ServerCredentials.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientTlsFiles& files);

}  // namespace edgelink::tls

#endif  // EDGELINK_COMMON_TLS_CREDENTIALS_H_
