// Test-only: a throwaway PKI made by tools/pki/pki.sh under TEST_TMPDIR, so tests run against
// freshly generated CAs and keys (none is checked in) made by the same tool vendors use.
#ifndef EDGELINK_COMMON_TLS_TEST_PKI_H_
#define EDGELINK_COMMON_TLS_TEST_PKI_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edgelink::tls::testing {

// RunCommand runs argv[0] (searched on PATH) with argv, without a shell, and returns its
// standard output. A non-zero exit is kInternal carrying the exit code and standard error.
absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv);

// OpensslCliFingerprint is `openssl x509 -noout -fingerprint -sha256 -in cert_path`, normalized
// to lower-case hex without colons: the reference our own fingerprint code must match.
absl::StatusOr<std::string> OpensslCliFingerprint(const std::string& cert_path);

// TestPki is a directory laid out by `pki.sh init-ca`.
class TestPki {
 public:
  // Create runs `pki.sh init-ca TEST_TMPDIR/pki-<name> --server-names <server_names>`.
  static absl::StatusOr<TestPki> Create(absl::string_view name,
                                        absl::string_view server_names = "DNS:localhost,IP:127.0.0.1");

  // Pki runs pki.sh with `args`, returning its standard output.
  static absl::StatusOr<std::string> Pki(std::vector<std::string> args);

  // IssueClient runs `pki.sh issue-client DIR client extra_args...` and returns the fingerprint
  // it printed.
  absl::StatusOr<std::string> IssueClient(absl::string_view client,
                                          std::vector<std::string> extra_args = {}) const;

  // Revoke runs `pki.sh revoke DIR clients/<client>.pem`, which rewrites crl.pem.
  absl::Status Revoke(absl::string_view client) const;

  const std::string& dir() const { return dir_; }
  std::string client_ca() const { return dir_ + "/client-ca.pem"; }
  std::string server_ca() const { return dir_ + "/server-ca.pem"; }
  std::string server_cert() const { return dir_ + "/server.pem"; }
  std::string server_key() const { return dir_ + "/server.key"; }
  std::string crl() const { return dir_ + "/crl.pem"; }
  std::string client_cert(absl::string_view client) const;
  std::string client_key(absl::string_view client) const;

 private:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
};

}  // namespace edgelink::tls::testing

#endif  // EDGELINK_COMMON_TLS_TEST_PKI_H_
