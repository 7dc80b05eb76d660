#include "common/wire/packet.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "common/wire/bytes.h"
#include "common/wire/device_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

using Bytes = std::vector<uint8_t>;

template <size_t N>
std::array<uint8_t, N> Filled(uint8_t first) {
  std::array<uint8_t, N> a;
  for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(first + i);
  return a;
}

absl::Span<const uint8_t> BodyOf(const Bytes& packet) {
  return absl::MakeConstSpan(packet).subspan(std::min(packet.size(), kHeaderSize));
}

// A copy, so it may outlive a temporary packet.
Bytes BodyBytes(const Bytes& packet) {
  const absl::Span<const uint8_t> body = BodyOf(packet);
  return Bytes(body.begin(), body.end());
}

Bytes Concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Bytes HeaderBytes(const Header& header) {
  ByteWriter out;
  WriteHeader(header, out);
  return out.Take();
}

Hello SampleHello() {
  Hello hello;
  hello.device_id = "front-door-lock-42";
  hello.device_nonce = Filled<kNonceSize>(0x10);
  return hello;
}

Challenge SampleChallenge() {
  Challenge challenge;
  challenge.server_nonce = Filled<kNonceSize>(0x20);
  challenge.timestamp_ms = 0x0000018c2a1b2c3d;  // Unix milliseconds
  challenge.cookie = Filled<kCookieSize>(0x30);
  return challenge;
}

Proof SampleProof() {
  Proof proof;
  proof.device_id = "cam-1";
  proof.device_nonce = Filled<kNonceSize>(0x10);
  proof.server_nonce = Filled<kNonceSize>(0x20);
  proof.timestamp_ms = 0x0000018c2a1b2c3d;
  proof.cookie = Filled<kCookieSize>(0x30);
  proof.proof = Filled<kProofSize>(0x40);
  return proof;
}

net::Endpoint SampleIpv4() { return net::Endpoint::Ipv4({203, 0, 113, 7}, 40000); }

net::Endpoint SampleIpv6() {
  return net::Endpoint::Ipv6(
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}, 65535);
}

Attached SampleAttached(const net::Endpoint& reflexive) {
  Attached attached;
  attached.reflexive = reflexive;
  attached.keepalive_interval_ms = 25000;
  attached.reset_token = Filled<kResetTokenSize>(0x50);
  return attached;
}

Reset SampleReset() { return Reset{Filled<kResetTokenSize>(0x60)}; }

// Runs the parser for `type` over `body`, returning its status. For the sealed types this is the
// parser of the plaintext inside the record; KEEPALIVE carries no body.
absl::Status ParseBodyAs(PacketType type, absl::Span<const uint8_t> body) {
  switch (type) {
    case PacketType::kHello:
      return ParseHello(body).status();
    case PacketType::kChallenge:
      return ParseChallenge(body).status();
    case PacketType::kProof:
      return ParseProof(body).status();
    case PacketType::kAttached:
      return ParseAttached(body).status();
    case PacketType::kKeepAlive:
      return absl::OkStatus();
    case PacketType::kKeepAliveAck:
      return ParseKeepAliveAck(body).status();
    case PacketType::kDetach:
      return ParseDetach(body).status();
    case PacketType::kReset:
      return ParseReset(body).status();
    case PacketType::kConnectRequest:
      return ParseConnectRequest(body).status();
    case PacketType::kConnectResponse:
      return ParseConnectResponse(body).status();
    case PacketType::kDeviceRequest:
      return ParseDeviceRequest(body).status();
    case PacketType::kDeviceResponse:
      return ParseDeviceResponse(body).status();
  }
  return absl::InternalError("unreachable");
}

// --- Header ---

TEST(HeaderTest, HelloHeaderLayoutIsByteExact) {
  ByteWriter out;
  WriteHeader({PacketType::kHello, 0x0102030405060708, 0x1112131415161718}, out);
  const Bytes expected = {
      0x01,                                            // version
      0x01,                                            // type HELLO
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // connection id, big-endian
      0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // packet number, big-endian
  };
  EXPECT_THAT(out.bytes(), ElementsAreArray(expected));
  EXPECT_EQ(out.size(), kHeaderSize);
}

TEST(HeaderTest, BuiltHelloStartsWithTheHandWrittenHeader) {
  const Bytes packet = BuildHello(SampleHello());
  const Bytes expected = {0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_GE(packet.size(), kHeaderSize);
  EXPECT_THAT(Bytes(packet.begin(), packet.begin() + kHeaderSize), ElementsAreArray(expected));
  // Body: nonce, then the length-prefixed id.
  EXPECT_EQ(packet[kHeaderSize], 0x10);
  EXPECT_EQ(packet[kHeaderSize + kNonceSize], SampleHello().device_id.size());
  EXPECT_EQ(packet[kHeaderSize + kNonceSize + 1], 'f');
}

TEST(HeaderTest, RoundTripsEveryTypeAndExtremeNumbers) {
  for (int t = 1; t <= 8; ++t) {
    for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000000},
                       std::numeric_limits<uint64_t>::max()}) {
      const Header header{static_cast<PacketType>(t), n, ~n};
      ASSERT_OK_AND_ASSIGN(const Header parsed, ParseHeader(HeaderBytes(header)));
      EXPECT_EQ(parsed.type, header.type);
      EXPECT_EQ(parsed.connection_id, n);
      EXPECT_EQ(parsed.packet_number, ~n);
    }
  }
}

