#include "common/crypto/hkdf.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "common/crypto/hmac.h"
#include "common/status/status_macros.h"

namespace edgelink::crypto {

absl::StatusOr<SecretBytes> HkdfSha256Extract(absl::Span<const uint8_t> salt,
                                              const SecretBytes& ikm) {
  // HMAC pads a short key with zeros, so an empty salt already acts as HashLen zero bytes.
  ASSIGN_OR_RETURN(Sha256Digest prk, HmacSha256::Compute(SecretBytes::CopyFrom(salt), ikm.span()));
  SecretBytes out = SecretBytes::CopyFrom(prk);
  OPENSSL_cleanse(prk.data(), prk.size());
  return out;
}

absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk,
                                             absl::Span<const uint8_t> info, size_t length) {
  if (prk.size() < kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF PRK must be at least 32 bytes, got ", prk.size()));
  }
  if (length == 0 || length > kHkdfSha256MaxOutput) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF output length must be 1..", kHkdfSha256MaxOutput, ", got ", length));
  }
  ASSIGN_OR_RETURN(HmacSha256 hmac, HmacSha256::New(prk));
  SecretBytes okm(length);
  Sha256Digest block{};
  size_t done = 0;
  for (uint8_t counter = 1; done < length; ++counter) {
    // T(i) = HMAC(PRK, T(i-1) | info | i), with T(0) empty.
    if (counter > 1) RETURN_IF_ERROR(hmac.Update(block));
    RETURN_IF_ERROR(hmac.Update(info));
    RETURN_IF_ERROR(hmac.Update(absl::MakeConstSpan(&counter, 1)));
    ASSIGN_OR_RETURN(block, hmac.Finish());
    const size_t n = std::min(block.size(), length - done);
    std::copy_n(block.begin(), n, okm.mutable_span().begin() + done);
    done += n;
  }
  OPENSSL_cleanse(block.data(), block.size());
  return okm;
}

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, absl::Span<const uint8_t> salt,
                                       absl::Span<const uint8_t> info, size_t length) {
  ASSIGN_OR_RETURN(SecretBytes prk, HkdfSha256Extract(salt, ikm));
  return HkdfSha256Expand(prk, info, length);
}

}  // namespace edgelink::crypto
