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

// RandomSource is where a sans-I/O core gets nonces and keys: SystemRandom in production, a seeded
// generator in the simulator and tests (which is not cryptographically secure, by design).
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void Fill(absl::Span<uint8_t> out) = 0;
};

// SystemRandom draws from the CSPRNG; a CSPRNG failure is fatal (abort), since no caller could go
// on safely without randomness.
class SystemRandom final : public RandomSource {
 public:
  void Fill(absl::Span<uint8_t> out) override;
};

// RandomBytes fills `out` from the CSPRNG. Fails with kInternal only if the CSPRNG does, in which
// case `out` must not be used.
absl::Status RandomBytes(absl::Span<uint8_t> out);

// RandomSecret returns `size` fresh random bytes as a secret (a session key, a device secret).
absl::StatusOr<SecretBytes> RandomSecret(size_t size);

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_RANDOM_H_
