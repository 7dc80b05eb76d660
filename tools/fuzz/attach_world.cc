#include "tools/fuzz/attach_world.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "common/crypto/nonce_ledger.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

[[noreturn]] void SetupFailed(const char* what) {
  std::fprintf(stderr, "AttachWorld: the real handshake failed: %s\n", what);
  std::abort();
}

// The one datagram a core produced, or abort.
std::vector<uint8_t> Single(std::vector<net::Datagram> out, const char* what) {
  if (out.size() != 1) SetupFailed(what);
  return std::move(out[0].bytes);
}

template <typename T>
T ValueOr(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) SetupFailed(what);
  return *std::move(value);
}

// Seals as a holder of the session keys would, with packet numbers the fuzzer picks: an attacker's
// packets, so kept out of the nonce ledger, which judges our own seals.
std::vector<uint8_t> Seal(crypto::Aead& aead, const wire::DirectionKeys& keys,
                          const wire::Nonce& session_nonce, wire::PacketType type,
                          uint64_t connection_id, uint64_t packet_number,
                          absl::Span<const uint8_t> body) {
  const crypto::NonceLedgerExemption attacker;
  const wire::Header header{type, connection_id, packet_number};
  return ValueOr(wire::SealPacket(aead, keys, header, body,
                                  wire::CarriesSessionNonce(header)
                                      ? absl::MakeConstSpan(session_nonce)
                                      : absl::Span<const uint8_t>()),
                 "SealPacket");
}

// The per-boot value the world's AttachServer draws first from its random source (seed 1), so
// that MakeProof can compute the cookies that server gives.
wire::Nonce ServerBootNonce() {
  testing::SeededRandom server_random{1};
  wire::Nonce boot;
  server_random.Fill(absl::MakeSpan(boot));
  return boot;
}

}  // namespace

absl::StatusOr<basestation::DeviceCredentials> OneDeviceDirectory::FindDevice(
    absl::string_view device_id) {
  if (device_id != kAttachDeviceId) return absl::NotFoundError("no such device");
  return basestation::DeviceCredentials{AttachWorld::DeviceSecret(), revoked};
}

wire::ConnectResponse EchoRequestHandler::OnConnectRequest(const wire::ConnectRequest& request,
                                                           const wire::Nonce&, absl::Time) {
  wire::ConnectResponse response;
  response.request_id = request.request_id;
  response.verdict = request.client_fingerprint[0] % 2 == 0 ? wire::ConnectVerdict::kAccepted
                                                            : wire::ConnectVerdict::kDenied;
  response.device_candidates = request.client_candidates;
  return response;
}

wire::DeviceResponse EchoRequestHandler::OnDeviceRequest(const wire::DeviceRequest& request,
                                                         absl::Time) {
  const uint8_t code = request.payload.empty() ? 0 : request.payload[0] % 17;
  return {request.request_id, code, request.method, request.payload};
}

net::Endpoint AttachWorld::ServerAddress() { return net::Endpoint::Ipv4({203, 0, 113, 1}, 7000); }
net::Endpoint AttachWorld::DeviceAddress() {
  return net::Endpoint::Ipv4({198, 51, 100, 7}, 40000);
}
crypto::SecretBytes AttachWorld::DeviceSecret() {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x5a));
}
crypto::SecretBytes AttachWorld::ServerKey() {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x01));
}

