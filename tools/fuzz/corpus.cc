#include "tools/fuzz/corpus.h"

// Without stdbool.h first, ldns/common.h defines `true` and `false` as macros.
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "basestation/relay/relay.h"
#include "common/channel/channel_crypto.h"
#include "common/crypto/aead.h"
#include "common/crypto/nonce_ledger.h"
#include "common/rpc/rpc.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/bytes.h"
#include "common/wire/device_methods.h"
#include "common/wire/packet.h"
#include "device/access/access_list.h"
#include "tools/fuzz/attach_world.h"
#include "tools/fuzz/dns_world.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/peer_world.h"
#include "tools/fuzz/relay_world.h"
#include "tools/fuzz/tmp_file.h"
#include "tools/fuzz/wire_world.h"

namespace edgelink::fuzz {
namespace {

using Bytes = std::vector<uint8_t>;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "corpus: %s\n", what.c_str());
  std::abort();
}

template <typename T>
T ValueOr(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes U16(uint16_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }

Bytes Text(absl::string_view text) { return Bytes(text.begin(), text.end()); }

// A fuzz script (fuzz_input.h): an optional prefix, then records.
class Script {
 public:
  explicit Script(Bytes prefix = {}) : bytes_(std::move(prefix)) {}
  Script& Add(uint8_t op, const Bytes& bytes) {
    AppendRecord(bytes_, op, bytes);
    return *this;
  }
  Bytes bytes() const { return bytes_; }

 private:
  Bytes bytes_;
};

class Seeds {
 public:
  void Add(std::string name, Bytes bytes) {
    seeds_.push_back({absl::StrCat(seeds_.size() < 10 ? "0" : "", seeds_.size(), "-", name),
                      std::move(bytes)});
  }
  void Add(std::string name, const Script& script) { Add(std::move(name), script.bytes()); }
  std::vector<Seed> Take() { return std::move(seeds_); }

 private:
  std::vector<Seed> seeds_;
};

net::Endpoint V4(uint8_t last, uint16_t port) { return net::Endpoint::Ipv4({10, 0, 0, last}, port); }
net::Endpoint V6(uint8_t last, uint16_t port) {
  return net::Endpoint::Ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last},
                             port);
}

wire::Fingerprint FingerprintOf(uint8_t fill) {
  wire::Fingerprint f;
  f.fill(fill);
  return f;
}

wire::ConnectRequest SampleConnectRequest(uint64_t id, bool with_relay) {
  wire::ConnectRequest request;
  request.request_id = id;
  request.session_id.fill(0x31);
  request.session_key = crypto::SecretArray<wire::kSessionKeySize>::CopyFrom(Bytes(16, 0x32));
  request.client_nonce.fill(0x34);
  request.valid_ms = 5000;
  request.client_fingerprint = FingerprintOf(0x40);
  request.client_name = "alice's phone";
  request.client_candidates = {{wire::Candidate::Kind::kHost, V4(5, 5000)},
                               {wire::Candidate::Kind::kServerReflexive, V6(5, 5000)}};
  if (with_relay) {
    request.relay_ticket = Bytes(basestation::kRelayTicketSize, 0x33);
    request.relay = net::Endpoint::Ipv4({203, 0, 113, 1}, 7001);
  }
  return request;
}

wire::DeviceRequest SampleDeviceRequest(uint64_t id, std::string method, Bytes payload) {
  return {id, FingerprintOf(0x41), "bob", std::move(method), std::move(payload)};
}

Bytes Body(const Bytes& packet) { return Bytes(packet.begin() + wire::kHeaderSize, packet.end()); }

