// The fixed attach keys the wire parser fuzz target opens sealed packets with, shared with its
// seed generator (which seals seeds under them).
#ifndef EDGELINK_TOOLS_FUZZ_WIRE_WORLD_H_
#define EDGELINK_TOOLS_FUZZ_WIRE_WORLD_H_

#include <cstdlib>
#include <vector>

#include "common/crypto/secret_bytes.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"

namespace edgelink::fuzz {

// The session nonce the fixed keys are derived with, which sealed ATTACHED packets carry.
inline wire::Nonce WireFuzzSessionNonce() {
  wire::Nonce session_nonce;
  session_nonce.fill(3);
  return session_nonce;
}

inline wire::SessionKeys WireFuzzKeys() {
  const crypto::SecretBytes secret = crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x5a));
  wire::Nonce device_nonce{}, server_nonce{};
  device_nonce.fill(1);
  server_nonce.fill(2);
  absl::StatusOr<wire::AttachKeys> keys =
      wire::DeriveAttachKeys(secret, device_nonce, server_nonce);
  if (!keys.ok()) std::abort();
  return wire::DeriveSessionKeys(*keys, WireFuzzSessionNonce());
}

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_WIRE_WORLD_H_
