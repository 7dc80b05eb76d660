#include "common/wire/packet.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/wire/device_id.h"

namespace edgelink::wire {
namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed ", what));
}

absl::Status ReadDeviceId(ByteReader& in, std::string* id) {
  if (!in.ReadString8(id)) return Malformed("device id");
  return ValidateDeviceId(*id);
}

std::vector<uint8_t> Plain(PacketType type, uint64_t connection_id, ByteWriter body) {
  ByteWriter out(kHeaderSize + body.size());
  WriteHeader({type, connection_id, 0}, out);
  out.WriteBytes(body.bytes());
  return out.Take();
}

}  // namespace

bool IsSealed(PacketType type) {
  switch (type) {
    case PacketType::kAttached:
    case PacketType::kKeepAlive:
    case PacketType::kKeepAliveAck:
    case PacketType::kDetach:
    case PacketType::kConnectRequest:
    case PacketType::kConnectResponse:
    case PacketType::kDeviceRequest:
    case PacketType::kDeviceResponse:
      return true;
    case PacketType::kHello:
    case PacketType::kChallenge:
    case PacketType::kProof:
    case PacketType::kReset:
      return false;
  }
  return false;
}

bool CarriesSessionNonce(const Header& header) {
  return header.type == PacketType::kAttached ||
         (header.type == PacketType::kDetach && header.connection_id == 0);
}

void WriteHeader(const Header& header, ByteWriter& out) {
  out.WriteU8(kProtocolVersion);
  out.WriteU8(static_cast<uint8_t>(header.type));
  out.WriteU64(header.connection_id);
  out.WriteU64(header.packet_number);
}

absl::StatusOr<Header> ParseHeader(absl::Span<const uint8_t> packet) {
  ByteReader in(packet);
  uint8_t version = 0, type = 0;
  Header header;
  if (!in.ReadU8(&version) || !in.ReadU8(&type) || !in.ReadU64(&header.connection_id) ||
      !in.ReadU64(&header.packet_number)) {
    return Malformed("header: packet too short");
  }
  if (version != kProtocolVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported protocol version ", version));
  }
  if (type < static_cast<uint8_t>(PacketType::kHello) ||
      type > kMaxPacketType) {
    return absl::InvalidArgumentError(absl::StrCat("unknown packet type ", type));
  }
  header.type = static_cast<PacketType>(type);
  return header;
}

void WriteEndpoint(const net::Endpoint& endpoint, ByteWriter& out) {
  const bool v6 = endpoint.family() == net::Endpoint::Family::kIpv6;
  out.WriteU8(v6 ? 6 : 4);
  out.WriteBytes(absl::MakeConstSpan(endpoint.ip()).first(v6 ? 16 : 4));
  out.WriteU16(endpoint.port());
}

bool ReadEndpoint(ByteReader& in, net::Endpoint* out) {
  uint8_t family = 0;
  uint16_t port = 0;
  if (!in.ReadU8(&family)) return false;
  if (family == 4) {
    std::array<uint8_t, 4> ip;
    if (!in.ReadBytes(absl::MakeSpan(ip)) || !in.ReadU16(&port)) return false;
    *out = net::Endpoint::Ipv4(ip, port);
    return true;
  }
  if (family == 6) {
    std::array<uint8_t, 16> ip;
    if (!in.ReadBytes(absl::MakeSpan(ip)) || !in.ReadU16(&port)) return false;
    *out = net::Endpoint::Ipv6(ip, port);
    return true;
  }
  return false;
}

std::vector<uint8_t> BuildHello(const Hello& hello) {
  ByteWriter body;
  body.WriteBytes(hello.device_nonce);
  body.WriteString8(hello.device_id);
  body.PadTo(kMinHelloSize - kHeaderSize);
  return Plain(PacketType::kHello, 0, std::move(body));
}

std::vector<uint8_t> BuildChallenge(const Challenge& challenge) {
  ByteWriter body;
  body.WriteBytes(challenge.server_nonce);
  body.WriteU64(challenge.timestamp_ms);
  body.WriteBytes(challenge.cookie);
  return Plain(PacketType::kChallenge, 0, std::move(body));
}

std::vector<uint8_t> BuildProof(const Proof& proof) {
  ByteWriter body;
  body.WriteBytes(proof.device_nonce);
  body.WriteBytes(proof.server_nonce);
  body.WriteU64(proof.timestamp_ms);
  body.WriteBytes(proof.cookie);
  body.WriteString8(proof.device_id);
  body.WriteBytes(proof.proof);
  return Plain(PacketType::kProof, 0, std::move(body));
}

std::vector<uint8_t> BuildReset(uint64_t connection_id, const Reset& reset) {
  ByteWriter body;
  body.WriteBytes(reset.token);
  return Plain(PacketType::kReset, connection_id, std::move(body));
}

std::vector<uint8_t> EncodeAttached(const Attached& attached) {
  ByteWriter out;
  WriteEndpoint(attached.reflexive, out);
  out.WriteU32(attached.keepalive_interval_ms);
  out.WriteBytes(attached.reset_token);
  return out.Take();
}

