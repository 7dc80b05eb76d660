// DnsZone: the authoritative answers for the device zone, `<device-id>.<zone>`.
//
// The vendor delegates the zone (NS records at the parent) to the basestation cluster; each device
// finds its basestation by resolving its own name. DnsZone is sans-I/O: a UDP server hands it each
// datagram and sends back whatever it returns. Messages are parsed and built with ldns, which links
// OpenSSL 3, so this library is for the service side only.
#ifndef EDGELINK_BASESTATION_DNS_DNS_ZONE_H_
#define EDGELINK_BASESTATION_DNS_DNS_ZONE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/net/endpoint.h"

namespace edgelink::basestation {

// DnsZone answers queries for one zone over plain UDP. Not thread-safe: one instance belongs to one
// event loop (its counters are plain fields).
//
// What it answers (every authoritative answer has AA set and echoes ID, question, opcode and RD):
//   <known-device>.<zone>  A / AAAA   the configured addresses of that family; none configured →
//                                     NOERROR, empty answer, SOA in authority (NODATA)
//   <zone>                 SOA, NS, A, AAAA; NS adds in-zone glue in the additional section
//   <ns_name>              A / AAAA   when the NS name lies in the zone (it then wins over a device
//                                     with the same id)
//   other types at those   NODATA; ANY gets one RRset (RFC 8482): A if any, else AAAA
//   unknown/invalid device label, or a name two or more labels below the apex → NXDOMAIN + SOA
//   a name outside the zone, a class other than IN/ANY, AXFR/IXFR → REFUSED (AA clear)
//   an opcode other than QUERY → NOTIMP; QDCOUNT != 1, or a header that reads but a body that does
//   not parse → FORMERR (header only when the body cannot be parsed)
//   EDNS version other than 0 → BADVERS
//   fewer than 12 bytes, or the QR bit set (a response) → no answer at all (std::nullopt), so the
//   zone can never be made to answer a response or reflect garbage.
// Names match case-insensitively; the question is echoed byte for byte (0x20 mixed case survives).
// A response never exceeds 512 bytes, or with EDNS0 the smaller of the query's advertised size and
// Options::max_udp_payload; if the answer does not fit, additional records go first, then TC is set
// and the answer and authority sections are left empty (the resolver retries over TCP).
class DnsZone {
 public:
  struct Options {
    // The zone apex, e.g. "devices.example.com" (any case, trailing dot optional). Labels are
    // letters, digits and '-'; the zone must leave room for a 63-character device label.
    std::string zone;
    // The basestation's public addresses, IPv4 and IPv6 mixed, in answer order. Ports are ignored.
    // At least one is required.
    std::vector<net::Endpoint> addresses;
    // TTL of every record, also the SOA minimum (the negative-caching TTL). At most 2^31 - 1.
    uint32_t ttl_seconds = 60;
    // The zone's name server; empty means "ns.<zone>". If it lies in the zone it must be a direct
    // child of the apex, and the zone answers its A/AAAA with `addresses` (and adds them as glue).
    std::string ns_name;
    // SOA fields. Empty mname means ns_name; empty rname means "hostmaster.<zone>".
    std::string soa_mname;
    std::string soa_rname;
    uint32_t soa_serial = 1;
    uint32_t soa_refresh = 3600;
    uint32_t soa_retry = 600;
    uint32_t soa_expire = 86400;
    // Largest UDP response sent to an EDNS0 query and the size advertised back; at least 512.
    uint16_t max_udp_payload = 1232;
    // Whether a device id is provisioned and not revoked. Called synchronously from Answer with a
    // lower-case id that already passed wire::ValidateDeviceId; must not block. Required.
    std::function<bool(absl::string_view device_id)> is_known_device;
  };

  // Counters, each only ever incremented. `queries` counts every call to Answer; `answered` every
  // call that returned bytes (whatever their rcode); `dropped_malformed` every call that returned
  // std::nullopt (too short for a header, or a response). `formerr` includes header-only FORMERRs
  // for bodies that did not parse.
  struct Counters {
    uint64_t queries = 0;
    uint64_t answered = 0;
    uint64_t nxdomain = 0;
    uint64_t refused = 0;
    uint64_t formerr = 0;
    uint64_t notimp = 0;
    uint64_t truncated = 0;
    uint64_t dropped_malformed = 0;
  };

  // New validates `options` and precomputes the zone's records. Fails with kInvalidArgument naming
  // the bad field (bad zone or NS name, no addresses, no is_known_device, TTL or payload size out
  // of range).
  static absl::StatusOr<std::unique_ptr<DnsZone>> New(Options options);

  ~DnsZone();
  DnsZone(const DnsZone&) = delete;
  DnsZone& operator=(const DnsZone&) = delete;

  // Answer returns the wire-format response to one UDP query, or std::nullopt when the datagram
  // must be dropped without a reply (see the class comment). Never fails otherwise: hostile input
  // is an ordinary, counted path.
  std::optional<std::vector<uint8_t>> Answer(absl::Span<const uint8_t> query);

  const Counters& counters() const { return counters_; }

  // The normalized zone apex, lower case without the trailing dot ("devices.example.com").
  const std::string& zone() const { return zone_; }

 private:
  struct Records;  // The zone's ldns objects, built once by New.

  DnsZone(Options options, std::string zone, std::unique_ptr<const Records> records);

  Options options_;
  std::string zone_;
  std::unique_ptr<const Records> records_;
  Counters counters_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_DNS_DNS_ZONE_H_
