#include "common/wire/attach_crypto.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/crypto/aead.h"
#include "common/crypto/nonce_ledger.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "common/wire/packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAreArray;

using Bytes = std::vector<uint8_t>;

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// `size` bytes counting up from `first`.
crypto::SecretBytes Secret(size_t size, uint8_t first = 0) {
  crypto::SecretBytes secret(size);
  for (size_t i = 0; i < size; ++i) secret.mutable_span()[i] = static_cast<uint8_t>(first + i);
  return secret;
}

Nonce NonceOf(uint8_t value) {
  Nonce nonce;
  nonce.fill(value);
  return nonce;
}

std::unique_ptr<crypto::Aead> ScratchAead() {
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead = crypto::Aead::New(crypto::SecretBytes(16));
  if (!aead.ok()) abort();
  return *std::move(aead);
}

// The key bytes of one derivation, for comparing derivations.
std::string Fingerprint(const AttachKeys& keys) {
  return Hex(keys.proof_key.span()) + "/" + Hex(keys.prk.span());
}

std::string Fingerprint(const SessionKeys& keys) {
  return Hex(keys.device_to_server.key.span()) + "/" + Hex(keys.device_to_server.iv) + "/" +
         Hex(keys.server_to_device.key.span()) + "/" + Hex(keys.server_to_device.iv);
}

// The fixture's session nonce, and the one the known-answer test uses.
constexpr uint8_t kSessionNonceByte = 0x33;
// The fixture's per-boot nonce.
constexpr uint8_t kBootNonceByte = 0x44;

class AttachCryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(keys_, DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
    session_ = DeriveSessionKeys(keys_, SessionNonce());
    ASSERT_OK_AND_ASSIGN(server_, DeriveServerSecrets(Secret(32, 0x80), NonceOf(kBootNonceByte)));
  }

  static Nonce SessionNonce() { return NonceOf(kSessionNonceByte); }

  Proof SignedProof() const {
    Proof proof;
    proof.device_id = "cam-1";
    proof.device_nonce = NonceOf(0x11);
    proof.server_nonce = NonceOf(0x22);
    proof.timestamp_ms = 1'700'000'000'123;
    proof.cookie = ComputeCookie(server_, Source(), proof.device_id, proof.device_nonce,
                                 proof.server_nonce, proof.timestamp_ms);
    proof.proof = ComputeProof(keys_, proof);
    return proof;
  }

  static net::Endpoint Source() { return net::Endpoint::Ipv4({198, 51, 100, 23}, 40001); }

  AttachKeys keys_;
  SessionKeys session_;
  ServerSecrets server_;
  std::unique_ptr<crypto::Aead> aead_ = ScratchAead();
};

// --- DeriveAttachKeys ---

// Pins the key schedule. The expected values were computed independently of this code with the
// OpenSSL 3 CLI (3.0), HKDF-SHA256 with IKM = 00..1f and salt = "edgelink/1 attach" || 16 x 0x11 ||
// 16 x 0x22. The PRK (HKDF-Extract):
//   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY
//     -kdfopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//     -kdfopt hexsalt:656467656c696e6b2f3120617474616368
//                     1111111111111111111111111111111122222222222222222222222222222222 HKDF
// The direction keys, for the session nonce 16 x 0x33 (info = label || session nonce):
//   openssl kdf -keylen 16 -kdfopt digest:SHA256
//     -kdfopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//     -kdfopt hexsalt:656467656c696e6b2f3120617474616368
//                     1111111111111111111111111111111122222222222222222222222222222222
//     -kdfopt hexinfo:$(printf 'device to server key' | xxd -p)33333333333333333333333333333333
//     HKDF
// (each command on one line, salt hex joined), and likewise with info "device to server iv"
// (-keylen 12), "server to device key", "server to device iv" (-keylen 12), each followed by
// 16 x 0x33, and "proof" alone (-keylen 32, no session nonce). The same values come out of
// `-kdfopt mode:EXPAND_ONLY -kdfopt hexkey:<the PRK>` with the same info.
TEST(DeriveAttachKeysTest, MatchesKnownAnswerFromOpensslCli) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
  EXPECT_EQ(Hex(keys.proof_key.span()),
            "bb96ef0952c90bd10cfe8f376d37441bccc66456aa70f16a544904236ab36a70");
  EXPECT_EQ(Hex(keys.prk.span()),
            "91a060b4a88b5010fa374dc8581ea3fb18c93ed22cb4fdf45cb11737e4ff227b");

  const SessionKeys session = DeriveSessionKeys(keys, NonceOf(kSessionNonceByte));
  const std::string device_to_server_key = Hex(session.device_to_server.key.span());
  std::cout << "device_to_server key: " << device_to_server_key << std::endl;
  EXPECT_EQ(device_to_server_key, "297730991eeef0eabf58fa3768a1b06a");
  EXPECT_EQ(Hex(session.device_to_server.iv), "f4f60559106f675a607d53e8");
  EXPECT_EQ(Hex(session.server_to_device.key.span()), "031a59abb46716edaac28dd9cc732741");
  EXPECT_EQ(Hex(session.server_to_device.iv), "db325b83b7bc9f67468d53c0");
}

