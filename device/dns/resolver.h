// ResolveHost: the device's own DNS lookups (its basestation's name, `<device-id>.<zone>`).
//
// Built on glibc's stub resolver (libresolv: res_nquery, ns_parserr) and getaddrinfo: no crypto
// inside, so it can sit in the device binary next to BoringSSL. It must never depend on ldns or
// OpenSSL (device/dns:resolver_linkage_test checks the linked libraries).
#ifndef EDGELINK_DEVICE_DNS_RESOLVER_H_
#define EDGELINK_DEVICE_DNS_RESOLVER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net/endpoint.h"

namespace edgelink::device {

// Per-query limits when a DNS server is given: each of the A and AAAA queries is sent at most
// kResolveAttempts times and each attempt waits kResolveAttemptTimeoutSeconds, so a dead server
// costs at most kResolveAttempts * kResolveAttemptTimeoutSeconds (the AAAA query is skipped when
// the A query found the server unavailable).
inline constexpr int kResolveAttemptTimeoutSeconds = 1;
inline constexpr int kResolveAttempts = 2;

// ResolveHost returns the addresses of `hostname` (deduplicated, each with `port`, never empty).
//
// An IP literal ("192.0.2.1", "2001:db8::1") is returned as is, without a lookup. Otherwise:
//  - with no `dns_server`: the system resolver (getaddrinfo: /etc/hosts, resolv.conf, nsswitch),
//    both families, in the system's preference order;
//  - with `dns_server` (an IPv4 or IPv6 address and a port, which need not be 53): recursive A
//    then AAAA queries sent straight to that server over UDP (TCP if it truncates) on a private
//    resolver state, IPv4 addresses first. A CNAME chain in the answer is followed; records for
//    other names are ignored. /etc/resolv.conf's servers and options are not used.
//
// Blocking: it waits on the network (see the limits above for `dns_server`; the system resolver
// has its own). The daemon calls it before starting its event loop or from a worker thread, never
// on the loop. Thread-safe: no state is shared between calls.
//
// Errors (messages name the hostname and the server, nothing else):
//   kInvalidArgument  `hostname` is not a host name (labels of 1-63 letters, digits, '-' or '_',
//                     at most 253 characters), or `dns_server` is unset or has port 0;
//   kNotFound         the name does not exist (NXDOMAIN) or has no A/AAAA record;
//   kUnavailable      timeout, nothing listening, SERVFAIL/REFUSED/FORMERR, a malformed answer, or
//                     the system resolver's temporary failure: a retry later may work;
//   kInternal         the resolver state could not be initialized.
absl::StatusOr<std::vector<net::Endpoint>> ResolveHost(
    absl::string_view hostname, uint16_t port, const std::optional<net::Endpoint>& dns_server);

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_DNS_RESOLVER_H_