std::vector<uint8_t> EncodeKeepAliveAck(const KeepAliveAck& ack) {
  ByteWriter out;
  WriteEndpoint(ack.reflexive, out);
  return out.Take();
}

std::vector<uint8_t> EncodeDetach(const Detach& detach) {
  ByteWriter out;
  out.WriteU8(static_cast<uint8_t>(detach.reason));
  return out.Take();
}

absl::StatusOr<Hello> ParseHello(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  Hello hello;
  if (!in.ReadBytes(absl::MakeSpan(hello.device_nonce))) return Malformed("HELLO");
  RETURN_IF_ERROR(ReadDeviceId(in, &hello.device_id));
  if (kHeaderSize + body.size() < kMinHelloSize) return Malformed("HELLO: not padded");
  const absl::Span<const uint8_t> padding = in.rest();
  if (std::any_of(padding.begin(), padding.end(), [](uint8_t b) { return b != 0; })) {
    return Malformed("HELLO: non-zero padding");
  }
  return hello;
}

absl::StatusOr<Challenge> ParseChallenge(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  Challenge challenge;
  in.ReadBytes(absl::MakeSpan(challenge.server_nonce));
  in.ReadU64(&challenge.timestamp_ms);
  in.ReadBytes(absl::MakeSpan(challenge.cookie));
  if (!in.done()) return Malformed("CHALLENGE");
  return challenge;
}

absl::StatusOr<Proof> ParseProof(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  Proof proof;
  in.ReadBytes(absl::MakeSpan(proof.device_nonce));
  in.ReadBytes(absl::MakeSpan(proof.server_nonce));
  in.ReadU64(&proof.timestamp_ms);
  in.ReadBytes(absl::MakeSpan(proof.cookie));
  if (!in.ok()) return Malformed("PROOF");
  RETURN_IF_ERROR(ReadDeviceId(in, &proof.device_id));
  in.ReadBytes(absl::MakeSpan(proof.proof));
  if (!in.done()) return Malformed("PROOF");
  return proof;
}

absl::StatusOr<Reset> ParseReset(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  Reset reset;
  in.ReadBytes(absl::MakeSpan(reset.token));
  if (!in.done()) return Malformed("RESET");
  return reset;
}

absl::StatusOr<Attached> ParseAttached(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  Attached attached;
  if (!ReadEndpoint(in, &attached.reflexive)) return Malformed("ATTACHED: address");
  in.ReadU32(&attached.keepalive_interval_ms);
  in.ReadBytes(absl::MakeSpan(attached.reset_token));
  if (!in.done()) return Malformed("ATTACHED");
  if (attached.keepalive_interval_ms == 0) return Malformed("ATTACHED: zero keep-alive interval");
  return attached;
}

absl::StatusOr<KeepAliveAck> ParseKeepAliveAck(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  KeepAliveAck ack;
  if (!ReadEndpoint(in, &ack.reflexive) || !in.done()) return Malformed("KEEPALIVE_ACK");
  return ack;
}

absl::StatusOr<Detach> ParseDetach(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  uint8_t reason = 0;
  if (!in.ReadU8(&reason) || !in.done()) return Malformed("DETACH");
  if (reason < static_cast<uint8_t>(DetachReason::kShutdown) ||
      reason > static_cast<uint8_t>(DetachReason::kReplaced)) {
    return Malformed("DETACH: unknown reason");
  }
  return Detach{static_cast<DetachReason>(reason)};
}

}  // namespace edgelink::wire

