// HKDF-SHA256 (RFC 5869), built on HmacSha256 so both backends run the same code.
#ifndef EDGELINK_COMMON_CRYPTO_HKDF_H_
#define EDGELINK_COMMON_CRYPTO_HKDF_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/secret_bytes.h"

namespace edgelink::crypto {

// The largest output HKDF-SHA256 can produce: 255 blocks of 32 bytes.
inline constexpr size_t kHkdfSha256MaxOutput = 255 * 32;

// HkdfSha256Extract returns PRK = HMAC-SHA256(salt, ikm), 32 bytes. An empty salt means 32 zero
// bytes, as RFC 5869 specifies.
absl::StatusOr<SecretBytes> HkdfSha256Extract(absl::Span<const uint8_t> salt,
                                              const SecretBytes& ikm);

// HkdfSha256Expand returns `length` bytes of OKM from `prk` and `info`. Fails with
// kInvalidArgument if `prk` is shorter than 32 bytes or `length` is 0 or above
// kHkdfSha256MaxOutput.
absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk,
                                             absl::Span<const uint8_t> info, size_t length);

// HkdfSha256 is Extract followed by Expand.
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, absl::Span<const uint8_t> salt,
                                       absl::Span<const uint8_t> info, size_t length);

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_HKDF_H_
