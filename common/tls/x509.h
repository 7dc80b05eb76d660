// X.509 helpers over OpenSSL 3 for common/tls: RAII owners, PEM parsing, fingerprints, and file
// reading with errors that name the file. Internal to common/tls (the public API is in
// credentials.h, peer_identity.h and certificate_policy.h); service side only, never BoringSSL.
#ifndef EDGELINK_COMMON_TLS_X509_H_
#define EDGELINK_COMMON_TLS_X509_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace edgelink::tls::internal {

template <typename T, void (*Free)(T*)>
struct FreeWith {
  void operator()(T* ptr) const { Free(ptr); }
};

using BioPtr = std::unique_ptr<BIO, FreeWith<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, FreeWith<X509, X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, FreeWith<X509_CRL, X509_CRL_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, FreeWith<EVP_PKEY, EVP_PKEY_free>>;

// Largest PEM file ReadFile accepts; certificates, keys and CRLs are far smaller, and a bound
// keeps a misconfigured path (a device node, a log) from being read without end.
inline constexpr size_t kMaxPemFileSize = 4 << 20;

// ReadFile returns the contents of `path`. On failure the status names `what` and the path, with
// the errno-derived code (kNotFound, kPermissionDenied, ...) or kInvalidArgument if the file is
// larger than kMaxPemFileSize. Never includes the contents in an error.
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what);

// Cleanse overwrites `secret` with zeros (in a way the compiler keeps) and empties it.
void Cleanse(std::string& secret);

// ParseCertificates returns every certificate in `pem` (one or more), in order. kInvalidArgument
// names `source` if there is none or one is malformed. Other PEM blocks (keys, CRLs) are skipped
// without being echoed anywhere.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view pem,
                                                       absl::string_view source);

// ParseFirstCertificate returns the first certificate in `pem` (a leaf followed by its chain).
absl::StatusOr<X509Ptr> ParseFirstCertificate(absl::string_view pem, absl::string_view source);

// ParseCrls returns every CRL in `pem` (one or more); kInvalidArgument names `source` otherwise.
absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(absl::string_view pem, absl::string_view source);

// ParsePrivateKey parses an unencrypted PEM private key. Never prompts for a passphrase; an
// encrypted or malformed key is kInvalidArgument naming `source` (and nothing of the key).
absl::StatusOr<EvpPkeyPtr> ParsePrivateKey(absl::string_view pem, absl::string_view source);

// Sha256Fingerprint is the SHA-256 of the certificate's DER encoding, 64 lower-case hex digits
// (what `openssl x509 -noout -fingerprint -sha256` prints, without colons, lower-cased).
absl::StatusOr<std::string> Sha256Fingerprint(const X509& cert);

// CommonName is the subject's first commonName, or "" if it has none.
std::string CommonName(const X509& cert);

// NameToString renders an X.509 name on one line ("CN=Edgelink Client CA").
std::string NameToString(const X509_NAME* name);

// SerialToHex renders a certificate serial number in upper-case hex, as openssl prints it.
std::string SerialToHex(const ASN1_INTEGER* serial);

// AsnTimeToAbsl converts an ASN.1 UTCTime/GeneralizedTime; kInvalidArgument if malformed.
absl::StatusOr<absl::Time> AsnTimeToAbsl(const ASN1_TIME* time);

}  // namespace edgelink::tls::internal

#endif  // EDGELINK_COMMON_TLS_X509_H_