// --- attach_packet: ops 0 raw, 1 raw other, 2 sealed, 3 sealed other, 4 time, 5 device turn,
// 6 basestation action, 7 device restart.
std::vector<Seed> AttachPacketSeeds() {
  AttachWorld world(AttachWorld::Stage::kAttached);
  Seeds seeds;
  auto sealed = [](wire::PacketType type, uint8_t pn, uint8_t selector, const Bytes& body) {
    return Cat({{static_cast<uint8_t>(static_cast<uint8_t>(type) - 1), pn, selector}, body});
  };
  seeds.Add("hello", Script().Add(0, world.hello()));
  seeds.Add("hello_other_address", Script().Add(1, world.hello()).Add(10, world.hello()));
  seeds.Add("proof_retransmitted", Script().Add(0, world.proof()));
  seeds.Add("proof_wrong_address", Script().Add(1, world.proof()));
  seeds.Add("keepalive", Script().Add(2, sealed(wire::PacketType::kKeepAlive, 0, 0, {})));
  seeds.Add("keepalive_replayed", Script()
                                      .Add(2, sealed(wire::PacketType::kKeepAlive, 5, 0, {}))
                                      .Add(2, sealed(wire::PacketType::kKeepAlive, 5, 0, {})));
  seeds.Add("keepalive_nat_rebinding",
            Script().Add(3, sealed(wire::PacketType::kKeepAlive, 1, 0, {})));
  seeds.Add("keepalive_unknown_session",
            Script().Add(2, sealed(wire::PacketType::kKeepAlive, 1, 3, {})));
  seeds.Add("keepalive_connection_zero",
            Script().Add(2, sealed(wire::PacketType::kKeepAlive, 1, 1, {})));
  seeds.Add("detach", Script().Add(2, sealed(wire::PacketType::kDetach, 1, 0,
                                             wire::EncodeDetach({wire::DetachReason::kShutdown}))));
  seeds.Add("connect_response",
            Script().Add(2, sealed(wire::PacketType::kConnectResponse, 2, 0,
                                   wire::EncodeConnectResponse(
                                       {7, wire::ConnectVerdict::kAccepted, {},
                                        {{wire::Candidate::Kind::kHost, V4(2, 6000)},
                                         {wire::Candidate::Kind::kRelay, V6(2, 6000)}}}))));
  seeds.Add("device_response",
            Script().Add(2, sealed(wire::PacketType::kDeviceResponse, 3, 0,
                                   wire::EncodeDeviceResponse({8, 0, "ok", {1, 2, 3}}))));
  seeds.Add("raw_sealed_keepalive",
            Script().Add(0, world.SealToServer(wire::PacketType::kKeepAlive,
                                               world.connection_id(), 0, {})));
  seeds.Add("expiry", Script().Add(4, U16(90)).Add(4, U16(10)));
  seeds.Add("device_keepalive", Script().Add(4, U16(25)).Add(5, {}).Add(4, U16(25)).Add(5, {}));
  seeds.Add("revoke", Script().Add(6, {0}).Add(0, world.proof()));
  seeds.Add("connect_request_answered", Script().Add(6, {1}).Add(5, {}));
  seeds.Add("device_request_answered", Script().Add(6, {2, 4, 5, 6}).Add(5, {}));
  seeds.Add("device_restarts", Script().Add(7, {}).Add(4, U16(1)).Add(5, {}));
  // PROOFs made by the harness: flags (1 cookie, 2 tag, 4 revoked) || timestamp delta ||
  // device nonce || server nonce || device id.
  auto proof = [](uint8_t flags, int8_t delta, uint8_t nonce, absl::string_view id) {
    return Cat({{flags, static_cast<uint8_t>(delta)}, Bytes(16, nonce), Bytes(16, 0x62), Text(id)});
  };
  seeds.Add("proof_new_handshake", Script().Add(8, proof(3, 0, 0x61, "cam-1")).Add(5, {}));
  seeds.Add("proof_older_replayed",
            Script().Add(8, proof(3, 0, 0x61, "cam-1")).Add(8, proof(3, -5, 0x63, "cam-1")));
  seeds.Add("proof_revoked", Script().Add(8, proof(7, 0, 0x61, "cam-1")).Add(5, {}));
  seeds.Add("proof_unknown_device", Script().Add(8, proof(3, 0, 0x61, "cam-2")));
  seeds.Add("proof_wrong_tag", Script().Add(8, proof(1, 0, 0x61, "cam-1")));
  seeds.Add("proof_expired_cookie", Script().Add(8, proof(3, -100, 0x61, "cam-1")));
  seeds.Add("proof_forged_cookie", Script().Add(8, proof(2, 0, 0x61, "cam-1")));
  {
    wire::ByteWriter absolute;
    absolute.WriteU8(1 | 2 | 8);
    absolute.WriteU64(static_cast<uint64_t>(absl::ToUnixSeconds(StartTime())) - 2);
    absolute.WriteBytes(Bytes(16, 0x64));
    absolute.WriteBytes(Bytes(16, 0x62));
    absolute.WriteBytes(Text("cam-1"));
    seeds.Add("proof_absolute_timestamp", Script().Add(8, absolute.bytes()));
  }
  // One raw packet of every type, with an empty body.
  for (uint8_t type = 1; type <= wire::kMaxPacketType; ++type) {
    wire::ByteWriter out;
    wire::WriteHeader({static_cast<wire::PacketType>(type), world.connection_id(), 9}, out);
    seeds.Add(absl::StrCat("empty_type_", type), Script().Add(0, out.bytes()));
  }
  return seeds.Take();
}

