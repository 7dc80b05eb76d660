// Known-answer and misuse tests for common/crypto. Built and run once per backend
// (crypto_test_boringssl, crypto_test_openssl) from this one source.
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/crypto/aead.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/hmac.h"
#include "common/crypto/nonce_ledger.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/crypto/test_vectors.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::crypto {
namespace {

// Known-answer tests seal the published vectors, some of which share a key and IV (GCM test cases
// 1 and 2), and seal one vector several ways: repeats on purpose, so outside the nonce ledger.
const NonceLedgerExemption kKnownAnswers;

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::Each;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<uint8_t> Bytes(const testing::HexOrRepeat& value) {
  std::string bytes = absl::HexStringToBytes(value.hex);
  if (value.repeat > 0) bytes = std::string(value.repeat, bytes.at(0));
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<uint8_t> Bytes(const char* hex) { return Bytes(testing::HexOrRepeat{hex}); }

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

SecretBytes Secret(const std::vector<uint8_t>& bytes) { return SecretBytes::CopyFrom(bytes); }

// --- SecretBytes, ConstantTimeEquals, RandomBytes ---

TEST(SecretBytesTest, NeverPrintsItsBytes) {
  SecretBytes secret = Secret(Bytes("41424344"));  // "ABCD"
  std::ostringstream os;
  os << secret;
  EXPECT_EQ(os.str(), "<secret 4 bytes>");
  EXPECT_EQ(::testing::PrintToString(secret), "<secret 4 bytes>");
}

TEST(SecretBytesTest, MoveLeavesSourceEmptyAndCloneCopies) {
  SecretBytes a = Secret(Bytes("00112233"));
  SecretBytes b = a.Clone();
  SecretBytes c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented state.
  EXPECT_EQ(Hex(c.span()), "00112233");
  EXPECT_TRUE(ConstantTimeEquals(b.span(), c.span()));
  b = SecretBytes(2);
  EXPECT_EQ(Hex(b.span()), "0000");
}

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals(Bytes("0102"), Bytes("0102")));
  EXPECT_FALSE(ConstantTimeEquals(Bytes("0102"), Bytes("0103")));
  EXPECT_FALSE(ConstantTimeEquals(Bytes("0102"), Bytes("010200")));
  EXPECT_TRUE(ConstantTimeEquals({}, {}));
}

TEST(RandomTest, DrawsDifferAndAreNotAllZero) {
  std::set<std::string> draws;
  for (int i = 0; i < 16; ++i) {
    ASSERT_OK_AND_ASSIGN(SecretBytes key, RandomSecret(16));
    ASSERT_EQ(key.size(), 16u);
    draws.insert(Hex(key.span()));
  }
  EXPECT_EQ(draws.size(), 16u);
  EXPECT_EQ(draws.count(std::string(32, '0')), 0u);
  EXPECT_THAT(RandomBytes({}), IsOk());
}

// --- HMAC-SHA256: RFC 4231 ---

TEST(HmacSha256Test, MatchesRfc4231) {
  for (const testing::HmacVector& v : testing::kRfc4231) {
    SCOPED_TRACE(v.name);
    ASSERT_OK_AND_ASSIGN(Sha256Digest mac, HmacSha256::Compute(Secret(Bytes(v.key)), Bytes(v.data)));
    const std::string expected = v.mac;
    // Case 5 publishes a truncated MAC; compare that many bytes.
    EXPECT_EQ(Hex(mac).substr(0, expected.size()), expected);
    EXPECT_TRUE(HmacSha256::Verify(Secret(Bytes(v.key)), Bytes(v.data), Bytes(v.mac)));
  }
}

TEST(HmacSha256Test, IncrementalEqualsOneShotAndResetsAfterFinish) {
  const testing::HmacVector& v = testing::kRfc4231[6];
  std::vector<uint8_t> data = Bytes(v.data);
  ASSERT_OK_AND_ASSIGN(HmacSha256 hmac, HmacSha256::New(Secret(Bytes(v.key))));
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < data.size(); i += 7) {
      ASSERT_THAT(hmac.Update(absl::MakeConstSpan(data).subspan(i, 7)), IsOk());
    }
    ASSERT_OK_AND_ASSIGN(Sha256Digest mac, hmac.Finish());
    EXPECT_EQ(Hex(mac), v.mac) << "round " << round;
  }
}

TEST(HmacSha256Test, VerifyRejectsWrongTagsAndShortTruncations) {
  const testing::HmacVector& v = testing::kRfc4231[0];
  SecretBytes key = Secret(Bytes(v.key));
  std::vector<uint8_t> tag = Bytes(v.mac);
  tag[31] ^= 1;
  EXPECT_FALSE(HmacSha256::Verify(key, Bytes(v.data), tag));
  tag[31] ^= 1;
  EXPECT_FALSE(HmacSha256::Verify(key, Bytes(v.data), absl::MakeConstSpan(tag).first(15)));
  EXPECT_TRUE(HmacSha256::Verify(key, Bytes(v.data), absl::MakeConstSpan(tag).first(16)));
  EXPECT_FALSE(HmacSha256::Verify(key, Bytes("00"), tag));
}

