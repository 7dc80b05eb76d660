// Cryptographically secure random bytes from the backend's CSPRNG (RAND_bytes).
#ifndef EDGELINK_COMMON_CRYPTO_RANDOM_H_
#define EDGELINK_COMMON_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/secret_bytes.h"

namespace edgelink::crypto {

// RandomBytes fills `out` from the CSPRNG. Fails with kInternal only if the CSPRNG does, in which
// case `out` must not be used.
absl::Status RandomBytes(absl::Span<uint8_t> out);

// RandomSecret returns `size` fresh random bytes as a secret (a session key, a device secret).
absl::StatusOr<SecretBytes> RandomSecret(size_t size);

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_RANDOM_H_