// --- attach_client: prefix stage (0 hello, 1 proof, 2 attached); ops 0 raw, 1 raw other,
// 2 sealed, 3 time, 4 exchange, 5 basestation request, 6 control, 7 reset.
std::vector<Seed> AttachClientSeeds() {
  AttachWorld hello(AttachWorld::Stage::kHello);
  AttachWorld proof(AttachWorld::Stage::kProof);
  AttachWorld attached(AttachWorld::Stage::kAttached);
  Seeds seeds;
  auto sealed = [](wire::PacketType type, uint8_t pn, uint8_t selector, const Bytes& body) {
    return Cat({{static_cast<uint8_t>(static_cast<uint8_t>(type) - 1), pn, selector}, body});
  };
  const Bytes attached_body =
      wire::EncodeAttached({AttachWorld::DeviceAddress(), 25000, {}});
  seeds.Add("hello_challenge", Script(Bytes{0}).Add(0, hello.challenge()));
  seeds.Add("hello_challenge_exchange", Script(Bytes{0}).Add(0, hello.challenge()).Add(4, {}));
  seeds.Add("hello_retransmits", Script(Bytes{0}).Add(3, U16(12)).Add(3, U16(25)).Add(3, U16(50))
                                     .Add(3, U16(100)).Add(3, U16(200)));
  seeds.Add("hello_other_address", Script(Bytes{0}).Add(1, hello.challenge()));
  seeds.Add("proof_attached", Script(Bytes{1}).Add(0, proof.attached()));
  seeds.Add("proof_sealed_attached",
            Script(Bytes{1}).Add(2, sealed(wire::PacketType::kAttached, 0, 1, attached_body)));
  seeds.Add("proof_revoked", Script(Bytes{1}).Add(2, sealed(wire::PacketType::kDetach, 1, 2,
                                                       wire::EncodeDetach(
                                                           {wire::DetachReason::kRevoked}))));
  seeds.Add("proof_timeout", Script(Bytes{1}).Add(3, U16(12)).Add(4, {}));
  seeds.Add("attached_keepalive_ack",
            Script(Bytes{2}).Add(2, sealed(wire::PacketType::kKeepAliveAck, 1, 0,
                                      wire::EncodeKeepAliveAck({V6(7, 40000)}))));
  seeds.Add("attached_connect_request",
            Script(Bytes{2}).Add(2, sealed(wire::PacketType::kConnectRequest, 1, 0,
                                      wire::EncodeConnectRequest(SampleConnectRequest(5, true))))
                .Add(2, sealed(wire::PacketType::kConnectRequest, 2, 0,
                               wire::EncodeConnectRequest(SampleConnectRequest(5, false)))));
  seeds.Add("attached_device_request",
            Script(Bytes{2}).Add(2, sealed(wire::PacketType::kDeviceRequest, 1, 0,
                                      wire::EncodeDeviceRequest(SampleDeviceRequest(
                                          6, wire::kMethodListUsers, {3})))));
  seeds.Add("attached_detach", Script(Bytes{2}).Add(2, sealed(wire::PacketType::kDetach, 1, 0,
                                                         wire::EncodeDetach(
                                                             {wire::DetachReason::kReplaced}))));
  seeds.Add("attached_reset", Script(Bytes{2}).Add(7, {0}));
  seeds.Add("attached_raw_reset", Script(Bytes{2}).Add(0, AttachWorld::ResetFor(
                                                           attached.connection_id())));
  seeds.Add("attached_keepalives", Script(Bytes{2}).Add(3, U16(250)).Add(4, {}).Add(3, U16(250))
                                       .Add(3, U16(50)).Add(3, U16(50)).Add(3, U16(50)));
  seeds.Add("attached_server_requests", Script(Bytes{2}).Add(5, {0}).Add(5, {1, 9, 9}).Add(4, {}));
  seeds.Add("attached_control",
            Script(Bytes{2}).Add(6, {3}).Add(3, U16(5)).Add(6, {3}).Add(6, {2}).Add(6, {1}).Add(4, {}));
  seeds.Add("attached_raw_attached_again", Script(Bytes{2}).Add(0, proof.attached()));
  return seeds.Take();
}

