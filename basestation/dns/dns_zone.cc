#include "basestation/dns/dns_zone.h"

// Without stdbool.h first, ldns/common.h defines `true` and `false` as macros (breaking gmock).
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "common/wire/device_id.h"

namespace edgelink::basestation {
namespace {

struct RdfDeleter {
  void operator()(ldns_rdf* rdf) const { ldns_rdf_deep_free(rdf); }
};
struct RrDeleter {
  void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
};
struct PktDeleter {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
struct WireDeleter {
  void operator()(uint8_t* wire) const { free(wire); }  // ldns allocates with malloc.
};
using RdfPtr = std::unique_ptr<ldns_rdf, RdfDeleter>;
using RrPtr = std::unique_ptr<ldns_rr, RrDeleter>;
using PktPtr = std::unique_ptr<ldns_pkt, PktDeleter>;
using WirePtr = std::unique_ptr<uint8_t, WireDeleter>;

constexpr size_t kPlainUdpLimit = 512;
constexpr uint16_t kBadVers = 16;  // RFC 6891 extended rcode.
// The zone must leave room for "<63-character device id>." in front of it (255-byte names).
constexpr size_t kMaxZoneWireLength = LDNS_MAX_DOMAINLEN - (LDNS_MAX_LABELLEN + 1);

// Allocation failures inside ldns are the only way these return null; like operator new, crash.
template <typename T>
T* NotNull(T* p) {
  if (p == nullptr) std::abort();
  return p;
}

RdfPtr CloneRdf(const ldns_rdf* rdf) { return RdfPtr(NotNull(ldns_rdf_clone(rdf))); }

// Describe quotes config names in messages only while they are short and printable.
std::string Describe(absl::string_view name) {
  if (name.size() > 80 ||
      !std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isgraph(c); })) {
    return absl::StrCat("(", name.size(), " bytes)");
  }
  return absl::StrCat("\"", name, "\"");
}

// NormalizeHostName lower-cases `name`, drops one trailing dot and checks it is a host name
// (letters, digits, '-' in labels of 1 to 63) whose wire form fits in `max_wire` bytes.
absl::StatusOr<std::string> NormalizeHostName(absl::string_view field, absl::string_view name,
                                              size_t max_wire) {
  std::string out = absl::AsciiStrToLower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (out.size() + 2 > max_wire) {
    return absl::InvalidArgumentError(absl::StrCat(field, " ", Describe(name), " is too long (",
                                                   out.size(), " characters)"));
  }
  for (absl::string_view label : absl::StrSplit(out, '.')) {
    const bool ldh = std::all_of(label.begin(), label.end(), [](char c) {
      return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
    });
    if (label.empty() || label.size() > LDNS_MAX_LABELLEN || !ldh || label.front() == '-' ||
        label.back() == '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", Describe(name),
                       " is not a host name (labels of 1 to 63 letters, digits and '-')"));
    }
  }
  return out;
}

RdfPtr DnameFromString(const std::string& name) {
  return RdfPtr(NotNull(ldns_dname_new_frm_str(name.c_str())));
}

// NewRr builds owner/type/IN/ttl and takes the rdata fields.
RrPtr NewRr(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl,
            std::vector<RdfPtr> rdata = {}) {
  RrPtr rr(NotNull(ldns_rr_new()));
  ldns_rr_set_owner(rr.get(), CloneRdf(owner).release());
  ldns_rr_set_type(rr.get(), type);
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr.get(), ttl);
  for (RdfPtr& field : rdata) {
    if (!ldns_rr_push_rdf(rr.get(), field.get())) std::abort();
    field.release();  // Owned by rr now.
  }
  return rr;
}

}  // namespace

struct DnsZone::Records {
  RdfPtr apex;  // Lower case, as every name below.
  uint8_t apex_labels = 0;
  RdfPtr ns_name;
  bool ns_in_zone = false;
  RdfPtr soa_mname;
  RdfPtr soa_rname;
  std::vector<RdfPtr> a;     // A rdata, 4 bytes each.
  std::vector<RdfPtr> aaaa;  // AAAA rdata, 16 bytes each.
};

