#include "integration/sim/network.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace edgelink::sim {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "sim: %s\n", message.c_str());
  std::abort();
}

}  // namespace

std::string Describe(const Packet& packet) {
  return absl::StrCat(packet.from.ToString(), " > ", packet.to.ToString(), " ",
                      packet.bytes.size(), "B",
                      packet.bytes.empty() ? "" : absl::StrCat(" type ", packet.bytes[0], ".",
                                                               packet.bytes.size() > 1 ? packet.bytes[1] : 0));
}

net::Endpoint Ip(absl::string_view dotted) {
  absl::StatusOr<net::Endpoint> ip = net::Endpoint::ParseIp(dotted, 0);
  if (!ip.ok()) Die(absl::StrCat("bad address ", dotted, ": ", ip.status().ToString()));
  return *ip;
}

// --- Link -------------------------------------------------------------------------------------

Link::Link(Simulator* sim, LinkConfig config, std::function<void(Packet)> sink)
    : sim_(sim), config_(config), sink_(std::move(sink)) {}

void Link::Send(Packet packet) {
  ++counters_.packets;
  const absl::Time now = sim_->now();
  if (config_.loss > 0 && sim_->Uniform() < config_.loss) {
    ++counters_.lost;
    if (sim_->tracing()) sim_->Trace(absl::StrCat("lost ", Describe(packet)));
    return;
  }
  absl::Time sent = now;
  if (config_.bytes_per_second > 0) {
    const absl::Time start = std::max(now, busy_until_);
    const double backlog = absl::ToDoubleSeconds(start - now) * config_.bytes_per_second;
    if (backlog + static_cast<double>(packet.bytes.size()) >
        static_cast<double>(config_.queue_bytes)) {
      ++counters_.queue_dropped;
      if (sim_->tracing()) sim_->Trace(absl::StrCat("queue full ", Describe(packet)));
      return;
    }
    busy_until_ =
        start + absl::Seconds(static_cast<double>(packet.bytes.size()) / config_.bytes_per_second);
    sent = busy_until_;
  }
  absl::Time arrival = sent + config_.latency;
  if (config_.jitter > absl::ZeroDuration()) arrival += config_.jitter * sim_->Uniform();
  if (config_.reorder > 0 && sim_->Uniform() < config_.reorder) {
    // Held back; does not move last_arrival_, so what follows may pass it.
    arrival += config_.reorder_delay;
    ++counters_.reordered;
  } else {
    arrival = std::max(arrival, last_arrival_);
    last_arrival_ = arrival;
  }
  sim_->Schedule(arrival, [this, packet = std::move(packet)]() mutable {
    ++counters_.delivered;
    sink_(std::move(packet));
  });
}

// --- Node, Host, Socket -----------------------------------------------------------------------

Node::Node(Network* network, std::string name, net::Endpoint ip, const LinkConfig& link)
    : network_(network),
      name_(std::move(name)),
      ip_(ip),
      uplink_(&network->sim(), link, [network](Packet p) { network->Route(std::move(p)); }),
      downlink_(&network->sim(), link, [this](Packet p) { Receive(std::move(p)); }) {}

Simulator& Node::sim() const { return network_->sim(); }

absl::Duration Node::RoundTripToRoot() const {
  absl::Duration total = absl::ZeroDuration();
  for (const Node* node = this; node != nullptr; node = node->network_->gateway()) {
    total += node->uplink_.config().latency + node->downlink_.config().latency;
  }
  return total;
}

Socket::~Socket() { host_->sockets_.erase(local_.port()); }

void Socket::SendTo(const net::Endpoint& to, std::vector<uint8_t> bytes) {
  if (host_->sim().tracing()) {
    host_->sim().Trace(absl::StrCat(host_->name(), " sends ", Describe({local_, to, bytes})));
  }
  host_->Transmit({local_, to, std::move(bytes)});
}

absl::StatusOr<std::unique_ptr<Socket>> Host::Bind(uint16_t port, Socket::Receiver receiver) {
  if (port == 0) {
    for (int tries = 0; tries < 16384 && sockets_.contains(next_ephemeral_); ++tries) {
      next_ephemeral_ = next_ephemeral_ == 65535 ? 49152 : next_ephemeral_ + 1;
    }
    port = next_ephemeral_;
    next_ephemeral_ = next_ephemeral_ == 65535 ? 49152 : next_ephemeral_ + 1;
  }
  if (sockets_.contains(port)) {
    return absl::AlreadyExistsError(absl::StrCat(name(), ": port ", port, " is in use"));
  }
  std::unique_ptr<Socket> socket(new Socket(this, ip().WithPort(port), std::move(receiver)));
  sockets_[port] = socket.get();
  return socket;
}

