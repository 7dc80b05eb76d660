// The Edgelink programs on the simulated network: a basestation (attach server, relay, and a
// stand-in for the gRPC broker), devices (attach client + peer channels on one socket, as
// device/daemon does) and clients (learn their public address, Connect through the broker, open a
// peer channel), driven by the real sans-I/O cores. Scenario wires one of each behind chosen NAT
// types and measures a connect: did it work, which path carries data at the end, and how many
// round trips to the basestation it took.
//
// Apps hold raw pointers to each other and to the simulator: everything belongs to one Scenario
// (or one test) and lives as long as it. Not thread-safe.
#ifndef EDGELINK_INTEGRATION_SIM_SCENARIO_H_
#define EDGELINK_INTEGRATION_SIM_SCENARIO_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "basestation/core/attach_server.h"
#include "basestation/relay/relay.h"
#include "common/channel/peer_connection.h"
#include "common/crypto/secret_bytes.h"
#include "common/rpc/rpc.h"
#include "common/wire/packet.h"
#include "device/core/attach_client.h"
#include "integration/sim/network.h"
#include "integration/sim/simulator.h"

namespace edgelink::sim {

// The extra sockets of one peer connection (birthday probing, Datagram::socket > 0): bound on
// the host when the connection first sends from one, closed once it no longer wants it.
class ExtraSockets {
 public:
  using Receiver = std::function<void(uint16_t socket, const net::Endpoint& from,
                                      absl::Span<const uint8_t> bytes)>;
  ExtraSockets(Host* host, Receiver receiver) : host_(host), receiver_(std::move(receiver)) {}

  // Flush sends what `connection` queued, each datagram on `main` or on its extra socket.
  void Flush(channel::PeerConnection& connection, Socket& main);
  size_t size() const { return sockets_.size(); }

 private:
  Host* host_;
  Receiver receiver_;
  std::map<uint16_t, std::unique_ptr<Socket>> sockets_;
};

// --- Basestation -------------------------------------------------------------------------------

// What a Connect hands the client (the gRPC ConnectResponse in production).
struct BrokeredSession {
  wire::SessionId session_id{};
  crypto::SecretBytes session_key;
  wire::Nonce device_nonce{};
  std::vector<wire::Candidate> device_candidates;
  net::Endpoint relay;
  std::vector<uint8_t> relay_ticket;
  net::Endpoint reflector;  // The attach port, which answers RELAY_REFLECT too.
};
using ConnectDone = std::function<void(absl::StatusOr<BrokeredSession>)>;

struct BasestationCounters {
  uint64_t connects = 0;
  uint64_t connect_resends = 0;
};

// The basestation on one host: AttachServer on kAttachPort, RelayServer on kRelayPort, and the
// broker's job (basestation/server/broker.cc) without gRPC, relay ticket and address included.
class Basestation {
 public:
  static constexpr uint16_t kAttachPort = 7000;
  static constexpr uint16_t kRelayPort = 7001;

  // `host` must outlive the basestation. `server_key` is 32 bytes; restarts keep it.
  static absl::StatusOr<std::unique_ptr<Basestation>> New(Host* host,
                                                          crypto::SecretBytes server_key,
                                                          basestation::AttachServerOptions options);
  ~Basestation();

  void AddDevice(const std::string& device_id, const crypto::SecretBytes& secret);
  // Whether the attach port answers RELAY_REFLECT (default yes, as basestation/server does).
  void set_attach_port_reflects(bool reflects) { attach_port_reflects_ = reflects; }
  // Restart replaces the attach server and the relay with fresh ones under the same server key,
  // as a restarted process would: every session and relay binding is gone, pending connects fail.
  absl::Status Restart();
  // RestartRelay replaces the relay alone with a fresh one, as a restarted relay process would:
  // every binding is gone; tickets already handed out still verify (the key comes from the
  // server key).
  absl::Status RestartRelay();

  // Connect does what the gRPC Connect does: makes a session id and key and a relay ticket, sends
  // CONNECT_REQUEST (resent every 250 ms) and calls `done` once, with the session or with
  // kUnavailable (not attached), kPermissionDenied (refused), kResourceExhausted (busy),
  // kDeadlineExceeded (silent until `deadline`).
  void Connect(const std::string& device_id, const wire::Fingerprint& client,
               std::vector<wire::Candidate> client_candidates, const wire::Nonce& client_nonce,
               absl::Time deadline, ConnectDone done);