TEST(HeaderTest, ParseHeaderIgnoresTheBody) {
  Bytes packet = HeaderBytes({PacketType::kDetach, 7, 9});
  packet.resize(100, 0xab);
  ASSERT_OK_AND_ASSIGN(const Header parsed, ParseHeader(packet));
  EXPECT_EQ(parsed.type, PacketType::kDetach);
  EXPECT_EQ(parsed.connection_id, 7u);
  EXPECT_EQ(parsed.packet_number, 9u);
}

TEST(HeaderTest, RejectsEveryShortHeader) {
  const Bytes full = HeaderBytes({PacketType::kHello, 1, 2});
  for (size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_THAT(ParseHeader(absl::MakeConstSpan(full).first(n)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << n;
  }
}

TEST(HeaderTest, RejectsUnknownVersion) {
  for (uint8_t version : {0, 2, 255}) {
    Bytes packet = HeaderBytes({PacketType::kHello, 0, 0});
    packet[0] = version;
    EXPECT_THAT(ParseHeader(packet),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version")))
        << int{version};
  }
}

TEST(HeaderTest, RejectsUnknownType) {
  for (uint8_t type : {0, 13, 255}) {
    Bytes packet = HeaderBytes({PacketType::kHello, 0, 0});
    packet[1] = type;
    EXPECT_THAT(ParseHeader(packet),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("type")))
        << int{type};
  }
}

TEST(PacketTypeTest, SealedTypesAreTheSessionOnes) {
  EXPECT_FALSE(IsSealed(PacketType::kHello));
  EXPECT_FALSE(IsSealed(PacketType::kChallenge));
  EXPECT_FALSE(IsSealed(PacketType::kProof));
  EXPECT_TRUE(IsSealed(PacketType::kAttached));
  EXPECT_TRUE(IsSealed(PacketType::kKeepAlive));
  EXPECT_TRUE(IsSealed(PacketType::kKeepAliveAck));
  EXPECT_TRUE(IsSealed(PacketType::kDetach));
  EXPECT_FALSE(IsSealed(PacketType::kReset));
}

// --- Round trips ---

TEST(HelloTest, RoundTrips) {
  const Hello hello = SampleHello();
  const Bytes packet = BuildHello(hello);
  ASSERT_OK_AND_ASSIGN(const Header header, ParseHeader(packet));
  EXPECT_EQ(header.type, PacketType::kHello);
  EXPECT_EQ(header.connection_id, 0u);
  EXPECT_EQ(header.packet_number, 0u);
  ASSERT_OK_AND_ASSIGN(const Hello parsed, ParseHello(BodyOf(packet)));
  EXPECT_EQ(parsed.device_id, hello.device_id);
  EXPECT_EQ(parsed.device_nonce, hello.device_nonce);
}

TEST(HelloTest, RoundTripsShortestAndLongestIds) {
  for (const std::string& id : {std::string("a"), std::string(62, 'b'), std::string(63, 'c')}) {
    Hello hello = SampleHello();
    hello.device_id = id;
    const Bytes packet = BuildHello(hello);
    EXPECT_GE(packet.size(), kMinHelloSize);
    ASSERT_OK_AND_ASSIGN(const Hello parsed, ParseHello(BodyOf(packet)));
    EXPECT_EQ(parsed.device_id, id);
  }
}

TEST(HelloTest, IsPaddedToTheMinimumSize) {
  const Bytes packet = BuildHello(SampleHello());
  EXPECT_EQ(packet.size(), kMinHelloSize);
  const size_t used = kHeaderSize + kNonceSize + 1 + SampleHello().device_id.size();
  ASSERT_LT(used, packet.size());
  EXPECT_TRUE(std::all_of(packet.begin() + used, packet.end(), [](uint8_t b) { return b == 0; }));
}

TEST(HelloTest, ChallengeIsNeverLargerThanTheSmallestHello) {
  // Anti-amplification: whatever the id, what the basestation sends back is no larger.
  const size_t challenge_size = BuildChallenge(SampleChallenge()).size();
  EXPECT_EQ(challenge_size, 58u);
  for (size_t n = 1; n <= kMaxDeviceIdLength; ++n) {
    Hello hello = SampleHello();
    hello.device_id = std::string(n, 'x');
    EXPECT_LE(challenge_size, BuildHello(hello).size()) << n;
  }
}

TEST(HelloTest, AcceptsExtraZeroPadding) {
  Bytes packet = BuildHello(SampleHello());
  packet.resize(kMaxPacketSize, 0);
  ASSERT_OK_AND_ASSIGN(const Hello parsed, ParseHello(BodyOf(packet)));
  EXPECT_EQ(parsed.device_id, SampleHello().device_id);
}

TEST(HelloTest, RejectsNonZeroPaddingAnywhere) {
  const Bytes packet = BuildHello(SampleHello());
  const size_t used = kHeaderSize + kNonceSize + 1 + SampleHello().device_id.size();
  for (size_t i = used; i < packet.size(); ++i) {
    Bytes bad = packet;
    bad[i] = 0x01;
    EXPECT_THAT(ParseHello(BodyOf(bad)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("padding")))
        << i;
  }
}

TEST(HelloTest, RejectsUnpaddedHello) {
  // A HELLO body written by hand without padding: nonce + id, and nothing else.
  ByteWriter body;
  body.WriteBytes(SampleHello().device_nonce);
  body.WriteString8(SampleHello().device_id);
  EXPECT_THAT(ParseHello(body.bytes()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("padded")));
  // One byte short of the minimum is still unpadded.
  body.PadTo(kMinHelloSize - kHeaderSize - 1);
  EXPECT_THAT(ParseHello(body.bytes()), StatusIs(absl::StatusCode::kInvalidArgument));
  body.PadTo(kMinHelloSize - kHeaderSize);
  EXPECT_THAT(ParseHello(body.bytes()), IsOk());
}

TEST(HelloTest, RejectsInvalidDeviceIds) {
  for (const std::string& id :
       {std::string(""), std::string("Cam-1"), std::string("CAM"), std::string(64, 'a'),
        std::string("-cam"), std::string("cam.1"), std::string("a\0b", 3)}) {
    Hello hello = SampleHello();
    hello.device_id = id;
    EXPECT_THAT(ParseHello(BodyOf(BuildHello(hello))),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "id of " << id.size() << " bytes: " << id;
  }
}

TEST(ChallengeTest, RoundTrips) {
  const Challenge challenge = SampleChallenge();
  const Bytes packet = BuildChallenge(challenge);
  ASSERT_OK_AND_ASSIGN(const Header header, ParseHeader(packet));
  EXPECT_EQ(header.type, PacketType::kChallenge);
  EXPECT_EQ(header.connection_id, 0u);
  ASSERT_OK_AND_ASSIGN(const Challenge parsed, ParseChallenge(BodyOf(packet)));
  EXPECT_EQ(parsed.server_nonce, challenge.server_nonce);
  EXPECT_EQ(parsed.timestamp_ms, challenge.timestamp_ms);
  EXPECT_EQ(parsed.cookie, challenge.cookie);
}

TEST(ProofTest, RoundTrips) {
  const Proof proof = SampleProof();
  const Bytes packet = BuildProof(proof);
  ASSERT_OK_AND_ASSIGN(const Header header, ParseHeader(packet));
  EXPECT_EQ(header.type, PacketType::kProof);
  ASSERT_OK_AND_ASSIGN(const Proof parsed, ParseProof(BodyOf(packet)));
  EXPECT_EQ(parsed.device_id, proof.device_id);
  EXPECT_EQ(parsed.device_nonce, proof.device_nonce);
  EXPECT_EQ(parsed.server_nonce, proof.server_nonce);
  EXPECT_EQ(parsed.timestamp_ms, proof.timestamp_ms);
  EXPECT_EQ(parsed.cookie, proof.cookie);
  EXPECT_EQ(parsed.proof, proof.proof);
}

TEST(ProofTest, RejectsInvalidDeviceIds) {
  for (const std::string& id :
       {std::string(""), std::string("Cam-1"), std::string(64, 'a'), std::string("cam_1")}) {
    Proof proof = SampleProof();
    proof.device_id = id;
    EXPECT_THAT(ParseProof(BodyOf(BuildProof(proof))),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << id;
  }
}

TEST(ResetTest, RoundTripsWithConnectionId) {
  const Reset reset = SampleReset();
  const Bytes packet = BuildReset(0xfedcba9876543210, reset);
  ASSERT_OK_AND_ASSIGN(const Header header, ParseHeader(packet));
  EXPECT_EQ(header.type, PacketType::kReset);
  EXPECT_EQ(header.connection_id, 0xfedcba9876543210u);
  EXPECT_EQ(header.packet_number, 0u);
  ASSERT_OK_AND_ASSIGN(const Reset parsed, ParseReset(BodyOf(packet)));
  EXPECT_EQ(parsed.token, reset.token);
}

TEST(AttachedTest, RoundTripsIpv4AndIpv6) {
  for (const net::Endpoint& endpoint : {SampleIpv4(), SampleIpv6()}) {
    const Attached attached = SampleAttached(endpoint);
    ASSERT_OK_AND_ASSIGN(const Attached parsed, ParseAttached(EncodeAttached(attached)));
    EXPECT_EQ(parsed.reflexive, endpoint) << endpoint.ToString();
    EXPECT_EQ(parsed.keepalive_interval_ms, attached.keepalive_interval_ms);
    EXPECT_EQ(parsed.reset_token, attached.reset_token);
  }
}

TEST(AttachedTest, RejectsZeroKeepAliveInterval) {
  Attached attached = SampleAttached(SampleIpv4());
  attached.keepalive_interval_ms = 0;
  EXPECT_THAT(ParseAttached(EncodeAttached(attached)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keep-alive")));
  attached.keepalive_interval_ms = 1;
  EXPECT_THAT(ParseAttached(EncodeAttached(attached)), IsOk());
}

TEST(KeepAliveAckTest, RoundTripsIpv4AndIpv6) {
  for (const net::Endpoint& endpoint : {SampleIpv4(), SampleIpv6()}) {
    ASSERT_OK_AND_ASSIGN(const KeepAliveAck parsed,
                         ParseKeepAliveAck(EncodeKeepAliveAck(KeepAliveAck{endpoint})));
    EXPECT_EQ(parsed.reflexive, endpoint) << endpoint.ToString();
  }
}

TEST(DetachTest, RoundTripsEveryReason) {
  for (DetachReason reason :
       {DetachReason::kShutdown, DetachReason::kRevoked, DetachReason::kReplaced}) {
    ASSERT_OK_AND_ASSIGN(const Detach parsed, ParseDetach(EncodeDetach(Detach{reason})));
    EXPECT_EQ(parsed.reason, reason);
  }
}

TEST(DetachTest, RejectsUnknownReason) {
  for (uint8_t reason : {0, 4, 255}) {
    const Bytes body = {reason};
    EXPECT_THAT(ParseDetach(body), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("reason")))
        << int{reason};
  }
}

// --- Endpoints ---

TEST(EndpointTest, WireLayoutIsFamilyAddressPort) {
  ByteWriter v4;
  WriteEndpoint(SampleIpv4(), v4);
  EXPECT_THAT(v4.bytes(), ElementsAreArray(Bytes{4, 203, 0, 113, 7, 0x9c, 0x40}));
  ByteWriter v6;
  WriteEndpoint(SampleIpv6(), v6);
  EXPECT_THAT(v6.bytes(), ElementsAreArray(Bytes{6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                                                 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff}));
}

TEST(EndpointTest, RoundTripsIpv4AndIpv6) {
  for (const net::Endpoint& endpoint :
       {SampleIpv4(), SampleIpv6(), net::Endpoint::Ipv4({0, 0, 0, 0}, 0),
        net::Endpoint::Ipv4({255, 255, 255, 255}, 65535)}) {
    ByteWriter out;
    WriteEndpoint(endpoint, out);
    ByteReader in(out.bytes());
    net::Endpoint parsed;
    ASSERT_TRUE(ReadEndpoint(in, &parsed)) << endpoint.ToString();
    EXPECT_EQ(parsed, endpoint);
    EXPECT_TRUE(in.done());
  }
}

TEST(EndpointTest, RejectsUnknownFamily) {
  for (uint8_t family : {0, 5, 46, 255}) {
    ByteWriter out;
    WriteEndpoint(SampleIpv6(), out);
    Bytes bytes = out.Take();
    bytes[0] = family;
    ByteReader in(bytes);
    net::Endpoint parsed;
    EXPECT_FALSE(ReadEndpoint(in, &parsed)) << int{family};
    EXPECT_FALSE(parsed.is_set());

    Bytes attached = EncodeAttached(SampleAttached(SampleIpv4()));
    attached[0] = family;
    EXPECT_THAT(ParseAttached(attached), StatusIs(absl::StatusCode::kInvalidArgument))
        << int{family};
    Bytes ack = EncodeKeepAliveAck(KeepAliveAck{SampleIpv4()});
    ack[0] = family;
    EXPECT_THAT(ParseKeepAliveAck(ack), StatusIs(absl::StatusCode::kInvalidArgument))
        << int{family};
  }
}

TEST(EndpointTest, FamilyByteDecidesTheAddressLength) {
  // An IPv4 body relabelled as IPv6 is too short to parse.
  Bytes ack = EncodeKeepAliveAck(KeepAliveAck{SampleIpv4()});
  ack[0] = 6;
  EXPECT_THAT(ParseKeepAliveAck(ack), StatusIs(absl::StatusCode::kInvalidArgument));
  // An IPv6 body relabelled as IPv4 leaves trailing bytes.
  Bytes ack6 = EncodeKeepAliveAck(KeepAliveAck{SampleIpv6()});
  ack6[0] = 4;
  EXPECT_THAT(ParseKeepAliveAck(ack6), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Every valid packet, truncated and extended ---

struct WirePacket {
  std::string name;
  PacketType type;
  Bytes packet;  // Header + body; for sealed types the body is the record's plaintext.
};

std::vector<WirePacket> AllValidPackets() {
  std::vector<WirePacket> all;
  Hello long_hello = SampleHello();
  long_hello.device_id = std::string(63, 'z');  // long enough to need no padding
  Proof long_proof = SampleProof();
  long_proof.device_id = std::string(63, 'p');
  const auto sealed = [](PacketType type, const Bytes& body) {
    return Concat(HeaderBytes({type, 0x1234, 5}), body);
  };
  all.push_back({"HELLO", PacketType::kHello, BuildHello(SampleHello())});
  all.push_back({"HELLO (63-char id)", PacketType::kHello, BuildHello(long_hello)});
  all.push_back({"CHALLENGE", PacketType::kChallenge, BuildChallenge(SampleChallenge())});
  all.push_back({"PROOF", PacketType::kProof, BuildProof(SampleProof())});
  all.push_back({"PROOF (63-char id)", PacketType::kProof, BuildProof(long_proof)});
  all.push_back({"RESET", PacketType::kReset, BuildReset(0x1234, SampleReset())});
  all.push_back({"ATTACHED v4", PacketType::kAttached,
                 sealed(PacketType::kAttached, EncodeAttached(SampleAttached(SampleIpv4())))});
  all.push_back({"ATTACHED v6", PacketType::kAttached,
                 sealed(PacketType::kAttached, EncodeAttached(SampleAttached(SampleIpv6())))});
  all.push_back({"KEEPALIVE_ACK v4", PacketType::kKeepAliveAck,
                 sealed(PacketType::kKeepAliveAck, EncodeKeepAliveAck({SampleIpv4()}))});
  all.push_back({"KEEPALIVE_ACK v6", PacketType::kKeepAliveAck,
                 sealed(PacketType::kKeepAliveAck, EncodeKeepAliveAck({SampleIpv6()}))});
  all.push_back({"DETACH", PacketType::kDetach,
                 sealed(PacketType::kDetach, EncodeDetach({DetachReason::kRevoked}))});
  return all;
}

TEST(PacketTest, EveryValidPacketParses) {
  for (const WirePacket& p : AllValidPackets()) {
    ASSERT_OK_AND_ASSIGN(const Header header, ParseHeader(p.packet));
    EXPECT_EQ(header.type, p.type) << p.name;
    EXPECT_THAT(ParseBodyAs(header.type, BodyOf(p.packet)), IsOk()) << p.name;
    EXPECT_LE(p.packet.size(), kMaxPacketSize) << p.name;
  }
}

TEST(PacketTest, EveryTruncationOfEveryValidPacketFails) {
  for (const WirePacket& p : AllValidPackets()) {
    for (size_t n = 0; n < p.packet.size(); ++n) {
      const absl::Span<const uint8_t> prefix = absl::MakeConstSpan(p.packet).first(n);
      const absl::StatusOr<Header> header = ParseHeader(prefix);
      if (!header.ok()) {
        EXPECT_LT(n, kHeaderSize) << p.name << " cut to " << n;
        EXPECT_THAT(header, StatusIs(absl::StatusCode::kInvalidArgument));
        continue;
      }
      EXPECT_EQ(header->type, p.type);
      EXPECT_THAT(ParseBodyAs(header->type, prefix.subspan(kHeaderSize)),
                  StatusIs(absl::StatusCode::kInvalidArgument))
          << p.name << " cut to " << n << " of " << p.packet.size();
    }
  }
}

TEST(PacketTest, TrailingBytesAreRejectedExceptHelloPadding) {
  for (const WirePacket& p : AllValidPackets()) {
    for (uint8_t extra : {0x00, 0x01}) {
      Bytes longer = p.packet;
      longer.push_back(extra);
      const absl::Status status = ParseBodyAs(p.type, BodyOf(longer));
      if (p.type == PacketType::kHello && extra == 0) {
        EXPECT_THAT(status, IsOk()) << p.name;
      } else {
        EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument))
            << p.name << " + " << int{extra};
      }
    }
  }
}

// Each successful parse of arbitrary bytes must re-encode to exactly those bytes (no two
// encodings of one message), except HELLO whose padding is free.
void CheckParsersOn(absl::Span<const uint8_t> body, int* successes) {
  if (absl::StatusOr<Hello> m = ParseHello(body); m.ok()) {
    ++*successes;
    ASSERT_OK_AND_ASSIGN(const Hello again, ParseHello(BodyOf(BuildHello(*m))));
    EXPECT_EQ(again.device_id, m->device_id);
    EXPECT_EQ(again.device_nonce, m->device_nonce);
    EXPECT_TRUE(ValidateDeviceId(m->device_id).ok());
  }
  if (absl::StatusOr<Challenge> m = ParseChallenge(body); m.ok()) {
    ++*successes;
    EXPECT_THAT(BodyBytes(BuildChallenge(*m)), ElementsAreArray(body));
  }
  if (absl::StatusOr<Proof> m = ParseProof(body); m.ok()) {
    ++*successes;
    EXPECT_THAT(BodyBytes(BuildProof(*m)), ElementsAreArray(body));
  }
  if (absl::StatusOr<Reset> m = ParseReset(body); m.ok()) {
    ++*successes;
    EXPECT_THAT(BodyBytes(BuildReset(0, *m)), ElementsAreArray(body));
  }
  if (absl::StatusOr<Attached> m = ParseAttached(body); m.ok()) {
    ++*successes;
    EXPECT_NE(m->keepalive_interval_ms, 0u);
    EXPECT_THAT(EncodeAttached(*m), ElementsAreArray(body));
  }
  if (absl::StatusOr<KeepAliveAck> m = ParseKeepAliveAck(body); m.ok()) {
    ++*successes;
    EXPECT_THAT(EncodeKeepAliveAck(*m), ElementsAreArray(body));
  }
  if (absl::StatusOr<Detach> m = ParseDetach(body); m.ok()) {
    ++*successes;
    EXPECT_THAT(EncodeDetach(*m), ElementsAreArray(body));
  }
}

void CheckHeaderOn(absl::Span<const uint8_t> packet, int* successes) {
  const absl::StatusOr<Header> header = ParseHeader(packet);
  if (!header.ok()) {
    EXPECT_THAT(header, StatusIs(absl::StatusCode::kInvalidArgument));
    return;
  }
  ++*successes;
  EXPECT_THAT(HeaderBytes(*header), ElementsAreArray(packet.first(kHeaderSize)));
}

TEST(PacketTest, SeededRandomInputNeverCrashesAndParsesCanonically) {
  std::mt19937 rng(0x5eed1e55);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> length(0, 1500);
  const std::vector<WirePacket> valid = AllValidPackets();
  std::uniform_int_distribution<size_t> pick(0, valid.size() - 1);
  std::uniform_int_distribution<int> mutation(0, 3);
  std::uniform_int_distribution<int> flips(1, 4);

  int header_successes = 0, body_successes = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes packet;
    if (i % 2 == 0) {
      packet.resize(length(rng));
      for (uint8_t& b : packet) b = static_cast<uint8_t>(byte(rng));
    } else {
      packet = valid[pick(rng)].packet;
      switch (mutation(rng)) {
        case 0: {  // overwrite a few bytes
          for (int f = flips(rng); f > 0; --f) {
            packet[std::uniform_int_distribution<size_t>(0, packet.size() - 1)(rng)] =
                static_cast<uint8_t>(byte(rng));
          }
          break;
        }
        case 1:  // truncate
          packet.resize(std::uniform_int_distribution<size_t>(0, packet.size())(rng));
          break;
        case 2: {  // append random bytes
          for (int f = flips(rng); f > 0; --f) packet.push_back(static_cast<uint8_t>(byte(rng)));
          break;
        }
        default: {  // flip one bit in the body, where the length bytes live
          const size_t at =
              std::uniform_int_distribution<size_t>(kHeaderSize, packet.size() - 1)(rng);
          packet[at] ^= static_cast<uint8_t>(1 << (byte(rng) % 8));
          break;
        }
      }
    }
    CheckHeaderOn(packet, &header_successes);
    // Every parser sees both the whole buffer and what follows a header.
    CheckParsersOn(packet, &body_successes);
    CheckParsersOn(BodyOf(packet), &body_successes);
    if (::testing::Test::HasFailure()) {
      FAIL() << "first failure at iteration " << i << ", " << packet.size() << " bytes";
    }
  }
  // The mutations must actually reach the success paths, or this test proves little.
  EXPECT_GT(header_successes, 5000);
  EXPECT_GT(body_successes, 1000);
}

}  // namespace
}  // namespace edgelink::wire

namespace edgelink::wire {
namespace {

ConnectRequest SampleConnectRequest() {
  ConnectRequest request;
  request.request_id = 0x0102030405060708;
  request.session_id.fill(0x11);
  request.session_key.mutable_span()[0] = 0x22;
  request.client_nonce = Filled<kNonceSize>(0x80);
  request.valid_ms = 0x0a0b0c0d;
  request.client_fingerprint.fill(0x33);
  request.client_name = "alice-phone";
  request.client_candidates = {
      {Candidate::Kind::kHost, *net::Endpoint::Parse("192.168.1.7:5000")},
      {Candidate::Kind::kServerReflexive, *net::Endpoint::Parse("[2001:db8::7]:40000")}};
  request.relay_ticket = {1, 2, 3};
  request.relay = *net::Endpoint::Parse("198.51.100.1:7001");
  return request;
}

TEST(RendezvousMessagesTest, ConnectRequestRoundTripsWithAndWithoutRelay) {
  ConnectRequest request = SampleConnectRequest();
  auto parsed = ParseConnectRequest(EncodeConnectRequest(request));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request_id, request.request_id);
  EXPECT_EQ(parsed->session_id, request.session_id);
  EXPECT_EQ(parsed->session_key.span()[0], 0x22);
  EXPECT_EQ(parsed->client_nonce, request.client_nonce);
  EXPECT_EQ(parsed->valid_ms, request.valid_ms);
  EXPECT_EQ(parsed->client_fingerprint, request.client_fingerprint);
  EXPECT_EQ(parsed->client_name, "alice-phone");
  EXPECT_EQ(parsed->client_candidates, request.client_candidates);
  EXPECT_EQ(parsed->relay_ticket, request.relay_ticket);
  EXPECT_EQ(parsed->relay, request.relay);
  request.relay = net::Endpoint();
  request.relay_ticket.clear();
  parsed = ParseConnectRequest(EncodeConnectRequest(request));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->relay.is_set());
}

TEST(RendezvousMessagesTest, ResponsesAndDeviceRequestsRoundTrip) {
  ConnectResponse response{9, ConnectVerdict::kAccepted, Filled<kNonceSize>(0x90),
                           {{Candidate::Kind::kHost, *net::Endpoint::Parse("10.0.0.2:1")}}};
  auto r = ParseConnectResponse(EncodeConnectResponse(response));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, 9u);
  EXPECT_EQ(r->verdict, ConnectVerdict::kAccepted);
  EXPECT_EQ(r->device_nonce, response.device_nonce);
  EXPECT_EQ(r->device_candidates, response.device_candidates);

  DeviceRequest request{5, {}, "bob", "users.add", std::vector<uint8_t>(kMaxPayload, 7)};
  auto q = ParseDeviceRequest(EncodeDeviceRequest(request));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->method, "users.add");
  EXPECT_EQ(q->payload.size(), kMaxPayload);

  DeviceResponse answer{5, 7, "not the owner", {1, 2}};
  auto a = ParseDeviceResponse(EncodeDeviceResponse(answer));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->code, 7);
  EXPECT_EQ(a->message, "not the owner");
  EXPECT_EQ(a->payload, answer.payload);
}