TEST(DeriveAttachKeysTest, IsDeterministic) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys a, DeriveAttachKeys(Secret(32), NonceOf(1), NonceOf(2)));
  ASSERT_OK_AND_ASSIGN(const AttachKeys b, DeriveAttachKeys(Secret(32), NonceOf(1), NonceOf(2)));
  EXPECT_EQ(Fingerprint(a), Fingerprint(b));
  EXPECT_EQ(Fingerprint(DeriveSessionKeys(a, NonceOf(3))),
            Fingerprint(DeriveSessionKeys(b, NonceOf(3))));
}

TEST(DeriveAttachKeysTest, EveryInputChangesEveryKey) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys base, DeriveAttachKeys(Secret(32), NonceOf(1), NonceOf(2)));
  Nonce one_bit = NonceOf(1);
  one_bit[15] ^= 0x01;
  ASSERT_OK_AND_ASSIGN(const AttachKeys other_secret,
                       DeriveAttachKeys(Secret(32, 1), NonceOf(1), NonceOf(2)));
  ASSERT_OK_AND_ASSIGN(const AttachKeys longer_secret,
                       DeriveAttachKeys(Secret(33), NonceOf(1), NonceOf(2)));
  ASSERT_OK_AND_ASSIGN(const AttachKeys other_device_nonce,
                       DeriveAttachKeys(Secret(32), one_bit, NonceOf(2)));
  ASSERT_OK_AND_ASSIGN(const AttachKeys other_server_nonce,
                       DeriveAttachKeys(Secret(32), NonceOf(1), one_bit));
  // Swapping the nonces must matter too: the salt orders them.
  ASSERT_OK_AND_ASSIGN(const AttachKeys swapped,
                       DeriveAttachKeys(Secret(32), NonceOf(2), NonceOf(1)));
  // With one session nonce, the session keys still follow every attach input.
  const SessionKeys base_session = DeriveSessionKeys(base, NonceOf(3));
  for (const AttachKeys* other :
       {&other_secret, &longer_secret, &other_device_nonce, &other_server_nonce, &swapped}) {
    EXPECT_NE(Hex(other->proof_key.span()), Hex(base.proof_key.span()));
    EXPECT_NE(Hex(other->prk.span()), Hex(base.prk.span()));
    const SessionKeys session = DeriveSessionKeys(*other, NonceOf(3));
    EXPECT_NE(Hex(session.device_to_server.key.span()),
              Hex(base_session.device_to_server.key.span()));
    EXPECT_NE(Hex(session.device_to_server.iv), Hex(base_session.device_to_server.iv));
    EXPECT_NE(Hex(session.server_to_device.key.span()),
              Hex(base_session.server_to_device.key.span()));
    EXPECT_NE(Hex(session.server_to_device.iv), Hex(base_session.server_to_device.iv));
  }
}

TEST(DeriveAttachKeysTest, DirectionKeysDifferFromEachOther) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(16), NonceOf(1), NonceOf(2)));
  const SessionKeys session = DeriveSessionKeys(keys, NonceOf(3));
  EXPECT_NE(Hex(session.device_to_server.key.span()), Hex(session.server_to_device.key.span()));
  EXPECT_NE(Hex(session.device_to_server.iv), Hex(session.server_to_device.iv));
  // No derived key is all zeros (i.e. left unfilled).
  EXPECT_NE(Hex(session.device_to_server.key.span()), std::string(32, '0'));
  EXPECT_NE(Hex(session.server_to_device.key.span()), std::string(32, '0'));
  EXPECT_NE(Hex(session.device_to_server.iv), std::string(24, '0'));
  EXPECT_NE(Hex(session.server_to_device.iv), std::string(24, '0'));
  EXPECT_NE(Hex(keys.proof_key.span()), std::string(64, '0'));
  EXPECT_NE(Hex(keys.prk.span()), std::string(64, '0'));
  // The PRK is not itself the proof key.
  EXPECT_NE(Hex(keys.prk.span()), Hex(keys.proof_key.span()));
}

// A PROOF accepted twice (a replay, or a basestation that restarted) gets a fresh session nonce
// each time, and so fresh keys and IVs in both directions.
TEST(DeriveSessionKeysTest, EverySessionNonceGivesOtherDirectionKeys) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
  const SessionKeys base = DeriveSessionKeys(keys, NonceOf(0x33));
  std::vector<Nonce> others = {NonceOf(0x00), NonceOf(0x34), NonceOf(0xff)};
  for (size_t byte : {size_t{0}, size_t{15}}) {
    for (uint8_t mask : {0x01, 0x80}) {
      Nonce one_bit = NonceOf(0x33);
      one_bit[byte] ^= mask;
      others.push_back(one_bit);
    }
  }
  std::set<std::string> fingerprints = {Fingerprint(base)};
  for (const Nonce& nonce : others) {
    const SessionKeys other = DeriveSessionKeys(keys, nonce);
    EXPECT_NE(Hex(other.device_to_server.key.span()), Hex(base.device_to_server.key.span()))
        << Hex(nonce);
    EXPECT_NE(Hex(other.device_to_server.iv), Hex(base.device_to_server.iv)) << Hex(nonce);
    EXPECT_NE(Hex(other.server_to_device.key.span()), Hex(base.server_to_device.key.span()))
        << Hex(nonce);
    EXPECT_NE(Hex(other.server_to_device.iv), Hex(base.server_to_device.iv)) << Hex(nonce);
    fingerprints.insert(Fingerprint(other));
  }
  EXPECT_EQ(fingerprints.size(), others.size() + 1);
  // The same session nonce gives the same keys (both sides must agree).
  EXPECT_EQ(Fingerprint(DeriveSessionKeys(keys, NonceOf(0x33))), Fingerprint(base));
}

