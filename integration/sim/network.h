// A virtual IPv4 network for the simulator: hosts with UDP "sockets", links with latency, jitter,
// loss, reordering and a rate limit, and NAT boxes built from the RFC 4787 behaviours, which may
// sit behind each other (double NAT, carrier-grade NAT).
//
// The topology is a tree of address spaces (Network). The root is the internet; every other
// Network is the inside of one Nat, which is its gateway. Each Node (a Host or a Nat's outside)
// is attached to one Network by a two-way link to that network's switch. A packet sent by a host
// crosses its uplink to the switch; the switch hands it over the destination's downlink if the
// address is attached there, else to the gateway NAT, which translates it and sends it over its
// own uplink into the parent network, and so on. Nothing is routed between sibling networks except
// through the internet, so private addresses of two different LANs never collide.
//
// Like Tailscale's natlab and pion's vnet, a NAT type is not a named class ("full cone") but a
// combination of behaviours; NatConfig has presets for the classic names.
#ifndef EDGELINK_INTEGRATION_SIM_NETWORK_H_
#define EDGELINK_INTEGRATION_SIM_NETWORK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/net/endpoint.h"
#include "integration/sim/simulator.h"

namespace edgelink::sim {

// Ip makes an address (an Endpoint with port 0) from dotted text; aborts on a typo, since
// addresses in a simulation are part of the test's own configuration.
net::Endpoint Ip(absl::string_view dotted);

struct Packet {
  net::Endpoint from;
  net::Endpoint to;
  std::vector<uint8_t> bytes;
};
// "1.2.3.4:5 > 6.7.8.9:10 64B type 3.1": for traces (the first two bytes tell the protocol).
std::string Describe(const Packet& packet);

// One direction of a wire. Loss is decided when a packet enters; the rate limit serializes packets
// through a FIFO of queue_bytes (tail drop beyond it); latency and jitter are added after.
// Packets keep their order (jitter included) unless picked for reordering, which holds one back by
// reorder_delay so that later ones overtake it.
struct LinkConfig {
  absl::Duration latency = absl::ZeroDuration();
  absl::Duration jitter = absl::ZeroDuration();  // Uniform extra delay in [0, jitter).
  double loss = 0;                                // Probability, per packet.
  double reorder = 0;                             // Probability, per packet.
  absl::Duration reorder_delay = absl::Milliseconds(10);
  double bytes_per_second = 0;  // 0: no rate limit.
  size_t queue_bytes = 64 * 1024;
};

struct LinkCounters {
  uint64_t packets = 0;
  uint64_t delivered = 0;
  uint64_t lost = 0;
  uint64_t queue_dropped = 0;
  uint64_t reordered = 0;
};

class Link {
 public:
  Link(Simulator* sim, LinkConfig config, std::function<void(Packet)> sink);
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void Send(Packet packet);
  // Mutable, so a test can raise loss or cut a link mid-run.
  LinkConfig& config() { return config_; }
  const LinkConfig& config() const { return config_; }
  const LinkCounters& counters() const { return counters_; }

 private:
  Simulator* sim_;
  LinkConfig config_;
  std::function<void(Packet)> sink_;
  absl::Time busy_until_ = absl::InfinitePast();    // When the rate-limited sender is free.
  absl::Time last_arrival_ = absl::InfinitePast();  // To keep FIFO order under jitter.
  LinkCounters counters_;
};

class Network;

// Something attached to a Network at one address, through a two-way link.
class Node {
 public:
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  const net::Endpoint& ip() const { return ip_; }
  Network& network() const { return *network_; }
  Link& uplink() { return uplink_; }
  Link& downlink() { return downlink_; }
  Simulator& sim() const;
  // The configured round trip (latency only, no queueing or jitter) from this node to the root
  // network's switch, through every NAT on the way.
  absl::Duration RoundTripToRoot() const;

 protected:
  Node(Network* network, std::string name, net::Endpoint ip, const LinkConfig& link);
  // A packet for this node arrived over its downlink.
  virtual void Receive(Packet packet) = 0;
  // Transmit sends a packet over this node's uplink into its network.
  void Transmit(Packet packet) { uplink_.Send(std::move(packet)); }

