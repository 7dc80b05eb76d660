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
  return Hex(keys.proof_key.span()) + "/" + Hex(keys.device_to_server.key.span()) + "/" +
         Hex(keys.device_to_server.iv) + "/" + Hex(keys.server_to_device.key.span()) + "/" +
         Hex(keys.server_to_device.iv);
}

class AttachCryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(keys_, DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
    ASSERT_OK_AND_ASSIGN(server_, DeriveServerSecrets(Secret(32, 0x80)));
  }

  Proof SignedProof() const {
    Proof proof;
    proof.device_id = "cam-1";
    proof.device_nonce = NonceOf(0x11);
    proof.server_nonce = NonceOf(0x22);
    proof.timestamp_s = 1'700'000'000;
    proof.cookie = ComputeCookie(server_, Source(), proof.device_id, proof.device_nonce,
                                 proof.server_nonce, proof.timestamp_s);
    proof.proof = ComputeProof(keys_, proof);
    return proof;
  }

  static net::Endpoint Source() { return net::Endpoint::Ipv4({198, 51, 100, 23}, 40001); }

  AttachKeys keys_;
  ServerSecrets server_;
  std::unique_ptr<crypto::Aead> aead_ = ScratchAead();
};

// --- DeriveAttachKeys ---

// Pins the key schedule. The expected values were computed independently of this code with the
// OpenSSL 3 CLI, HKDF-SHA256 with IKM = 00..1f and salt = "edgelink/1 attach" || 16 x 0x11 ||
// 16 x 0x22:
//   openssl kdf -keylen 16 -kdfopt digest:SHA256
//     -kdfopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//     -kdfopt hexsalt:656467656c696e6b2f3120617474616368
//                     1111111111111111111111111111111122222222222222222222222222222222
//     -kdfopt hexinfo:$(printf 'device to server key' | xxd -p) HKDF
// (one line, salt hex joined), and likewise with info "device to server iv" (-keylen 12),
// "server to device key" and "proof" (-keylen 32).
TEST(DeriveAttachKeysTest, MatchesKnownAnswerFromOpensslCli) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(32), NonceOf(0x11), NonceOf(0x22)));
  const std::string device_to_server_key = Hex(keys.device_to_server.key.span());
  std::cout << "device_to_server key: " << device_to_server_key << std::endl;
  EXPECT_EQ(device_to_server_key, "eb0981c3fe0aa7a209ad95880d457720");
  EXPECT_EQ(Hex(keys.device_to_server.iv), "03437a9bf9b5f2b52ec30067");
  EXPECT_EQ(Hex(keys.server_to_device.key.span()), "dee36e7b496885e272973b06b52b78c8");
  EXPECT_EQ(Hex(keys.proof_key.span()),
            "bb96ef0952c90bd10cfe8f376d37441bccc66456aa70f16a544904236ab36a70");
}

TEST(DeriveAttachKeysTest, IsDeterministic) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys a, DeriveAttachKeys(Secret(32), NonceOf(1), NonceOf(2)));
  ASSERT_OK_AND_ASSIGN(const AttachKeys b, DeriveAttachKeys(Secret(32), NonceOf(1), NonceOf(2)));
  EXPECT_EQ(Fingerprint(a), Fingerprint(b));
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
  for (const AttachKeys* other :
       {&other_secret, &longer_secret, &other_device_nonce, &other_server_nonce, &swapped}) {
    EXPECT_NE(Hex(other->proof_key.span()), Hex(base.proof_key.span()));
    EXPECT_NE(Hex(other->device_to_server.key.span()), Hex(base.device_to_server.key.span()));
    EXPECT_NE(Hex(other->device_to_server.iv), Hex(base.device_to_server.iv));
    EXPECT_NE(Hex(other->server_to_device.key.span()), Hex(base.server_to_device.key.span()));
    EXPECT_NE(Hex(other->server_to_device.iv), Hex(base.server_to_device.iv));
  }
}

TEST(DeriveAttachKeysTest, DirectionKeysDifferFromEachOther) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys keys,
                       DeriveAttachKeys(Secret(16), NonceOf(1), NonceOf(2)));
  EXPECT_NE(Hex(keys.device_to_server.key.span()), Hex(keys.server_to_device.key.span()));
  EXPECT_NE(Hex(keys.device_to_server.iv), Hex(keys.server_to_device.iv));
  // No derived key is all zeros (i.e. left unfilled).
  EXPECT_NE(Hex(keys.device_to_server.key.span()), std::string(32, '0'));
  EXPECT_NE(Hex(keys.server_to_device.key.span()), std::string(32, '0'));
  EXPECT_NE(Hex(keys.proof_key.span()), std::string(64, '0'));
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
    bad.timestamp_s += 1;
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
    EXPECT_THAT(DeriveServerSecrets(Secret(size)), StatusIs(absl::StatusCode::kInvalidArgument))
        << size;
  }
  EXPECT_THAT(DeriveServerSecrets(Secret(32)), IsOk());
}

