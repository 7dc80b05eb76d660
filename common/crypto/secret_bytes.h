// SecretBytes: key material that zeroes itself when destroyed and never prints.
#ifndef EDGELINK_COMMON_CRYPTO_SECRET_BYTES_H_
#define EDGELINK_COMMON_CRYPTO_SECRET_BYTES_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>

#include "absl/types/span.h"

namespace edgelink::crypto {
namespace internal {
// Cleanse zeroes `size` bytes at `data` in a way the compiler may not elide (OPENSSL_cleanse).
void Cleanse(void* data, size_t size);
}  // namespace internal

// SecretBytes owns a fixed-size buffer of secret bytes. It is move-only (copies are explicit,
// through Clone), wipes its buffer with OPENSSL_cleanse when destroyed or assigned over, and
// streams as "<secret N bytes>" so a key can never reach a log or an error message by accident.
// It has no operator==: compare secrets with ConstantTimeEquals.
class SecretBytes {
 public:
  SecretBytes() = default;
  // Makes `size` zero bytes, to be filled through mutable_span().
  explicit SecretBytes(size_t size);
  // Copies `bytes` into a new secret. The caller remains responsible for wiping its own copy.
  static SecretBytes CopyFrom(absl::Span<const uint8_t> bytes);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  SecretBytes Clone() const { return CopyFrom(span()); }

  absl::Span<const uint8_t> span() const { return absl::MakeConstSpan(data_.get(), size_); }
  absl::Span<uint8_t> mutable_span() { return absl::MakeSpan(data_.get(), size_); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  friend std::ostream& operator<<(std::ostream& os, const SecretBytes& secret) {
    return os << "<secret " << secret.size_ << " bytes>";
  }

 private:
  void Wipe();

  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// SecretArray is SecretBytes' fixed-size sibling: N bytes stored inline (no allocation), for keys
// a server holds by the thousand. Copying is explicit (Clone); moving copies and wipes the source.
template <size_t N>
class SecretArray {
 public:
  SecretArray() = default;
  // Copies exactly N bytes from `bytes`, or leaves zeros if the size differs (check first).
  static SecretArray CopyFrom(absl::Span<const uint8_t> bytes) {
    SecretArray secret;
    if (bytes.size() == N) std::copy(bytes.begin(), bytes.end(), secret.bytes_.begin());
    return secret;
  }
  SecretArray(SecretArray&& other) noexcept : bytes_(other.bytes_) { other.Wipe(); }
  SecretArray& operator=(SecretArray&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      other.Wipe();
    }
    return *this;
  }
  SecretArray(const SecretArray&) = delete;
  SecretArray& operator=(const SecretArray&) = delete;
  ~SecretArray() { Wipe(); }

  SecretArray Clone() const { return CopyFrom(span()); }
  absl::Span<const uint8_t> span() const { return bytes_; }
  absl::Span<uint8_t> mutable_span() { return absl::MakeSpan(bytes_); }
  static constexpr size_t size() { return N; }

  friend std::ostream& operator<<(std::ostream& os, const SecretArray&) {
    return os << "<secret " << N << " bytes>";
  }

 private:
  void Wipe() { internal::Cleanse(bytes_.data(), N); }

  std::array<uint8_t, N> bytes_{};
};

// ConstantTimeEquals reports whether `a` and `b` hold the same bytes, taking time that depends
// only on their lengths (which are not secret). Different lengths compare unequal.
bool ConstantTimeEquals(absl::Span<const uint8_t> a, absl::Span<const uint8_t> b);

}  // namespace edgelink::crypto

#endif  // EDGELINK_COMMON_CRYPTO_SECRET_BYTES_H_
