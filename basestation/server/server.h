// Server: the basestation's attach service on real sockets. It puts the sans-I/O AttachServer and
// DnsZone on UDP sockets of an EventLoop, keeps the registry's presence columns current, notices
// provisioning and revocation done by other processes (the CLI), and exports metrics over HTTP.
#ifndef EDGELINK_BASESTATION_SERVER_SERVER_H_
#define EDGELINK_BASESTATION_SERVER_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "basestation/api/service.h"
#include "basestation/core/attach_server.h"
#include "basestation/dns/dns_zone.h"
#include "basestation/metrics/http_server.h"
#include "basestation/metrics/metrics.h"
#include "basestation/registry/registry.h"
#include "basestation/relay/relay_service.h"
#include "basestation/server/broker.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "common/tls/credentials.h"
#include "grpcpp/server.h"

namespace edgelink::basestation {

struct ServerOptions {
  std::string registry_path;
  net::Endpoint attach_listen;                // UDP; port 0 picks one.
  std::optional<net::Endpoint> dns_listen;    // UDP; unset: no DNS.
  std::optional<net::Endpoint> metrics_listen;  // HTTP; unset: no metrics.
  std::string zone;                           // DNS zone the devices live in.
  std::vector<net::Endpoint> public_addresses;  // What the zone answers (ports ignored).
  AttachServerOptions attach;
  BrokerOptions broker;
  // The relay (UDP); unset: none, peers that cannot reach each other directly fail.
  std::optional<net::Endpoint> relay_listen;
  RelayOptions relay;
  // The gRPC API over mutual TLS; unset: no API (attach and DNS only).
  std::optional<net::Endpoint> api_listen;
  tls::TlsFiles tls;
  std::vector<std::string> admin_fingerprints;
};

// Not thread-safe: lives on its EventLoop's thread (the metrics HTTP server has its own thread and
// reads only atomics).
class Server {
 public:
  // Start opens the registry, binds every socket and starts serving on `loop`, which must outlive
  // the server. Fails naming what could not be opened or bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, io::EventLoop* loop);
  ~Server();

  const net::Endpoint& attach_endpoint() const { return attach_socket_->local_endpoint(); }
  std::optional<net::Endpoint> dns_endpoint() const;
  std::optional<net::Endpoint> relay_endpoint() const;
  int metrics_port() const { return http_ ? http_->port() : 0; }
  int api_port() const { return api_port_; }
  // For the gRPC API: thread-safe.
  Broker& broker() { return *broker_; }

 private:
  class RegistryDirectory;
  struct Metrics;

  Server(ServerOptions options, io::EventLoop* loop);
  absl::Status Init();
  absl::Status StartApi();
  void OnAttachReadable();
  void OnDnsReadable();
  // Sends what the attach server produced, records presence, hands replies to the broker.
  void AfterInput();
  void SendOutgoing();
  void CheckRegistry();
  void PublishMetrics();

  ServerOptions options_;
  io::EventLoop* loop_;
  crypto::SystemRandom random_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RegistryDirectory> directory_;
  std::unique_ptr<AttachServer> attach_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<RelayService> relay_;
  std::unique_ptr<DnsZone> dns_;
  std::unique_ptr<io::UdpSocket> attach_socket_;
  std::unique_ptr<io::UdpSocket> dns_socket_;
  io::ReceiveBuffer receive_buffer_;
  std::unique_ptr<io::Timer> attach_timer_;
  std::unique_ptr<io::Timer> registry_timer_;
  int64_t registry_version_ = -1;

  metrics::Registry metrics_registry_;
  std::unique_ptr<Metrics> metrics_;
  AttachServerCounters published_;
  DnsZone::Counters published_dns_;
  std::unique_ptr<metrics::MetricsHttpServer> http_;

  PresenceHub presence_;
  std::unique_ptr<ApiCore> api_core_;
  std::unique_ptr<BasestationService> basestation_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int api_port_ = 0;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_SERVER_SERVER_H_
