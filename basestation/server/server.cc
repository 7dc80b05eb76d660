#include "basestation/server/server.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/wire/packet.h"
#include "glog/logging.h"
#include "grpcpp/server_builder.h"

namespace edgelink::basestation {
namespace {

static_assert(io::ReceiveBuffer::kDefaultMaxDatagramSize > wire::kMaxPacketSize,
              "a truncated datagram must look oversized to the attach core");

// Memory the process holds, for the bytes-per-device figure.
int64_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

std::vector<std::string> DropReasonNames() {
  std::vector<std::string> names;
  for (int i = 0; i < kDropReasonCount; ++i) {
    names.emplace_back(DropReasonName(static_cast<DropReason>(i)));
  }
  return names;
}

}  // namespace

// The attach server's view of the registry.
class Server::RegistryDirectory : public DeviceDirectory {
 public:
  explicit RegistryDirectory(Registry* registry) : registry_(registry) {}
  absl::StatusOr<DeviceCredentials> FindDevice(absl::string_view device_id) override {
    ASSIGN_OR_RETURN(DeviceRecord record, registry_->Find(device_id));
    return DeviceCredentials{std::move(record.secret), record.revoked};
  }

 private:
  Registry* registry_;
};

struct Server::Metrics {
  metrics::Gauge* attached = nullptr;
  metrics::Counter* received = nullptr;
  metrics::Counter* sent = nullptr;
  metrics::Counter* hellos = nullptr;
  metrics::Counter* attaches = nullptr;
  metrics::Counter* keepalives = nullptr;
  metrics::Counter* expired = nullptr;
  metrics::CounterFamily* dropped = nullptr;
  metrics::Counter* dns_queries = nullptr;
  metrics::Counter* dns_answered = nullptr;
  metrics::Counter* dns_nxdomain = nullptr;
  metrics::Counter* dns_dropped = nullptr;
};

Server::Server(ServerOptions options, io::EventLoop* loop)
    : options_(std::move(options)), loop_(loop) {}

Server::~Server() {
  if (http_) http_->Stop();
  // Fail what waits on devices first, so the gRPC shutdown does not wait for deadlines.
  if (broker_) broker_->Close();
  if (grpc_server_) grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  if (attach_socket_) loop_->Unwatch(attach_socket_->fd());
  if (dns_socket_) loop_->Unwatch(dns_socket_->fd());
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                                      io::EventLoop* loop) {
  std::unique_ptr<Server> server(new Server(std::move(options), loop));
  RETURN_IF_ERROR(server->Init());
  return server;
}

std::optional<net::Endpoint> Server::relay_endpoint() const {
  if (!relay_) return std::nullopt;
  return relay_->local_endpoint();
}

std::optional<net::Endpoint> Server::dns_endpoint() const {
  if (!dns_socket_) return std::nullopt;
  return dns_socket_->local_endpoint();
}

absl::Status Server::Init() {
  ASSIGN_OR_RETURN(registry_, Registry::Open(options_.registry_path));
  RETURN_IF_ERROR(registry_->MarkAllOffline());
  ASSIGN_OR_RETURN(crypto::SecretBytes server_key, registry_->ServerKey());
  directory_ = std::make_unique<RegistryDirectory>(registry_.get());
  ASSIGN_OR_RETURN(attach_,
                   AttachServer::New(options_.attach, server_key, directory_.get(), &random_));

  std::optional<RelayOffer> offer;
  if (options_.relay_listen.has_value()) {
    ASSIGN_OR_RETURN(RelayKey derived, RelayKey::Derive(server_key));
    // Shared with the broker, which makes tickets on gRPC threads; a RelayKey is immutable.
    auto key = std::make_shared<const RelayKey>(std::move(derived));
    ASSIGN_OR_RETURN(relay_,
                     RelayService::Start(options_.relay, *key, *options_.relay_listen, loop_));
    // Peers reach the relay at the basestation's public address, on the relay's port.
    const net::Endpoint public_relay =
        (options_.public_addresses.empty() ? relay_->local_endpoint()
                                           : options_.public_addresses.front())
            .WithPort(relay_->local_endpoint().port());
    offer = RelayOffer{public_relay, [this, key](const wire::SessionId& id) {
                         RelaySessionId relay_id;
                         std::copy(id.begin(), id.end(), relay_id.begin());
                         const auto ticket =
                             MakeRelayTicket(*key, relay_id, absl::Now() + absl::Hours(12)).Encode();
                         return std::vector<uint8_t>(ticket.begin(), ticket.end());
                       }};
  }
  ASSIGN_OR_RETURN(attach_socket_, io::UdpSocket::Bind(options_.attach_listen));
  // Room for bursts of keep-alives from many devices; the kernel caps what it grants.
  (void)attach_socket_->SetReceiveBufferSize(8 << 20);
  (void)attach_socket_->SetSendBufferSize(8 << 20);
  RETURN_IF_ERROR(loop_->Watch(attach_socket_->fd(), [this] { OnAttachReadable(); }));
  BrokerOptions broker = options_.broker;
  broker.reflector = (options_.public_addresses.empty() ? attach_socket_->local_endpoint()
                                                         : options_.public_addresses.front())
                         .WithPort(attach_socket_->local_endpoint().port());
  broker_ = std::make_unique<Broker>(broker, loop_, attach_.get(), &random_, std::move(offer));
  broker_->set_after_send([this] { SendOutgoing(); });

  if (options_.dns_listen.has_value()) {
    DnsZone::Options zone;
    zone.zone = options_.zone;
    zone.addresses = options_.public_addresses;
    zone.is_known_device = [this](absl::string_view id) {
      absl::StatusOr<DeviceRecord> record = registry_->Find(id);
      return record.ok() && !record->revoked;
    };
    ASSIGN_OR_RETURN(dns_, DnsZone::New(std::move(zone)));
    ASSIGN_OR_RETURN(dns_socket_, io::UdpSocket::Bind(*options_.dns_listen));
    RETURN_IF_ERROR(loop_->Watch(dns_socket_->fd(), [this] { OnDnsReadable(); }));
  }

  metrics_ = std::make_unique<Metrics>();
  metrics::Registry& m = metrics_registry_;
  ASSIGN_OR_RETURN(metrics_->attached,
                   m.AddGauge("edgelink_attached_devices", "Devices attached right now."));
  ASSIGN_OR_RETURN(metrics_->received, m.AddCounter("edgelink_attach_packets_received_total",
                                                    "UDP packets received on the attach port."));
  ASSIGN_OR_RETURN(metrics_->sent, m.AddCounter("edgelink_attach_packets_sent_total",
                                                "UDP packets sent from the attach port."));
  ASSIGN_OR_RETURN(metrics_->hellos,
                   m.AddCounter("edgelink_hellos_total", "HELLOs answered with a CHALLENGE."));
  ASSIGN_OR_RETURN(metrics_->attaches, m.AddCounter("edgelink_handshakes_total",
                                                    "Completed attach handshakes."));
  ASSIGN_OR_RETURN(metrics_->keepalives,
                   m.AddCounter("edgelink_keepalives_total", "Authenticated keep-alives."));
  ASSIGN_OR_RETURN(metrics_->expired, m.AddCounter("edgelink_sessions_expired_total",
                                                   "Sessions dropped for silence."));
  ASSIGN_OR_RETURN(metrics_->dropped,
                   m.AddCounterFamily("edgelink_packets_dropped_total",
                                      "Attach packets dropped, by reason.", "reason",
                                      DropReasonNames()));
  ASSIGN_OR_RETURN(metrics_->dns_queries,
                   m.AddCounter("edgelink_dns_queries_total", "DNS queries received."));
  ASSIGN_OR_RETURN(metrics_->dns_answered,
                   m.AddCounter("edgelink_dns_responses_total", "DNS responses sent."));
  ASSIGN_OR_RETURN(metrics_->dns_nxdomain, m.AddCounter("edgelink_dns_nxdomain_total",
                                                        "DNS answers for names that do not exist."));
  ASSIGN_OR_RETURN(metrics_->dns_dropped, m.AddCounter("edgelink_dns_dropped_total",
                                                       "DNS datagrams dropped unanswered."));
  RETURN_IF_ERROR(m.AddCallbackGauge("edgelink_resident_memory_bytes",
                                     "Resident memory of the basestation process.",
                                     ResidentBytes));
  if (options_.metrics_listen.has_value()) {
    ASSIGN_OR_RETURN(http_, metrics::MetricsHttpServer::Start(options_.metrics_listen->IpString(),
                                                              options_.metrics_listen->port(),
                                                              &metrics_registry_));
  }

  if (options_.api_listen.has_value()) RETURN_IF_ERROR(StartApi());

  attach_timer_ = std::make_unique<io::Timer>(loop_, [this] {
    attach_->OnTimeout(loop_->Now());
    AfterInput();
  });
  registry_timer_ = std::make_unique<io::Timer>(loop_, [this] { CheckRegistry(); });
  registry_timer_->Schedule(loop_->Now());
  return absl::OkStatus();
}

absl::Status Server::StartApi() {
  ApiOptions api;
  api.registry_path = options_.registry_path;
  api.admin_fingerprints = options_.admin_fingerprints;
  api.zone = options_.zone;
  ASSIGN_OR_RETURN(api_core_, ApiCore::New(std::move(api), broker_.get(), &presence_));
  basestation_service_ = std::make_unique<BasestationService>(api_core_.get());
  admin_service_ = std::make_unique<AdminService>(api_core_.get());
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   tls::ServerCredentials(options_.tls));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.api_listen->ToString(), credentials, &api_port_);
  builder.RegisterService(basestation_service_.get());
  builder.RegisterService(admin_service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || api_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve the API on ", options_.api_listen->ToString()));
  }
  return absl::OkStatus();
}

