#include "device/daemon/daemon.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>
#include <utility>
#include <vector>

#include "common/io/sockaddr.h"
#include "common/status/status_macros.h"
#include "device/dns/resolver.h"
#include "glog/logging.h"

namespace edgelink::device {

absl::StatusOr<std::unique_ptr<DeviceDaemon>> DeviceDaemon::Start(std::string config_path,
                                                                  DeviceConfig config,
                                                                  io::EventLoop* loop) {
  const std::string access_path =
      config.access_list_path.empty() ? config_path + ".access" : config.access_list_path;
  ASSIGN_OR_RETURN(std::unique_ptr<AccessList> access,
                   AccessList::Open(access_path, config.pairing_secret));
  std::unique_ptr<DeviceDaemon> daemon(
      new DeviceDaemon(std::move(config_path), std::move(config), loop, std::move(access)));
  daemon->Apply();
  return daemon;
}

DeviceDaemon::DeviceDaemon(std::string config_path, DeviceConfig config, io::EventLoop* loop,
                           std::unique_ptr<AccessList> access)
    : config_path_(std::move(config_path)),
      config_(std::move(config)),
      loop_(loop),
      access_(std::move(access)),
      handler_(std::make_unique<AccessRequestHandler>(access_.get(),
                                                      [this] { return LocalCandidates(); })),
      client_timer_(loop, [this] {
        client_->OnTimeout(loop_->Now());
        Drive();
      }),
      resolve_timer_(loop, [this] { Resolve(); }) {}

DeviceDaemon::~DeviceDaemon() {
  if (socket_) loop_->Unwatch(socket_->fd());
}

void DeviceDaemon::Apply() {
  if (!config_.remote_access) {
    // The master switch: no DNS query, no packet, no timer that could make one.
    resolve_timer_.Cancel();
    client_timer_.Cancel();
    if (client_) client_->Stop();
    LOG(INFO) << "state=off remote access is off: sending nothing";
    return;
  }
  Resolve();
}

void DeviceDaemon::Resolve() {
  if (!config_.remote_access) return;
  net::Endpoint basestation;
  if (config_.basestation.has_value()) {
    basestation = *config_.basestation;
  } else {
    // Blocking, bounded by the resolver's timeouts (a few seconds at worst); the daemon has
    // nothing else to do until it knows where its basestation is.
    ++dns_lookups_;
    absl::StatusOr<std::vector<net::Endpoint>> addresses = ResolveHost(
        config_.BasestationHostname(), config_.basestation_port, config_.dns_server);
    if (!addresses.ok()) {
      LOG(WARNING) << "state=resolving " << addresses.status() << "; retrying in "
                   << resolve_backoff_;
      resolve_timer_.Schedule(loop_->Now() + resolve_backoff_);
      resolve_backoff_ = std::min(resolve_backoff_ * 2, absl::Seconds(60));
      return;
    }
    basestation = addresses->front();
  }
  resolve_backoff_ = absl::Seconds(1);
  if (absl::Status s = Connect(basestation); !s.ok()) {
    LOG(ERROR) << "cannot reach basestation " << basestation.ToString() << ": " << s;
    resolve_timer_.Schedule(loop_->Now() + absl::Seconds(10));
  }
}

absl::Status DeviceDaemon::Connect(const net::Endpoint& basestation) {
  if (!socket_ || socket_->local_endpoint().family() != basestation.family()) {
    if (socket_) loop_->Unwatch(socket_->fd());
    const net::Endpoint any = basestation.family() == net::Endpoint::Family::kIpv6
                                  ? *net::Endpoint::Parse("[::]:0")
                                  : *net::Endpoint::Parse("0.0.0.0:0");
    ASSIGN_OR_RETURN(socket_, io::UdpSocket::Bind(any));
    RETURN_IF_ERROR(loop_->Watch(socket_->fd(), [this] { OnReadable(); }));
  }
  if (!client_) {
    AttachClientOptions options;
    options.device_id = config_.device_id;
    options.secret = config_.secret.Clone();
    options.server = basestation;
    options.handler = handler_.get();
    options.on_state_change = [](absl::string_view state, absl::string_view reason) {
      LOG(INFO) << "state=" << state << " " << reason;
    };
    ASSIGN_OR_RETURN(client_, AttachClient::New(std::move(options), &random_));
  }
  LOG(INFO) << "basestation "
            << (config_.basestation.has_value() ? "" : config_.BasestationHostname() + " ")
            << "is " << basestation.ToString();
  client_->SetServer(basestation, loop_->Now());
  client_->Start(loop_->Now());
  Drive();
  return absl::OkStatus();
}

std::vector<wire::Candidate> DeviceDaemon::LocalCandidates() const {
  std::vector<wire::Candidate> candidates;
  if (!socket_) return candidates;
  const uint16_t port = socket_->local_endpoint().port();
  const net::Endpoint::Family family = socket_->local_endpoint().family();
  ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) return candidates;
  for (ifaddrs* i = interfaces; i != nullptr && candidates.size() < wire::kMaxCandidates;
       i = i->ifa_next) {
    if (i->ifa_addr == nullptr || !(i->ifa_flags & IFF_UP)) continue;
    sockaddr_storage storage{};
    const socklen_t size = i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                               : sizeof(sockaddr_in);
    if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) continue;
    std::memcpy(&storage, i->ifa_addr, size);
    absl::StatusOr<net::Endpoint> address = io::FromSockaddr(storage, size);
    if (!address.ok() || address->family() != family) continue;
    // Link-local IPv6 needs a scope id that an Endpoint cannot carry.
    if (family == net::Endpoint::Family::kIpv6 && address->ip()[0] == 0xfe &&
        (address->ip()[1] & 0xc0) == 0x80) {
      continue;
    }
    candidates.push_back({wire::Candidate::Kind::kHost, address->WithPort(port)});
  }
  freeifaddrs(interfaces);
  return candidates;
}

