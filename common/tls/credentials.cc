#include "common/tls/credentials.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/certificate_policy.h"
#include "common/tls/x509.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace edgelink::tls {
namespace {

// SecretString owns PEM private-key bytes and wipes them when it goes away.
class SecretString {
 public:
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString() { internal::Cleanse(value_); }

  const std::string& value() const { return value_; }

 private:
  std::string value_;
};

// KeyPair is a certificate chain and its private key, read and checked against each other.
struct KeyPair {
  std::string cert_chain;
  std::unique_ptr<SecretString> private_key;
};

absl::StatusOr<KeyPair> LoadKeyPair(const std::string& cert_path, const std::string& key_path) {
  KeyPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, internal::ReadFile(cert_path, "certificate chain"));
  ASSIGN_OR_RETURN(std::string key, internal::ReadFile(key_path, "private key"));
  pair.private_key = std::make_unique<SecretString>(std::move(key));

  ASSIGN_OR_RETURN(const internal::X509Ptr leaf,
                   internal::ParseFirstCertificate(pair.cert_chain, cert_path));
  ASSIGN_OR_RETURN(const internal::EvpPkeyPtr pkey,
                   internal::ParsePrivateKey(pair.private_key->value(), key_path));
  const bool matches = X509_check_private_key(leaf.get(), pkey.get()) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::InvalidArgumentError(absl::StrCat("private key ", key_path,
                                                   " does not match the certificate in ", cert_path));
  }
  return pair;
}

absl::StatusOr<std::string> LoadCaBundle(const std::string& path, absl::string_view what) {
  ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(path, what));
  RETURN_IF_ERROR(internal::ParseCertificates(pem, path).status());
  return pem;
}

// PolicyProcessor applies a CertificatePolicy to every call before it reaches a handler. A
// refusal ends the call with the policy's code and message.
class PolicyProcessor final : public grpc::AuthMetadataProcessor {
 public:
  PolicyProcessor(std::unique_ptr<CertificatePolicy> policy, std::function<absl::Time()> clock)
      : policy_(std::move(policy)), clock_(std::move(clock)) {}

  // The check parses one certificate and hashes it (tens of microseconds, no I/O), so it runs
  // inline on the call's path rather than on gRPC's blocking-processor thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata&, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    const absl::Status status = policy_->Check(context, clock_());
    if (status.ok()) return grpc::Status::OK;
    // absl::StatusCode and grpc::StatusCode share their numbering.
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }

 private:
  const std::unique_ptr<CertificatePolicy> policy_;
  const std::function<absl::Time()> clock_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files, std::function<absl::Time()> clock) {
  ASSIGN_OR_RETURN(KeyPair pair, LoadKeyPair(files.cert_chain_pem, files.private_key_pem));
  ASSIGN_OR_RETURN(std::string client_ca, LoadCaBundle(files.client_ca_pem, "client CA"));
  std::unique_ptr<CertificatePolicy> policy;
  if (files.crl_pem.has_value()) {
    if (!clock) return absl::InvalidArgumentError("ServerCredentials: a CRL needs a clock");
    ASSIGN_OR_RETURN(policy, CertificatePolicy::FromFiles(files.client_ca_pem, *files.crl_pem));
  }

  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = std::move(client_ca);
  options.pem_key_cert_pairs.push_back({pair.private_key->value(), pair.cert_chain});
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  // gRPC holds its own copy of the key now; wipe ours (pair.private_key wipes itself).
  for (grpc::SslServerCredentialsOptions::PemKeyCertPair& key_cert : options.pem_key_cert_pairs) {
    internal::Cleanse(key_cert.private_key);
  }
  if (credentials == nullptr) return absl::InternalError("grpc::SslServerCredentials failed");
  if (policy != nullptr) {
    credentials->SetAuthMetadataProcessor(
        std::make_shared<PolicyProcessor>(std::move(policy), std::move(clock)));
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientTlsFiles& files) {
  ASSIGN_OR_RETURN(std::string root_ca, LoadCaBundle(files.root_ca_pem, "root CA"));
  ASSIGN_OR_RETURN(KeyPair pair, LoadKeyPair(files.cert_chain_pem, files.private_key_pem));

  grpc::SslCredentialsOptions options;
  options.pem_root_certs = std::move(root_ca);
  options.pem_cert_chain = pair.cert_chain;
  options.pem_private_key = pair.private_key->value();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(options);
  internal::Cleanse(options.pem_private_key);
  if (credentials == nullptr) return absl::InternalError("grpc::SslCredentials failed");
  return credentials;
}

}  // namespace edgelink::tls