namespace {

// Response is what Answer decided, before it is encoded under a size limit.
struct Response {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;
  bool aa = false;
  uint16_t rcode = LDNS_RCODE_NOERROR;  // 12 bits: the high 8 travel in the OPT record.
  bool edns = false;
  RrPtr question;  // Null for header-only responses.
  std::vector<RrPtr> answer;
  std::vector<RrPtr> authority;
  std::vector<RrPtr> additional;
};

void PushClones(ldns_pkt* pkt, ldns_pkt_section section, const std::vector<RrPtr>& rrs) {
  for (const RrPtr& rr : rrs) {
    if (!ldns_pkt_push_rr(pkt, section, NotNull(ldns_rr_clone(rr.get())))) std::abort();
  }
}

// Encode renders `r`, leaving out the sections not asked for. Null only if ldns cannot encode it.
std::optional<std::vector<uint8_t>> Encode(const Response& r, uint16_t edns_payload,
                                           bool with_answer, bool with_additional, bool tc) {
  PktPtr pkt(NotNull(ldns_pkt_new()));
  ldns_pkt_set_id(pkt.get(), r.id);
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_aa(pkt.get(), r.aa);
  ldns_pkt_set_tc(pkt.get(), tc);
  ldns_pkt_set_rd(pkt.get(), r.rd);
  ldns_pkt_set_opcode(pkt.get(), LDNS_PACKET_QUERY);  // The real opcode is patched in below.
  ldns_pkt_set_rcode(pkt.get(), static_cast<uint8_t>(r.rcode & 0x0f));
  if (r.question != nullptr) {
    RrPtr question(NotNull(ldns_rr_clone(r.question.get())));
    ldns_rr_set_question(question.get(), true);
    if (!ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_QUESTION, question.release())) std::abort();
  }
  if (with_answer) {
    PushClones(pkt.get(), LDNS_SECTION_ANSWER, r.answer);
    PushClones(pkt.get(), LDNS_SECTION_AUTHORITY, r.authority);
  }
  if (with_additional) PushClones(pkt.get(), LDNS_SECTION_ADDITIONAL, r.additional);
  if (r.edns) {
    ldns_pkt_set_edns_udp_size(pkt.get(), edns_payload);
    ldns_pkt_set_edns_version(pkt.get(), 0);
    ldns_pkt_set_edns_extended_rcode(pkt.get(), static_cast<uint8_t>(r.rcode >> 4));
  }
  uint8_t* raw_wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&raw_wire, pkt.get(), &size) != LDNS_STATUS_OK) {
    free(raw_wire);
    return std::nullopt;
  }
  WirePtr wire(raw_wire);
  if (size < LDNS_HEADER_SIZE) return std::nullopt;
  std::vector<uint8_t> out(wire.get(), wire.get() + size);
  // ldns_pkt_opcode has no enumerator for most of the 16 opcodes; echo the query's from the wire.
  LDNS_OPCODE_SET(out.data(), r.opcode);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsZone>> DnsZone::New(Options options) {
  ASSIGN_OR_RETURN(std::string zone, NormalizeHostName("zone", options.zone, kMaxZoneWireLength));
  const std::string default_ns = "ns." + zone;
  if (options.ns_name.empty()) options.ns_name = default_ns;
  ASSIGN_OR_RETURN(options.ns_name,
                   NormalizeHostName("ns_name", options.ns_name, LDNS_MAX_DOMAINLEN));
  if (options.soa_mname.empty()) options.soa_mname = options.ns_name;
  ASSIGN_OR_RETURN(options.soa_mname,
                   NormalizeHostName("soa_mname", options.soa_mname, LDNS_MAX_DOMAINLEN));
  if (options.soa_rname.empty()) options.soa_rname = "hostmaster." + zone;
  ASSIGN_OR_RETURN(options.soa_rname,
                   NormalizeHostName("soa_rname", options.soa_rname, LDNS_MAX_DOMAINLEN));
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("the zone needs at least one basestation address");
  }
  if (options.ttl_seconds > 0x7fffffffu) {
    return absl::InvalidArgumentError("ttl_seconds must be at most 2^31 - 1 (RFC 2181)");
  }
  if (options.max_udp_payload < kPlainUdpLimit) {
    return absl::InvalidArgumentError("max_udp_payload must be at least 512");
  }
  if (!options.is_known_device) {
    return absl::InvalidArgumentError("is_known_device is required");
  }

  auto records = std::make_unique<Records>();
  records->apex = DnameFromString(zone);
  records->apex_labels = ldns_dname_label_count(records->apex.get());
  records->ns_name = DnameFromString(options.ns_name);
  records->soa_mname = DnameFromString(options.soa_mname);
  records->soa_rname = DnameFromString(options.soa_rname);
  if (ldns_dname_compare(records->ns_name.get(), records->apex.get()) == 0) {
    return absl::InvalidArgumentError("ns_name must not be the zone apex itself");
  }
  if (ldns_dname_is_subdomain(records->ns_name.get(), records->apex.get())) {
    if (ldns_dname_label_count(records->ns_name.get()) != records->apex_labels + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ns_name ", Describe(options.ns_name), " is in the zone but not a direct child of it"));
    }
    records->ns_in_zone = true;
  }
  for (const net::Endpoint& address : options.addresses) {
    switch (address.family()) {
      case net::Endpoint::Family::kIpv4:
        records->a.emplace_back(
            NotNull(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, address.ip().data())));
        break;
      case net::Endpoint::Family::kIpv6:
        records->aaaa.emplace_back(
            NotNull(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, address.ip().data())));
        break;
      case net::Endpoint::Family::kNone:
        return absl::InvalidArgumentError("addresses holds an unset Endpoint");
    }
  }
  return std::unique_ptr<DnsZone>(new DnsZone(std::move(options), std::move(zone),
                                              std::move(records)));
}