// --- wire_parsers: selector || bytes.
std::vector<Seed> WireParserSeeds() {
  Seeds seeds;
  auto add = [&](const std::string& name, uint8_t selector, const Bytes& bytes) {
    seeds.Add(name, Cat({{selector}, bytes}));
  };
  wire::Hello hello{"cam-1", {}};
  hello.device_nonce.fill(7);
  wire::Challenge challenge;
  challenge.server_nonce.fill(8);
  challenge.timestamp_ms = 1700000000000;
  challenge.cookie.fill(9);
  wire::Proof proof{"cam-1", hello.device_nonce, challenge.server_nonce, 1700000000000,
                    challenge.cookie, {}};
  proof.proof.fill(10);
  wire::Reset reset;
  reset.token.fill(11);
  add("header", 0, wire::BuildHello(hello));
  add("hello", 1, Body(wire::BuildHello(hello)));
  add("challenge", 2, Body(wire::BuildChallenge(challenge)));
  add("proof", 3, Body(wire::BuildProof(proof)));
  add("reset", 4, Body(wire::BuildReset(42, reset)));
  add("attached_v4", 5, wire::EncodeAttached({V4(9, 40000), 25000, reset.token}));
  add("attached_v6", 5, wire::EncodeAttached({V6(9, 40000), 25000, reset.token}));
  add("keepalive_ack", 6, wire::EncodeKeepAliveAck({V6(9, 1)}));
  add("detach", 7, wire::EncodeDetach({wire::DetachReason::kRevoked}));
  add("connect_request", 8, wire::EncodeConnectRequest(SampleConnectRequest(1, true)));
  add("connect_request_no_relay", 8, wire::EncodeConnectRequest(SampleConnectRequest(2, false)));
  add("connect_response", 9,
      wire::EncodeConnectResponse({3, wire::ConnectVerdict::kBusy, {},
                                   {{wire::Candidate::Kind::kPredicted, V4(3, 3)}}}));
  add("device_request", 10,
      wire::EncodeDeviceRequest(SampleDeviceRequest(4, wire::kMethodPair, Bytes(33, 1))));
  add("device_response", 11, wire::EncodeDeviceResponse({5, 7, "permission denied", {}}));
  {
    wire::ByteWriter v4, v6;
    wire::WriteEndpoint(V4(1, 80), v4);
    wire::WriteEndpoint(V6(1, 443), v6);
    add("endpoint_v4", 12, v4.bytes());
    add("endpoint_v6", 12, v6.bytes());
  }
  {
    const wire::SessionKeys keys = WireFuzzKeys();
    const wire::Nonce session_nonce = WireFuzzSessionNonce();
    std::unique_ptr<crypto::Aead> aead =
        ValueOr(crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize)), "Aead::New");
    auto seal = [&](const wire::DirectionKeys& direction, wire::PacketType type,
                    const Bytes& body) {
      const wire::Header header{type, 0x100000001, 3};
      const crypto::NonceLedgerExemption crafted;  // Seeds, sealed as an attacker with keys would.
      return ValueOr(wire::SealPacket(*aead, direction, header, body,
                                      wire::CarriesSessionNonce(header)
                                          ? absl::MakeConstSpan(session_nonce)
                                          : absl::Span<const uint8_t>()),
                     "SealPacket");
    };
    add("packet_hello", 13, wire::BuildHello(hello));
    add("packet_proof", 13, wire::BuildProof(proof));
    add("packet_keepalive", 13, seal(keys.device_to_server, wire::PacketType::kKeepAlive, {}));
    add("packet_attached", 13,
        seal(keys.server_to_device, wire::PacketType::kAttached,
             wire::EncodeAttached({V4(9, 40000), 25000, reset.token})));
    add("packet_connect_request", 13,
        seal(keys.server_to_device, wire::PacketType::kConnectRequest,
             wire::EncodeConnectRequest(SampleConnectRequest(1, true))));
    add("packet_device_response", 13,
        seal(keys.device_to_server, wire::PacketType::kDeviceResponse,
             wire::EncodeDeviceResponse({5, 0, "", {1}})));
  }
  wire::PairArgs pair;
  pair.proof.fill(0x55);
  pair.name = "owner phone";
  add("pair_args", 14, wire::EncodePairArgs(pair));
  const wire::UserEntry user{FingerprintOf(0x66), wire::Role::kUser, "carol", 1700000000};
  add("user_args", 15, wire::EncodeUserArgs(user));
  add("fingerprint_args", 16, wire::EncodeFingerprintArgs(FingerprintOf(0x77)));
  add("user_list", 17,
      wire::EncodeUserList({user, {FingerprintOf(0x88), wire::Role::kOwner, "", 1}}));
  add("fingerprint_hex", 18, Text(wire::FingerprintHex(FingerprintOf(0xab))));
  add("role", 19, Text("guest"));
  add("device_id", 19, Text("cam-1"));
  add("endpoint_text_v4", 20, Text("192.0.2.1:7000"));
  add("endpoint_text_v6", 20, Text("[2001:db8::1]:7000"));
  return seeds.Take();
}