void Server::OnAttachReadable() {
  // Drain the socket in batches, then send and record everything the batch produced.
  for (int round = 0; round < 64; ++round) {
    absl::StatusOr<size_t> n = attach_socket_->ReceiveBatch(receive_buffer_);
    if (!n.ok()) {
      LOG(WARNING) << "attach socket: " << n.status();
      break;
    }
    if (*n == 0) break;
    const absl::Time now = loop_->Now();
    for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) {
      if (!d.bytes.empty() && d.bytes[0] == kRelayControlByte) {
        // The attach port reflects too (AnswerReflect).
        if (std::optional<std::vector<uint8_t>> reflection = AnswerReflect(d.source, d.bytes)) {
          (void)attach_socket_->SendTo(d.source, *reflection);
        }
        continue;
      }
      // A truncated datagram still carries a slot's worth of bytes, more than the protocol's
      // maximum, so the core drops it as malformed.
      attach_->OnPacket(d.source, d.bytes, now);
    }
    AfterInput();
    if (*n < receive_buffer_.max_datagrams()) break;
  }
}

void Server::SendOutgoing() {
  std::vector<net::Datagram> outgoing = attach_->TakeOutgoing();
  std::vector<io::OutgoingDatagram> batch;
  batch.reserve(outgoing.size());
  for (const net::Datagram& d : outgoing) batch.push_back({d.to, d.bytes});
  for (size_t sent = 0; sent < batch.size();) {
    absl::StatusOr<size_t> n = attach_socket_->SendBatch(absl::MakeConstSpan(batch).subspan(sent));
    if (!n.ok() || *n == 0) break;  // Socket buffer full: UDP, the peers retransmit.
    sent += *n;
  }
}

