// Fuzzes every parser of the device <-> basestation wire format directly (common/wire/packet.h,
// device_methods.h, and the text parsers those messages carry), without the state machines in
// front of them, so each is reached at full speed.
//
// Input: selector byte || bytes. The selector (% 21) picks the parser:
//    0 ParseHeader          7 ParseDetach            14 ParsePairArgs
//    1 ParseHello           8 ParseConnectRequest    15 ParseUserArgs
//    2 ParseChallenge       9 ParseConnectResponse   16 ParseFingerprintArgs
//    3 ParseProof          10 ParseDeviceRequest     17 ParseUserList
//    4 ParseReset          11 ParseDeviceResponse    18 ParseFingerprintHex
//    5 ParseAttached       12 ReadEndpoint           19 ParseRole, ValidateDeviceId
//    6 ParseKeepAliveAck   13 whole packet: ParseHeader, OpenPacket under fixed keys in both
//                             directions, then the body parser for its type
//                          20 net::Endpoint::Parse
//
// Invariant checked: whatever a parser accepts, its encoder writes back byte for byte (the
// encodings are canonical), except HELLO's padding and user-list names over 64 bytes, which the
// encoders normalize; for those, encoding then parsing again gives the same message.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/crypto/aead.h"
#include "common/net/endpoint.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/bytes.h"
#include "common/wire/device_id.h"
#include "common/wire/device_methods.h"
#include "common/wire/packet.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/wire_world.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "wire_parsers_fuzzer";

using Bytes = std::vector<uint8_t>;

bool Same(absl::Span<const uint8_t> a, absl::Span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

absl::Span<const uint8_t> Body(const Bytes& packet) {
  return absl::MakeConstSpan(packet).subspan(wire::kHeaderSize);
}

// Parse, and if accepted, check that Encode gives the input back.
template <typename T>
void RoundTrip(absl::Span<const uint8_t> in,
               absl::StatusOr<T> (*parse)(absl::Span<const uint8_t>),
               Bytes (*encode)(const T&)) {
  absl::StatusOr<T> parsed = parse(in);
  if (parsed.ok()) EDGELINK_FUZZ_CHECK(kName, Same(encode(*parsed), in));
}

Bytes EncodeChallenge(const wire::Challenge& c) {
  const Bytes packet = wire::BuildChallenge(c);
  return Bytes(Body(packet).begin(), Body(packet).end());
}
Bytes EncodeProof(const wire::Proof& p) {
  const Bytes packet = wire::BuildProof(p);
  return Bytes(Body(packet).begin(), Body(packet).end());
}
Bytes EncodeReset(const wire::Reset& r) {
  const Bytes packet = wire::BuildReset(0, r);
  return Bytes(Body(packet).begin(), Body(packet).end());
}

struct Keys {
  std::unique_ptr<crypto::Aead> aead;
  wire::SessionKeys keys;
};

// Fixed session keys (wire_world.h): the point is to reach the body parsers through OpenPacket.
Keys& FixedKeys() {
  static Keys* keys = [] {
    absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
        crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize));
    if (!aead.ok()) InvariantFailed(kName, "Aead::New");
    return new Keys{*std::move(aead), WireFuzzKeys()};
  }();
  return *keys;
}

void ParseBody(wire::PacketType type, absl::Span<const uint8_t> body) {
  switch (type) {
    case wire::PacketType::kHello:
      (void)wire::ParseHello(body);
      break;
    case wire::PacketType::kChallenge:
      (void)wire::ParseChallenge(body);
      break;
    case wire::PacketType::kProof:
      (void)wire::ParseProof(body);
      break;
    case wire::PacketType::kReset:
      (void)wire::ParseReset(body);
      break;
    case wire::PacketType::kAttached:
      (void)wire::ParseAttached(body);
      break;
    case wire::PacketType::kKeepAliveAck:
      (void)wire::ParseKeepAliveAck(body);
      break;
    case wire::PacketType::kDetach:
      (void)wire::ParseDetach(body);
      break;
    case wire::PacketType::kConnectRequest:
      (void)wire::ParseConnectRequest(body);
      break;
    case wire::PacketType::kConnectResponse:
      (void)wire::ParseConnectResponse(body);
      break;
    case wire::PacketType::kDeviceRequest:
      (void)wire::ParseDeviceRequest(body);
      break;
    case wire::PacketType::kDeviceResponse:
      (void)wire::ParseDeviceResponse(body);
      break;
    case wire::PacketType::kKeepAlive:
      break;
  }
}

void WholePacket(absl::Span<const uint8_t> packet) {
  absl::StatusOr<wire::Header> header = wire::ParseHeader(packet);
  if (!header.ok()) return;
  if (!wire::IsSealed(header->type)) return ParseBody(header->type, packet.subspan(wire::kHeaderSize));
  Keys& keys = FixedKeys();
  for (const wire::DirectionKeys* direction : {&keys.keys.device_to_server,
                                               &keys.keys.server_to_device}) {
    absl::StatusOr<Bytes> payload = wire::OpenPacket(*keys.aead, *direction, *header, packet);
    if (payload.ok()) ParseBody(header->type, *payload);
  }
}