TEST(DeriveSessionKeysTest, APacketSealedForOneSessionDoesNotOpenInAnother) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
  const SessionKeys first = DeriveSessionKeys(keys, NonceOf(0x01));
  const SessionKeys second = DeriveSessionKeys(keys, NonceOf(0x02));
  std::unique_ptr<crypto::Aead> aead = ScratchAead();
  const Header header{PacketType::kKeepAlive, 7, 0};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead, first.device_to_server, header, {}));
  EXPECT_THAT(OpenPacket(*aead, first.device_to_server, header, packet), IsOk());
  EXPECT_THAT(OpenPacket(*aead, second.device_to_server, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(DeriveAttachKeysTest, RejectsSecretShorterThan16Bytes) {
  for (size_t size : {0, 1, 15}) {
    EXPECT_THAT(DeriveAttachKeys(Secret(size), NonceOf(1), NonceOf(2)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << size;
  }
  EXPECT_THAT(DeriveAttachKeys(Secret(16), NonceOf(1), NonceOf(2)), IsOk());
}

TEST(DeriveAttachKeysTest, ErrorNeverContainsTheSecret) {
  // 15 bytes of 'A': if the secret leaked into the message it would be visible.
  crypto::SecretBytes secret(15);
  for (uint8_t& b : secret.mutable_span()) b = 'A';
  const absl::StatusOr<AttachKeys> keys = DeriveAttachKeys(secret, NonceOf(1), NonceOf(2));
  ASSERT_THAT(keys, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(std::string(keys.status().message()).find("AAAA"), std::string::npos);
}

// --- Proof ---

TEST_F(AttachCryptoTest, VerifyProofAcceptsTheRightProof) {
  const Proof proof = SignedProof();
  EXPECT_TRUE(VerifyProof(keys_, proof));
  // And it survives the wire.
  ASSERT_OK_AND_ASSIGN(const Proof parsed,
                       ParseProof(absl::MakeConstSpan(BuildProof(proof)).subspan(kHeaderSize)));
  EXPECT_TRUE(VerifyProof(keys_, parsed));
}

TEST_F(AttachCryptoTest, ComputeProofIsDeterministic) {
  const Proof proof = SignedProof();
  EXPECT_EQ(ComputeProof(keys_, proof), ComputeProof(keys_, proof));
  EXPECT_EQ(ComputeProof(keys_, proof), proof.proof);
}

TEST_F(AttachCryptoTest, VerifyProofRejectsEveryFlippedBit) {
  const Proof good = SignedProof();
  for (size_t bit = 0; bit < 8 * kProofSize; ++bit) {
    Proof bad = good;
    bad.proof[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_FALSE(VerifyProof(keys_, bad)) << "bit " << bit;
  }
}

TEST_F(AttachCryptoTest, VerifyProofRejectsAnyChangedField) {
  const Proof good = SignedProof();
  {
    Proof bad = good;
    bad.device_id = "cam-2";
    EXPECT_FALSE(VerifyProof(keys_, bad));
  }
  {
    Proof bad = good;
    bad.device_nonce[0] ^= 1;
    EXPECT_FALSE(VerifyProof(keys_, bad));
  }
  {
    Proof bad = good;
    bad.server_nonce[15] ^= 0x80;
    EXPECT_FALSE(VerifyProof(keys_, bad));
  }
  {
    Proof bad = good;
    bad.timestamp_ms += 1;
    EXPECT_FALSE(VerifyProof(keys_, bad));
  }
  {
    Proof bad = good;
    bad.cookie[7] ^= 0x04;
    EXPECT_FALSE(VerifyProof(keys_, bad));
  }
}

TEST_F(AttachCryptoTest, VerifyProofRejectsKeysFromAWrongSecret) {
  const Proof proof = SignedProof();
  ASSERT_OK_AND_ASSIGN(const AttachKeys wrong,
                       DeriveAttachKeys(Secret(32, 0x01), NonceOf(0x11), NonceOf(0x22)));
  EXPECT_FALSE(VerifyProof(wrong, proof));
}

TEST_F(AttachCryptoTest, VerifyProofRejectsAllZeroProof) {
  Proof proof = SignedProof();
  proof.proof.fill(0);
  EXPECT_FALSE(VerifyProof(keys_, proof));
}

// --- Server secrets, cookie, reset token ---

TEST(DeriveServerSecretsTest, RefusesKeyShorterThan32Bytes) {
  for (size_t size : {0, 16, 31}) {
    EXPECT_THAT(DeriveServerSecrets(Secret(size), NonceOf(1)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << size;
  }
  EXPECT_THAT(DeriveServerSecrets(Secret(32), NonceOf(1)), IsOk());
}

TEST(DeriveServerSecretsTest, CookieAndResetKeysDifferAndAreDeterministic) {
  ASSERT_OK_AND_ASSIGN(const ServerSecrets a, DeriveServerSecrets(Secret(32), NonceOf(1)));
  ASSERT_OK_AND_ASSIGN(const ServerSecrets b, DeriveServerSecrets(Secret(32), NonceOf(1)));
  EXPECT_NE(Hex(a.cookie_key.span()), Hex(a.reset_key.span()));
  EXPECT_EQ(Hex(a.cookie_key.span()), Hex(b.cookie_key.span()));
  EXPECT_EQ(Hex(a.reset_key.span()), Hex(b.reset_key.span()));
}

// Pins the server key schedule. Computed with the OpenSSL 3 CLI, HKDF-SHA256 with IKM = 80..9f and
// no salt (so HashLen zero bytes):
//   openssl kdf -keylen 32 -kdfopt digest:SHA256
//     -kdfopt hexkey:808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f
//     -kdfopt hexinfo:656467656c696e6b2f3120636f6f6b696544444444444444444444444444444444 HKDF
// (info = "edgelink/1 cookie" || the boot nonce 16 x 0x44), and with
//     -kdfopt hexinfo:656467656c696e6b2f31207265736574 ("edgelink/1 reset") for the reset key.
TEST(DeriveServerSecretsTest, MatchesKnownAnswerFromOpensslCli) {
  ASSERT_OK_AND_ASSIGN(const ServerSecrets secrets,
                       DeriveServerSecrets(Secret(32, 0x80), NonceOf(0x44)));
  EXPECT_EQ(Hex(secrets.cookie_key.span()),
            "4fea18cdd877e13aa652dfb137e6629eab01641d4de7fc2b5f6fe6405763da15");
  EXPECT_EQ(Hex(secrets.reset_key.span()),
            "410785051dd11e130f5c486150c6d2badf64cda57f32c043dd1bd6fd36940c23");
}

// A restart draws a new boot nonce: cookies (and so CHALLENGEs) from before it stop verifying,
// while RESET tokens handed out before it stay valid.
TEST(DeriveServerSecretsTest, BootNonceChangesTheCookieKeyButNotTheResetKey) {
  const net::Endpoint source = net::Endpoint::Ipv4({198, 51, 100, 23}, 40001);
  ASSERT_OK_AND_ASSIGN(const ServerSecrets before,
                       DeriveServerSecrets(Secret(32, 0x80), NonceOf(0x44)));
  Nonce one_bit = NonceOf(0x44);
  one_bit[7] ^= 0x10;
  for (const Nonce& boot_nonce : {NonceOf(0x45), NonceOf(0x00), one_bit}) {
    ASSERT_OK_AND_ASSIGN(const ServerSecrets after,
                         DeriveServerSecrets(Secret(32, 0x80), boot_nonce));
    EXPECT_NE(Hex(after.cookie_key.span()), Hex(before.cookie_key.span())) << Hex(boot_nonce);
    EXPECT_NE(ComputeCookie(after, source, "cam-1", NonceOf(1), NonceOf(2), 1000),
              ComputeCookie(before, source, "cam-1", NonceOf(1), NonceOf(2), 1000))
        << Hex(boot_nonce);
    EXPECT_EQ(Hex(after.reset_key.span()), Hex(before.reset_key.span())) << Hex(boot_nonce);
    for (uint64_t id : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
      EXPECT_EQ(ComputeResetToken(after, id), ComputeResetToken(before, id))
          << Hex(boot_nonce) << " id " << id;
    }
  }
}

TEST_F(AttachCryptoTest, CookieIsDeterministic) {
  const Cookie a = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  const Cookie b = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  EXPECT_EQ(a, b);
}

TEST_F(AttachCryptoTest, CookieBindsEveryInput) {
  const Cookie base = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  ASSERT_OK_AND_ASSIGN(const ServerSecrets other_server,
                       DeriveServerSecrets(Secret(32, 0x81), NonceOf(kBootNonceByte)));
  ASSERT_OK_AND_ASSIGN(const ServerSecrets other_boot,
                       DeriveServerSecrets(Secret(32, 0x80), NonceOf(kBootNonceByte + 1)));
  const net::Endpoint other_ip = net::Endpoint::Ipv4({198, 51, 100, 24}, Source().port());
  std::array<uint8_t, 16> v6{};
  v6[10] = 0xff;
  v6[11] = 0xff;
  v6[12] = 198;
  v6[13] = 51;
  v6[14] = 100;
  v6[15] = 23;
  const net::Endpoint mapped_v6 = net::Endpoint::Ipv6(v6, Source().port());

  std::set<Cookie> cookies = {base};
  const std::vector<std::pair<std::string, Cookie>> variants = {
      {"port", ComputeCookie(server_, Source().WithPort(40002), "cam-1", NonceOf(1), NonceOf(2),
                             1000)},
      {"ip", ComputeCookie(server_, other_ip, "cam-1", NonceOf(1), NonceOf(2), 1000)},
      {"ipv4-mapped ipv6",
       ComputeCookie(server_, mapped_v6, "cam-1", NonceOf(1), NonceOf(2), 1000)},
      {"device id", ComputeCookie(server_, Source(), "cam-2", NonceOf(1), NonceOf(2), 1000)},
      {"device nonce", ComputeCookie(server_, Source(), "cam-1", NonceOf(3), NonceOf(2), 1000)},
      {"server nonce", ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(3), 1000)},
      {"swapped nonces", ComputeCookie(server_, Source(), "cam-1", NonceOf(2), NonceOf(1), 1000)},
      {"timestamp", ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1001)},
      {"server key",
       ComputeCookie(other_server, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000)},
      {"boot nonce", ComputeCookie(other_boot, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000)},
  };
  for (const auto& [what, cookie] : variants) {
    EXPECT_NE(cookie, base) << "cookie does not bind the " << what;
    cookies.insert(cookie);
  }
  EXPECT_EQ(cookies.size(), variants.size() + 1);
}

TEST_F(AttachCryptoTest, ResetTokenIsDeterministicPerConnectionId) {
  EXPECT_EQ(ComputeResetToken(server_, 42), ComputeResetToken(server_, 42));
  // A restarted basestation with the same key computes the same token, though it drew another
  // boot nonce.
  ASSERT_OK_AND_ASSIGN(const ServerSecrets restarted,
                       DeriveServerSecrets(Secret(32, 0x80), NonceOf(kBootNonceByte + 1)));
  EXPECT_EQ(ComputeResetToken(restarted, 42), ComputeResetToken(server_, 42));
}

TEST_F(AttachCryptoTest, ResetTokensDifferAcrossIdsAndServerKeys) {
  std::set<ResetToken> tokens;
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{1} << 32, ~uint64_t{0}}) {
    tokens.insert(ComputeResetToken(server_, id));
  }
  EXPECT_EQ(tokens.size(), 5u);
  ASSERT_OK_AND_ASSIGN(const ServerSecrets other,
                       DeriveServerSecrets(Secret(32, 0x81), NonceOf(kBootNonceByte)));
  EXPECT_NE(ComputeResetToken(other, 42), ComputeResetToken(server_, 42));
}

TEST_F(AttachCryptoTest, ResetTokenDependsOnTheResetKeyOnly) {
  ServerSecrets other_cookie_key;
  other_cookie_key.cookie_key = server_.reset_key.Clone();
  other_cookie_key.reset_key = server_.reset_key.Clone();
  EXPECT_EQ(ComputeResetToken(other_cookie_key, 42), ComputeResetToken(server_, 42));
  ServerSecrets other_reset_key;
  other_reset_key.cookie_key = server_.cookie_key.Clone();
  other_reset_key.reset_key = server_.cookie_key.Clone();
  EXPECT_NE(ComputeResetToken(other_reset_key, 42), ComputeResetToken(server_, 42));
}

// --- Sealing ---

// ATTACHED carries the session nonce: header || session nonce || record, with header and nonce
// both associated data.
TEST_F(AttachCryptoTest, SealThenOpenRoundTrips) {
  Attached attached;
  attached.reflexive = Source();
  attached.keepalive_interval_ms = 25000;
  attached.reset_token = ComputeResetToken(server_, 7);
  const Bytes payload = EncodeAttached(attached);
  const Header header{PacketType::kAttached, 7, 0};
  ASSERT_TRUE(CarriesSessionNonce(header));
  const Nonce session_nonce = SessionNonce();
  ASSERT_OK_AND_ASSIGN(
      const Bytes packet,
      SealPacket(*aead_, session_.server_to_device, header, payload, session_nonce));
  EXPECT_EQ(packet.size(), kHeaderSize + kNonceSize + payload.size() + crypto::Aead::kTagSize);

  ASSERT_OK_AND_ASSIGN(const Header parsed_header, ParseHeader(packet));
  EXPECT_EQ(parsed_header.type, PacketType::kAttached);
  EXPECT_EQ(parsed_header.connection_id, 7u);
  // The session nonce follows the header in the clear; the plaintext does not appear.
  EXPECT_THAT(Bytes(packet.begin() + kHeaderSize, packet.begin() + kHeaderSize + kNonceSize),
              ElementsAreArray(session_nonce));
  EXPECT_EQ(std::search(packet.begin(), packet.end(), payload.begin(), payload.end()),
            packet.end());

  // As a device would: read the nonce, derive that session's keys, open.
  Nonce peeked{};
  ASSERT_TRUE(PeekSessionNonce(packet, &peeked));
  EXPECT_EQ(peeked, session_nonce);
  const SessionKeys device_side = DeriveSessionKeys(keys_, peeked);
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       OpenPacket(*aead_, device_side.server_to_device, parsed_header, packet));
  EXPECT_EQ(opened, payload);
  ASSERT_OK_AND_ASSIGN(const Attached parsed, ParseAttached(opened));
  EXPECT_EQ(parsed.reflexive, Source());
  EXPECT_EQ(parsed.reset_token, attached.reset_token);

  // Pin the construction with a plain Aead: the associated data is header || session nonce.
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<crypto::Aead> plain,
      crypto::Aead::New(crypto::SecretBytes::CopyFrom(session_.server_to_device.key.span())));
  ASSERT_OK_AND_ASSIGN(
      const Bytes plain_opened,
      plain->Open(session_.server_to_device.iv,
                  absl::MakeConstSpan(packet).first(kHeaderSize + kNonceSize),
                  absl::MakeConstSpan(packet).subspan(kHeaderSize + kNonceSize)));
  EXPECT_EQ(plain_opened, payload);
  // With the header alone as associated data it does not open.
  EXPECT_THAT(
      plain->Open(session_.server_to_device.iv, absl::MakeConstSpan(packet).first(kHeaderSize),
                  absl::MakeConstSpan(packet).subspan(kHeaderSize + kNonceSize)),
      StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(CarriesSessionNonceTest, AttachedAndHandshakeDetachOnly) {
  EXPECT_TRUE(CarriesSessionNonce({PacketType::kAttached, 0, 0}));
  EXPECT_TRUE(CarriesSessionNonce({PacketType::kAttached, 7, 0}));
  EXPECT_TRUE(CarriesSessionNonce({PacketType::kAttached, ~uint64_t{0}, 9}));
  EXPECT_TRUE(CarriesSessionNonce({PacketType::kDetach, 0, 0}));
  EXPECT_TRUE(CarriesSessionNonce({PacketType::kDetach, 0, 5}));
  EXPECT_FALSE(CarriesSessionNonce({PacketType::kDetach, 1, 0}));
  EXPECT_FALSE(CarriesSessionNonce({PacketType::kDetach, ~uint64_t{0}, 0}));
  for (PacketType type : {PacketType::kHello, PacketType::kChallenge, PacketType::kProof,
                          PacketType::kKeepAlive, PacketType::kKeepAliveAck, PacketType::kReset,
                          PacketType::kConnectRequest, PacketType::kConnectResponse,
                          PacketType::kDeviceRequest, PacketType::kDeviceResponse}) {
    EXPECT_FALSE(CarriesSessionNonce({type, 0, 0})) << static_cast<int>(type);
    EXPECT_FALSE(CarriesSessionNonce({type, 3, 0})) << static_cast<int>(type);
  }
}

// A DETACH refusing a PROOF (connection id 0) carries the session nonce too.
TEST_F(AttachCryptoTest, HandshakeDetachCarriesTheSessionNonce) {
  const Header header{PacketType::kDetach, 0, 0};
  ASSERT_TRUE(CarriesSessionNonce(header));
  const Bytes payload = EncodeDetach({DetachReason::kRevoked});
  const Nonce session_nonce = SessionNonce();
  ASSERT_OK_AND_ASSIGN(
      const Bytes packet,
      SealPacket(*aead_, session_.server_to_device, header, payload, session_nonce));
  EXPECT_EQ(packet.size(), kHeaderSize + kNonceSize + payload.size() + crypto::Aead::kTagSize);
  Nonce peeked{};
  ASSERT_TRUE(PeekSessionNonce(packet, &peeked));
  EXPECT_EQ(peeked, session_nonce);
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       OpenPacket(*aead_, session_.server_to_device, header, packet));
  EXPECT_EQ(opened, payload);
  // Read as a packet without the nonce (a DETACH on a live connection), it does not open.
  Header live = header;
  live.connection_id = 1;
  EXPECT_THAT(OpenPacket(*aead_, session_.server_to_device, live, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, FlippingAnyBitOfTheClearSessionNonceFails) {
  const Header header{PacketType::kAttached, 7, 0};
  Attached attached;
  attached.reflexive = Source();
  attached.keepalive_interval_ms = 25000;
  attached.reset_token = ComputeResetToken(server_, 7);
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.server_to_device, header,
                                  EncodeAttached(attached), SessionNonce()));
  for (size_t bit = 0; bit < 8 * kNonceSize; ++bit) {
    Bytes bad = packet;
    bad[kHeaderSize + bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    // With the right keys, the changed associated data fails the tag.
    EXPECT_THAT(OpenPacket(*aead_, session_.server_to_device, header, bad),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << "bit " << bit;
    // As a device would: keys derived from the changed nonce fail too.
    Nonce peeked{};
    ASSERT_TRUE(PeekSessionNonce(bad, &peeked));
    EXPECT_NE(peeked, SessionNonce());
    EXPECT_THAT(OpenPacket(*aead_, DeriveSessionKeys(keys_, peeked).server_to_device, header, bad),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << "bit " << bit;
  }
  // The untouched packet still opens after all those failures.
  EXPECT_THAT(OpenPacket(*aead_, session_.server_to_device, header, packet), IsOk());
}

TEST_F(AttachCryptoTest, PeekSessionNonceNeedsTheWholeNonce) {
  const Header header{PacketType::kAttached, 7, 0};
  ASSERT_OK_AND_ASSIGN(
      const Bytes packet,
      SealPacket(*aead_, session_.server_to_device, header, {}, NonceOf(0x5a)));
  for (size_t n = 0; n < kHeaderSize + kNonceSize; ++n) {
    Nonce nonce = NonceOf(0xee);
    EXPECT_FALSE(PeekSessionNonce(absl::MakeConstSpan(packet).first(n), &nonce)) << n;
    EXPECT_EQ(nonce, NonceOf(0xee)) << "written although too short: " << n;
  }
  Nonce nonce{};
  EXPECT_TRUE(PeekSessionNonce(absl::MakeConstSpan(packet).first(kHeaderSize + kNonceSize),
                               &nonce));
  EXPECT_EQ(nonce, NonceOf(0x5a));
  EXPECT_FALSE(PeekSessionNonce({}, &nonce));
}

TEST_F(AttachCryptoTest, EmptyPayloadRoundTrips) {
  // KEEPALIVE has no body: the record is the tag alone.
  const Header header{PacketType::kKeepAlive, 9, 3};
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.device_to_server, header, {}));
  EXPECT_EQ(packet.size(), kHeaderSize + crypto::Aead::kTagSize);
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       OpenPacket(*aead_, session_.device_to_server, header, packet));
  EXPECT_TRUE(opened.empty());
}

TEST_F(AttachCryptoTest, SealedHeaderIsWrittenInTheClear) {
  const Header header{PacketType::kDetach, 0x0102030405060708, 0x1112131415161718};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, session_.device_to_server, header,
                                                      EncodeDetach({DetachReason::kShutdown})));
  ByteWriter expected;
  WriteHeader(header, expected);
  EXPECT_THAT(Bytes(packet.begin(), packet.begin() + kHeaderSize),
              ElementsAreArray(expected.bytes()));
}

TEST_F(AttachCryptoTest, OpeningWithTheOtherDirectionsKeysFails) {
  const Header header{PacketType::kKeepAliveAck, 1, 0};
  const Bytes payload = EncodeKeepAliveAck({Source()});
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.server_to_device, header, payload));
  EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Same key with the other direction's IV must fail too: the IV is part of the nonce.
  DirectionKeys mixed;
  mixed.key = session_.server_to_device.key.Clone();
  mixed.iv = session_.device_to_server.iv;
  EXPECT_THAT(OpenPacket(*aead_, mixed, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, OpeningWithKeysFromAWrongSecretFails) {
  const Header header{PacketType::kKeepAlive, 1, 0};
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.device_to_server, header, {}));
  ASSERT_OK_AND_ASSIGN(const AttachKeys wrong,
                       DeriveAttachKeys(Secret(32, 1), NonceOf(0x11), NonceOf(0x22)));
  // Even with the right session nonce.
  EXPECT_THAT(OpenPacket(*aead_, DeriveSessionKeys(wrong, SessionNonce()).device_to_server, header,
                         packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, ModifyingAnyHeaderByteFails) {
  const Header header{PacketType::kDetach, 0x42, 17};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, session_.device_to_server, header,
                                                      EncodeDetach({DetachReason::kReplaced})));
  for (size_t i = 0; i < kHeaderSize; ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      Bytes bad = packet;
      bad[i] ^= mask;
      // As a receiver would: the header it parsed from the bytes, if they still parse.
      const absl::StatusOr<Header> parsed = ParseHeader(bad);
      const Header& used = parsed.ok() ? *parsed : header;
      EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, used, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "header byte " << i << " ^ " << int{mask};
      // And with the original header (only the associated data changed).
      EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, header, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "header byte " << i << " ^ " << int{mask};
    }
  }
}