TEST(RendezvousMessagesTest, EveryTruncationAndExtensionFails) {
  const std::vector<std::vector<uint8_t>> bodies = {
      EncodeConnectRequest(SampleConnectRequest()),
      EncodeConnectResponse({1, ConnectVerdict::kDenied, {}, {}}),
      EncodeConnectResponse({1, ConnectVerdict::kAccepted, Filled<kNonceSize>(0x90),
                             {{Candidate::Kind::kHost, *net::Endpoint::Parse("10.0.0.2:1")}}}),
      EncodeDeviceRequest({1, {}, "x", "pair", {1, 2, 3}}),
      EncodeDeviceResponse({1, 0, "", {}})};
  for (size_t i = 0; i < bodies.size(); ++i) {
    const auto& body = bodies[i];
    for (size_t size = 0; size <= body.size(); ++size) {
      std::vector<uint8_t> cut(body.begin(), body.begin() + size);
      if (size == body.size()) cut.push_back(0);  // One extra byte.
      const bool ok = i == 0   ? ParseConnectRequest(cut).ok()
                      : i <= 2 ? ParseConnectResponse(cut).ok()
                      : i == 3 ? ParseDeviceRequest(cut).ok()
                               : ParseDeviceResponse(cut).ok();
      EXPECT_FALSE(ok) << "message " << i << " size " << cut.size();
    }
  }
}

