// Fuzzes basestation::DnsZone::Answer: one UDP DNS query from anyone, answered authoritatively for
// the device zone (dns_world.h). The whole input is the query datagram.
//
// Invariants checked on every answer: it is a well-formed DNS message (ldns parses it back), a
// response (QR) with the query's ID, never larger than 512 bytes unless it carries EDNS0, and
// never larger than the zone's max_udp_payload; and no answer at all for a datagram shorter than
// a header or one with QR set.
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): before ldns, as in dns_zone.cc.
#include <ldns/ldns.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "basestation/dns/dns_zone.h"
#include "tools/fuzz/dns_world.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "dns_query_fuzzer";

basestation::DnsZone& Zone() {
  static basestation::DnsZone* zone = [] {
    absl::StatusOr<std::unique_ptr<basestation::DnsZone>> made =
        basestation::DnsZone::New(DnsFuzzOptions());
    if (!made.ok()) InvariantFailed(kName, "DnsZone::New");
    return made->release();
  }();
  return *zone;
}

void Fuzz(const uint8_t* data, size_t size) {
  basestation::DnsZone& zone = Zone();
  const std::optional<std::vector<uint8_t>> answer = zone.Answer(absl::MakeConstSpan(data, size));
  if (size < LDNS_HEADER_SIZE || LDNS_QR_WIRE(data)) {
    EDGELINK_FUZZ_CHECK(kName, !answer.has_value());
    return;
  }
  if (!answer.has_value()) return;
  const std::vector<uint8_t>& out = *answer;
  EDGELINK_FUZZ_CHECK(kName, out.size() >= LDNS_HEADER_SIZE);
  EDGELINK_FUZZ_CHECK(kName, out.size() <= DnsFuzzOptions().max_udp_payload);
  EDGELINK_FUZZ_CHECK(kName, LDNS_QR_WIRE(out.data()));
  EDGELINK_FUZZ_CHECK(kName, LDNS_ID_WIRE(out.data()) == LDNS_ID_WIRE(data));
  ldns_pkt* parsed = nullptr;
  const ldns_status status = ldns_wire2pkt(&parsed, out.data(), out.size());
  const bool well_formed = status == LDNS_STATUS_OK;
  const bool edns = well_formed && ldns_pkt_edns(parsed);
  ldns_pkt_free(parsed);
  EDGELINK_FUZZ_CHECK(kName, well_formed);
  EDGELINK_FUZZ_CHECK(kName, out.size() <= 512 || edns);
}

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::Fuzz(data, size);
  return 0;
}
