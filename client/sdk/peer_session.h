// PeerSession: a client's live connection to a device: brokered by the basestation (Client),
// then direct or relayed over the peer channel, with RPC and TCP tunnels on top. It runs its own
// event loop on the calling thread inside each blocking call (Open, Call, RunFor, Run, RunUntil).
// Not thread-safe, except Stop.
#ifndef EDGELINK_CLIENT_SDK_PEER_SESSION_H_
#define EDGELINK_CLIENT_SDK_PEER_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/sdk/client.h"
#include "common/channel/peer_connection.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/extra_sockets.h"
#include "common/io/udp_socket.h"
#include "common/rpc/rpc.h"
#include "common/tunnel/posix_tcp.h"
#include "common/tunnel/tunnel_session.h"

namespace edgelink::client {

struct PeerSessionOptions {
  // How long Open waits for the first working path.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Use the basestation relay only (no direct path, our addresses not shared with the device).
  bool relay_only = false;
  // Test hook: the initial path filter (see PeerSession::SetPathFilterForTest), in force from
  // the first probe on.
  std::function<bool(const net::Endpoint&)> path_filter_for_test;
};

// What happened to one connection accepted by a tunnel listener.
struct TunnelEvent {
  enum class Kind {
    kAccepted,  // A local application connected; the tunnel is being set up.
    kOpened,    // The device connected to its port: bytes flow.
    kRefused,   // The tunnel did not open: `status` says why (kPermissionDenied: port not
                // allowed, kUnavailable: the device could not connect, or the session failed).
    kClosed,    // An opened tunnel ended: OK if both sides closed cleanly.
  };
  Kind kind = Kind::kAccepted;
  uint64_t id = 0;     // Per connection, from 1.
  net::Endpoint from;  // The local application's address.
  uint16_t device_port = 0;
  absl::Status status;
  uint64_t bytes_sent = 0;      // To the device.
  uint64_t bytes_received = 0;  // From the device.
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

  // Tunnel listens on `listen` (port 0: any) and, for each TCP connection accepted there, opens a
  // tunnel to the device's TCP `device_port` (which the device allows or refuses, see
  // common/tunnel/tunnel_protocol.h). A refused or failed tunnel closes its connection. Events go
  // to `on_event` on the loop thread. Returns the bound address. Connections are served while the
  // session runs (Run, RunUntil, RunFor, Call). kFailedPrecondition if a listener is already up;
  // the TcpListener::Listen errors.
  absl::StatusOr<net::Endpoint> Tunnel(const net::Endpoint& listen, uint16_t device_port,
                                       std::function<void(const TunnelEvent&)> on_event);

  // Run serves until Stop() or the connection to the device ends; false in the latter case.
  bool Run();
  // RunUntil serves until `done()` (checked between rounds, on this thread) or `limit`; returns
  // done().
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit);
  // Stop makes Run return. THREAD-SAFE.
  void Stop();
  // StopOnSignal makes `signo` stop Run (via EventLoop::OnSignal, which blocks it in this thread:
  // block it in every other thread before they start, or it may kill the process instead).
  absl::Status StopOnSignal(int signo);

  // Tunnel counters of this session (its current stream association and the ended ones).
  tunnel::TunnelCounters tunnel_counters() const;

  // Test hook: datagrams to or from a remote endpoint for which `allow` returns false are dropped
  // by this session, as if that path stopped working (nullptr: none). With `network_changed`, the
  // channel is also told our address may have changed, as a client whose network moved does, so
  // it re-probes every path at once.
  void SetPathFilterForTest(std::function<bool(const net::Endpoint&)> allow,
                            bool network_changed);

  const Session& session() const { return session_; }
  const channel::PeerConnection& connection() const { return *connection_; }
  const net::Endpoint& local_endpoint() const { return socket_->local_endpoint(); }
  // From the Connect call to the first working path.
  absl::Duration setup_time() const { return setup_time_; }

 private:
  PeerSession() = default;
  void OnReadable();
  void Drive();
  void Flush();
  void OnAccept(std::unique_ptr<tunnel::LocalConnection> connection, const net::Endpoint& from);
  void OnTunnelEvent(const tunnel::TunnelEvent& event);
  absl::Status StartTunnels();
  void RetireTunnels();

  Session session_;
  crypto::SystemRandom random_;
  std::unique_ptr<io::EventLoop> loop_;
  std::unique_ptr<io::UdpSocket> socket_;
  std::unique_ptr<io::ExtraSockets> extra_sockets_;  // Birthday probing's.
  std::unique_ptr<channel::PeerConnection> connection_;
  std::unique_ptr<io::Timer> timer_;
  rpc::RpcEndpoint rpc_;
  io::ReceiveBuffer buffer_{16};
  absl::Duration setup_time_;
  std::function<bool(const net::Endpoint&)> path_filter_;

  // Tunnels. tcp_ outlives the listener and the tunnel session (their connections use it).
  struct Accepted {
    uint64_t id = 0;  // Ours: stays unique when the tunnel session is replaced.
    net::Endpoint from;
    bool opened = false;
  };
  std::unique_ptr<tunnel::TcpIo> tcp_;
  std::unique_ptr<tunnel::TcpListener> listener_;
  std::unique_ptr<tunnel::TunnelSession> tunnels_;  // The current stream association, if any.
  uint16_t device_port_ = 0;
  std::function<void(const TunnelEvent&)> on_tunnel_event_;
  absl::flat_hash_map<uint64_t, Accepted> accepted_;  // By the tunnel session's id.
  std::optional<Accepted> accepting_;  // Being handed to the tunnel session right now.
  uint64_t next_connection_id_ = 1;
  tunnel::TunnelCounters ended_tunnels_;
};

}  // namespace edgelink::client

#endif  // EDGELINK_CLIENT_SDK_PEER_SESSION_H_