TEST(RendezvousMessagesTest, RejectsBadFieldValues) {
  std::vector<uint8_t> response = EncodeConnectResponse({1, ConnectVerdict::kDenied, {}, {}});
  response[8] = 9;  // Unknown verdict.
  EXPECT_FALSE(ParseConnectResponse(response).ok());
  std::vector<uint8_t> answer = EncodeDeviceResponse({1, 0, "", {}});
  answer[8] = 17;  // Not an absl::StatusCode.
  EXPECT_FALSE(ParseDeviceResponse(answer).ok());
  ConnectRequest request = SampleConnectRequest();
  std::vector<uint8_t> body = EncodeConnectRequest(request);
  // Candidate count sits after id(8) + session id(16) + key(16) + client nonce(16) +
  // valid_ms(4) + fingerprint(32) + name.
  const size_t count_at = 8 + 16 + 16 + 16 + 4 + 32 + 1 + request.client_name.size();
  ASSERT_EQ(body[count_at], request.client_candidates.size());
  body[count_at] = kMaxCandidates + 1;
  EXPECT_FALSE(ParseConnectRequest(body).ok());
}

// CONNECT_REQUEST: request id(8) || session id(16) || session key(16) || client nonce(16) ||
// valid_ms(4, big-endian) || fingerprint(32) || ...
TEST(RendezvousMessagesTest, ConnectRequestNonceAndValidityFollowTheSessionKey) {
  ConnectRequest request = SampleConnectRequest();
  request.valid_ms = 0x01020304;
  const std::vector<uint8_t> body = EncodeConnectRequest(request);
  constexpr size_t kNonceAt = 8 + kSessionIdSize + kSessionKeySize;
  ASSERT_GE(body.size(), kNonceAt + kNonceSize + 4 + kFingerprintSize);
  EXPECT_THAT(absl::MakeConstSpan(body).subspan(kNonceAt, kNonceSize),
              ElementsAreArray(request.client_nonce));
  EXPECT_THAT(absl::MakeConstSpan(body).subspan(kNonceAt + kNonceSize, 4),
              ElementsAreArray({0x01, 0x02, 0x03, 0x04}));
  EXPECT_THAT(absl::MakeConstSpan(body).subspan(kNonceAt + kNonceSize + 4, kFingerprintSize),
              ElementsAreArray(request.client_fingerprint));
}