void Host::Receive(Packet packet) {
  auto it = sockets_.find(packet.to.port());
  if (it == sockets_.end()) {
    ++dropped_no_socket_;
    return;
  }
  if (sim().tracing()) sim().Trace(absl::StrCat(name(), " receives ", Describe(packet)));
  // A copy: the receiver may close its own socket.
  const Socket::Receiver receiver = it->second->receiver_;
  receiver(packet.from, packet.bytes);
}

// --- NAT --------------------------------------------------------------------------------------

NatConfig NatConfig::FullCone() {
  return {NatMapping::kEndpointIndependent, NatFiltering::kEndpointIndependent,
          PortAllocation::kPreserving};
}
NatConfig NatConfig::AddressRestricted() {
  return {NatMapping::kEndpointIndependent, NatFiltering::kAddressDependent,
          PortAllocation::kPreserving};
}
NatConfig NatConfig::PortRestricted() {
  return {NatMapping::kEndpointIndependent, NatFiltering::kAddressAndPortDependent,
          PortAllocation::kPreserving};
}
NatConfig NatConfig::SymmetricSequential() {
  return {NatMapping::kAddressAndPortDependent, NatFiltering::kAddressAndPortDependent,
          PortAllocation::kSequential};
}
NatConfig NatConfig::SymmetricRandom() {
  return {NatMapping::kAddressAndPortDependent, NatFiltering::kAddressAndPortDependent,
          PortAllocation::kRandom};
}

Nat::Nat(Network* parent, std::string name, net::Endpoint ip, const NatConfig& config,
         const LinkConfig& uplink)
    : Node(parent, name, ip, uplink),
      config_(config),
      inside_(new Network(&parent->sim(), name + "-inside", this)),
      // Sequential allocation starts somewhere in the range, as real NATs do.
      next_port_(static_cast<uint16_t>(
          parent->sim().UniformInt(config.min_port, config.max_port))) {
  if (config_.min_port == 0 || config_.min_port > config_.max_port) Die("bad NAT port range");
}

Nat::Key Nat::KeyFor(const net::Endpoint& internal, const net::Endpoint& remote) const {
  switch (config_.mapping) {
    case NatMapping::kEndpointIndependent:
      return {internal, net::Endpoint()};
    case NatMapping::kAddressDependent:
      return {internal, remote.WithPort(0)};
    case NatMapping::kAddressAndPortDependent:
      return {internal, remote};
  }
  return {internal, remote};
}

net::Endpoint Nat::PermissionFor(const net::Endpoint& remote) const {
  switch (config_.filtering) {
    case NatFiltering::kEndpointIndependent:
      return net::Endpoint();
    case NatFiltering::kAddressDependent:
      return remote.WithPort(0);
    case NatFiltering::kAddressAndPortDependent:
      return remote;
  }
  return remote;
}

Nat::Mapping* Nat::Live(uint16_t external_port) {
  auto it = by_port_.find(external_port);
  if (it == by_port_.end()) return nullptr;
  if (sim().now() >= it->second.expires) {
    ++counters_.mappings_expired;
    by_key_.erase(it->second.key);
    by_port_.erase(it);
    return nullptr;
  }
  return &it->second;
}

bool Nat::PortFree(uint16_t port) {
  return port >= config_.min_port && !retired_ports_.contains(port) && Live(port) == nullptr;
}

std::optional<uint16_t> Nat::AllocatePort(uint16_t internal_port) {
  const uint32_t range = uint32_t{config_.max_port} - config_.min_port + 1;
  if (config_.ports == PortAllocation::kPreserving && PortFree(internal_port) &&
      internal_port <= config_.max_port) {
    return internal_port;
  }
  if (config_.ports == PortAllocation::kRandom) {
    for (int tries = 0; tries < 64; ++tries) {
      const auto port =
          static_cast<uint16_t>(sim().UniformInt(config_.min_port, config_.max_port));
      if (PortFree(port)) return port;
    }
    // Nearly full: fall through to a sweep, so a free port is found if there is one.
  }
  for (uint32_t i = 0; i < range; ++i) {
    const uint16_t port = next_port_;
    next_port_ = next_port_ == config_.max_port ? config_.min_port : next_port_ + 1;
    if (PortFree(port)) return port;
  }
  return std::nullopt;
}