TEST(HmacSha256Test, EmptyKeyIsValid) {
  // HMAC-SHA256("", "") is a well-known value.
  ASSERT_OK_AND_ASSIGN(Sha256Digest mac, HmacSha256::Compute(SecretBytes(), {}));
  EXPECT_EQ(Hex(mac), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// --- HKDF-SHA256: RFC 5869 ---

TEST(HkdfSha256Test, MatchesRfc5869) {
  for (const testing::HkdfVector& v : testing::kRfc5869) {
    SCOPED_TRACE(v.name);
    ASSERT_OK_AND_ASSIGN(SecretBytes prk, HkdfSha256Extract(Bytes(v.salt), Secret(Bytes(v.ikm))));
    EXPECT_EQ(Hex(prk.span()), v.prk);
    ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfSha256Expand(prk, Bytes(v.info), v.length));
    EXPECT_EQ(Hex(okm.span()), v.okm);
    ASSERT_OK_AND_ASSIGN(SecretBytes one_shot,
                         HkdfSha256(Secret(Bytes(v.ikm)), Bytes(v.salt), Bytes(v.info), v.length));
    EXPECT_EQ(Hex(one_shot.span()), v.okm);
  }
}

TEST(HkdfSha256Test, ShorterOutputIsPrefixOfLonger) {
  const testing::HkdfVector& v = testing::kRfc5869[1];
  SecretBytes prk = Secret(Bytes(v.prk));
  for (size_t length : {1, 31, 32, 33, 64}) {
    ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfSha256Expand(prk, Bytes(v.info), length));
    EXPECT_EQ(Hex(okm.span()), std::string(v.okm).substr(0, 2 * length));
  }
}

TEST(HkdfSha256Test, RefusesBadLengthsAndShortPrk) {
  SecretBytes prk(32);
  EXPECT_THAT(HkdfSha256Expand(prk, {}, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256Expand(prk, {}, kHkdfSha256MaxOutput), IsOk());
  EXPECT_THAT(HkdfSha256Expand(prk, {}, kHkdfSha256MaxOutput + 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("length")));
  EXPECT_THAT(HkdfSha256Expand(SecretBytes(31), {}, 16),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PRK")));
}

// --- AES-128-GCM: the GCM specification's AES-128 vectors ---

TEST(AeadTest, MatchesGcmSpecificationVectors) {
  for (const testing::GcmVector& v : testing::kGcmSpec) {
    SCOPED_TRACE(v.name);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(Secret(Bytes(v.key))));
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> sealed,
                         aead->Seal(Bytes(v.iv), Bytes(v.aad), Bytes(v.plaintext)));
    EXPECT_EQ(Hex(sealed), std::string(v.ciphertext) + v.tag);
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> opened, aead->Open(Bytes(v.iv), Bytes(v.aad), sealed));
    EXPECT_EQ(Hex(opened), v.plaintext);
  }
}