absl::string_view AsText(absl::Span<const uint8_t> in) {
  return absl::string_view(reinterpret_cast<const char*>(in.data()), in.size());
}

void Fuzz(uint8_t selector, absl::Span<const uint8_t> in) {
  switch (selector % 21) {
    case 0: {
      absl::StatusOr<wire::Header> header = wire::ParseHeader(in);
      if (header.ok()) {
        wire::ByteWriter out;
        wire::WriteHeader(*header, out);
        EDGELINK_FUZZ_CHECK(kName, Same(out.bytes(), in.first(wire::kHeaderSize)));
      }
      break;
    }
    case 1: {
      absl::StatusOr<wire::Hello> hello = wire::ParseHello(in);
      if (hello.ok()) {
        const Bytes again = wire::BuildHello(*hello);
        absl::StatusOr<wire::Hello> reparsed = wire::ParseHello(Body(again));
        EDGELINK_FUZZ_CHECK(kName, reparsed.ok() && reparsed->device_id == hello->device_id &&
                                       reparsed->device_nonce == hello->device_nonce);
      }
      break;
    }
    case 2:
      RoundTrip<wire::Challenge>(in, wire::ParseChallenge, EncodeChallenge);
      break;
    case 3:
      RoundTrip<wire::Proof>(in, wire::ParseProof, EncodeProof);
      break;
    case 4:
      RoundTrip<wire::Reset>(in, wire::ParseReset, EncodeReset);
      break;
    case 5:
      RoundTrip<wire::Attached>(in, wire::ParseAttached, wire::EncodeAttached);
      break;
    case 6:
      RoundTrip<wire::KeepAliveAck>(in, wire::ParseKeepAliveAck, wire::EncodeKeepAliveAck);
      break;
    case 7:
      RoundTrip<wire::Detach>(in, wire::ParseDetach, wire::EncodeDetach);
      break;
    case 8:
      RoundTrip<wire::ConnectRequest>(in, wire::ParseConnectRequest, wire::EncodeConnectRequest);
      break;
    case 9:
      RoundTrip<wire::ConnectResponse>(in, wire::ParseConnectResponse,
                                       wire::EncodeConnectResponse);
      break;
    case 10:
      RoundTrip<wire::DeviceRequest>(in, wire::ParseDeviceRequest, wire::EncodeDeviceRequest);
      break;
    case 11:
      RoundTrip<wire::DeviceResponse>(in, wire::ParseDeviceResponse,
                                      wire::EncodeDeviceResponse);
      break;
    case 12: {
      wire::ByteReader reader(in);
      net::Endpoint endpoint;
      if (wire::ReadEndpoint(reader, &endpoint)) {
        wire::ByteWriter out;
        wire::WriteEndpoint(endpoint, out);
        EDGELINK_FUZZ_CHECK(kName, Same(out.bytes(), in.first(in.size() - reader.remaining())));
      }
      break;
    }
    case 13:
      WholePacket(in);
      break;
    case 14:
      RoundTrip<wire::PairArgs>(in, wire::ParsePairArgs, wire::EncodePairArgs);
      break;
    case 15:
      RoundTrip<wire::UserEntry>(in, wire::ParseUserArgs, wire::EncodeUserArgs);
      break;
    case 16: {
      absl::StatusOr<wire::Fingerprint> fingerprint = wire::ParseFingerprintArgs(in);
      if (fingerprint.ok()) {
        EDGELINK_FUZZ_CHECK(kName, Same(wire::EncodeFingerprintArgs(*fingerprint), in));
      }
      break;
    }
    case 17: {
      absl::StatusOr<std::vector<wire::UserEntry>> users = wire::ParseUserList(in);
      if (!users.ok()) break;
      const Bytes encoded = wire::EncodeUserList(*users);
      bool short_names = true;
      for (const wire::UserEntry& user : *users) short_names &= user.name.size() <= 64;
      if (short_names) {
        EDGELINK_FUZZ_CHECK(kName, Same(encoded, in));
      } else {
        absl::StatusOr<std::vector<wire::UserEntry>> again = wire::ParseUserList(encoded);
        EDGELINK_FUZZ_CHECK(kName, again.ok() && again->size() == users->size());
      }
      break;
    }
    case 18: {
      absl::StatusOr<wire::Fingerprint> fingerprint = wire::ParseFingerprintHex(AsText(in));
      if (fingerprint.ok()) {
        EDGELINK_FUZZ_CHECK(kName, wire::FingerprintHex(*fingerprint) == AsText(in));
      }
      break;
    }
    case 19: {
      absl::StatusOr<wire::Role> role = wire::ParseRole(AsText(in));
      if (role.ok()) EDGELINK_FUZZ_CHECK(kName, wire::RoleName(*role) == AsText(in));
      (void)wire::ValidateDeviceId(AsText(in));
      break;
    }
    case 20: {
      absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(AsText(in));
      if (endpoint.ok()) {
        absl::StatusOr<net::Endpoint> again = net::Endpoint::Parse(endpoint->ToString());
        EDGELINK_FUZZ_CHECK(kName, again.ok() && *again == *endpoint);
      }
      break;
    }
  }
}

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  edgelink::fuzz::Fuzz(data[0], absl::MakeConstSpan(data + 1, size - 1));
  return 0;
}