  net::Endpoint attach_address() const { return attach_socket_->local(); }
  net::Endpoint relay_address() const { return relay_socket_->local(); }
  basestation::AttachServer& attach() { return *attach_; }
  basestation::RelayServer& relay() { return *relay_; }
  const BasestationCounters& counters() const { return counters_; }
  // Connects waiting for the device's answer.
  size_t pending_connects() const { return pending_.size(); }

 private:
  class Directory;
  struct PendingConnect {
    std::string device_id;
    absl::Time deadline;
    std::unique_ptr<wire::ConnectRequest> request;
    std::optional<net::Endpoint> reflexive;
    ConnectDone done;
  };

  Basestation(Simulator* sim, crypto::SecretBytes server_key,
              basestation::AttachServerOptions options, basestation::RelayKey relay_key);
  absl::Status StartCores();
  void OnAttachPacket(const net::Endpoint& from, absl::Span<const uint8_t> bytes);
  void OnRelayPacket(const net::Endpoint& from, absl::Span<const uint8_t> bytes);
  void OnAlarm();
  void OnReplies(std::vector<basestation::DeviceReply> replies);
  // Sends what the cores queued and re-arms the alarm.
  void Drive();

  Simulator* sim_;
  crypto::SecretBytes server_key_;
  basestation::AttachServerOptions options_;
  basestation::RelayKey relay_key_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<basestation::AttachServer> attach_;
  std::unique_ptr<basestation::RelayServer> relay_;
  std::unique_ptr<Socket> attach_socket_;
  std::unique_ptr<Socket> relay_socket_;
  // Ordered maps here and below: iteration order decides send order, and must not depend on the
  // process's hash seed.
  std::map<uint64_t, PendingConnect> pending_;
  absl::Time next_resend_ = absl::InfiniteFuture();
  bool attach_port_reflects_ = true;
  Alarm alarm_;
  BasestationCounters counters_;
};

// --- Device ------------------------------------------------------------------------------------

// A device: AttachClient and its peer connections share one UDP socket, told apart by the first
// byte (0x01 attach, 0x02 peer, 0x03 relay), as device/daemon/daemon.cc does. It accepts every
// connect, answering with its socket's address as host candidate, and serves RPC "echo".
class DeviceApp : public device::RequestHandler {
 public:
  static constexpr uint16_t kPort = 40000;

  static absl::StatusOr<std::unique_ptr<DeviceApp>> New(Host* host, std::string device_id,
                                                        crypto::SecretBytes secret,
                                                        net::Endpoint server);
  ~DeviceApp() override;

  // Start begins attaching.
  void Start();
  // Overrides PeerConnectionOptions::predicted_ports for the device's peer connections.
  void set_predicted_ports(int ports) { predicted_ports_ = ports; }
  // Sets the device's clock (the `now` its cores get, and what its deadlines are set in) to the
  // simulator's plus `offset`: a wall clock that NTP or a user stepped. Takes effect at the
  // device's next event, as a step under a sleeping event loop does.
  void set_clock_offset(absl::Duration offset) { clock_offset_ = offset; }
  // Peer sessions open now (closed ones are dropped as soon as they close).
  size_t peer_count() const { return peers_.size(); }

  device::AttachClient& attach() { return *attach_; }
  bool attached() const { return attach_->state() == device::AttachClient::State::kAttached; }
  // The newest peer connection, or null.
  channel::PeerConnection* peer() const;
  uint64_t rpc_served() const { return rpc_served_; }
  uint64_t dropped() const { return dropped_; }

  // device::RequestHandler
  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce& device_nonce,
                                         absl::Time now) override;
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request,
                                       absl::Time now) override;

 private:
  struct PeerSession {
    std::unique_ptr<channel::PeerConnection> connection;
    rpc::RpcEndpoint rpc;
    std::unique_ptr<ExtraSockets> extra_sockets;
  };

  DeviceApp(Host* host, net::Endpoint server);
  void OnDatagram(const net::Endpoint& from, absl::Span<const uint8_t> bytes);
  void OnAlarm();
  void Drive();
  absl::Time Now() const { return sim_->now() + clock_offset_; }

  Simulator* sim_;
  Host* host_;
  net::Endpoint server_;
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<device::AttachClient> attach_;
  std::map<uint64_t, std::unique_ptr<PeerSession>> peers_;  // By channel id.
  net::Endpoint last_reflexive_;  // To notice NAT rebinding.
  uint64_t newest_peer_ = 0;
  std::optional<int> predicted_ports_;
  uint64_t rpc_served_ = 0;
  uint64_t dropped_ = 0;
  absl::Duration clock_offset_ = absl::ZeroDuration();
  Alarm alarm_;
};

