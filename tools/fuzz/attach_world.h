// AttachWorld: a basestation AttachServer and a device AttachClient that have run the real attach
// handshake with each other, for the attach fuzz targets and their seed generator. Everything is
// deterministic (fixed keys, seeded randomness, a fixed start time), so the handshake produces the
// same packets, session keys and connection id in every run: a seed recorded by the generator
// (a sealed KEEPALIVE, a RESET with the right token) is just as valid inside the fuzzer.
#ifndef EDGELINK_TOOLS_FUZZ_ATTACH_WORLD_H_
#define EDGELINK_TOOLS_FUZZ_ATTACH_WORLD_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "basestation/core/attach_server.h"
#include "common/crypto/aead.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/testing/seeded_random.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/packet.h"
#include "device/core/attach_client.h"

namespace edgelink::fuzz {

inline constexpr char kAttachDeviceId[] = "cam-1";

// The registry stand-in: knows exactly one device, kAttachDeviceId.
class OneDeviceDirectory : public basestation::DeviceDirectory {
 public:
  absl::StatusOr<basestation::DeviceCredentials> FindDevice(absl::string_view device_id) override;
  bool revoked = false;
};

// The device's request handler stand-in: accepts a connect when the client fingerprint's first
// byte is even (echoing the client's candidates back as the device's), and answers every device
// request with its own payload, the method as message and a code from the payload's first byte.
class EchoRequestHandler : public device::RequestHandler {
 public:
  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce& device_nonce, absl::Time now) override;
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request,
                                       absl::Time now) override;
};

class AttachWorld {
 public:
  // How far the handshake is driven. In every stage the basestation has answered the HELLO, so
  // the CHALLENGE and the session keys are known.
  enum class Stage {
    kHello,     // The device sent HELLO; the CHALLENGE was not delivered to it.
    kProof,     // The device sent PROOF and the basestation made the session; ATTACHED not delivered.
    kAttached,  // The device is attached.
  };

  static net::Endpoint ServerAddress();  // Where the device sends.
  static net::Endpoint DeviceAddress();  // Where the basestation sees the device (its NAT).
  static crypto::SecretBytes DeviceSecret();
  static crypto::SecretBytes ServerKey();

  // Builds both ends and runs the real handshake up to `stage`. Aborts if the handshake does not
  // go as the protocol says (the harness cannot work then).
  explicit AttachWorld(Stage stage);

  basestation::AttachServer& server() { return *server_; }
  device::AttachClient& client() { return *client_; }
  OneDeviceDirectory& directory() { return directory_; }
  absl::Time now;

  // The handshake's packets as sent (ATTACHED is empty before kProof).
  const std::vector<uint8_t>& hello() const { return hello_; }
  const std::vector<uint8_t>& challenge() const { return challenge_; }
  const std::vector<uint8_t>& proof() const { return proof_; }
  const std::vector<uint8_t>& attached() const { return attached_; }
  // The session's connection id from the ATTACHED header (0 in kHello).
  uint64_t connection_id() const { return connection_id_; }

  // SealToServer / SealToDevice seal `body` under the session's keys (from the ATTACHED's session
  // nonce), as the device or the basestation would.
  std::vector<uint8_t> SealToServer(wire::PacketType type, uint64_t connection_id,
                                    uint64_t packet_number, absl::Span<const uint8_t> body);
  std::vector<uint8_t> SealToDevice(wire::PacketType type, uint64_t connection_id,
                                    uint64_t packet_number, absl::Span<const uint8_t> body);
  // ResetFor is the RESET this basestation (its key) would send for `connection_id`.
  static std::vector<uint8_t> ResetFor(uint64_t connection_id);
  // MakeProof builds a PROOF packet from `proof`, first replacing its cookie with the one this
  // basestation gives `from` (if genuine_cookie) and its proof tag with the device secret's (if
  // genuine_proof), so the fuzzer can reach everything behind the cookie check.
  static std::vector<uint8_t> MakeProof(const net::Endpoint& from, wire::Proof proof,
                                        bool genuine_cookie, bool genuine_proof);

 private:
  OneDeviceDirectory directory_;
  EchoRequestHandler handler_;
  testing::SeededRandom server_random_{1};
  testing::SeededRandom device_random_{2};
  std::unique_ptr<basestation::AttachServer> server_;
  std::unique_ptr<device::AttachClient> client_;
  std::unique_ptr<crypto::Aead> aead_;
  std::unique_ptr<wire::SessionKeys> keys_;
  wire::Nonce session_nonce_{};  // From the ATTACHED (zero before the PROOF).
  std::vector<uint8_t> hello_, challenge_, proof_, attached_;
  uint64_t connection_id_ = 0;
};

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_ATTACH_WORLD_H_
