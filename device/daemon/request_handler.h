// AccessRequestHandler: what the reference device answers to clients, through its basestation:
// connect requests (allowed only for fingerprints on the device's own access list), pairing and
// access-list management. The device, not the basestation, decides who gets in.
#ifndef EDGELINK_DEVICE_DAEMON_REQUEST_HANDLER_H_
#define EDGELINK_DEVICE_DAEMON_REQUEST_HANDLER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/crypto/secret_bytes.h"
#include "common/wire/packet.h"
#include "device/access/access_list.h"
#include "device/core/attach_client.h"

namespace edgelink::device {

// A session the device accepted: its key, to be used by the data path.
struct AcceptedSession {
  std::string client_fingerprint;  // 64 hex digits.
  std::string client_name;
  crypto::SecretBytes session_key;
  std::vector<wire::Candidate> client_candidates;
  absl::Time accepted;
};

// Not thread-safe: runs on the device's event loop, called by AttachClient.
class AccessRequestHandler : public RequestHandler {
 public:
  // `access` must outlive the handler. `local_candidates` says where the device can be reached
  // (its interface addresses with its UDP port), asked at each accepted connect.
  // `on_accepted` runs for each accepted connect, with the device's nonce for the channel keys
  // (the daemon opens the peer channel); a session id already accepted is answered busy.
  // `on_ended` when a session must end because its client was removed.
  AccessRequestHandler(AccessList* access,
                       std::function<std::vector<wire::Candidate>()> local_candidates,
                       std::function<void(const wire::ConnectRequest&, const wire::Nonce&)>
                           on_accepted = nullptr,
                       std::function<void(const wire::SessionId&)> on_ended = nullptr);

  // The calendar time for what the access list records (when a user was added, pairing
  // lockouts), when the `now` the attach client passes is not one (a monotonic clock). Unset:
  // that `now`.
  void set_wall_clock(std::function<absl::Time()> wall_clock) {
    wall_clock_ = std::move(wall_clock);
  }

  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce& device_nonce,
                                         absl::Time now) override;
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request,
                                       absl::Time now) override;

  // The accepted sessions, by session id; a client removed from the access list loses its own.
  const AcceptedSession* FindSession(const wire::SessionId& session_id) const;
  size_t session_count() const { return sessions_.size(); }

 private:
  // Sessions are kept at most this long and this many (the data path takes them over later).
  static constexpr size_t kMaxSessions = 64;

  void EndSessionsOf(absl::string_view fingerprint);

  AccessList* access_;
  std::function<absl::Time()> wall_clock_;
  std::function<std::vector<wire::Candidate>()> local_candidates_;
  std::function<void(const wire::ConnectRequest&, const wire::Nonce&)> on_accepted_;
  std::function<void(const wire::SessionId&)> on_ended_;
  absl::flat_hash_map<std::string, AcceptedSession> sessions_;  // By session id bytes.
};

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_DAEMON_REQUEST_HANDLER_H_
