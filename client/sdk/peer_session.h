// PeerSession: a client's live connection to a device: brokered by the basestation (Client),
// then direct or relayed over the peer channel, with RPC on top. It runs its own event loop on the
// calling thread inside each blocking call (Open, Call, RunFor). Not thread-safe.
#ifndef EDGELINK_CLIENT_SDK_PEER_SESSION_H_
#define EDGELINK_CLIENT_SDK_PEER_SESSION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/sdk/client.h"
#include "common/channel/peer_connection.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/rpc/rpc.h"

namespace edgelink::client {

struct PeerSessionOptions {
  // How long Open waits for the first working path.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Use the basestation relay only (no direct path, our addresses not shared with the device).
  bool relay_only = false;
};

class PeerSession {
 public:
  // Open asks the basestation for `device_id` (see Client::Connect for its errors), then probes
  // every path at once and returns when one works: kDeadlineExceeded if none did in time.
  static absl::StatusOr<std::unique_ptr<PeerSession>> Open(Client& client,
                                                           absl::string_view device_id,
                                                           PeerSessionOptions options = {});
  ~PeerSession();

  // Call runs an RPC on the device: its answer, its error status, or kDeadlineExceeded.
  absl::StatusOr<std::vector<uint8_t>> Call(absl::string_view method,
                                            absl::Span<const uint8_t> payload,
                                            absl::Duration timeout = absl::Seconds(5));
  // RunFor keeps the connection going for `duration` (paths keep racing and may upgrade).
  void RunFor(absl::Duration duration);

  const Session& session() const { return session_; }
  const channel::PeerConnection& connection() const { return *connection_; }
  const net::Endpoint& local_endpoint() const { return socket_->local_endpoint(); }
  // From the Connect call to the first working path.
  absl::Duration setup_time() const { return setup_time_; }

 private:
  PeerSession() = default;
  void OnReadable();
  void Drive();

  Session session_;
  crypto::SystemRandom random_;
  std::unique_ptr<io::EventLoop> loop_;
  std::unique_ptr<io::UdpSocket> socket_;
  std::unique_ptr<channel::PeerConnection> connection_;
  std::unique_ptr<io::Timer> timer_;
  rpc::RpcEndpoint rpc_;
  io::ReceiveBuffer buffer_{16};
  absl::Duration setup_time_;
};

}  // namespace edgelink::client

#endif  // EDGELINK_CLIENT_SDK_PEER_SESSION_H_
