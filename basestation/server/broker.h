// Broker: carries client requests (Connect, pairing, access-list calls) from gRPC threads to
// attached devices over the attach channel, and their answers back.
#ifndef EDGELINK_BASESTATION_SERVER_BROKER_H_
#define EDGELINK_BASESTATION_SERVER_BROKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "basestation/core/attach_server.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/io/event_loop.h"
#include "common/wire/packet.h"

namespace edgelink::basestation {

// Who is asking, as the TLS handshake proved it.
struct ClientIdentity {
  wire::Fingerprint fingerprint{};
  std::string name;  // The certificate's common name.
};

// What a Connect hands the client.
struct BrokeredSession {
  wire::SessionId session_id{};
  crypto::SecretBytes session_key;
  wire::Nonce device_nonce{};  // The device's randomness for the channel keys.
  std::vector<wire::Candidate> device_candidates;
  net::Endpoint relay;                // Unset: no relay.
  std::vector<uint8_t> relay_ticket;
  net::Endpoint reflector;            // BrokerOptions::reflector.
};

// Where the relay is and how to make its tickets; both peers get the same ticket.
struct RelayOffer {
  net::Endpoint endpoint;  // The relay's public address.
  std::function<std::vector<uint8_t>(const wire::SessionId&)> make_ticket;
};

struct BrokerOptions {
  // Per device: Connects and calls accepted per second, and the burst above that. More get
  // RESOURCE_EXHAUSTED without reaching the device.
  double requests_per_second = 5;
  double request_burst = 20;
  // Unanswered requests are sent again this often until their deadline.
  absl::Duration resend_interval = absl::Milliseconds(250);
  // The attach port's public address, which answers RELAY_REFLECT: told to clients so that they
  // can tell how their NAT maps (channel::NatMapping). Unset: not told.
  net::Endpoint reflector;
};

// `random` must be thread-safe (SystemRandom is). Broker's public calls are thread-safe and block the calling (gRPC) thread until the device
// answers or the deadline passes; everything else runs on the event loop's thread.
class Broker {
 public:
  Broker(BrokerOptions options, io::EventLoop* loop, AttachServer* attach,
         crypto::RandomSource* random, std::optional<RelayOffer> relay = std::nullopt);
  ~Broker();

  // Connect asks the device to accept `client`, passing on the client's candidates and its nonce
  // for the channel keys: OK with the session, or kUnavailable (offline), kPermissionDenied
  // (refused), kDeadlineExceeded (silent), kResourceExhausted (rate).
  absl::StatusOr<BrokeredSession> Connect(absl::string_view device_id,
                                          const ClientIdentity& client,
                                          std::vector<wire::Candidate> client_candidates,
                                          const wire::Nonce& client_nonce, absl::Time deadline);
  // Call runs a device method; the device's own status comes back as the result's code.
  absl::StatusOr<wire::DeviceResponse> Call(absl::string_view device_id,
                                            const ClientIdentity& client,
                                            absl::string_view method,
                                            std::vector<uint8_t> payload, absl::Time deadline);

  // Loop thread: hands the broker what the attach server received, then flushes nothing itself
  // (the caller sends the attach server's outgoing packets).
  void OnReplies(std::vector<DeviceReply> replies);
  // Loop thread, on shutdown: fails everything pending with kUnavailable.
  void Close();

  // A callback the loop owner runs after the broker made the attach server send something.
  void set_after_send(std::function<void()> after_send) { after_send_ = std::move(after_send); }

 private:
  struct Waiter;
  struct Pending {
    std::string device_id;
    absl::Time deadline;
    std::shared_ptr<Waiter> waiter;
    // Exactly one of these is the request, kept for retransmission.
    std::unique_ptr<wire::ConnectRequest> connect;
    std::unique_ptr<wire::DeviceRequest> call;
  };

  absl::Status Wait(const std::shared_ptr<Waiter>& waiter, absl::Time deadline);
  bool TakeToken(absl::string_view device_id, absl::Time now);
  void Start(Pending pending);
  void Send(const Pending& pending);
  void Complete(uint64_t request_id, absl::Status status);
  void OnResendTimer();
  uint64_t NewRequestId();

  BrokerOptions options_;
  io::EventLoop* loop_;
  AttachServer* attach_;
  crypto::RandomSource* random_;
  std::optional<RelayOffer> relay_;
  std::function<void()> after_send_;
  // Loop thread only.
  absl::flat_hash_map<uint64_t, Pending> pending_;
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  absl::flat_hash_map<std::string, Bucket> buckets_;
  io::Timer resend_timer_;
  bool closed_ = false;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_SERVER_BROKER_H_