TEST_F(AttachCryptoTest, ModifyingAnyCiphertextByteFails) {
  const Header header{PacketType::kKeepAliveAck, 0x42, 17};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, session_.server_to_device, header,
                                                      EncodeKeepAliveAck({Source()})));
  for (size_t i = kHeaderSize; i < packet.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      Bytes bad = packet;
      bad[i] ^= mask;
      EXPECT_THAT(OpenPacket(*aead_, session_.server_to_device, header, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "byte " << i << " ^ " << int{mask};
    }
  }
  // The scratch Aead still opens the untouched packet after all those failures.
  EXPECT_THAT(OpenPacket(*aead_, session_.server_to_device, header, packet), IsOk());
}

TEST_F(AttachCryptoTest, WrongPacketNumberInTheHeaderArgumentFails) {
  const Header header{PacketType::kKeepAlive, 1, 100};
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.device_to_server, header, {}));
  Header other = header;
  other.packet_number = 101;
  EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, other, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, TruncatedOrExtendedSealedPacketFails) {
  const Bytes payload = EncodeDetach({DetachReason::kShutdown});
  // A DETACH on a live connection, and one on connection 0 that carries the session nonce (under
  // another packet number: one key never seals twice under one nonce).
  for (const Header& header :
       {Header{PacketType::kDetach, 5, 5}, Header{PacketType::kDetach, 0, 6}}) {
    const bool carries_nonce = CarriesSessionNonce(header);
    const Bytes clear = carries_nonce ? Bytes(kNonceSize, kSessionNonceByte) : Bytes();
    ASSERT_OK_AND_ASSIGN(const Bytes packet,
                         SealPacket(*aead_, session_.device_to_server, header, payload, clear));
    const size_t shortest = kHeaderSize + clear.size() + crypto::Aead::kTagSize;
    for (size_t n = 0; n < packet.size(); ++n) {
      const absl::StatusOr<Bytes> opened = OpenPacket(*aead_, session_.device_to_server, header,
                                                      absl::MakeConstSpan(packet).first(n));
      if (n < shortest) {
        EXPECT_THAT(opened, StatusIs(absl::StatusCode::kInvalidArgument))
            << n << " nonce " << carries_nonce;
      } else {
        EXPECT_THAT(opened, StatusIs(absl::StatusCode::kUnauthenticated))
            << n << " nonce " << carries_nonce;
      }
    }
    Bytes longer = packet;
    longer.push_back(0);
    EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, header, longer),
                StatusIs(absl::StatusCode::kUnauthenticated));
    EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, header, packet), IsOk());
  }
}

