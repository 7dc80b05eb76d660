// Endpoint: an IPv4 or IPv6 address and a UDP/TCP port, as plain bytes (no sockets here).
#ifndef EDGELINK_COMMON_NET_ENDPOINT_H_
#define EDGELINK_COMMON_NET_ENDPOINT_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edgelink::net {

// Endpoint is a value type: copyable, comparable, hashable. An IPv4 address is kept in the first
// four bytes of `ip`; the rest are zero.
class Endpoint {
 public:
  enum class Family : uint8_t { kNone = 0, kIpv4 = 4, kIpv6 = 6 };

  Endpoint() = default;
  static Endpoint Ipv4(std::array<uint8_t, 4> ip, uint16_t port);
  static Endpoint Ipv6(const std::array<uint8_t, 16>& ip, uint16_t port);

  // Parse reads "1.2.3.4:5678" or "[2001:db8::1]:5678". Fails with kInvalidArgument naming what is
  // wrong.
  static absl::StatusOr<Endpoint> Parse(absl::string_view text);
  // ParseIp reads an address without a port ("1.2.3.4", "2001:db8::1") and uses `port`.
  static absl::StatusOr<Endpoint> ParseIp(absl::string_view text, uint16_t port);

  Family family() const { return family_; }
  bool is_set() const { return family_ != Family::kNone; }
  const std::array<uint8_t, 16>& ip() const { return ip_; }
  uint16_t port() const { return port_; }
  Endpoint WithPort(uint16_t port) const;

  // "1.2.3.4:5678", "[2001:db8::1]:5678", or "none".
  std::string ToString() const;
  // The address alone: "1.2.3.4", "2001:db8::1".
  std::string IpString() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.family_ == b.family_ && a.port_ == b.port_ && a.ip_ == b.ip_;
  }
  friend bool operator!=(const Endpoint& a, const Endpoint& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.family_, e.ip_, e.port_);
  }

 private:
  Family family_ = Family::kNone;
  uint16_t port_ = 0;
  std::array<uint8_t, 16> ip_{};
};

}  // namespace edgelink::net

#endif  // EDGELINK_COMMON_NET_ENDPOINT_H_