// --- peer_channel: ops 0 raw device, 1 raw relay, 2 raw new, 3 sealed, 4 time, 5 client action,
// 6 relay forms, 7 exchange. Sealed: type u8 (bit 7: next keys) || packet number u16 || payload.
std::vector<Seed> PeerChannelSeeds() {
  PeerWorld world;
  Seeds seeds;
  auto sealed = [](channel::PeerPacketType type, bool next_keys, uint16_t pn,
                   const Bytes& payload) {
    return Cat({{static_cast<uint8_t>((static_cast<uint8_t>(type) - 1) | (next_keys ? 0x80 : 0))},
                U16(pn),
                payload});
  };
  wire::ByteWriter probe_ack;
  probe_ack.WriteU32(0x01020304);
  wire::WriteEndpoint(PeerWorld::ClientAddress(), probe_ack);
  probe_ack.WriteU8(1);
  wire::ByteWriter candidates;
  candidates.WriteU8(2);
  candidates.WriteU8(2);
  wire::WriteEndpoint(net::Endpoint::Ipv4({198, 51, 100, 3}, 6000), candidates);
  candidates.WriteU8(1);
  wire::WriteEndpoint(V6(4, 6000), candidates);
  const Bytes data = {static_cast<uint8_t>(channel::DataKind::kRpc), 'h', 'i'};
  seeds.Add("probe", Script().Add(3, sealed(channel::PeerPacketType::kProbe, false, 1,
                                            {0, 0, 0, 9, 0})));
  seeds.Add("probe_ack", Script().Add(3, sealed(channel::PeerPacketType::kProbeAck, false, 2,
                                                probe_ack.bytes())));
  seeds.Add("data", Script().Add(3, sealed(channel::PeerPacketType::kData, false, 3, data)));
  seeds.Add("close", Script().Add(3, sealed(channel::PeerPacketType::kClose, false, 4, {0})));
  seeds.Add("candidates", Script().Add(3, sealed(channel::PeerPacketType::kCandidates, false, 5,
                                                 candidates.bytes())));
  seeds.Add("probe_from_new_address",
            Script().Add(3 | 2 << 3, sealed(channel::PeerPacketType::kProbe, false, 6,
                                            {0, 0, 0, 10, 2})).Add(7, {}));
  seeds.Add("data_via_relay",
            Script().Add(3 | 1 << 3, sealed(channel::PeerPacketType::kData, false, 7, data)));
  seeds.Add("key_update", Script()
                              .Add(3, sealed(channel::PeerPacketType::kData, true, 8, data))
                              .Add(3, sealed(channel::PeerPacketType::kData, false, 9, data)));
  seeds.Add("replayed", Script()
                            .Add(3, sealed(channel::PeerPacketType::kData, false, 10, data))
                            .Add(3, sealed(channel::PeerPacketType::kData, false, 10, data)));
  {
    Bytes bound = {channel::kRelayMarker, 2};
    const wire::SessionId id = PeerWorld::SessionId();
    bound.insert(bound.end(), id.begin(), id.end());
    bound.push_back(2);
    wire::ByteWriter reflection;
    reflection.WriteU8(channel::kRelayMarker);
    reflection.WriteU8(4);
    wire::WriteEndpoint(net::Endpoint::Ipv4({198, 51, 100, 20}, 40001), reflection);
    wire::ByteWriter reflection6;
    reflection6.WriteU8(channel::kRelayMarker);
    reflection6.WriteU8(4);
    wire::WriteEndpoint(V6(20, 40001), reflection6);
    seeds.Add("relay_bound", Script().Add(1, bound));
    seeds.Add("relay_reflection", Script().Add(1, reflection.bytes()).Add(7, {}));
    seeds.Add("relay_reflection_v6", Script().Add(1, reflection6.bytes()));
    seeds.Add("relay_forms", Script().Add(6, {0, 1}).Add(6, {0, 2}).Add(6, {1, 4, 1, 2, 3, 4, 0, 80}));
    seeds.Add("relay_bind_echo", Script().Add(1, channel::BuildRelayBind(channel::Side::kDevice,
                                                                         Bytes(40, 1))));
  }
  seeds.Add("raw_probe", Script().Add(0, world.SealFromDevice(channel::PeerPacketType::kProbe,
                                                              false, 2000, {0, 0, 0, 1, 1})));
  seeds.Add("raw_data_new_address",
            Script().Add(2, world.SealFromDevice(channel::PeerPacketType::kData, false, 2001,
                                                 data)));
  seeds.Add("time", Script().Add(4, U16(1000)).Add(4, U16(4600)));
  seeds.Add("path_failure", Script().Add(5, {0, 1, 'x'}).Add(4, U16(100)).Add(4, U16(100))
                                .Add(4, U16(100)).Add(7, {}));
  seeds.Add("send_and_exchange", Script().Add(5, {0, 2, 'a', 'b'}).Add(7, {}));
  seeds.Add("close_local", Script().Add(5, {1}).Add(7, {}));
  seeds.Add("add_candidate",
            Script().Add(5, {2, 1, 198, 51, 100, 30, 0x17, 0x70}).Add(4, U16(20)).Add(7, {}));
  seeds.Add("send_oversized", Script().Add(5, {3, 0}));
  return seeds.Take();
}