std::optional<net::Endpoint> Nat::ExternalFor(const net::Endpoint& internal,
                                              const net::Endpoint& remote) {
  auto it = by_key_.find(KeyFor(internal, remote));
  if (it == by_key_.end() || Live(it->second) == nullptr) return std::nullopt;
  return ip().WithPort(it->second);
}

size_t Nat::live_mappings() {
  std::vector<uint16_t> ports;
  for (const auto& [port, mapping] : by_port_) ports.push_back(port);
  for (uint16_t port : ports) Live(port);  // Purges the expired.
  return by_port_.size();
}

void Nat::Rebind() {
  for (const auto& [port, mapping] : by_port_) retired_ports_.insert(port);
  by_port_.clear();
  by_key_.clear();
}

void Nat::FromInside(Packet packet) {
  const absl::Time now = sim().now();
  const Key key = KeyFor(packet.from, packet.to);
  Mapping* mapping = nullptr;
  if (auto it = by_key_.find(key); it != by_key_.end()) mapping = Live(it->second);
  if (mapping == nullptr) {
    const std::optional<uint16_t> port = AllocatePort(packet.from.port());
    if (!port.has_value()) {
      ++counters_.dropped_no_port;
      return;
    }
    ++counters_.mappings_created;
    by_key_[key] = *port;
    mapping = &by_port_[*port];
    mapping->key = key;
    mapping->external_port = *port;
  }
  // Outbound traffic refreshes the mapping and opens the filter towards its destination.
  mapping->expires = now + config_.mapping_timeout;
  if (config_.filtering != NatFiltering::kEndpointIndependent) {
    mapping->permitted[PermissionFor(packet.to)] = now + config_.mapping_timeout;
  }
  packet.from = ip().WithPort(mapping->external_port);
  if (packet.to.WithPort(0) == ip()) {
    if (!config_.hairpinning) {
      ++counters_.dropped_hairpin;
      return;
    }
    ++counters_.hairpinned;
    Inbound(std::move(packet));
    return;
  }
  ++counters_.translated_out;
  Transmit(std::move(packet));
}

void Nat::Receive(Packet packet) { Inbound(std::move(packet)); }

void Nat::Inbound(Packet packet) {
  Mapping* mapping = Live(packet.to.port());
  if (mapping == nullptr) {
    ++counters_.dropped_no_mapping;
    if (sim().tracing()) sim().Trace(absl::StrCat(name(), " no mapping ", Describe(packet)));
    return;
  }
  if (config_.filtering != NatFiltering::kEndpointIndependent) {
    auto it = mapping->permitted.find(PermissionFor(packet.from));
    if (it == mapping->permitted.end() || sim().now() >= it->second) {
      ++counters_.dropped_filtered;
      if (sim().tracing()) sim().Trace(absl::StrCat(name(), " filtered ", Describe(packet)));
      return;
    }
  }
  ++counters_.translated_in;
  packet.to = mapping->key.internal;
  inside_->Route(std::move(packet));
}

// --- Network ----------------------------------------------------------------------------------

Network::Network(Simulator* sim, std::string name) : Network(sim, std::move(name), nullptr) {}

Network::Network(Simulator* sim, std::string name, Nat* gateway)
    : sim_(sim), name_(std::move(name)), gateway_(gateway) {}

void Network::Attach(std::unique_ptr<Node> node) {
  if (node->ip().family() != net::Endpoint::Family::kIpv4 || node->ip().port() != 0) {
    Die(absl::StrCat(name_, ": ", node->name(), " needs an IPv4 address without a port"));
  }
  if (!by_ip_.emplace(node->ip(), node.get()).second) {
    Die(absl::StrCat(name_, ": address ", node->ip().IpString(), " is taken"));
  }
  nodes_.push_back(std::move(node));
}

Host& Network::AddHost(std::string name, const net::Endpoint& ip, const LinkConfig& link) {
  auto* host = new Host(this, std::move(name), ip, link);
  Attach(std::unique_ptr<Node>(host));
  return *host;
}

Nat& Network::AddNat(std::string name, const net::Endpoint& ip, const NatConfig& config,
                     const LinkConfig& link) {
  auto* nat = new Nat(this, std::move(name), ip, config, link);
  Attach(std::unique_ptr<Node>(nat));
  return *nat;
}

void Network::Route(Packet packet) {
  if (auto it = by_ip_.find(packet.to.WithPort(0)); it != by_ip_.end()) {
    it->second->downlink().Send(std::move(packet));
  } else if (gateway_ != nullptr) {
    gateway_->FromInside(std::move(packet));
  } else {
    ++dropped_no_route_;
  }
}

}  // namespace edgelink::sim
