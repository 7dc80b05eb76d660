#include "common/crypto/secret_bytes.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

namespace edgelink::crypto {
namespace internal {

void Cleanse(void* data, size_t size) { OPENSSL_cleanse(data, size); }

}  // namespace internal

SecretBytes::SecretBytes(size_t size)
    : data_(size == 0 ? nullptr : new uint8_t[size]()), size_(size) {}

SecretBytes SecretBytes::CopyFrom(absl::Span<const uint8_t> bytes) {
  SecretBytes secret(bytes.size());
  std::copy(bytes.begin(), bytes.end(), secret.data_.get());
  return secret;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

void SecretBytes::Wipe() {
  if (data_ != nullptr) OPENSSL_cleanse(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

bool ConstantTimeEquals(absl::Span<const uint8_t> a, absl::Span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace edgelink::crypto