// --- Client ------------------------------------------------------------------------------------

// A client: optionally learns its public address from the relay first (RELAY_REFLECT), calls
// Connect through the basestation over a reliable control channel that stands in for gRPC/TLS (a
// fixed one-way delay, no loss), then runs the client side of the peer channel and an RPC
// endpoint on one socket. (PeerConnection reflects on its own too and trickles what it learns.)
class ClientApp {
 public:
  static constexpr uint16_t kPort = 50000;
  enum class State { kIdle, kReflecting, kBrokering, kPeering, kFailed };

  // `basestation` must outlive the client; `control_delay` is the control channel's one-way delay.
  // With `reflect_first`, Connect asks the relay for the client's public address before calling
  // Connect, so it goes out with the client's candidates (one round trip more); without, the
  // client offers its host address alone and the peer channel trickles the rest.
  static absl::StatusOr<std::unique_ptr<ClientApp>> New(Host* host, Basestation* basestation,
                                                        absl::Duration control_delay,
                                                        bool reflect_first = true);
  ~ClientApp();

  // Connect starts a connect to `device_id` now: RELAY_REFLECT if reflect_first (three tries,
  // 300 ms apart; without an answer the client goes on with its host candidate alone), then
  // Connect, then the peer channel.
  void Connect(const std::string& device_id);
  // Overrides PeerConnectionOptions::predicted_ports for the client's peer connection.
  void set_predicted_ports(int ports) { predicted_ports_ = ports; }
  // Call makes one RPC on the peer channel; `done` runs exactly once.
  void Call(absl::string_view method, std::vector<uint8_t> payload, absl::Time deadline,
            rpc::Done done);
  // Close ends the peer connection and tells the device, as a client that is done does; calls
  // still pending fail.
  void Close();

  State state() const { return state_; }
  const absl::Status& status() const { return status_; }
  bool connected() const;
  channel::PeerConnection* connection() const { return connection_.get(); }
  // "local", "direct", "relay" (PeerConnection::PathName of the active path) or "none".
  std::string path() const;
  const std::optional<net::Endpoint>& reflexive() const { return reflexive_; }
  // Extra sockets open for birthday probing now.
  size_t extra_sockets() const { return extra_sockets_ ? extra_sockets_->size() : 0; }

  // Measurements, as times (InfiniteFuture until they happen).
  absl::Time connect_started() const { return connect_started_; }
  // The first authenticated peer packet from the device.
  absl::Time first_authenticated() const { return first_authenticated_; }
  // The last time the active path changed (to the one in use now).
  absl::Time path_changed() const { return path_changed_; }
  uint64_t path_changes() const { return path_changes_; }
  const rpc::RpcCounters& rpc_counters() const { return rpc_.counters(); }

 private:
  ClientApp(Host* host, Basestation* basestation, absl::Duration control_delay,
            bool reflect_first);
  void OnDatagram(const net::Endpoint& from, absl::Span<const uint8_t> bytes);
  void OnAlarm();
  void SendReflect();
  void StartBroker();
  void OnBrokered(absl::StatusOr<BrokeredSession> session);
  void Drive();

  Simulator* sim_;
  Host* host_;
  Basestation* basestation_;
  absl::Duration control_delay_;
  bool reflect_first_;
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<ExtraSockets> extra_sockets_;
  State state_ = State::kIdle;
  absl::Status status_;
  std::string device_id_;
  wire::Nonce client_nonce_{};  // This connect's randomness for the channel keys.
  std::optional<net::Endpoint> reflexive_;
  int reflect_tries_ = 0;
  absl::Time reflect_deadline_ = absl::InfiniteFuture();
  std::optional<int> predicted_ports_;
  std::unique_ptr<channel::PeerConnection> connection_;
  rpc::RpcEndpoint rpc_;
  absl::Time connect_started_ = absl::InfiniteFuture();
  absl::Time first_authenticated_ = absl::InfiniteFuture();
  absl::Time path_changed_ = absl::InfiniteFuture();
  std::string path_key_ = "none";
  uint64_t path_changes_ = 0;
  Alarm alarm_;
};

// --- Scenario ----------------------------------------------------------------------------------

// The NAT types of the grid, each a NatConfig preset (double: port-restricted behind
// port-restricted).
enum class NatType {
  kNone,
  kFullCone,
  kAddressRestricted,
  kPortRestricted,
  kSymmetricSequential,
  kSymmetricRandom,
  kDoubleNat,
};
inline constexpr int kNatTypeCount = 7;
absl::string_view NatTypeName(NatType type);
std::vector<NatType> AllNatTypes();