// --- rpc_frame: ops 0 datagram, 1 time (10 ms units), 2 call (str8-ish method || payload).
std::vector<Seed> RpcFrameSeeds() {
  const absl::Time now = StartTime();
  rpc::RpcEndpoint caller;
  rpc::RpcEndpoint server;
  server.Handle("echo", [](absl::Span<const uint8_t> p) -> rpc::Reply { return Bytes(p.begin(), p.end()); });
  server.Handle("fail", [](absl::Span<const uint8_t>) -> rpc::Reply {
    return absl::InvalidArgumentError("bad request");
  });
  // The same three calls the harness makes (ids 1-3), and one more.
  caller.Call("echo", Bytes{1, 2, 3}, now + absl::Seconds(2), [](rpc::Reply) {}, now);
  caller.Call("fail", {}, now + absl::Seconds(2), [](rpc::Reply) {}, now);
  caller.Call("nosuch", Bytes{4}, now + absl::Seconds(2), [](rpc::Reply) {}, now);
  caller.Call("echo", Bytes(100, 5), now + absl::Seconds(2), [](rpc::Reply) {}, now);
  const std::vector<Bytes> requests = caller.TakeOutgoing();
  std::vector<Bytes> responses;
  for (const Bytes& request : requests) {
    server.OnDatagram(request, now);
    for (Bytes& response : server.TakeOutgoing()) responses.push_back(std::move(response));
  }
  if (requests.size() != 4 || responses.size() != 4) Fail("rpc frames");
  Seeds seeds;
  for (size_t i = 0; i < requests.size(); ++i) {
    seeds.Add(absl::StrCat("request_", i + 1), Script().Add(0, requests[i]));
    seeds.Add(absl::StrCat("response_", i + 1), Script().Add(0, responses[i]));
  }
  seeds.Add("request_retransmitted", Script().Add(0, requests[0]).Add(0, requests[0]));
  seeds.Add("responses_all", Script().Add(0, responses[0]).Add(0, responses[1])
                                 .Add(0, responses[2]).Add(0, responses[0]));
  seeds.Add("retransmit_then_deadline", Script().Add(1, U16(20)).Add(1, U16(40)).Add(1, U16(200)));
  seeds.Add("new_call", Script().Add(2, Cat({{4}, Text("echo"), {9, 9}})).Add(1, U16(300)));
  return seeds.Take();
}

// --- relay: op % 8 = 0 raw, 4 peer packet (session, type, rest), 1 bind (side, session, expiry,
// padding), 2 reflect, 3 time; op >> 3 picks the source address.
std::vector<Seed> RelaySeeds() {
  const basestation::RelayKey key = RelayFuzzKey();
  Seeds seeds;
  const uint8_t kA = 0, kB = 1 << 3, kC = 2 << 3, kD = 3 << 3;
  // A peer packet of session 1 as sent raw (its channel id spelled out), and as op 4 records.
  const Bytes peer_packet = RelayFuzzPeerPacket(1, 0x03, Bytes(24, 0x77));
  auto peer = [](uint8_t session) { return Cat({{session, 0x03}, Bytes(24, 0x77)}); };
  const Script both = Script().Add(1 | kA, {0, 1, 200, 0}).Add(1 | kB, {1, 1, 200, 0});
  seeds.Add("bind_one_side", Script().Add(1 | kA, {0, 1, 200, 0}).Add(0 | kA, peer_packet));
  seeds.Add("bind_both_and_forward", Script(both).Add(0 | kA, peer_packet).Add(0 | kB, peer_packet));
  seeds.Add("rebind_moves_address",
            Script(both).Add(1 | kD, {0, 1, 200, 0}).Add(0 | kD, peer_packet).Add(0 | kA, peer_packet));
  // B is the device side of sessions 1 and 2 (one device, two clients): both forward.
  seeds.Add("address_in_two_sessions", Script(both)
                                           .Add(1 | kC, {0, 2, 200, 0})
                                           .Add(1 | kB, {1, 2, 200, 0})
                                           .Add(4 | kB, peer(1))
                                           .Add(4 | kB, peer(2))
                                           .Add(4 | kA, peer(1))
                                           .Add(4 | kC, peer(2))
                                           .Add(1 | kB, {1, 1, 200, 0})
                                           .Add(4 | kC, peer(2)));
  seeds.Add("address_takes_other_side",
            Script(both).Add(1 | kA, {1, 1, 200, 0}).Add(4 | kA, peer(1)).Add(4 | kB, peer(1)));
  seeds.Add("channel_id_of_another_session",
            Script(both).Add(1 | kC, {0, 2, 200, 0}).Add(4 | kA, peer(2)).Add(4 | kB, peer(3)));
  seeds.Add("channel_id_collision", Script(both)
                                        .Add(1 | kC, {0, 5, 200, 0})
                                        .Add(4 | kC, peer(5))
                                        .Add(3, U16(61))
                                        .Add(1 | kC, {0, 5, 200, 0})
                                        .Add(1 | kD, {1, 5, 200, 0})
                                        .Add(4 | kC, peer(5)));
  seeds.Add("short_and_foreign_datagrams", Script(both)
                                               .Add(4 | kA, {1, 0x03, 0, 0})
                                               .Add(0 | kA, Bytes(40, 0x01))
                                               .Add(0 | kA, {0x02}));
  seeds.Add("reflect", Script().Add(2 | kC, {}).Add(2 | kA, {}));
  seeds.Add("expired_ticket", Script().Add(1 | kA, {0, 1, 0, 0}));
  seeds.Add("bind_padding", Script().Add(1 | kC, {1, 3, 100, 40}));
  seeds.Add("too_many_sessions", Script()
                                     .Add(1 | kA, {0, 0, 200, 0})
                                     .Add(1 | kB, {0, 1, 200, 0})
                                     .Add(1 | kC, {0, 2, 200, 0})
                                     .Add(1 | kD, {0, 3, 200, 0}));
  seeds.Add("idle_timeout", Script(both).Add(3, U16(61)).Add(0 | kA, peer_packet));
  seeds.Add("ticket_expiry", Script(both).Add(3, U16(200)).Add(0 | kB, peer_packet));
  {
    Script rate = both;
    const Bytes big = RelayFuzzPeerPacket(1, 0x03, Bytes(1390, 0x02));
    for (int i = 0; i < 4; ++i) rate.Add(0 | kA, big);
    rate.Add(3, U16(1)).Add(0 | kA, big);
    seeds.Add("rate_limit", rate);
  }
  basestation::RelaySessionId session = RelayFuzzSession(1);
  const basestation::RelayTicket ticket =
      basestation::MakeRelayTicket(key, session, StartTime() + absl::Hours(1));
  seeds.Add("raw_bind", Script().Add(0 | kA, basestation::BuildRelayBind(
                                               basestation::RelaySide::kClient, ticket)));
  Bytes reflect(basestation::kRelayReflectSize, 0);
  reflect[0] = basestation::kRelayControlByte;
  reflect[1] = basestation::kRelayReflectType;
  seeds.Add("raw_reflect", Script().Add(0 | kC, reflect));
  return seeds.Take();
}