TEST(RendezvousMessagesTest, ConnectRequestRoundTripsExtremeNonceAndValidity) {
  for (const uint32_t valid_ms : {uint32_t{0}, uint32_t{1}, uint32_t{30'000},
                                  std::numeric_limits<uint32_t>::max()}) {
    for (const uint8_t fill : {0x00, 0xff}) {
      ConnectRequest request = SampleConnectRequest();
      request.client_nonce.fill(fill);
      request.valid_ms = valid_ms;
      const std::vector<uint8_t> body = EncodeConnectRequest(request);
      ASSERT_OK_AND_ASSIGN(const ConnectRequest parsed, ParseConnectRequest(body));
      EXPECT_EQ(parsed.client_nonce, request.client_nonce);
      EXPECT_EQ(parsed.valid_ms, valid_ms);
      EXPECT_EQ(parsed.client_fingerprint, request.client_fingerprint);
      EXPECT_EQ(parsed.client_candidates, request.client_candidates);
      // One byte short fails.
      EXPECT_FALSE(
          ParseConnectRequest(absl::MakeConstSpan(body).first(body.size() - 1)).ok());
    }
  }
  // Without a relay (an empty ticket, and family 0 for the endpoint): one byte short still fails.
  ConnectRequest request = SampleConnectRequest();
  request.relay = net::Endpoint();
  request.relay_ticket.clear();
  const std::vector<uint8_t> body = EncodeConnectRequest(request);
  ASSERT_OK_AND_ASSIGN(const ConnectRequest parsed, ParseConnectRequest(body));
  EXPECT_EQ(parsed.client_nonce, request.client_nonce);
  EXPECT_EQ(parsed.valid_ms, request.valid_ms);
  EXPECT_FALSE(ParseConnectRequest(absl::MakeConstSpan(body).first(body.size() - 1)).ok());
}

// CONNECT_RESPONSE: request id(8) || verdict(1) || device nonce(16) || candidates.
TEST(RendezvousMessagesTest, ConnectResponseNonceFollowsTheVerdict) {
  const ConnectResponse response{0x0102030405060708, ConnectVerdict::kAccepted,
                                 Filled<kNonceSize>(0xa0), {}};
  const std::vector<uint8_t> body = EncodeConnectResponse(response);
  // No candidates: just their count after the nonce.
  ASSERT_EQ(body.size(), 8 + 1 + kNonceSize + 1);
  EXPECT_EQ(body[8], static_cast<uint8_t>(ConnectVerdict::kAccepted));
  EXPECT_THAT(absl::MakeConstSpan(body).subspan(9, kNonceSize),
              ElementsAreArray(response.device_nonce));
  EXPECT_EQ(body[9 + kNonceSize], 0);
  ASSERT_OK_AND_ASSIGN(const ConnectResponse parsed, ParseConnectResponse(body));
  EXPECT_EQ(parsed.request_id, response.request_id);
  EXPECT_EQ(parsed.device_nonce, response.device_nonce);
  EXPECT_TRUE(parsed.device_candidates.empty());
  // One byte short (the nonce ends one byte early, or the count is missing) fails.
  EXPECT_FALSE(ParseConnectResponse(absl::MakeConstSpan(body).first(body.size() - 1)).ok());
}

TEST(RendezvousMessagesTest, ConnectResponseRoundTripsEveryVerdictWithItsNonce) {
  for (const ConnectVerdict verdict :
       {ConnectVerdict::kAccepted, ConnectVerdict::kDenied, ConnectVerdict::kBusy}) {
    for (const uint8_t fill : {0x00, 0xff}) {
      ConnectResponse response;
      response.request_id = 3;
      response.verdict = verdict;
      response.device_nonce.fill(fill);
      response.device_candidates = {
          {Candidate::Kind::kHost, *net::Endpoint::Parse("10.0.0.2:1")},
          {Candidate::Kind::kServerReflexive, *net::Endpoint::Parse("[2001:db8::9]:4000")}};
      const std::vector<uint8_t> body = EncodeConnectResponse(response);
      ASSERT_OK_AND_ASSIGN(const ConnectResponse parsed, ParseConnectResponse(body));
      EXPECT_EQ(parsed.verdict, verdict);
      EXPECT_EQ(parsed.device_nonce, response.device_nonce);
      EXPECT_EQ(parsed.device_candidates, response.device_candidates);
      EXPECT_FALSE(ParseConnectResponse(absl::MakeConstSpan(body).first(body.size() - 1)).ok());
    }
  }
}

}  // namespace
}  // namespace edgelink::wire
