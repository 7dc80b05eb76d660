// What the relay fuzz target and its seed generator share: the relay's key, its options, the
// addresses packets come from, the session ids tickets are made for and their peer packets.
#ifndef EDGELINK_TOOLS_FUZZ_RELAY_WORLD_H_
#define EDGELINK_TOOLS_FUZZ_RELAY_WORLD_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/types/span.h"
#include "basestation/relay/relay.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"

namespace edgelink::fuzz {

inline basestation::RelayKey RelayFuzzKey() {
  absl::StatusOr<basestation::RelayKey> key = basestation::RelayKey::Derive(
      crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x44)));
  if (!key.ok()) std::abort();
  return *std::move(key);
}

// Small limits, so the fuzzer reaches "too many sessions" and the rate limit quickly.
inline basestation::RelayOptions RelayFuzzOptions() {
  basestation::RelayOptions options;
  options.max_sessions = 3;
  options.session_bytes_per_second = 20000;
  options.session_burst_bytes = 3000;
  return options;
}

// Packets come from one of four addresses: index % 4.
inline net::Endpoint RelayFuzzPeer(uint8_t index) {
  switch (index % 4) {
    case 0:
      return net::Endpoint::Ipv4({198, 51, 100, 1}, 1001);
    case 1:
      return net::Endpoint::Ipv4({198, 51, 100, 2}, 1002);
    case 2:
      return net::Endpoint::Ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3},
                                 1003);
    default:
      return net::Endpoint::Ipv4({198, 51, 100, 1}, 1004);  // The first's IP, another port.
  }
}

// Relay session ids the harness makes tickets for, index % 6: 16 copies of the index for 0-4;
// 5 has the first 8 bytes of 1 (the same channel id, so both cannot be live at once) and 5s after.
inline constexpr uint8_t kRelayFuzzSessions = 6;
inline basestation::RelaySessionId RelayFuzzSession(uint8_t index) {
  basestation::RelaySessionId id;
  index %= kRelayFuzzSessions;
  id.fill(index);
  if (index == 5) std::fill(id.begin(), id.begin() + 8, uint8_t{1});
  return id;
}

// A peer packet of session RelayFuzzSession(index) as the relay sees it:
// 0x02 || type || channel id || rest (packet number, sealed bytes; shorter is malformed).
inline std::vector<uint8_t> RelayFuzzPeerPacket(uint8_t index, uint8_t type,
                                                absl::Span<const uint8_t> rest) {
  const uint64_t channel_id = basestation::RelayChannelId(RelayFuzzSession(index));
  std::vector<uint8_t> packet = {0x02, type};
  for (int shift = 56; shift >= 0; shift -= 8) {
    packet.push_back(static_cast<uint8_t>(channel_id >> shift));
  }
  packet.insert(packet.end(), rest.begin(), rest.end());
  return packet;
}

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_RELAY_WORLD_H_
