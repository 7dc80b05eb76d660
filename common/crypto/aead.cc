#include "common/crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/nonce_ledger.h"
#include "common/status/status_macros.h"

namespace edgelink::crypto {
namespace {

absl::StatusOr<internal::CipherCtxPtr> NewKeyedContext(const SecretBytes& key, bool encrypt) {
  internal::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  // The default GCM nonce length is 12 bytes in both backends.
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, key.span().data(), nullptr,
                        encrypt ? 1 : 0) != 1) {
    return absl::InternalError("EVP_CipherInit_ex(AES-128-GCM) failed");
  }
  return ctx;
}

absl::Status CheckSizes(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                        absl::Span<const uint8_t> input) {
  if (nonce.size() != Aead::kNonceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM nonce must be 12 bytes, got ", nonce.size()));
  }
  if (input.size() > Aead::kMaxInput || aad.size() > Aead::kMaxInput) {
    return absl::InvalidArgumentError("AES-GCM input too large");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Aead>> Aead::New(const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-128-GCM key must be 16 bytes, got ", key.size()));
  }
  ASSIGN_OR_RETURN(internal::CipherCtxPtr seal_ctx, NewKeyedContext(key, /*encrypt=*/true));
  ASSIGN_OR_RETURN(internal::CipherCtxPtr open_ctx, NewKeyedContext(key, /*encrypt=*/false));
  return std::unique_ptr<Aead>(
      new Aead(std::move(seal_ctx), std::move(open_ctx), NonceLedgerKeyId(key.span())));
}

absl::Status Aead::SetKey(absl::Span<const uint8_t> key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-128-GCM key must be 16 bytes, got ", key.size()));
  }
  if (EVP_CipherInit_ex(seal_ctx_.get(), nullptr, nullptr, key.data(), nullptr, 1) != 1 ||
      EVP_CipherInit_ex(open_ctx_.get(), nullptr, nullptr, key.data(), nullptr, 0) != 1) {
    return absl::InternalError("EVP_CipherInit_ex (rekey) failed");
  }
  ledger_key_id_ = NonceLedgerKeyId(key);
  return absl::OkStatus();
}

absl::StatusOr<size_t> Aead::Seal(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                                  absl::Span<const uint8_t> plaintext, absl::Span<uint8_t> out) {
  RETURN_IF_ERROR(CheckSizes(nonce, aad, plaintext));
  const size_t sealed_size = plaintext.size() + kTagSize;
  if (out.size() < sealed_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM output needs ", sealed_size, " bytes, has ", out.size()));
  }
  NonceLedgerRecord(ledger_key_id_, nonce);
  EVP_CIPHER_CTX* ctx = seal_ctx_.get();
  int n = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx, nullptr, &n, aad.data(), aad.size()) != 1) ||
      (!plaintext.empty() &&
       EVP_EncryptUpdate(ctx, out.data(), &n, plaintext.data(), plaintext.size()) != 1) ||
      EVP_EncryptFinal_ex(ctx, out.data() + plaintext.size(), &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, out.data() + plaintext.size()) !=
          1) {
    return absl::InternalError("AES-GCM seal failed in the crypto backend");
  }
  return sealed_size;
}

absl::StatusOr<size_t> Aead::Open(absl::Span<const uint8_t> nonce, absl::Span<const uint8_t> aad,
                                  absl::Span<const uint8_t> ciphertext, absl::Span<uint8_t> out) {
  RETURN_IF_ERROR(CheckSizes(nonce, aad, ciphertext));
  if (ciphertext.size() < kTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM ciphertext must hold a 16-byte tag, got ", ciphertext.size(),
                     " bytes"));
  }
  const size_t plaintext_size = ciphertext.size() - kTagSize;
  if (out.size() < plaintext_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-GCM output needs ", plaintext_size, " bytes, has ", out.size()));
  }
  // The tag is copied out first: with in-place decryption the plaintext may overwrite it.
  uint8_t tag[kTagSize];
  std::copy_n(ciphertext.data() + plaintext_size, kTagSize, tag);
  EVP_CIPHER_CTX* ctx = open_ctx_.get();
  int n = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx, nullptr, &n, aad.data(), aad.size()) != 1) ||
      (plaintext_size > 0 &&
       EVP_DecryptUpdate(ctx, out.data(), &n, ciphertext.data(), plaintext_size) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1) {
    OPENSSL_cleanse(out.data(), plaintext_size);
    return absl::InternalError("AES-GCM open failed in the crypto backend");
  }
  if (EVP_DecryptFinal_ex(ctx, out.data() + plaintext_size, &n) != 1) {
    // Never hand out plaintext that did not authenticate.
    OPENSSL_cleanse(out.data(), plaintext_size);
    return absl::UnauthenticatedError("AES-GCM tag mismatch: record forged or corrupted");
  }
  return plaintext_size;
}

absl::StatusOr<std::vector<uint8_t>> Aead::Seal(absl::Span<const uint8_t> nonce,
                                                absl::Span<const uint8_t> aad,
                                                absl::Span<const uint8_t> plaintext) {
  std::vector<uint8_t> out(plaintext.size() + kTagSize);
  ASSIGN_OR_RETURN(size_t n, Seal(nonce, aad, plaintext, absl::MakeSpan(out)));
  out.resize(n);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Aead::Open(absl::Span<const uint8_t> nonce,
                                                absl::Span<const uint8_t> aad,
                                                absl::Span<const uint8_t> ciphertext) {
  std::vector<uint8_t> out(ciphertext.size() >= kTagSize ? ciphertext.size() - kTagSize : 0);
  ASSIGN_OR_RETURN(size_t n, Open(nonce, aad, ciphertext, absl::MakeSpan(out)));
  out.resize(n);
  return out;
}

}  // namespace edgelink::crypto