void DeviceDaemon::OnReadable() {
  for (;;) {
    absl::StatusOr<size_t> n = socket_->ReceiveBatch(receive_buffer_);
    if (!n.ok() || *n == 0) break;
    const absl::Time now = loop_->Now();
    for (const io::ReceivedDatagram& d : receive_buffer_.datagrams()) {
      if (client_) client_->OnPacket(d.source, d.bytes, now);
    }
  }
  if (client_) Drive();
}

void DeviceDaemon::Drive() {
  for (const net::Datagram& d : client_->TakeOutgoing()) {
    if (socket_->SendTo(d.to, d.bytes).ok()) ++packets_sent_;
  }
  client_timer_.Schedule(client_->next_timeout());
}

void DeviceDaemon::Reload() {
  absl::StatusOr<DeviceConfig> config = LoadDeviceConfig(config_path_);
  if (!config.ok()) {
    LOG(ERROR) << "config reload failed, keeping the running config: " << config.status();
    return;
  }
  const bool identity_changed =
      config->device_id != config_.device_id ||
      !crypto::ConstantTimeEquals(config->secret.span(), config_.secret.span());
  config_ = *std::move(config);
  LOG(INFO) << "config reloaded: remote_access=" << (config_.remote_access ? "on" : "off");
  if (identity_changed && client_) {
    client_->Stop();
    client_.reset();
  }
  Apply();
}

void DeviceDaemon::LogCounters() const {
  const AttachClientCounters none;
  const AttachClientCounters& c = client_ ? client_->counters() : none;
  LOG(INFO) << "counters packets_sent=" << packets_sent_ << " dns_lookups=" << dns_lookups_
            << " packets_received=" << c.packets_received << " attaches=" << c.attaches
            << " dropped=" << c.dropped_malformed + c.dropped_unexpected +
                                  c.dropped_unauthenticated + c.dropped_replay;
}

}  // namespace edgelink::device
