// RAII owners for the backend's context objects. Internal to common/crypto: the same code works
// with BoringSSL and OpenSSL, so bssl::UniquePtr (BoringSSL only) is not used.
#ifndef EDGELINK_COMMON_CRYPTO_EVP_PTR_H_
#define EDGELINK_COMMON_CRYPTO_EVP_PTR_H_

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

namespace edgelink::crypto::internal {

template <typename T, void (*Free)(T*)>
struct FreeWith {
  void operator()(T* ptr) const { Free(ptr); }
};

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, FreeWith<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using HmacCtxPtr = std::unique_ptr<HMAC_CTX, FreeWith<HMAC_CTX, HMAC_CTX_free>>;

}  // namespace edgelink::crypto::internal

#endif  // EDGELINK_COMMON_CRYPTO_EVP_PTR_H_