TEST_F(AttachCryptoTest, PacketNumberChangesTheCiphertext) {
  const Bytes payload(32, 0xaa);
  std::set<Bytes> records;
  for (uint64_t pn : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{1} << 40, ~uint64_t{0}}) {
    ASSERT_OK_AND_ASSIGN(
        const Bytes packet,
        SealPacket(*aead_, session_.device_to_server, {PacketType::kKeepAlive, 1, pn}, payload));
    records.insert(Bytes(packet.begin() + kHeaderSize, packet.end()));
  }
  EXPECT_EQ(records.size(), 5u);
  // Same packet number, same everything: deterministic. Sealing twice under one (key, nonce) is
  // the point here, so the nonce ledger is told.
  crypto::NonceLedgerExemption exempt;
  ASSERT_OK_AND_ASSIGN(const Bytes a, SealPacket(*aead_, session_.device_to_server,
                                                 {PacketType::kKeepAlive, 1, 9}, payload));
  ASSERT_OK_AND_ASSIGN(const Bytes b, SealPacket(*aead_, session_.device_to_server,
                                                 {PacketType::kKeepAlive, 1, 9}, payload));
  EXPECT_EQ(a, b);
}

TEST_F(AttachCryptoTest, NonceIsIvXorBigEndianPacketNumber) {
  // Opens a sealed record with a plain Aead and a nonce built here, pinning the construction.
  const uint64_t pn = 0x0102030405060708;
  const Header header{PacketType::kKeepAliveAck, 3, pn};
  const Bytes payload = EncodeKeepAliveAck({Source()});
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, session_.server_to_device, header, payload));
  std::array<uint8_t, crypto::Aead::kNonceSize> nonce = session_.server_to_device.iv;
  for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<uint8_t>(pn >> (56 - 8 * i));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<crypto::Aead> plain,
      crypto::Aead::New(crypto::SecretBytes::CopyFrom(session_.server_to_device.key.span())));
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       plain->Open(nonce, absl::MakeConstSpan(packet).first(kHeaderSize),
                                   absl::MakeConstSpan(packet).subspan(kHeaderSize)));
  EXPECT_EQ(opened, payload);
}