namespace edgelink::wire {
namespace {

void WriteCandidates(const std::vector<Candidate>& candidates, ByteWriter& out) {
  const size_t n = std::min(candidates.size(), kMaxCandidates);
  out.WriteU8(static_cast<uint8_t>(n));
  for (size_t i = 0; i < n; ++i) {
    out.WriteU8(static_cast<uint8_t>(candidates[i].kind));
    WriteEndpoint(candidates[i].endpoint, out);
  }
}

bool ReadCandidates(ByteReader& in, std::vector<Candidate>* out) {
  uint8_t n = 0;
  if (!in.ReadU8(&n) || n > kMaxCandidates) return false;
  out->resize(n);
  for (Candidate& c : *out) {
    uint8_t kind = 0;
    if (!in.ReadU8(&kind) || kind < 1 || kind > 4 || !ReadEndpoint(in, &c.endpoint)) return false;
    c.kind = static_cast<Candidate::Kind>(kind);
  }
  return true;
}

// An optional endpoint: family 0 means none.
void WriteOptionalEndpoint(const net::Endpoint& endpoint, ByteWriter& out) {
  if (endpoint.is_set()) {
    WriteEndpoint(endpoint, out);
  } else {
    out.WriteU8(0);
  }
}

bool ReadOptionalEndpoint(ByteReader& in, net::Endpoint* out) {
  if (in.remaining() > 0 && in.rest()[0] == 0) {
    uint8_t none;
    in.ReadU8(&none);
    *out = net::Endpoint();
    return true;
  }
  return ReadEndpoint(in, out);
}

void WriteBytes16(absl::Span<const uint8_t> bytes, ByteWriter& out) {
  const size_t n = std::min(bytes.size(), kMaxPayload);
  out.WriteU16(static_cast<uint16_t>(n));
  out.WriteBytes(bytes.first(n));
}

bool ReadBytes16(ByteReader& in, std::vector<uint8_t>* out) {
  uint16_t n = 0;
  absl::Span<const uint8_t> bytes;
  if (!in.ReadU16(&n) || n > kMaxPayload || !in.ReadSpan(n, &bytes)) return false;
  out->assign(bytes.begin(), bytes.end());
  return true;
}

bool ReadBytes8(ByteReader& in, std::vector<uint8_t>* out) {
  std::string text;
  if (!in.ReadString8(&text)) return false;
  out->assign(text.begin(), text.end());
  return true;
}

}  // namespace

std::vector<uint8_t> EncodeConnectRequest(const ConnectRequest& request) {
  ByteWriter out;
  out.WriteU64(request.request_id);
  out.WriteBytes(request.session_id);
  out.WriteBytes(request.session_key.span());
  out.WriteBytes(request.client_nonce);
  out.WriteU32(request.valid_ms);
  out.WriteBytes(request.client_fingerprint);
  out.WriteString8(request.client_name);
  WriteCandidates(request.client_candidates, out);
  out.WriteString8(absl::string_view(reinterpret_cast<const char*>(request.relay_ticket.data()),
                                     request.relay_ticket.size()));
  WriteOptionalEndpoint(request.relay, out);
  return out.Take();
}

absl::StatusOr<ConnectRequest> ParseConnectRequest(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  ConnectRequest request;
  in.ReadU64(&request.request_id);
  in.ReadBytes(absl::MakeSpan(request.session_id));
  in.ReadBytes(request.session_key.mutable_span());
  in.ReadBytes(absl::MakeSpan(request.client_nonce));
  in.ReadU32(&request.valid_ms);
  in.ReadBytes(absl::MakeSpan(request.client_fingerprint));
  in.ReadString8(&request.client_name);
  if (!in.ok() || !ReadCandidates(in, &request.client_candidates) ||
      !ReadBytes8(in, &request.relay_ticket) || !ReadOptionalEndpoint(in, &request.relay) ||
      !in.done()) {
    return Malformed("CONNECT_REQUEST");
  }
  return request;
}

std::vector<uint8_t> EncodeConnectResponse(const ConnectResponse& response) {
  ByteWriter out;
  out.WriteU64(response.request_id);
  out.WriteU8(static_cast<uint8_t>(response.verdict));
  out.WriteBytes(response.device_nonce);
  WriteCandidates(response.device_candidates, out);
  return out.Take();
}

absl::StatusOr<ConnectResponse> ParseConnectResponse(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  ConnectResponse response;
  uint8_t verdict = 0;
  in.ReadU64(&response.request_id);
  in.ReadU8(&verdict);
  in.ReadBytes(absl::MakeSpan(response.device_nonce));
  if (!in.ok() || verdict < 1 || verdict > 3 || !ReadCandidates(in, &response.device_candidates) ||
      !in.done()) {
    return Malformed("CONNECT_RESPONSE");
  }
  response.verdict = static_cast<ConnectVerdict>(verdict);
  return response;
}

std::vector<uint8_t> EncodeDeviceRequest(const DeviceRequest& request) {
  ByteWriter out;
  out.WriteU64(request.request_id);
  out.WriteBytes(request.caller);
  out.WriteString8(request.caller_name);
  out.WriteString8(request.method);
  WriteBytes16(request.payload, out);
  return out.Take();
}

absl::StatusOr<DeviceRequest> ParseDeviceRequest(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  DeviceRequest request;
  in.ReadU64(&request.request_id);
  in.ReadBytes(absl::MakeSpan(request.caller));
  in.ReadString8(&request.caller_name);
  in.ReadString8(&request.method);
  if (!in.ok() || !ReadBytes16(in, &request.payload) || !in.done()) {
    return Malformed("DEVICE_REQUEST");
  }
  return request;
}

std::vector<uint8_t> EncodeDeviceResponse(const DeviceResponse& response) {
  ByteWriter out;
  out.WriteU64(response.request_id);
  out.WriteU8(response.code);
  out.WriteString8(response.message);
  WriteBytes16(response.payload, out);
  return out.Take();
}

absl::StatusOr<DeviceResponse> ParseDeviceResponse(absl::Span<const uint8_t> body) {
  ByteReader in(body);
  DeviceResponse response;
  in.ReadU64(&response.request_id);
  in.ReadU8(&response.code);
  in.ReadString8(&response.message);
  if (!in.ok() || response.code > 16 || !ReadBytes16(in, &response.payload) || !in.done()) {
    return Malformed("DEVICE_RESPONSE");
  }
  return response;
}

}  // namespace edgelink::wire
