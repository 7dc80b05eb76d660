#include "common/crypto/random.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "common/status/status_macros.h"

namespace edgelink::crypto {

absl::Status RandomBytes(absl::Span<uint8_t> out) {
  if (out.empty()) return absl::OkStatus();
  if (RAND_bytes(out.data(), out.size()) != 1) {
    return absl::InternalError("RAND_bytes failed: the CSPRNG is unavailable");
  }
  return absl::OkStatus();
}

void SystemRandom::Fill(absl::Span<uint8_t> out) {
  if (!RandomBytes(out).ok()) abort();
}

absl::StatusOr<SecretBytes> RandomSecret(size_t size) {
  SecretBytes secret(size);
  RETURN_IF_ERROR(RandomBytes(secret.mutable_span()));
  return secret;
}

}  // namespace edgelink::crypto
