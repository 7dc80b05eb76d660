#include "common/crypto/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "common/status/status_macros.h"

namespace edgelink::crypto {

absl::StatusOr<HmacSha256> HmacSha256::New(const SecretBytes& key) {
  internal::HmacCtxPtr ctx(HMAC_CTX_new());
  if (ctx == nullptr) return absl::InternalError("HMAC_CTX_new failed");
  // HMAC_Init_ex treats a null key as "reuse the previous key", so an empty key gets a valid
  // pointer to zero bytes.
  static constexpr uint8_t kEmpty[1] = {0};
  const uint8_t* key_data = key.empty() ? kEmpty : key.span().data();
  if (HMAC_Init_ex(ctx.get(), key_data, key.size(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("HMAC_Init_ex failed");
  }
  return HmacSha256(std::move(ctx));
}

absl::StatusOr<Sha256Digest> HmacSha256::Compute(const SecretBytes& key,
                                                 absl::Span<const uint8_t> data) {
  ASSIGN_OR_RETURN(HmacSha256 hmac, New(key));
  RETURN_IF_ERROR(hmac.Update(data));
  return hmac.Finish();
}

bool HmacSha256::Verify(const SecretBytes& key, absl::Span<const uint8_t> data,
                        absl::Span<const uint8_t> tag) {
  if (tag.size() < 16 || tag.size() > kSha256Size) return false;
  absl::StatusOr<Sha256Digest> expected = Compute(key, data);
  if (!expected.ok()) return false;
  return ConstantTimeEquals(absl::MakeConstSpan(expected->data(), tag.size()), tag);
}

absl::Status HmacSha256::Update(absl::Span<const uint8_t> data) {
  if (data.empty()) return absl::OkStatus();
  if (HMAC_Update(ctx_.get(), data.data(), data.size()) != 1) {
    return absl::InternalError("HMAC_Update failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<Sha256Digest> HmacSha256::Finish() {
  Sha256Digest digest;
  unsigned int length = 0;
  if (HMAC_Final(ctx_.get(), digest.data(), &length) != 1 || length != digest.size()) {
    return absl::InternalError("HMAC_Final failed");
  }
  if (HMAC_Init_ex(ctx_.get(), nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("HMAC_Init_ex (reset) failed");
  }
  return digest;
}

}  // namespace edgelink::crypto
