// DeviceDaemon: the reference device daemon's binding. It puts the sans-I/O AttachClient on a UDP
// socket and an EventLoop, finds the basestation by DNS, and applies the config's master switch,
// also when the config is reloaded (SIGHUP). Each accepted client session gets the peer channel
// with RPC and, once the client starts a stream association, TCP tunnels to the local ports on the
// config's tunnel_ports (common/tunnel).
#ifndef EDGELINK_DEVICE_DAEMON_DAEMON_H_
#define EDGELINK_DEVICE_DAEMON_DAEMON_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/extra_sockets.h"
#include "absl/container/flat_hash_map.h"
#include "common/channel/peer_connection.h"
#include "common/io/udp_socket.h"
#include "common/rpc/rpc.h"
#include "common/tunnel/posix_tcp.h"
#include "common/tunnel/tunnel_session.h"
#include "device/core/attach_client.h"
#include "device/access/access_list.h"
#include "device/daemon/config.h"
#include "device/daemon/request_handler.h"

namespace edgelink::device {

// Not thread-safe: lives on its EventLoop's thread.
class DeviceDaemon {
 public:
  static absl::StatusOr<std::unique_ptr<DeviceDaemon>> Start(std::string config_path,
                                                              DeviceConfig config,
                                                              io::EventLoop* loop);
  ~DeviceDaemon();

  // Shutdown ends every session and tells the basestation (a clean exit, not the master switch).
  void Shutdown();
  // Reload re-reads the config file; a bad file is logged and the running config kept.
  void Reload();
  // LogCounters logs one line with what the device has sent and received.
  void LogCounters() const;

  // For tests that run the daemon in-process, on the loop's thread.
  const AccessRequestHandler& handler() const { return *handler_; }
  const AttachClient* client() const { return client_.get(); }
  size_t peer_count() const { return peers_.size(); }
  // Tunnel counters of every session so far, live or ended.
  tunnel::TunnelCounters tunnel_counters() const;

 private:
  DeviceDaemon(std::string config_path, DeviceConfig config, io::EventLoop* loop,
               std::unique_ptr<AccessList> access);

  // Where clients can reach the device: its interface addresses, with its UDP port.
  std::vector<wire::Candidate> LocalCandidates() const;

  // A client's session over the peer channel, with the RPC methods the device serves on it and
  // its tunnels (made when the client's first stream datagram arrives).
  struct PeerSession {
    wire::SessionId session_id{};
    std::string client_fingerprint;
    std::unique_ptr<channel::PeerConnection> connection;
    rpc::RpcEndpoint rpc;
    std::unique_ptr<io::ExtraSockets> extra_sockets;  // Birthday probing's.
    // Last: destroyed first, while the connection it sends through still exists.
    std::unique_ptr<tunnel::TunnelSession> tunnel;
  };
  void OpenPeer(const wire::ConnectRequest& request, const wire::Nonce& device_nonce);
  void EndPeer(const wire::SessionId& session_id);
  void ServeRpc(PeerSession& session);
  void OnPeerPacket(const net::Endpoint& from, absl::Span<const uint8_t> packet, absl::Time now);
  void DrivePeers();
  // Tunnels: a kStream datagram from the peer (starting the session's tunnels if need be), an
  // SCTP packet to the peer, and the end of a tunnel session (its counters are kept).
  void OnStreamDatagram(PeerSession& peer, absl::Span<const uint8_t> datagram);
  void SendStream(PeerSession& peer, absl::Span<const uint8_t> datagram);
  void FlushPeer(PeerSession& peer);
  void RetireTunnel(PeerSession& peer);

  // Acts on config_.remote_access: attaches, or stops everything at once.
  void Apply();
  void Resolve();
  absl::Status Connect(const net::Endpoint& basestation);
  void OnReadable();
  void Drive();

  std::string config_path_;
  DeviceConfig config_;
  io::EventLoop* loop_;
  crypto::SystemRandom random_;
  std::unique_ptr<AccessList> access_;
  std::unique_ptr<AccessRequestHandler> handler_;
  std::unique_ptr<io::UdpSocket> socket_;
  net::Endpoint basestation_;  // The attach server's address now.
  std::unique_ptr<AttachClient> client_;
  io::ReceiveBuffer receive_buffer_{16};
  io::Timer client_timer_;
  io::Timer peer_timer_;
  // Before peers_: the tunnels' TCP connections need them until they are gone.
  std::unique_ptr<tunnel::TcpIo> tcp_;
  std::unique_ptr<tunnel::LoopbackConnector> connector_;
  tunnel::TunnelCounters ended_tunnels_;  // Sums of the tunnel sessions that ended.
  absl::flat_hash_map<uint64_t, std::unique_ptr<PeerSession>> peers_;  // By channel id.
  absl::Time started_;
  net::Endpoint last_reflexive_;  // To notice NAT rebinding.
  io::Timer resolve_timer_;
  absl::Duration resolve_backoff_ = absl::Seconds(1);
  uint64_t dns_lookups_ = 0;
  uint64_t packets_sent_ = 0;
};

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_DAEMON_DAEMON_H_
