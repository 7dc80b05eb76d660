#include "common/tls/x509.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace edgelink::tls::internal {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

using InfoStackPtr = std::unique_ptr<STACK_OF(X509_INFO), void (*)(STACK_OF(X509_INFO)*)>;

void FreeInfoStack(STACK_OF(X509_INFO)* stack) { sk_X509_INFO_pop_free(stack, X509_INFO_free); }

// LastOpenSslReason returns the reason of the most recent OpenSSL error ("no start line", "bad
// decrypt", ...) and clears the thread's error queue, so nothing stale reaches gRPC's own
// diagnostics later. OpenSSL's reason strings never contain input bytes.
std::string LastOpenSslReason() {
  const unsigned long error = ERR_peek_last_error();
  const char* reason = error == 0 ? nullptr : ERR_reason_error_string(error);
  ERR_clear_error();
  return reason == nullptr ? "unknown OpenSSL error" : reason;
}

absl::StatusOr<BioPtr> MemoryBio(absl::string_view data) {
  if (data.size() > kMaxPemFileSize) return absl::InvalidArgumentError("PEM input too large");
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  return bio;
}

// ReadInfos parses every PEM block OpenSSL knows into X509_INFO entries (certificates, CRLs,
// keys). Keys are parsed too, but only to be freed.
absl::StatusOr<InfoStackPtr> ReadInfos(absl::string_view pem, absl::string_view source) {
  absl::StatusOr<BioPtr> bio = MemoryBio(pem);
  if (!bio.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", bio.status().message()));
  InfoStackPtr infos(PEM_X509_INFO_read_bio(bio->get(), nullptr, nullptr, nullptr), FreeInfoStack);
  if (infos == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed PEM (", LastOpenSslReason(), ")"));
  }
  ERR_clear_error();
  return infos;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat("cannot read ", what, " ", path));
  }
  std::string contents;
  char buffer[8192];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
    if (contents.size() + n > kMaxPemFileSize) {
      Cleanse(contents);
      OPENSSL_cleanse(buffer, sizeof(buffer));
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", path, " is larger than ", kMaxPemFileSize, " bytes"));
    }
    contents.append(buffer, n);
  }
  const bool failed = std::ferror(file.get()) != 0;
  const int error = errno;
  OPENSSL_cleanse(buffer, sizeof(buffer));
  if (failed) {
    Cleanse(contents);
    return absl::ErrnoToStatus(error, absl::StrCat("cannot read ", what, " ", path));
  }
  return contents;
}

void Cleanse(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view pem,
                                                       absl::string_view source) {
  absl::StatusOr<InfoStackPtr> infos = ReadInfos(pem, source);
  if (!infos.ok()) return infos.status();
  std::vector<X509Ptr> certs;
  for (int i = 0; i < sk_X509_INFO_num(infos->get()); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos->get(), i);
    if (info->x509 == nullptr) continue;
    if (X509_up_ref(info->x509) != 1) return absl::InternalError("X509_up_ref failed");
    certs.emplace_back(info->x509);
  }
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no PEM certificate"));
  }
  return certs;
}

absl::StatusOr<X509Ptr> ParseFirstCertificate(absl::string_view pem, absl::string_view source) {
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(pem, source);
  if (!certs.ok()) return certs.status();
  return std::move(certs->front());
}

absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(absl::string_view pem, absl::string_view source) {
  absl::StatusOr<InfoStackPtr> infos = ReadInfos(pem, source);
  if (!infos.ok()) return infos.status();
  std::vector<X509CrlPtr> crls;
  for (int i = 0; i < sk_X509_INFO_num(infos->get()); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos->get(), i);
    if (info->crl == nullptr) continue;
    if (X509_CRL_up_ref(info->crl) != 1) return absl::InternalError("X509_CRL_up_ref failed");
    crls.emplace_back(info->crl);
  }
  if (crls.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no PEM CRL"));
  return crls;
}

absl::StatusOr<EvpPkeyPtr> ParsePrivateKey(absl::string_view pem, absl::string_view source) {
  absl::StatusOr<BioPtr> bio = MemoryBio(pem);
  if (!bio.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", bio.status().message()));
  // A callback that supplies no passphrase: OpenSSL's default would prompt on the terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) -> int { return -1; };
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, no_passphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": not an unencrypted PEM private key (", LastOpenSslReason(), ")"));
  }
  return key;
}

absl::StatusOr<std::string> Sha256Fingerprint(const X509& cert) {
  unsigned char* der = nullptr;
  const int der_len = i2d_X509(&cert, &der);
  if (der_len <= 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("certificate cannot be DER-encoded");
  }
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner(
      der, [](unsigned char* p) { OPENSSL_free(p); });
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(der, static_cast<size_t>(der_len), digest, &digest_len, EVP_sha256(), nullptr) !=
          1 ||
      digest_len != 32) {
    ERR_clear_error();
    return absl::InternalError("SHA-256 of the certificate failed");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), digest_len));
}

std::string CommonName(const X509& cert) {
  const X509_NAME* subject = X509_get_subject_name(&cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return "";
  }
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return name;
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    ERR_clear_error();
    return "?";
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len > 0 ? static_cast<size_t>(len) : 0);
}

std::string SerialToHex(const ASN1_INTEGER* serial) {
  std::unique_ptr<BIGNUM, FreeWith<BIGNUM, BN_free>> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) {
    ERR_clear_error();
    return "?";
  }
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) {
    ERR_clear_error();
    return "?";
  }
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

absl::StatusOr<absl::Time> AsnTimeToAbsl(const ASN1_TIME* time) {
  struct tm tm = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("malformed ASN.1 time");
  }
  return absl::FromTM(tm, absl::UTCTimeZone());
}

}  // namespace edgelink::tls::internal