DnsZone::DnsZone(Options options, std::string zone, std::unique_ptr<const Records> records)
    : options_(std::move(options)), zone_(std::move(zone)), records_(std::move(records)) {}

DnsZone::~DnsZone() = default;

std::optional<std::vector<uint8_t>> DnsZone::Answer(absl::Span<const uint8_t> query) {
  ++counters_.queries;
  // Never answer a response (two servers could bounce errors forever) or a runt.
  if (query.size() < LDNS_HEADER_SIZE || LDNS_QR_WIRE(query.data())) {
    ++counters_.dropped_malformed;
    return std::nullopt;
  }
  const Records& rec = *records_;
  const uint32_t ttl = options_.ttl_seconds;

  Response r;
  r.id = LDNS_ID_WIRE(query.data());
  r.opcode = static_cast<uint8_t>(LDNS_OPCODE_WIRE(query.data()));
  r.rd = LDNS_RD_WIRE(query.data()) != 0;
  size_t limit = kPlainUdpLimit;

  auto soa = [&](const ldns_rdf* owner) {
    std::vector<RdfPtr> rdata;
    rdata.push_back(CloneRdf(rec.soa_mname.get()));
    rdata.push_back(CloneRdf(rec.soa_rname.get()));
    rdata.emplace_back(NotNull(ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, options_.soa_serial)));
    rdata.emplace_back(NotNull(ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, options_.soa_refresh)));
    rdata.emplace_back(NotNull(ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, options_.soa_retry)));
    rdata.emplace_back(NotNull(ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, options_.soa_expire)));
    rdata.emplace_back(NotNull(ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, ttl)));
    return NewRr(owner, LDNS_RR_TYPE_SOA, ttl, std::move(rdata));
  };
  auto addresses = [&](const ldns_rdf* owner, ldns_rr_type type, std::vector<RrPtr>* out) {
    const std::vector<RdfPtr>& rdata = type == LDNS_RR_TYPE_A ? rec.a : rec.aaaa;
    for (const RdfPtr& address : rdata) {
      std::vector<RdfPtr> fields;
      fields.push_back(CloneRdf(address.get()));
      out->push_back(NewRr(owner, type, ttl, std::move(fields)));
    }
  };
  auto finish = [&]() -> std::optional<std::vector<uint8_t>> {
    switch (r.rcode) {
      case LDNS_RCODE_NXDOMAIN: ++counters_.nxdomain; break;
      case LDNS_RCODE_REFUSED: ++counters_.refused; break;
      case LDNS_RCODE_FORMERR: ++counters_.formerr; break;
      case LDNS_RCODE_NOTIMPL: ++counters_.notimp; break;
      default: break;
    }
    const uint16_t payload = options_.max_udp_payload;
    std::optional<std::vector<uint8_t>> out = Encode(r, payload, true, true, false);
    // Additional records are optional (RFC 2181 9): drop them before truncating.
    if (out && out->size() > limit) out = Encode(r, payload, true, false, false);
    if (out && out->size() > limit) {
      ++counters_.truncated;
      out = Encode(r, payload, false, false, true);
    }
    // Header, a question of at most 259 bytes and an OPT record always fit in 512.
    if (!out || out->size() > limit) {
      ++counters_.dropped_malformed;
      return std::nullopt;
    }
    ++counters_.answered;
    return out;
  };

  ldns_pkt* raw_query = nullptr;
  if (ldns_wire2pkt(&raw_query, query.data(), query.size()) != LDNS_STATUS_OK) {
    ldns_pkt_free(raw_query);
    r.rcode = LDNS_RCODE_FORMERR;  // The header read; the rest did not.
    return finish();
  }
  PktPtr q(raw_query);
  if (ldns_pkt_edns(q.get())) {
    r.edns = true;
    limit = std::clamp<size_t>(ldns_pkt_edns_udp_size(q.get()), kPlainUdpLimit,
                               options_.max_udp_payload);
  }
  const ldns_rr_list* questions = ldns_pkt_question(q.get());
  const size_t qdcount = questions == nullptr ? 0 : ldns_rr_list_rr_count(questions);
  if (qdcount == 1) r.question = RrPtr(NotNull(ldns_rr_clone(ldns_rr_list_rr(questions, 0))));

  if (r.opcode != LDNS_PACKET_QUERY) {
    r.rcode = LDNS_RCODE_NOTIMPL;
    return finish();
  }
  if (qdcount != 1) {
    r.question.reset();
    r.rcode = LDNS_RCODE_FORMERR;
    return finish();
  }
  if (r.edns && ldns_pkt_edns_version(q.get()) != 0) {
    r.rcode = kBadVers;
    return finish();
  }
  const ldns_rr* question = r.question.get();
  const ldns_rdf* qowner = ldns_rr_owner(question);
  const ldns_rr_type qtype = ldns_rr_get_type(question);
  const ldns_rr_class qclass = ldns_rr_get_class(question);
  if ((qclass != LDNS_RR_CLASS_IN && qclass != LDNS_RR_CLASS_ANY) ||
      qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR || qowner == nullptr ||
      ldns_rdf_get_type(qowner) != LDNS_RDF_TYPE_DNAME) {
    r.rcode = LDNS_RCODE_REFUSED;
    return finish();
  }
  RdfPtr qname = CloneRdf(qowner);
  ldns_dname2canonical(qname.get());  // Lower case; the echoed question keeps the query's case.
  const bool at_apex = ldns_dname_compare(qname.get(), rec.apex.get()) == 0;
  if (!at_apex && !ldns_dname_is_subdomain(qname.get(), rec.apex.get())) {
    r.rcode = LDNS_RCODE_REFUSED;
    return finish();
  }
  r.aa = true;

  bool has_addresses = at_apex;
  if (!at_apex) {
    const int depth = ldns_dname_label_count(qname.get()) - rec.apex_labels;
    if (depth == 1 && rec.ns_in_zone && ldns_dname_compare(qname.get(), rec.ns_name.get()) == 0) {
      has_addresses = true;
    } else if (depth == 1) {
      RdfPtr label(NotNull(ldns_dname_label(qname.get(), 0)));
      const uint8_t* data = ldns_rdf_data(label.get());
      const size_t size = ldns_rdf_size(label.get());
      if (size >= 1 && data[0] + 1u <= size) {
        const absl::string_view id(reinterpret_cast<const char*>(data + 1), data[0]);
        has_addresses = wire::ValidateDeviceId(id).ok() && options_.is_known_device(id);
      }
    }
    if (!has_addresses) {
      r.rcode = LDNS_RCODE_NXDOMAIN;
      r.authority.push_back(soa(rec.apex.get()));
      return finish();
    }
  }

  switch (qtype) {
    case LDNS_RR_TYPE_A:
    case LDNS_RR_TYPE_AAAA:
      addresses(qowner, qtype, &r.answer);
      break;
    case LDNS_RR_TYPE_ANY:  // One RRset (RFC 8482); there is always an address of some family.
      addresses(qowner, rec.a.empty() ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A, &r.answer);
      break;
    case LDNS_RR_TYPE_SOA:
      if (at_apex) r.answer.push_back(soa(qowner));
      break;
    case LDNS_RR_TYPE_NS:
      if (at_apex) {
        std::vector<RdfPtr> rdata;
        rdata.push_back(CloneRdf(rec.ns_name.get()));
        r.answer.push_back(NewRr(qowner, LDNS_RR_TYPE_NS, ttl, std::move(rdata)));
        if (rec.ns_in_zone) {
          addresses(rec.ns_name.get(), LDNS_RR_TYPE_A, &r.additional);
          addresses(rec.ns_name.get(), LDNS_RR_TYPE_AAAA, &r.additional);
        }
      }
      break;
    default:
      break;
  }
  if (r.answer.empty()) r.authority.push_back(soa(rec.apex.get()));  // NODATA (RFC 2308).
  return finish();
}

}  // namespace edgelink::basestation