TEST(DeriveServerSecretsTest, CookieAndResetKeysDifferAndAreDeterministic) {
  ASSERT_OK_AND_ASSIGN(const ServerSecrets a, DeriveServerSecrets(Secret(32)));
  ASSERT_OK_AND_ASSIGN(const ServerSecrets b, DeriveServerSecrets(Secret(32)));
  EXPECT_NE(Hex(a.cookie_key.span()), Hex(a.reset_key.span()));
  EXPECT_EQ(Hex(a.cookie_key.span()), Hex(b.cookie_key.span()));
  EXPECT_EQ(Hex(a.reset_key.span()), Hex(b.reset_key.span()));
}

TEST_F(AttachCryptoTest, CookieIsDeterministic) {
  const Cookie a = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  const Cookie b = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  EXPECT_EQ(a, b);
}

TEST_F(AttachCryptoTest, CookieBindsEveryInput) {
  const Cookie base = ComputeCookie(server_, Source(), "cam-1", NonceOf(1), NonceOf(2), 1000);
  ASSERT_OK_AND_ASSIGN(const ServerSecrets other_server, DeriveServerSecrets(Secret(32, 0x81)));
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
  };
  for (const auto& [what, cookie] : variants) {
    EXPECT_NE(cookie, base) << "cookie does not bind the " << what;
    cookies.insert(cookie);
  }
  EXPECT_EQ(cookies.size(), variants.size() + 1);
}

TEST_F(AttachCryptoTest, ResetTokenIsDeterministicPerConnectionId) {
  EXPECT_EQ(ComputeResetToken(server_, 42), ComputeResetToken(server_, 42));
  ASSERT_OK_AND_ASSIGN(const ServerSecrets restarted, DeriveServerSecrets(Secret(32, 0x80)));
  // A restarted basestation with the same key computes the same token.
  EXPECT_EQ(ComputeResetToken(restarted, 42), ComputeResetToken(server_, 42));
}

TEST_F(AttachCryptoTest, ResetTokensDifferAcrossIdsAndServerKeys) {
  std::set<ResetToken> tokens;
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{1} << 32, ~uint64_t{0}}) {
    tokens.insert(ComputeResetToken(server_, id));
  }
  EXPECT_EQ(tokens.size(), 5u);
  ASSERT_OK_AND_ASSIGN(const ServerSecrets other, DeriveServerSecrets(Secret(32, 0x81)));
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

TEST_F(AttachCryptoTest, SealThenOpenRoundTrips) {
  Attached attached;
  attached.reflexive = Source();
  attached.keepalive_interval_ms = 25000;
  attached.reset_token = ComputeResetToken(server_, 7);
  const Bytes payload = EncodeAttached(attached);
  const Header header{PacketType::kAttached, 7, 0};
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, keys_.server_to_device, header, payload));
  EXPECT_EQ(packet.size(), kHeaderSize + payload.size() + crypto::Aead::kTagSize);

  ASSERT_OK_AND_ASSIGN(const Header parsed_header, ParseHeader(packet));
  EXPECT_EQ(parsed_header.type, PacketType::kAttached);
  EXPECT_EQ(parsed_header.connection_id, 7u);
  // The plaintext does not appear in the clear.
  EXPECT_EQ(std::search(packet.begin(), packet.end(), payload.begin(), payload.end()),
            packet.end());

  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       OpenPacket(*aead_, keys_.server_to_device, parsed_header, packet));
  EXPECT_EQ(opened, payload);
  ASSERT_OK_AND_ASSIGN(const Attached parsed, ParseAttached(opened));
  EXPECT_EQ(parsed.reflexive, Source());
  EXPECT_EQ(parsed.reset_token, attached.reset_token);
}

TEST_F(AttachCryptoTest, EmptyPayloadRoundTrips) {
  // KEEPALIVE has no body: the record is the tag alone.
  const Header header{PacketType::kKeepAlive, 9, 3};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, keys_.device_to_server, header, {}));
  EXPECT_EQ(packet.size(), kHeaderSize + crypto::Aead::kTagSize);
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       OpenPacket(*aead_, keys_.device_to_server, header, packet));
  EXPECT_TRUE(opened.empty());
}

