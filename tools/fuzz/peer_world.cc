#include "tools/fuzz/peer_world.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "common/crypto/nonce_ledger.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

[[noreturn]] void SetupFailed(const char* what) {
  std::fprintf(stderr, "PeerWorld: the real channel setup failed: %s\n", what);
  std::abort();
}

template <typename T>
T ValueOr(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) SetupFailed(what);
  return *std::move(value);
}

basestation::RelayKey FixedRelayKey() {
  return ValueOr(basestation::RelayKey::Derive(
                     crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x33))),
                 "RelayKey::Derive");
}

}  // namespace

net::Endpoint PeerWorld::ClientAddress() { return net::Endpoint::Ipv4({10, 0, 0, 1}, 5000); }
net::Endpoint PeerWorld::DeviceAddress() { return net::Endpoint::Ipv4({10, 0, 0, 2}, 6000); }
net::Endpoint PeerWorld::RelayAddress() { return net::Endpoint::Ipv4({203, 0, 113, 1}, 7001); }

wire::SessionId PeerWorld::SessionId() {
  wire::SessionId id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(0x10 + i);
  return id;
}

crypto::SecretBytes PeerWorld::SessionKey() {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(wire::kSessionKeySize, 0x22));
}

PeerWorld::PeerWorld() : now(StartTime()) {
  // A world of its own, replaying the same fixed keys and seeds as every other one.
  crypto::NonceLedgerReset();
  const basestation::RelayKey relay_key = FixedRelayKey();
  relay_ = ValueOr(basestation::RelayServer::New({}, relay_key), "RelayServer::New");
  basestation::RelaySessionId relay_session;
  const wire::SessionId session_id = SessionId();
  std::copy(session_id.begin(), session_id.end(), relay_session.begin());
  const auto ticket =
      basestation::MakeRelayTicket(relay_key, relay_session, now + absl::Hours(1)).Encode();

  auto options = [&](channel::Side side, std::vector<wire::Candidate> candidates) {
    channel::PeerConnectionOptions o;
    o.side = side;
    o.session_id = session_id;
    o.session_key = SessionKey();
    o.remote_candidates = std::move(candidates);
    o.relay = RelayAddress();
    o.relay_ticket.assign(ticket.begin(), ticket.end());
    o.predicted_ports = 2;
    return o;
  };
  client_ = ValueOr(
      channel::PeerConnection::New(
          options(channel::Side::kClient,
                  {{wire::Candidate::Kind::kHost, DeviceAddress()},
                   {wire::Candidate::Kind::kServerReflexive,
                    net::Endpoint::Ipv4({198, 51, 100, 2}, 6000)}}),
          &client_random_),
      "PeerConnection::New (client)");
  device_ = ValueOr(channel::PeerConnection::New(
                        options(channel::Side::kDevice,
                                {{wire::Candidate::Kind::kHost, ClientAddress()}}),
                        &device_random_),
                    "PeerConnection::New (device)");
  aead_ = ValueOr(crypto::Aead::New(crypto::SecretBytes(crypto::Aead::kKeySize)), "Aead::New");
  const channel::SessionSecrets secrets =
      ValueOr(channel::DeriveSessionSecrets(session_id, SessionKey(), {}, {}),
              "DeriveSessionSecrets");
  channel::KeyChain generation0 =
      ValueOr(channel::KeyChain::New(secrets.device_to_client.Clone()), "KeyChain::New");
  device_keys_[1] = std::make_unique<channel::KeyChain>(
      ValueOr(generation0.Next(), "KeyChain::Next"));
  device_keys_[0] = std::make_unique<channel::KeyChain>(std::move(generation0));

  client_->Start(now);
  device_->Start(now);
  auto relay_usable = [&] {
    for (const channel::PeerConnection::Path& path : client_->paths()) {
      if (path.via_relay && path.state == channel::PeerConnection::PathState::kUsable) return true;
    }
    return false;
  };
  for (int step = 0; step < 100; ++step) {
    Pump();
    if (client_->state() == channel::PeerConnection::State::kConnected &&
        device_->state() == channel::PeerConnection::State::kConnected && relay_usable()) {
      return;
    }
    now += absl::Milliseconds(50);
    if (now >= client_->next_timeout()) client_->OnTimeout(now);
    if (now >= device_->next_timeout()) device_->OnTimeout(now);
    if (now >= relay_->next_timeout()) relay_->OnTimeout(now);
  }
  SetupFailed("not connected with a usable relay path after 5 s");
}

void PeerWorld::Deliver(const net::Endpoint& from, const net::Datagram& d) {
  if (d.to == RelayAddress()) {
    std::optional<net::Endpoint> to = relay_->OnPacket(from, d.bytes, now);
    if (to.has_value()) Deliver(RelayAddress(), {*to, d.bytes});
  } else if (d.to == ClientAddress()) {
    client_->OnPacket(from, d.bytes, now);
  } else if (d.to == DeviceAddress()) {
    device_->OnPacket(from, d.bytes, now);
  }
  // Anything else (predicted ports, the unreachable server-reflexive address) is lost.
}


void PeerWorld::Pump(const std::function<void(const net::Datagram&)>& observe_client) {
  for (int round = 0; round < 8; ++round) {
    std::vector<net::Datagram> from_client = client_->TakeOutgoing();
    std::vector<net::Datagram> from_device = device_->TakeOutgoing();
    std::vector<net::Datagram> from_relay = relay_->TakeOutgoing();
    if (from_client.empty() && from_device.empty() && from_relay.empty()) break;
    for (const net::Datagram& d : from_client) {
      if (observe_client) observe_client(d);
      Deliver(ClientAddress(), d);
    }
    for (const net::Datagram& d : from_device) Deliver(DeviceAddress(), d);
    for (const net::Datagram& d : from_relay) Deliver(RelayAddress(), d);
  }
  client_->TakeReceived();
  device_->TakeReceived();
}

std::vector<uint8_t> PeerWorld::SealFromDevice(channel::PeerPacketType type, bool next_keys,
                                               uint64_t packet_number,
                                               absl::Span<const uint8_t> payload) {
  const channel::PeerHeader header{type, next_keys, client_->channel_id(), packet_number};
  // The fuzzer's packets, sealed as the device would but with numbers it picks: an attacker's,
  // kept out of the nonce ledger, which judges our own seals.
  const crypto::NonceLedgerExemption attacker;
  return ValueOr(channel::SealPeerPacket(*aead_, device_keys_[next_keys ? 1 : 0]->keys(), header,
                                         payload),
                 "SealPeerPacket");
}

}  // namespace edgelink::fuzz