 private:
  Network* network_;
  std::string name_;
  net::Endpoint ip_;
  Link uplink_;
  Link downlink_;
};

class Host;

// A UDP socket on a Host. Closing (destroying) it, even from its own receiver, unbinds the port;
// later packets to it are dropped and counted by the host.
class Socket {
 public:
  using Receiver = std::function<void(const net::Endpoint& from, absl::Span<const uint8_t> bytes)>;
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  const net::Endpoint& local() const { return local_; }
  void SendTo(const net::Endpoint& to, std::vector<uint8_t> bytes);

 private:
  friend class Host;
  Socket(Host* host, net::Endpoint local, Receiver receiver)
      : host_(host), local_(local), receiver_(std::move(receiver)) {}
  Host* host_;
  net::Endpoint local_;
  Receiver receiver_;
};

class Host final : public Node {
 public:
  // Bind opens UDP `port` (0: the next free ephemeral port) and hands every datagram that arrives
  // there to `receiver`, at the simulator's current time. kAlreadyExists if the port is taken.
  absl::StatusOr<std::unique_ptr<Socket>> Bind(uint16_t port, Socket::Receiver receiver);
  uint64_t dropped_no_socket() const { return dropped_no_socket_; }

 private:
  friend class Network;
  friend class Socket;
  Host(Network* network, std::string name, net::Endpoint ip, const LinkConfig& link)
      : Node(network, std::move(name), ip, link) {}
  void Receive(Packet packet) override;

  absl::flat_hash_map<uint16_t, Socket*> sockets_;
  uint16_t next_ephemeral_ = 49152;
  uint64_t dropped_no_socket_ = 0;
};

// RFC 4787 section 4.1: which outbound flows share one external port.
enum class NatMapping { kEndpointIndependent, kAddressDependent, kAddressAndPortDependent };
// RFC 4787 section 5: which inbound packets a mapping lets in: from anyone, from an address the
// inside host has sent to, or only from an exact address and port it has sent to.
enum class NatFiltering { kEndpointIndependent, kAddressDependent, kAddressAndPortDependent };
// RFC 4787 section 4.2: how a new mapping's external port is picked. Preserving keeps the inside
// port when free (as Linux masquerade does) and otherwise goes on sequentially.
enum class PortAllocation { kPreserving, kSequential, kRandom };

struct NatConfig {
  NatMapping mapping = NatMapping::kEndpointIndependent;
  NatFiltering filtering = NatFiltering::kAddressAndPortDependent;
  PortAllocation ports = PortAllocation::kPreserving;
  // A mapping (and each filter permission) lives this long after the last outbound packet that
  // used it; inbound packets do not refresh it (RFC 4787 REQ-6 allows either; outbound-only is
  // the conservative choice). Linux's UDP conntrack default for an unreplied flow is 30 s.
  absl::Duration mapping_timeout = absl::Seconds(30);
  // Whether a packet from the inside to this NAT's own public address loops back inside
  // (RFC 4787 REQ-9), with its source translated as if it had gone out.
  bool hairpinning = false;
  uint16_t min_port = 1024;
  uint16_t max_port = 65535;

  // Classic names (RFC 3489 terms) as mapping x filtering x allocation.
  static NatConfig FullCone();               // EIM + EIF, preserving.
  static NatConfig AddressRestricted();      // EIM + ADF, preserving.
  static NatConfig PortRestricted();         // EIM + APDF, preserving.
  static NatConfig SymmetricSequential();    // APDM + APDF, sequential ports.
  static NatConfig SymmetricRandom();        // APDM + APDF, random ports.
};

struct NatCounters {
  uint64_t mappings_created = 0;
  uint64_t mappings_expired = 0;
  uint64_t translated_out = 0;
  uint64_t translated_in = 0;
  uint64_t hairpinned = 0;
  uint64_t dropped_no_mapping = 0;  // Inbound to a port with no live mapping.
  uint64_t dropped_filtered = 0;    // Inbound from a source the filter does not permit.
  uint64_t dropped_hairpin = 0;     // Hairpin traffic with hairpinning off.
  uint64_t dropped_no_port = 0;     // No free external port for a new mapping.
};

// A NAT box: its outside is a Node with one public address in the parent network; its inside is a
// Network it owns, for which it is the gateway. Not thread-safe.
class Nat final : public Node {
 public:
  Network& inside() { return *inside_; }
  const NatConfig& config() const { return config_; }
  const NatCounters& counters() const { return counters_; }