TEST_F(AttachCryptoTest, SealedHeaderIsWrittenInTheClear) {
  const Header header{PacketType::kDetach, 0x0102030405060708, 0x1112131415161718};
  ASSERT_OK_AND_ASSIGN(
      const Bytes packet,
      SealPacket(*aead_, keys_.device_to_server, header, EncodeDetach({DetachReason::kShutdown})));
  ByteWriter expected;
  WriteHeader(header, expected);
  EXPECT_THAT(Bytes(packet.begin(), packet.begin() + kHeaderSize),
              ElementsAreArray(expected.bytes()));
}

TEST_F(AttachCryptoTest, OpeningWithTheOtherDirectionsKeysFails) {
  const Header header{PacketType::kKeepAliveAck, 1, 0};
  const Bytes payload = EncodeKeepAliveAck({Source()});
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, keys_.server_to_device, header, payload));
  EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Same key with the other direction's IV must fail too: the IV is part of the nonce.
  DirectionKeys mixed;
  mixed.key = keys_.server_to_device.key.Clone();
  mixed.iv = keys_.device_to_server.iv;
  EXPECT_THAT(OpenPacket(*aead_, mixed, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, OpeningWithKeysFromAWrongSecretFails) {
  const Header header{PacketType::kKeepAlive, 1, 0};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, keys_.device_to_server, header, {}));
  ASSERT_OK_AND_ASSIGN(const AttachKeys wrong,
                       DeriveAttachKeys(Secret(32, 1), NonceOf(0x11), NonceOf(0x22)));
  EXPECT_THAT(OpenPacket(*aead_, wrong.device_to_server, header, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, ModifyingAnyHeaderByteFails) {
  const Header header{PacketType::kDetach, 0x42, 17};
  ASSERT_OK_AND_ASSIGN(
      const Bytes packet,
      SealPacket(*aead_, keys_.device_to_server, header, EncodeDetach({DetachReason::kReplaced})));
  for (size_t i = 0; i < kHeaderSize; ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      Bytes bad = packet;
      bad[i] ^= mask;
      // As a receiver would: the header it parsed from the bytes, if they still parse.
      const absl::StatusOr<Header> parsed = ParseHeader(bad);
      const Header& used = parsed.ok() ? *parsed : header;
      EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, used, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "header byte " << i << " ^ " << int{mask};
      // And with the original header (only the associated data changed).
      EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, header, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "header byte " << i << " ^ " << int{mask};
    }
  }
}

TEST_F(AttachCryptoTest, ModifyingAnyCiphertextByteFails) {
  const Header header{PacketType::kKeepAliveAck, 0x42, 17};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, keys_.server_to_device, header,
                                                      EncodeKeepAliveAck({Source()})));
  for (size_t i = kHeaderSize; i < packet.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      Bytes bad = packet;
      bad[i] ^= mask;
      EXPECT_THAT(OpenPacket(*aead_, keys_.server_to_device, header, bad),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "byte " << i << " ^ " << int{mask};
    }
  }
  // The scratch Aead still opens the untouched packet after all those failures.
  EXPECT_THAT(OpenPacket(*aead_, keys_.server_to_device, header, packet), IsOk());
}

TEST_F(AttachCryptoTest, WrongPacketNumberInTheHeaderArgumentFails) {
  const Header header{PacketType::kKeepAlive, 1, 100};
  ASSERT_OK_AND_ASSIGN(const Bytes packet, SealPacket(*aead_, keys_.device_to_server, header, {}));
  Header other = header;
  other.packet_number = 101;
  EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, other, packet),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, TruncatedOrExtendedSealedPacketFails) {
  const Bytes payload = EncodeDetach({DetachReason::kShutdown});
  const Header header{PacketType::kDetach, 5, 5};
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, keys_.device_to_server, header, payload));
  for (size_t n = 0; n < packet.size(); ++n) {
    const absl::StatusOr<Bytes> opened =
        OpenPacket(*aead_, keys_.device_to_server, header, absl::MakeConstSpan(packet).first(n));
    if (n < kHeaderSize + crypto::Aead::kTagSize) {
      EXPECT_THAT(opened, StatusIs(absl::StatusCode::kInvalidArgument)) << n;
    } else {
      EXPECT_THAT(opened, StatusIs(absl::StatusCode::kUnauthenticated)) << n;
    }
  }
  Bytes longer = packet;
  longer.push_back(0);
  EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, header, longer),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AttachCryptoTest, PacketNumberChangesTheCiphertext) {
  const Bytes payload(32, 0xaa);
  std::set<Bytes> records;
  for (uint64_t pn : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{1} << 40, ~uint64_t{0}}) {
    ASSERT_OK_AND_ASSIGN(
        const Bytes packet,
        SealPacket(*aead_, keys_.device_to_server, {PacketType::kKeepAlive, 1, pn}, payload));
    records.insert(Bytes(packet.begin() + kHeaderSize, packet.end()));
  }
  EXPECT_EQ(records.size(), 5u);
  // Same packet number, same everything: deterministic.
  ASSERT_OK_AND_ASSIGN(const Bytes a, SealPacket(*aead_, keys_.device_to_server,
                                                 {PacketType::kKeepAlive, 1, 9}, payload));
  ASSERT_OK_AND_ASSIGN(const Bytes b, SealPacket(*aead_, keys_.device_to_server,
                                                 {PacketType::kKeepAlive, 1, 9}, payload));
  EXPECT_EQ(a, b);
}

