// crypto_vectors prints the outputs of common/crypto for the published vectors and for a sweep of
// derived inputs, one "name hex" line each, then checks the published ones. Built once per
// backend; backends_agree_test runs both builds and requires byte-identical output, which is what
// shows a BoringSSL device and an OpenSSL basestation compute the same keys and records.
//
// Exit status: 0 when every published vector matched, 1 otherwise.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/aead.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/hmac.h"
#include "common/crypto/nonce_ledger.h"
#include "common/crypto/test_vectors.h"

namespace edgelink::crypto {
namespace {

// Known-answer tests seal the published vectors, some of which share a key and IV (GCM test cases
// 1 and 2), and seal one vector several ways: repeats on purpose, so outside the nonce ledger.
const NonceLedgerExemption kKnownAnswers;

std::vector<uint8_t> Bytes(const testing::HexOrRepeat& value) {
  std::string bytes = absl::HexStringToBytes(value.hex);
  if (value.repeat > 0) bytes = std::string(value.repeat, bytes.at(0));
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<uint8_t> Bytes(const char* hex) { return Bytes(testing::HexOrRepeat{hex}); }

// Deterministic filler: byte i of a stream labelled `seed`.
std::vector<uint8_t> Pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed + 31 * i + (i >> 3));
  return out;
}

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

template <typename T>
std::string HexOr(const absl::StatusOr<T>& value) {
  if (!value.ok()) return absl::StrCat("error:", absl::StatusCodeToString(value.status().code()));
  if constexpr (std::is_same_v<T, SecretBytes>) {
    return Hex(value->span());
  } else {
    return Hex(*value);
  }
}

class Printer {
 public:
  void Line(const std::string& name, const std::string& value) {
    std::printf("%s %s\n", name.c_str(), value.c_str());
  }
  void Check(const std::string& name, const std::string& got, const std::string& want) {
    Line(name, got);
    if (got != want) {
      std::fprintf(stderr, "MISMATCH %s\n  got  %s\n  want %s\n", name.c_str(), got.c_str(),
                   want.c_str());
      ++mismatches_;
    }
  }
  int mismatches() const { return mismatches_; }

 private:
  int mismatches_ = 0;
};

int Run() {
  Printer out;
  for (const testing::HmacVector& v : testing::kRfc4231) {
    std::string mac = HexOr(HmacSha256::Compute(SecretBytes::CopyFrom(Bytes(v.key)), Bytes(v.data)));
    out.Check(v.name, mac.substr(0, std::string(v.mac).size()), v.mac);
  }
  for (const testing::HkdfVector& v : testing::kRfc5869) {
    out.Check(v.name, HexOr(HkdfSha256(SecretBytes::CopyFrom(Bytes(v.ikm)), Bytes(v.salt),
                                       Bytes(v.info), v.length)),
              v.okm);
  }
  for (const testing::GcmVector& v : testing::kGcmSpec) {
    absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::New(SecretBytes::CopyFrom(Bytes(v.key)));
    if (!aead.ok()) return 1;
    out.Check(v.name, HexOr((*aead)->Seal(Bytes(v.iv), Bytes(v.aad), Bytes(v.plaintext))),
              absl::StrCat(v.ciphertext, v.tag));
  }

  // Derived sweep: every message and key length a protocol is likely to use, and the edges.
  for (size_t size = 0; size <= 200; size += (size < 70 ? 1 : 13)) {
    const SecretBytes key = SecretBytes::CopyFrom(Pattern(size, 1));
    out.Line(absl::StrCat("hmac_len", size), HexOr(HmacSha256::Compute(key, Pattern(size, 2))));
    out.Line(absl::StrCat("hkdf_len", size),
             HexOr(HkdfSha256(key, Pattern(size % 40, 3), Pattern(size % 50, 4), 1 + size * 3)));
  }
  absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::New(SecretBytes::CopyFrom(Pattern(16, 5)));
  if (!aead.ok()) return 1;
  for (size_t size : {0, 1, 15, 16, 17, 31, 32, 33, 64, 255, 256, 1200, 1500, 16384}) {
    out.Line(absl::StrCat("aes128gcm_len", size),
             HexOr((*aead)->Seal(Pattern(12, static_cast<uint8_t>(size)), Pattern(size % 29, 6),
                                 Pattern(size, 7))));
  }
  if (out.mismatches() > 0) {
    std::fprintf(stderr, "%d published vector(s) did not match\n", out.mismatches());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace edgelink::crypto

int main() { return edgelink::crypto::Run(); }