TEST(AeadTest, RefusesNonTwelveByteNoncesOfSpecCases5And6) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(Secret(Bytes(testing::kGcmKey3))));
  for (const char* iv : testing::kGcmUnsupportedIvs) {
    EXPECT_THAT(aead->Seal(Bytes(iv), {}, Bytes("00")),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nonce")));
    EXPECT_THAT(aead->Open(Bytes(iv), {}, std::vector<uint8_t>(32)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nonce")));
  }
}

TEST(AeadTest, RefusesWrongKeyLengths) {
  for (size_t size : {0, 15, 17, 24, 32}) {
    EXPECT_THAT(Aead::New(SecretBytes(size)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 bytes")))
        << size;
  }
}

TEST(AeadTest, RefusesCiphertextShorterThanTag) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(SecretBytes(16)));
  const std::vector<uint8_t> nonce(12);
  for (size_t size : {0, 1, 15}) {
    EXPECT_THAT(aead->Open(nonce, {}, std::vector<uint8_t>(size)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tag")));
  }
}

TEST(AeadTest, RefusesTooSmallOutputBuffers) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(SecretBytes(16)));
  const std::vector<uint8_t> nonce(12), plaintext(10);
  std::vector<uint8_t> out(25);
  EXPECT_THAT(aead->Seal(nonce, {}, plaintext, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  out.resize(26);
  ASSERT_OK_AND_ASSIGN(size_t sealed, aead->Seal(nonce, {}, plaintext, absl::MakeSpan(out)));
  std::vector<uint8_t> small(9);
  EXPECT_THAT(aead->Open(nonce, {}, absl::MakeConstSpan(out).first(sealed), absl::MakeSpan(small)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AeadTest, SealsAndOpensInPlace) {
  const testing::GcmVector& v = testing::kGcmSpec[3];
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(Secret(Bytes(v.key))));
  std::vector<uint8_t> buffer = Bytes(v.plaintext);
  const size_t plaintext_size = buffer.size();
  buffer.resize(plaintext_size + Aead::kTagSize);
  ASSERT_OK_AND_ASSIGN(size_t sealed,
                       aead->Seal(Bytes(v.iv), Bytes(v.aad),
                                  absl::MakeConstSpan(buffer).first(plaintext_size),
                                  absl::MakeSpan(buffer)));
  EXPECT_EQ(Hex(absl::MakeConstSpan(buffer).first(sealed)), std::string(v.ciphertext) + v.tag);
  ASSERT_OK_AND_ASSIGN(size_t opened, aead->Open(Bytes(v.iv), Bytes(v.aad),
                                                 absl::MakeConstSpan(buffer).first(sealed),
                                                 absl::MakeSpan(buffer)));
  EXPECT_EQ(Hex(absl::MakeConstSpan(buffer).first(opened)), v.plaintext);
}

// Every single-bit change to what a receiver sees (ciphertext, tag, nonce, associated data) must
// fail to open, and must not leave plaintext behind in the output buffer.
TEST(AeadTest, EveryFlippedBitFailsToOpen) {
  const testing::GcmVector& v = testing::kGcmSpec[3];
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(Secret(Bytes(v.key))));
  std::vector<uint8_t> nonce = Bytes(v.iv), aad = Bytes(v.aad);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> sealed, aead->Seal(nonce, aad, Bytes(v.plaintext)));
  std::vector<uint8_t> out(sealed.size());

  auto expect_rejected = [&](const std::string& what, size_t bit) {
    std::fill(out.begin(), out.end(), 0xA5);
    EXPECT_THAT(aead->Open(nonce, aad, sealed, absl::MakeSpan(out)),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << what << " bit " << bit;
    EXPECT_THAT(absl::MakeConstSpan(out).first(sealed.size() - Aead::kTagSize), Each(Eq(0)))
        << what << " bit " << bit << ": unauthenticated plaintext released";
  };
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    sealed[bit / 8] ^= 1 << (bit % 8);
    expect_rejected(bit < (sealed.size() - Aead::kTagSize) * 8 ? "ciphertext" : "tag", bit);
    sealed[bit / 8] ^= 1 << (bit % 8);
  }
  for (size_t bit = 0; bit < nonce.size() * 8; ++bit) {
    nonce[bit / 8] ^= 1 << (bit % 8);
    expect_rejected("nonce", bit);
    nonce[bit / 8] ^= 1 << (bit % 8);
  }
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    aad[bit / 8] ^= 1 << (bit % 8);
    expect_rejected("aad", bit);
    aad[bit / 8] ^= 1 << (bit % 8);
  }
  // Truncation and extension fail too; the untouched record still opens afterwards.
  EXPECT_THAT(aead->Open(nonce, aad, absl::MakeConstSpan(sealed).first(sealed.size() - 1)),
              Not(IsOk()));
  std::vector<uint8_t> extended = sealed;
  extended.push_back(0);
  EXPECT_THAT(aead->Open(nonce, aad, extended), Not(IsOk()));
  EXPECT_THAT(aead->Open(nonce, aad, sealed), IsOk());
}

TEST(AeadTest, SetKeySwitchesKeysInPlace) {
  const testing::GcmVector& v2 = testing::kGcmSpec[1];
  const testing::GcmVector& v3 = testing::kGcmSpec[2];
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> aead, Aead::New(Secret(Bytes(v2.key))));
  ASSERT_THAT(aead->SetKey(Bytes(v3.key)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> sealed, aead->Seal(Bytes(v3.iv), {}, Bytes(v3.plaintext)));
  EXPECT_EQ(Hex(sealed), std::string(v3.ciphertext) + v3.tag);
  ASSERT_THAT(aead->SetKey(Bytes(v2.key)), IsOk());
  EXPECT_THAT(aead->Open(Bytes(v3.iv), {}, sealed), StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_OK_AND_ASSIGN(sealed, aead->Seal(Bytes(v2.iv), {}, Bytes(v2.plaintext)));
  EXPECT_EQ(Hex(sealed), std::string(v2.ciphertext) + v2.tag);
  EXPECT_THAT(aead->SetKey(Bytes("00")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SecretArrayTest, HoldsFixedBytesAndNeverPrints) {
  SecretArray<4> a = SecretArray<4>::CopyFrom(Bytes("01020304"));
  EXPECT_EQ(Hex(a.span()), "01020304");
  EXPECT_EQ(::testing::PrintToString(a), "<secret 4 bytes>");
  SecretArray<4> b = std::move(a);
  EXPECT_EQ(Hex(b.span()), "01020304");
  EXPECT_EQ(Hex(a.span()), "00000000");  // NOLINT(bugprone-use-after-move): wiped by design.
  EXPECT_EQ(Hex(SecretArray<4>::CopyFrom(Bytes("0102")).span()), "00000000");
}

TEST(AeadTest, WrongKeyFailsToOpen) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> a, Aead::New(Secret(Bytes("00000000000000000000000000000001"))));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aead> b, Aead::New(Secret(Bytes("00000000000000000000000000000002"))));
  const std::vector<uint8_t> nonce(12);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> sealed, a->Seal(nonce, {}, Bytes("68656c6c6f")));
  EXPECT_THAT(b->Open(nonce, {}, sealed), StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace edgelink::crypto
