// The zone the DNS fuzz target answers for, shared with its seed generator.
#ifndef EDGELINK_TOOLS_FUZZ_DNS_WORLD_H_
#define EDGELINK_TOOLS_FUZZ_DNS_WORLD_H_

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "basestation/dns/dns_zone.h"
#include "common/net/endpoint.h"

namespace edgelink::fuzz {

inline constexpr char kDnsFuzzZone[] = "devices.example.com";

// Known devices: "cam-1" and every id starting with "known".
inline basestation::DnsZone::Options DnsFuzzOptions() {
  basestation::DnsZone::Options options;
  options.zone = kDnsFuzzZone;
  options.addresses = {
      net::Endpoint::Ipv4({192, 0, 2, 10}, 0),
      net::Endpoint::Ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, 0),
      net::Endpoint::Ipv4({192, 0, 2, 11}, 0),
  };
  options.is_known_device = [](absl::string_view id) {
    return id == "cam-1" || absl::StartsWith(id, "known");
  };
  return options;
}

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_DNS_WORLD_H_