AttachWorld::AttachWorld(Stage stage) : now(StartTime()) {
  // A world of its own, replaying the same fixed keys and seeds as every other one.
  crypto::NonceLedgerReset();
  server_ = ValueOr(basestation::AttachServer::New({}, ServerKey(), &directory_, &server_random_),
                    "AttachServer::New");
  device::AttachClientOptions options;
  options.device_id = kAttachDeviceId;
  options.secret = DeviceSecret();
  options.server = ServerAddress();
  options.handler = &handler_;
  client_ = ValueOr(device::AttachClient::New(std::move(options), &device_random_),
                    "AttachClient::New");
  aead_ = ValueOr(crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize)), "Aead::New");

  client_->Start(now);
  hello_ = Single(client_->TakeOutgoing(), "no HELLO");
  server_->OnPacket(DeviceAddress(), hello_, now);
  challenge_ = Single(server_->TakeOutgoing(), "no CHALLENGE");
  const auto body = [](const std::vector<uint8_t>& packet) {
    return absl::MakeConstSpan(packet).subspan(wire::kHeaderSize);
  };
  const wire::Hello hello = ValueOr(wire::ParseHello(body(hello_)), "HELLO does not parse");
  const wire::Challenge challenge =
      ValueOr(wire::ParseChallenge(body(challenge_)), "CHALLENGE does not parse");
  const wire::AttachKeys keys = ValueOr(
      wire::DeriveAttachKeys(DeviceSecret(), hello.device_nonce, challenge.server_nonce),
      "DeriveAttachKeys");
  // Before the PROOF there is no session: keys under an all-zero session nonce, which open nothing.
  keys_ = std::make_unique<wire::SessionKeys>(wire::DeriveSessionKeys(keys, session_nonce_));
  if (stage == Stage::kHello) return;

  client_->OnPacket(ServerAddress(), challenge_, now);
  proof_ = Single(client_->TakeOutgoing(), "no PROOF");
  server_->OnPacket(DeviceAddress(), proof_, now);
  attached_ = Single(server_->TakeOutgoing(), "no ATTACHED");
  if (!wire::PeekSessionNonce(attached_, &session_nonce_)) SetupFailed("ATTACHED too short");
  keys_ = std::make_unique<wire::SessionKeys>(wire::DeriveSessionKeys(keys, session_nonce_));
  server_->TakePresenceEvents();
  connection_id_ = ValueOr(wire::ParseHeader(attached_), "ATTACHED header").connection_id;
  if (stage == Stage::kProof) return;

  client_->OnPacket(ServerAddress(), attached_, now);
  if (client_->state() != device::AttachClient::State::kAttached) SetupFailed("not attached");
  client_->TakeOutgoing();
}

std::vector<uint8_t> AttachWorld::SealToServer(wire::PacketType type, uint64_t connection_id,
                                               uint64_t packet_number,
                                               absl::Span<const uint8_t> body) {
  return Seal(*aead_, keys_->device_to_server, session_nonce_, type, connection_id, packet_number,
              body);
}

std::vector<uint8_t> AttachWorld::SealToDevice(wire::PacketType type, uint64_t connection_id,
                                               uint64_t packet_number,
                                               absl::Span<const uint8_t> body) {
  return Seal(*aead_, keys_->server_to_device, session_nonce_, type, connection_id, packet_number,
              body);
}

std::vector<uint8_t> AttachWorld::ResetFor(uint64_t connection_id) {
  const wire::ServerSecrets secrets =
      ValueOr(wire::DeriveServerSecrets(ServerKey(), ServerBootNonce()), "DeriveServerSecrets");
  return wire::BuildReset(connection_id, {wire::ComputeResetToken(secrets, connection_id)});
}

}  // namespace edgelink::fuzz

namespace edgelink::fuzz {

std::vector<uint8_t> AttachWorld::MakeProof(const net::Endpoint& from, wire::Proof proof,
                                            bool genuine_cookie, bool genuine_proof) {
  if (genuine_cookie) {
    static const wire::ServerSecrets* secrets = new wire::ServerSecrets(
        ValueOr(wire::DeriveServerSecrets(ServerKey(), ServerBootNonce()), "DeriveServerSecrets"));
    proof.cookie = wire::ComputeCookie(*secrets, from, proof.device_id, proof.device_nonce,
                                       proof.server_nonce, proof.timestamp_ms);
  }
  if (genuine_proof) {
    const wire::AttachKeys keys = ValueOr(
        wire::DeriveAttachKeys(DeviceSecret(), proof.device_nonce, proof.server_nonce),
        "DeriveAttachKeys");
    proof.proof = wire::ComputeProof(keys, proof);
  }
  return wire::BuildProof(proof);
}

}  // namespace edgelink::fuzz