  // The external endpoint of the live mapping `internal` would use towards `remote`, if any.
  std::optional<net::Endpoint> ExternalFor(const net::Endpoint& internal,
                                           const net::Endpoint& remote);
  size_t live_mappings();
  // Rebind forgets every mapping at once, as a NAT that rebooted or flushed its state does, and
  // never hands their external ports out again: the next outbound packet of each flow gets a new
  // external port, and inbound packets to the old ones are dropped.
  void Rebind();

 private:
  friend class Network;
  struct Key {
    net::Endpoint internal;
    net::Endpoint remote;  // Masked by the mapping behaviour: the full endpoint, address only, none.
    friend bool operator==(const Key& a, const Key& b) {
      return a.internal == b.internal && a.remote == b.remote;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.internal, k.remote);
    }
  };
  struct Mapping {
    Key key;
    uint16_t external_port = 0;
    absl::Time expires;
    // Filter permissions (address, or address and port; unused for EIF) and their expiry.
    absl::flat_hash_map<net::Endpoint, absl::Time> permitted;
  };

  Nat(Network* parent, std::string name, net::Endpoint ip, const NatConfig& config,
      const LinkConfig& uplink);
  // From the inside network, bound elsewhere (or to this NAT's own address: hairpin).
  void FromInside(Packet packet);
  // From the outside, over the downlink.
  void Receive(Packet packet) override;
  // Translates an inbound packet by its destination port and delivers it inside, if the mapping
  // exists and its filter lets the source in.
  void Inbound(Packet packet);

  Key KeyFor(const net::Endpoint& internal, const net::Endpoint& remote) const;
  net::Endpoint PermissionFor(const net::Endpoint& remote) const;
  Mapping* Live(uint16_t external_port);
  std::optional<uint16_t> AllocatePort(uint16_t internal_port);
  bool PortFree(uint16_t port);

  NatConfig config_;
  std::unique_ptr<Network> inside_;
  absl::flat_hash_map<Key, uint16_t> by_key_;
  absl::flat_hash_map<uint16_t, Mapping> by_port_;
  absl::flat_hash_set<uint16_t> retired_ports_;
  uint16_t next_port_;
  NatCounters counters_;
};

// An address space: the internet (the root) or the inside of a NAT. Owns what is attached to it.
class Network {
 public:
  // The root network; every other one comes from AddNat.
  Network(Simulator* sim, std::string name);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // AddHost / AddNat attach a new node at `ip`, which must be unused in this network (else abort:
  // a broken test configuration). `link` is the node's link to this network's switch, used for
  // both directions.
  Host& AddHost(std::string name, const net::Endpoint& ip, const LinkConfig& link);
  Nat& AddNat(std::string name, const net::Endpoint& ip, const NatConfig& config,
              const LinkConfig& link);

  Simulator& sim() const { return *sim_; }
  const std::string& name() const { return name_; }
  // The NAT this network is the inside of; null for the root.
  Nat* gateway() const { return gateway_; }
  uint64_t dropped_no_route() const { return dropped_no_route_; }

 private:
  friend class Node;
  friend class Nat;
  Network(Simulator* sim, std::string name, Nat* gateway);
  void Attach(std::unique_ptr<Node> node);
  // A packet arrived at this network's switch: hand it to its destination or the gateway.
  void Route(Packet packet);

  Simulator* sim_;
  std::string name_;
  Nat* gateway_;
  std::vector<std::unique_ptr<Node>> nodes_;
  absl::flat_hash_map<net::Endpoint, Node*> by_ip_;
  uint64_t dropped_no_route_ = 0;
};

}  // namespace edgelink::sim

#endif  // EDGELINK_INTEGRATION_SIM_NETWORK_H_
