// HMAC-SHA256 (RFC 2104, FIPS 198-1).
#ifndef EDGELINK_COMMON_CRYPTO_HMAC_H_
#define EDGELINK_COMMON_CRYPTO_HMAC_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/evp_ptr.h"
#include "common/crypto/secret_bytes.h"

namespace edgelink::crypto {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// HmacSha256 computes HMAC-SHA256 incrementally: Update any number of times, then Finish, which
// also resets it for another message under the same key. Not thread-safe.
class HmacSha256 {
 public:
  // New keys an HMAC. Any key length is valid (keys longer than 64 bytes are hashed first, as
  // RFC 2104 says); fails with kInternal only if the backend cannot allocate.
  static absl::StatusOr<HmacSha256> New(const SecretBytes& key);

  // Compute is the one-shot HMAC-SHA256(key, data).
  static absl::StatusOr<Sha256Digest> Compute(const SecretBytes& key,
                                              absl::Span<const uint8_t> data);

  // Verify reports, in constant time, whether `tag` is HMAC-SHA256(key, data), or a prefix of it
  // at least 16 bytes long (RFC 2104 truncation). Any failure reports false.
  static bool Verify(const SecretBytes& key, absl::Span<const uint8_t> data,
                     absl::Span<const uint8_t> tag);

  HmacSha256(HmacSha256&&) = default;
  HmacSha256& operator=(HmacSha256&&) = default;

  absl::Status Update(absl::Span<const uint8_t> data);
  absl::StatusOr<Sha256Digest> Finish();

 private:
  explicit HmacSha256(internal::HmacCtxPtr ctx) : ctx_(std::move(ctx)) {}

  internal::HmacCtxPtr ctx_;
};

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_HMAC_H_
