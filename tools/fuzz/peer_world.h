// PeerWorld: a client and a device PeerConnection, and the basestation RelayServer between them,
// after the real channel setup: both have bound to the relay, probed each other and are connected
// (directly on their LAN, and through the relay). Deterministic, like AttachWorld, so seeds made
// by the generator are valid in the fuzzer.
#ifndef EDGELINK_TOOLS_FUZZ_PEER_WORLD_H_
#define EDGELINK_TOOLS_FUZZ_PEER_WORLD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "basestation/relay/relay.h"
#include "common/channel/channel_crypto.h"
#include "common/channel/peer_connection.h"
#include "common/crypto/aead.h"
#include "common/net/datagram.h"
#include "common/net/endpoint.h"
#include "common/testing/seeded_random.h"
#include "common/wire/packet.h"

namespace edgelink::fuzz {

class PeerWorld {
 public:
  static net::Endpoint ClientAddress();
  static net::Endpoint DeviceAddress();
  static net::Endpoint RelayAddress();
  static wire::SessionId SessionId();
  static crypto::SecretBytes SessionKey();

  // Builds both ends and the relay, and runs them until both are connected and the relay path
  // is usable on the client; aborts if that does not happen.
  PeerWorld();

  channel::PeerConnection& client() { return *client_; }
  channel::PeerConnection& device() { return *device_; }
  basestation::RelayServer& relay() { return *relay_; }
  absl::Time now;

  // Delivers everything the three have queued, and what that provokes, for a few rounds.
  // `observe_client` (if set) sees each datagram the client sends first.
  void Pump(const std::function<void(const net::Datagram&)>& observe_client = nullptr);
  // Deliver hands one datagram sent by `from` to its destination: the relay (and on to the peer
  // it forwards to), the client or the device. Datagrams to other addresses are lost.
  void Deliver(const net::Endpoint& from, const net::Datagram& datagram);

  // SealFromDevice is a peer packet as the device would seal it: key generation 0, or 1 when
  // `next_keys` (with the key-phase bit set).
  std::vector<uint8_t> SealFromDevice(channel::PeerPacketType type, bool next_keys,
                                      uint64_t packet_number, absl::Span<const uint8_t> payload);

 private:
  testing::SeededRandom client_random_{3};
  testing::SeededRandom device_random_{4};
  std::unique_ptr<basestation::RelayServer> relay_;
  std::unique_ptr<channel::PeerConnection> client_;
  std::unique_ptr<channel::PeerConnection> device_;
  std::unique_ptr<crypto::Aead> aead_;
  std::unique_ptr<channel::KeyChain> device_keys_[2];
};

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_PEER_WORLD_H_