TEST_F(AttachCryptoTest, OneScratchAeadServesManyKeys) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys other_attach,
                       DeriveAttachKeys(Secret(32, 0x40), NonceOf(0x33), NonceOf(0x44)));
  const SessionKeys other = DeriveSessionKeys(other_attach, NonceOf(0x55));
  const Bytes payload_a = EncodeDetach({DetachReason::kShutdown});
  const Bytes payload_b = EncodeKeepAliveAck({Source()});
  const Header header_a{PacketType::kDetach, 1, 4};
  const Header header_b{PacketType::kKeepAliveAck, 2, 4};

  // Interleave keys on one Aead.
  ASSERT_OK_AND_ASSIGN(const Bytes a, SealPacket(*aead_, session_.device_to_server, header_a,
                                                 payload_a));
  ASSERT_OK_AND_ASSIGN(const Bytes b, SealPacket(*aead_, other.server_to_device, header_b,
                                                 payload_b));
  ASSERT_OK_AND_ASSIGN(const Bytes opened_a,
                       OpenPacket(*aead_, session_.device_to_server, header_a, a));
  ASSERT_OK_AND_ASSIGN(const Bytes opened_b,
                       OpenPacket(*aead_, other.server_to_device, header_b, b));
  EXPECT_EQ(opened_a, payload_a);
  EXPECT_EQ(opened_b, payload_b);

  // Fresh Aeads produce the same bytes: the re-key left nothing behind. These seals repeat
  // (key, nonce) on purpose, so the nonce ledger is told.
  std::unique_ptr<crypto::Aead> fresh_a = ScratchAead();
  std::unique_ptr<crypto::Aead> fresh_b = ScratchAead();
  {
    crypto::NonceLedgerExemption exempt;
    ASSERT_OK_AND_ASSIGN(const Bytes a2, SealPacket(*fresh_a, session_.device_to_server, header_a,
                                                    payload_a));
    ASSERT_OK_AND_ASSIGN(const Bytes b2, SealPacket(*fresh_b, other.server_to_device, header_b,
                                                    payload_b));
    EXPECT_EQ(a, a2);
    EXPECT_EQ(b, b2);
  }

  // Cross-opening fails, and a failure does not disturb the next open.
  EXPECT_THAT(OpenPacket(*aead_, other.server_to_device, header_a, a),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(OpenPacket(*aead_, session_.device_to_server, header_a, a), IsOk());
}

// The determinism checks above need their NonceLedgerExemption: under --config=nonce_ledger a
// repeated (key, nonce) seal kills the process.
TEST_F(AttachCryptoTest, RepeatedSealAbortsUnderTheNonceLedger) {
  if (!crypto::NonceLedgerEnabled()) GTEST_SKIP() << "built without --config=nonce_ledger";
  const Header header{PacketType::kKeepAlive, 1, 77};
  EXPECT_DEATH(
      {
        static_cast<void>(SealPacket(*aead_, session_.device_to_server, header, {}));
        static_cast<void>(SealPacket(*aead_, session_.device_to_server, header, {}));
      },
      "nonce ledger: ");
  // Within an exemption the same two seals are allowed.
  crypto::NonceLedgerExemption exempt;
  EXPECT_THAT(SealPacket(*aead_, session_.device_to_server, header, {}), IsOk());
  EXPECT_THAT(SealPacket(*aead_, session_.device_to_server, header, {}), IsOk());
}

}  // namespace
}  // namespace edgelink::wire