TEST_F(AttachCryptoTest, NonceIsIvXorBigEndianPacketNumber) {
  // Opens a sealed record with a plain Aead and a nonce built here, pinning the construction.
  const uint64_t pn = 0x0102030405060708;
  const Header header{PacketType::kKeepAliveAck, 3, pn};
  const Bytes payload = EncodeKeepAliveAck({Source()});
  ASSERT_OK_AND_ASSIGN(const Bytes packet,
                       SealPacket(*aead_, keys_.server_to_device, header, payload));
  std::array<uint8_t, crypto::Aead::kNonceSize> nonce = keys_.server_to_device.iv;
  for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<uint8_t>(pn >> (56 - 8 * i));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<crypto::Aead> plain,
      crypto::Aead::New(crypto::SecretBytes::CopyFrom(keys_.server_to_device.key.span())));
  ASSERT_OK_AND_ASSIGN(const Bytes opened,
                       plain->Open(nonce, absl::MakeConstSpan(packet).first(kHeaderSize),
                                   absl::MakeConstSpan(packet).subspan(kHeaderSize)));
  EXPECT_EQ(opened, payload);
}

TEST_F(AttachCryptoTest, OneScratchAeadServesManyKeys) {
  ASSERT_OK_AND_ASSIGN(const AttachKeys other,
                       DeriveAttachKeys(Secret(32, 0x40), NonceOf(0x33), NonceOf(0x44)));
  const Bytes payload_a = EncodeDetach({DetachReason::kShutdown});
  const Bytes payload_b = EncodeKeepAliveAck({Source()});
  const Header header_a{PacketType::kDetach, 1, 4};
  const Header header_b{PacketType::kKeepAliveAck, 2, 4};

  // Interleave keys on one Aead.
  ASSERT_OK_AND_ASSIGN(const Bytes a, SealPacket(*aead_, keys_.device_to_server, header_a,
                                                 payload_a));
  ASSERT_OK_AND_ASSIGN(const Bytes b, SealPacket(*aead_, other.server_to_device, header_b,
                                                 payload_b));
  ASSERT_OK_AND_ASSIGN(const Bytes opened_a,
                       OpenPacket(*aead_, keys_.device_to_server, header_a, a));
  ASSERT_OK_AND_ASSIGN(const Bytes opened_b,
                       OpenPacket(*aead_, other.server_to_device, header_b, b));
  EXPECT_EQ(opened_a, payload_a);
  EXPECT_EQ(opened_b, payload_b);

  // Fresh Aeads produce the same bytes: the re-key left nothing behind.
  std::unique_ptr<crypto::Aead> fresh_a = ScratchAead();
  std::unique_ptr<crypto::Aead> fresh_b = ScratchAead();
  ASSERT_OK_AND_ASSIGN(const Bytes a2, SealPacket(*fresh_a, keys_.device_to_server, header_a,
                                                  payload_a));
  ASSERT_OK_AND_ASSIGN(const Bytes b2, SealPacket(*fresh_b, other.server_to_device, header_b,
                                                  payload_b));
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);

  // Cross-opening fails, and a failure does not disturb the next open.
  EXPECT_THAT(OpenPacket(*aead_, other.server_to_device, header_a, a),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(OpenPacket(*aead_, keys_.device_to_server, header_a, a), IsOk());
}

}  // namespace
}  // namespace edgelink::wire