// A host at the edge: directly on the internet, or behind one or two NATs.
struct Site {
  Host* host = nullptr;
  Nat* nat = nullptr;    // The NAT facing the internet; null for kNone.
  Nat* inner = nullptr;  // The home NAT of a double NAT; else null.
};
// BuildSite attaches a host behind `type` to `internet`. The outermost node takes `public_ip`;
// the host takes `lan_ip` (or `public_ip` for kNone); a double NAT's middle network is
// 100.64.0.0/10 (carrier-grade). The host's path to the internet adds up to `one_way`, of which
// its own link has 1 ms (and a double NAT's inner uplink 1 ms); `loss` applies to the host's own
// link only, each direction. Every NAT times mappings out after `nat_timeout`.
Site BuildSite(Network& internet, NatType type, const std::string& name,
               const net::Endpoint& public_ip, const net::Endpoint& lan_ip,
               absl::Duration one_way, double loss, absl::Duration nat_timeout);

struct ScenarioOptions {
  uint64_t seed = 1;
  NatType device_nat = NatType::kNone;
  NatType client_nat = NatType::kNone;
  // Loss on the device's and the client's own links, each direction (the basestation's is clean).
  double loss = 0;
  absl::Duration device_one_way = absl::Milliseconds(20);
  absl::Duration client_one_way = absl::Milliseconds(20);
  absl::Duration basestation_one_way = absl::Milliseconds(5);
  absl::Duration nat_timeout = absl::Seconds(30);
  // Puts the client on the device's LAN (client_nat is then ignored).
  bool client_on_device_lan = false;
  // See ClientApp::New.
  bool client_reflects_first = true;
  // Overrides PeerConnectionOptions::predicted_ports on both ends.
  std::optional<int> predicted_ports;
  // See Basestation::set_attach_port_reflects.
  bool attach_port_reflects = true;
  basestation::AttachServerOptions attach;
};

// What RunConnect measured. Times are in round trips between client and basestation.
struct ConnectReport {
  bool attached = false;
  bool connected = false;
  absl::Status status;         // The connect's error, if it failed before the peer channel.
  std::string path = "none";   // Client's view, PeerConnection::PathName.
  std::string device_path = "none";
  double first_byte_rtts = 0;  // Connect call -> first authenticated packet from the device.
  double final_path_rtts = 0;  // Connect call -> switch to the path in use at the end.
  bool rpc_ok = false;         // One "echo" round trip on the peer channel after settling.
  absl::Duration rtt;          // The configured client <-> basestation round trip.
};

// Set EDGELINK_SIM_TRACE=1 in the environment to get a packet trace on stderr.
class Scenario {
 public:
  static constexpr absl::string_view kDeviceId = "cam-1";

  static absl::StatusOr<std::unique_ptr<Scenario>> New(const ScenarioOptions& options);

  // RunConnect attaches the device (up to 60 s), connects the client, lets the paths race until
  // every probe has settled (probe_timeout), then makes one RPC round trip.
  ConnectReport RunConnect();
  // PowerOffDevice destroys the device app: its socket closes and every session it had is gone
  // with it; device() must not be used until PowerOnDevice, which starts a fresh one (new socket,
  // no state) on the same host, attaching anew.
  void PowerOffDevice() { device_.reset(); }
  absl::Status PowerOnDevice();

  Simulator& sim() { return sim_; }
  Network& internet() { return internet_; }
  Basestation& basestation() { return *basestation_; }
  DeviceApp& device() { return *device_; }
  ClientApp& client() { return *client_; }
  const Site& device_site() const { return device_site_; }
  const Site& client_site() const { return client_site_; }
  // The configured round trip between client and basestation.
  absl::Duration client_rtt() const { return client_rtt_; }

 private:
  explicit Scenario(const ScenarioOptions& options);

  ScenarioOptions options_;
  Simulator sim_;
  Network internet_;
  Site device_site_;
  Site client_site_;
  absl::Duration client_rtt_;
  std::unique_ptr<Basestation> basestation_;
  std::unique_ptr<DeviceApp> device_;
  std::unique_ptr<ClientApp> client_;
  crypto::SecretBytes device_secret_;  // For PowerOnDevice.
};

}  // namespace edgelink::sim

#endif  // EDGELINK_INTEGRATION_SIM_SCENARIO_H_
