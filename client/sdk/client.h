// The Edgelink client SDK: talks to a basestation over gRPC with mutual TLS (the client's X.509
// certificate is its identity) to list devices, pair with one, manage who may use it, and
// broker connections to it.
#ifndef EDGELINK_CLIENT_SDK_CLIENT_H_
#define EDGELINK_CLIENT_SDK_CLIENT_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"
#include "common/tls/credentials.h"
#include "proto/basestation.grpc.pb.h"

namespace edgelink::client {

struct ClientOptions {
  std::string basestation;  // The API's host:port.
  tls::ClientTlsFiles tls;
  // The name the basestation's certificate must carry, if not the host in `basestation`.
  std::string server_name;
  absl::Duration timeout = absl::Seconds(10);  // For each call.
};

struct DeviceInfo {
  std::string device_id;
  std::string product;
  bool online = false;
  absl::Time since;  // Of the last online/offline change (InfinitePast if never seen).
};

struct Candidate {
  std::string kind;  // "host", "server-reflexive", "predicted", "relay".
  net::Endpoint endpoint;
};

// What Connect brokered: both sides now hold `session_key`.
struct Session {
  std::string device_id;
  std::string session_id;  // 16 bytes.
  crypto::SecretBytes session_key;
  // Fresh randomness of each side for this connection's channel keys (16 bytes each).
  std::array<uint8_t, 16> client_nonce{};
  std::array<uint8_t, 16> device_nonce{};
  std::vector<Candidate> device_candidates;
  net::Endpoint relay;                // Unset: the basestation offers no relay.
  std::vector<uint8_t> relay_ticket;
  net::Endpoint reflector;  // Unset: the basestation named none.
  absl::Duration took;  // Call to answer.
};

struct User {
  std::string fingerprint;
  std::string role;
  std::string name;
  absl::Time added;
};

// Errors keep the gRPC status code as the absl code (NOT_FOUND unknown device, UNAVAILABLE
// offline or unreachable, PERMISSION_DENIED refused, DEADLINE_EXCEEDED device silent, ...) with a
// message a person can act on. Thread-safe (gRPC stubs are).
class Client {
 public:
  // Create reads the certificate files (errors name the file) and prepares the channel; it does
  // not connect until the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // The SHA-256 fingerprint of this client's certificate: its identity, as a device's owner adds
  // it to an access list.
  const std::string& fingerprint() const { return fingerprint_; }

  absl::StatusOr<std::vector<DeviceInfo>> ListDevices();
  absl::StatusOr<DeviceInfo> GetDevice(absl::string_view device_id);
  absl::StatusOr<Session> Connect(absl::string_view device_id,
                                  const std::vector<Candidate>& local_candidates = {});
  // Pair proves the device's pairing secret (the sticker) and becomes its owner.
  absl::Status Pair(absl::string_view device_id, const crypto::SecretBytes& pairing_secret,
                    absl::string_view name);
  absl::Status AddUser(absl::string_view device_id, absl::string_view fingerprint,
                       absl::string_view role, absl::string_view name);
  absl::Status RemoveUser(absl::string_view device_id, absl::string_view fingerprint);
  absl::StatusOr<std::vector<User>> ListUsers(absl::string_view device_id);
  absl::Status ReopenPairing(absl::string_view device_id);

 private:
  Client(ClientOptions options, std::string fingerprint,
         std::unique_ptr<proto::Basestation::Stub> stub);
  void Prepare(grpc::ClientContext* context) const;
  absl::Status FromGrpc(const grpc::Status& status) const;

  ClientOptions options_;
  std::string fingerprint_;
  std::unique_ptr<proto::Basestation::Stub> stub_;
};

}  // namespace edgelink::client

#endif  // EDGELINK_CLIENT_SDK_CLIENT_H_