// --- dns_query: one query datagram.
Bytes DnsQuery(const std::string& name, ldns_rr_type type, ldns_rr_class klass, bool edns = false,
               uint16_t udp_size = 0, uint8_t version = 0) {
  ldns_pkt* query = nullptr;
  if (ldns_pkt_query_new_frm_str(&query, name.c_str(), type, klass, LDNS_RD) != LDNS_STATUS_OK) {
    Fail("ldns_pkt_query_new_frm_str " + name);
  }
  ldns_pkt_set_id(query, 0x4242);
  if (edns) {
    ldns_pkt_set_edns_udp_size(query, udp_size);
    ldns_pkt_set_edns_version(query, version);
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, query, &size) != LDNS_STATUS_OK) Fail("ldns_pkt2wire");
  Bytes out(wire, wire + size);
  free(wire);
  ldns_pkt_free(query);
  return out;
}

std::vector<Seed> DnsQuerySeeds() {
  const std::string zone = kDnsFuzzZone;
  Seeds seeds;
  seeds.Add("device_a", DnsQuery("cam-1." + zone, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN));
  seeds.Add("device_aaaa", DnsQuery("cam-1." + zone, LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN));
  seeds.Add("device_any", DnsQuery("cam-1." + zone, LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY));
  seeds.Add("device_mx", DnsQuery("cam-1." + zone, LDNS_RR_TYPE_MX, LDNS_RR_CLASS_IN));
  seeds.Add("device_mixed_case", DnsQuery("CaM-1.DeViCeS.example.COM", LDNS_RR_TYPE_A,
                                          LDNS_RR_CLASS_IN));
  seeds.Add("apex_soa", DnsQuery(zone, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN));
  seeds.Add("apex_ns", DnsQuery(zone, LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN));
  seeds.Add("apex_aaaa", DnsQuery(zone + ".", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN));
  seeds.Add("ns_a", DnsQuery("ns." + zone, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN));
  seeds.Add("unknown_device", DnsQuery("cam-2." + zone, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN));
  seeds.Add("known_prefix", DnsQuery("known-7." + zone, LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN));
  seeds.Add("too_deep", DnsQuery("a.cam-1." + zone, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN));
  seeds.Add("outside_zone", DnsQuery("example.org", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN));
  seeds.Add("axfr", DnsQuery(zone, LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN));
  seeds.Add("chaos", DnsQuery("version.bind", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH));
  seeds.Add("edns", DnsQuery("cam-1." + zone, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, true, 4096));
  seeds.Add("edns_small", DnsQuery(zone, LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN, true, 100));
  seeds.Add("edns_version_1", DnsQuery(zone, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, true, 1232, 1));
  {
    Bytes notify = DnsQuery(zone, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
    LDNS_OPCODE_SET(notify.data(), LDNS_PACKET_NOTIFY);
    seeds.Add("opcode_notify", notify);
    Bytes header_only(notify.begin(), notify.begin() + LDNS_HEADER_SIZE);
    LDNS_OPCODE_SET(header_only.data(), LDNS_PACKET_QUERY);
    header_only[4] = header_only[5] = 0;  // QDCOUNT 0
    seeds.Add("no_question", header_only);
    Bytes truncated(notify.begin(), notify.end() - 3);
    LDNS_OPCODE_SET(truncated.data(), LDNS_PACKET_QUERY);
    seeds.Add("truncated", truncated);
  }
  return seeds.Take();
}

// --- device_config: config file text.
std::vector<Seed> DeviceConfigSeeds() {
  Seeds seeds;
  const std::string secret(64, 'a');
  seeds.Add("full", Text(absl::StrCat(
                        "# edgelink device\n"
                        "device_id = cam-1\n"
                        "secret = ", secret, "\n"
                        "zone = devices.example.com   # found at <device_id>.<zone>\n"
                        "basestation_port = 7000\n"
                        "dns_server = 192.0.2.53:53\n"
                        "remote_access = on\n"
                        "pairing_secret = BQ6R-T6CL-673M-ZLT8\n"
                        "access_list = /var/lib/edgelink/access\n")));
  seeds.Add("basestation_v6", Text(absl::StrCat("device_id=door\nsecret=", secret.substr(0, 32),
                                                "\nbasestation=[2001:db8::1]:7000\n"
                                                "pairing_secret=12345678\nremote_access=off\n"
                                                "dns_server = [::1]:5353\n")));
  seeds.Add("basestation_v4", Text(absl::StrCat("device_id = a\r\nsecret = ", secret,
                                                "\r\nbasestation = 192.0.2.10:7000\r\n"
                                                "pairing_secret = abcdefgh\r\n")));
  seeds.Add("missing_secret", Text("device_id = cam-1\nzone = example.com\n"));
  seeds.Add("bad_lines", Text("device_id\n= value\nunknown_key = 1\nbasestation_port = 70000\n"));
  return seeds.Take();
}

// --- access_list: files the real AccessList wrote.
std::vector<Seed> AccessListSeeds() {
  Seeds seeds;
  const crypto::SecretBytes secret = crypto::SecretBytes::CopyFrom(Text("BQ6R-T6CL-673M-ZLT8"));
  static int generation = 0;
  const std::string path =
      absl::StrCat(ScratchDirectory(), "/seed-access-", getpid(), "-", generation++);
  unlink(path.c_str());
  auto read = [&] {
    std::string text;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail("cannot read " + path);
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) text.append(buffer, n);
    close(fd);
    return Text(text);
  };
  const auto now = StartTime();
  const std::string owner(64, 'a'), user(64, 'b'), guest(64, 'c'), stranger(64, 'd');
  std::unique_ptr<device::AccessList> list =
      ValueOr(device::AccessList::Open(path, secret), "AccessList::Open");
  // A wrong proof is the only change an unpaired device saves.
  (void)list->Pair(stranger, "mallory", Bytes(32, 0), now);
  seeds.Add("unpaired_one_failure", read());
  for (int i = 0; i < 5; ++i) (void)list->Pair(stranger, "mallory", Bytes(32, 0), now);
  seeds.Add("locked_out", read());
  list = ValueOr(device::AccessList::Open(path, secret), "AccessList::Open");
  const crypto::Sha256Digest proof = ValueOr(device::PairingProof(secret, owner), "PairingProof");
  if (!list->Pair(owner, "owner's phone", proof, now + absl::Hours(2)).ok()) Fail("Pair");
  seeds.Add("paired", read());
  if (!list->AddUser(owner, user, device::Role::kUser, "bob", now + absl::Hours(3)).ok() ||
      !list->AddUser(owner, guest, device::Role::kGuest, "", now + absl::Hours(4)).ok()) {
    Fail("AddUser");
  }
  seeds.Add("three_entries", read());
  if (!list->ReopenPairing(owner).ok()) Fail("ReopenPairing");
  seeds.Add("reopened", read());
  if (!list->RemoveUser(owner, guest).ok()) Fail("RemoveUser");
  seeds.Add("guest_removed", read());
  unlink(path.c_str());
  return seeds.Take();
}

const std::map<std::string, std::function<std::vector<Seed>()>>& Generators() {
  static const auto* generators = new std::map<std::string, std::function<std::vector<Seed>()>>{
      {"attach_packet", AttachPacketSeeds},   {"attach_client", AttachClientSeeds},
      {"wire_parsers", WireParserSeeds},      {"peer_channel", PeerChannelSeeds},
      {"rpc_frame", RpcFrameSeeds},           {"relay", RelaySeeds},
      {"dns_query", DnsQuerySeeds},           {"device_config", DeviceConfigSeeds},
      {"access_list", AccessListSeeds},
  };
  return *generators;
}

}  // namespace

const std::vector<std::string>& FuzzerNames() {
  static const auto* names = new std::vector<std::string>{
      "attach_packet", "attach_client", "wire_parsers",  "peer_channel", "rpc_frame",
      "relay",         "dns_query",     "device_config", "access_list"};
  return *names;
}

std::vector<Seed> SeedsFor(absl::string_view fuzzer) {
  auto it = Generators().find(std::string(fuzzer));
  if (it == Generators().end()) return {};
  return it->second();
}

}  // namespace edgelink::fuzz