void Server::AfterInput() {
  // Presence is on disk before anyone hears of it: before a watcher wakes, and before a device
  // gets its ATTACHED, so "attached" on the device implies "online" in the registry.
  std::vector<PresenceEvent> events = attach_->TakePresenceEvents();
  if (!events.empty()) {
    std::vector<PresenceChange> changes;
    changes.reserve(events.size());
    for (const PresenceEvent& e : events) {
      changes.push_back({e.device_id, e.online, e.address.ToString(), e.at});
      VLOG(1) << "device " << e.device_id
              << (e.online ? " online at " + e.address.ToString() : " offline");
    }
    if (absl::Status s = registry_->RecordPresence(changes); !s.ok()) {
      LOG(ERROR) << "recording presence: " << s;
    }
    for (const PresenceEvent& e : events) presence_.Publish(e.device_id);
  }
  SendOutgoing();
  broker_->OnReplies(attach_->TakeReplies());
  attach_timer_->Schedule(attach_->next_timeout());
  PublishMetrics();
}

void Server::OnDnsReadable() {
  for (;;) {
    absl::StatusOr<size_t> n = dns_socket_->ReceiveBatch(receive_buffer_);
    if (!n.ok() || *n == 0) break;
    for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) {
      if (d.truncated) continue;
      std::optional<std::vector<uint8_t>> answer = dns_->Answer(d.bytes);
      if (answer.has_value()) (void)dns_socket_->SendTo(d.source, *answer);
    }
  }
  PublishMetrics();
}

void Server::CheckRegistry() {
  // Another process (the CLI) may have revoked devices; data_version moves when it commits.
  absl::StatusOr<int64_t> version = registry_->DataVersion();
  if (version.ok() && *version != registry_version_) {
    registry_version_ = *version;
    absl::StatusOr<std::vector<DeviceSummary>> devices = registry_->List();
    if (devices.ok()) {
      for (const DeviceSummary& device : *devices) {
        if (device.revoked && attach_->IsAttached(device.device_id)) {
          LOG(INFO) << "device " << device.device_id << " revoked: detaching it";
          attach_->Revoke(device.device_id, loop_->Now());
        }
      }
      AfterInput();
    }
  }
  registry_timer_->Schedule(loop_->Now() + absl::Seconds(1));
}

void Server::PublishMetrics() {
  const AttachServerCounters& c = attach_->counters();
  metrics_->attached->Set(static_cast<int64_t>(attach_->attached_count()));
  metrics_->received->Increment(c.packets_received - published_.packets_received);
  metrics_->sent->Increment(c.packets_sent - published_.packets_sent);
  metrics_->hellos->Increment(c.hellos - published_.hellos);
  metrics_->attaches->Increment(c.attaches - published_.attaches);
  metrics_->keepalives->Increment(c.keepalives - published_.keepalives);
  metrics_->expired->Increment(c.expired - published_.expired);
  for (int i = 0; i < kDropReasonCount; ++i) {
    if (c.dropped[i] != published_.dropped[i]) {
      metrics_->dropped->Get(DropReasonName(static_cast<DropReason>(i)))
          .Increment(c.dropped[i] - published_.dropped[i]);
    }
  }
  published_ = c;
  if (dns_) {
    const DnsZone::Counters& d = dns_->counters();
    metrics_->dns_queries->Increment(d.queries - published_dns_.queries);
    metrics_->dns_answered->Increment(d.answered - published_dns_.answered);
    metrics_->dns_nxdomain->Increment(d.nxdomain - published_dns_.nxdomain);
    metrics_->dns_dropped->Increment(d.dropped_malformed - published_dns_.dropped_malformed);
    published_dns_ = d;
  }
}

}  // namespace edgelink::basestation
