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

inline wire::AttachKeys WireFuzzKeys() {
  const crypto::SecretBytes secret = crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, 0x5a));
  wire::Nonce device_nonce{}, server_nonce{};
  device_nonce.fill(1);
  server_nonce.fill(2);
  absl::StatusOr<wire::AttachKeys> keys =
      wire::DeriveAttachKeys(secret, device_nonce, server_nonce);
  if (!keys.ok()) std::abort();
  return *std::move(keys);
}

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_WIRE_WORLD_H_
