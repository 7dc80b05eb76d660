// AES-128-GCM authenticated encryption with associated data.
#ifndef EDGELINK_COMMON_CRYPTO_AEAD_H_
#define EDGELINK_COMMON_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/crypto/evp_ptr.h"
#include "common/crypto/secret_bytes.h"

namespace edgelink::crypto {

// Aead seals and opens AES-128-GCM records: 16-byte key, 12-byte nonce, 16-byte tag appended to
// the ciphertext. The key schedule is computed once in New, so one Aead per key and direction is
// the intended use. The caller must never seal twice with one nonce under one key (the channel
// layer uses packet numbers); a build with the nonce ledger (nonce_ledger.h) aborts if one does.
// Not thread-safe.
class Aead {
 public:
  static constexpr size_t kKeySize = 16;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  // Larger inputs are refused; datagrams are far smaller.
  static constexpr size_t kMaxInput = size_t{1} << 30;

  // New fails with kInvalidArgument if `key` is not 16 bytes, kInternal if the backend fails.
  static absl::StatusOr<std::unique_ptr<Aead>> New(const SecretBytes& key);

  // SetKey replaces the key in place, for a server that stores thousands of raw keys and keeps one
  // Aead to work with them. Fails with kInvalidArgument if `key` is not 16 bytes.
  absl::Status SetKey(absl::Span<const uint8_t> key);

  // Seal encrypts `plaintext`, authenticates it with `aad`, and writes ciphertext || tag
  // (plaintext.size() + kTagSize bytes) to the front of `out`, returning that size. `out` may
  // start at plaintext.data() (in-place). Fails with kInvalidArgument on a nonce that is not 12
  // bytes, an input over kMaxInput, or an `out` too small.
  absl::StatusOr<size_t> Seal(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                              absl::Span<const uint8_t> plaintext, absl::Span<uint8_t> out);

  // Open checks and decrypts `ciphertext` (ciphertext || tag) into the front of `out`, returning
  // the plaintext size. `out` may start at ciphertext.data(). Fails with kInvalidArgument on a bad
  // nonce size, a ciphertext shorter than the tag, or an `out` too small, and with
  // kUnauthenticated if the tag does not verify, in which case the bytes of `out` are zeroed.
  absl::StatusOr<size_t> Open(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                              absl::Span<const uint8_t> ciphertext, absl::Span<uint8_t> out);

  // Allocating forms of Seal and Open, for control-plane code and tests.
  absl::StatusOr<std::vector<uint8_t>> Seal(absl::Span<const uint8_t> nonce,
                                            absl::Span<const uint8_t> aad,
                                            absl::Span<const uint8_t> plaintext);
  absl::StatusOr<std::vector<uint8_t>> Open(absl::Span<const uint8_t> nonce,
                                            absl::Span<const uint8_t> aad,
                                            absl::Span<const uint8_t> ciphertext);

 private:
  Aead(internal::CipherCtxPtr seal_ctx, internal::CipherCtxPtr open_ctx, uint64_t ledger_key_id)
      : seal_ctx_(std::move(seal_ctx)),
        open_ctx_(std::move(open_ctx)),
        ledger_key_id_(ledger_key_id) {}

  // Both contexts hold the expanded key; each call only sets the nonce.
  internal::CipherCtxPtr seal_ctx_;
  internal::CipherCtxPtr open_ctx_;
  uint64_t ledger_key_id_;  // The key's name in the nonce ledger; 0 without one.
};

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_AEAD_H_
