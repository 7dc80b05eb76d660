#include "basestation/dns/dns_zone.h"

// Without stdbool.h first, ldns/common.h defines `true` and `false` as macros (breaking gmock).
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct PktDeleter {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktDeleter>;

constexpr uint16_t kId = 0x4a7b;
constexpr char kZone[] = "devices.example.com";

net::Endpoint Ip(const char* text) {
  absl::StatusOr<net::Endpoint> ip = net::Endpoint::ParseIp(text, 0);
  EXPECT_THAT(ip, IsOk());
  return ip.value_or(net::Endpoint());
}

std::vector<uint8_t> ToWire(const ldns_pkt* pkt) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, pkt, &size), LDNS_STATUS_OK);
  std::vector<uint8_t> out(wire, wire + size);
  free(wire);
  return out;
}

PktPtr NewQuery(const std::string& name, ldns_rr_type type,
                ldns_rr_class rr_class = LDNS_RR_CLASS_IN) {
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  EXPECT_NE(dname, nullptr) << name;
  PktPtr query(ldns_pkt_query_new(dname, type, rr_class, LDNS_RD));
  ldns_pkt_set_id(query.get(), kId);
  return query;
}

std::vector<uint8_t> Query(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A) {
  return ToWire(NewQuery(name, type).get());
}

PktPtr Parse(const std::vector<uint8_t>& wire) {
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, wire.data(), wire.size()) != LDNS_STATUS_OK) return nullptr;
  return PktPtr(pkt);
}

// Section renders records as "owner ttl class type rdata", the way zone files read.
std::vector<std::string> Section(const ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; list != nullptr && i < ldns_rr_list_rr_count(list); ++i) {
    char* text = ldns_rr2str(ldns_rr_list_rr(list, i));
    out.push_back(absl::StrReplaceAll(absl::StripSuffix(text, "\n"), {{"\t", " "}}));
    free(text);
  }
  return out;
}

std::string QuestionName(const ldns_pkt* pkt) {
  const ldns_rr_list* q = ldns_pkt_question(pkt);
  if (q == nullptr || ldns_rr_list_rr_count(q) != 1) return "<none>";
  const ldns_rdf* owner = ldns_rr_owner(ldns_rr_list_rr(q, 0));
  return std::string(reinterpret_cast<const char*>(ldns_rdf_data(owner)), ldns_rdf_size(owner));
}

class DnsZoneTest : public ::testing::Test {
 protected:
  DnsZone::Options BaseOptions() {
    DnsZone::Options options;
    options.zone = kZone;
    options.addresses = {Ip("192.0.2.10"), Ip("2001:db8::10"), Ip("192.0.2.11")};
    options.is_known_device = [this](absl::string_view id) {
      lookups_.emplace_back(id);
      return known_.count(std::string(id)) > 0;
    };
    return options;
  }

  void Init(DnsZone::Options options) {
    absl::StatusOr<std::unique_ptr<DnsZone>> zone = DnsZone::New(std::move(options));
    ASSERT_THAT(zone, IsOk());
    zone_ = std::move(zone).value();
  }
  void SetUp() override { Init(BaseOptions()); }

  // Ask sends `query` and parses the answer, failing the test if there is none.
  PktPtr Ask(const std::vector<uint8_t>& query) {
    std::optional<std::vector<uint8_t>> response = zone_->Answer(query);
    EXPECT_TRUE(response.has_value());
    if (!response) return nullptr;
    EXPECT_LE(response->size(), 512u);
    PktPtr pkt = Parse(*response);
    EXPECT_NE(pkt, nullptr);
    if (pkt != nullptr) {
      EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
      EXPECT_EQ(ldns_pkt_id(pkt.get()), LDNS_ID_WIRE(query.data()));
    }
    return pkt;
  }

  std::set<std::string> known_ = {"cam-1", "lock-7"};
  std::vector<std::string> lookups_;
  std::unique_ptr<DnsZone> zone_;
};

TEST_F(DnsZoneTest, KnownDeviceGetsItsIpv4Addresses) {
  PktPtr r = Ask(Query("cam-1.devices.example.com", LDNS_RR_TYPE_A));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_TRUE(ldns_pkt_rd(r.get()));
  EXPECT_FALSE(ldns_pkt_tc(r.get()));
  EXPECT_EQ(ldns_pkt_qdcount(r.get()), 1);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("cam-1.devices.example.com. 60 IN A 192.0.2.10",
                          "cam-1.devices.example.com. 60 IN A 192.0.2.11"));
  EXPECT_THAT(Section(ldns_pkt_authority(r.get())), IsEmpty());
  EXPECT_THAT(lookups_, ElementsAre("cam-1"));
  EXPECT_EQ(zone_->counters().queries, 1u);
  EXPECT_EQ(zone_->counters().answered, 1u);
  EXPECT_EQ(zone_->counters().nxdomain, 0u);
}

TEST_F(DnsZoneTest, KnownDeviceGetsItsIpv6Addresses) {
  PktPtr r = Ask(Query("lock-7.devices.example.com", LDNS_RR_TYPE_AAAA));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("lock-7.devices.example.com. 60 IN AAAA 2001:db8::10"));
}

TEST_F(DnsZoneTest, RecursionDesiredIsCopiedNotInvented) {
  PktPtr query = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_A);
  ldns_pkt_set_rd(query.get(), false);
  PktPtr r = Ask(ToWire(query.get()));
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(ldns_pkt_rd(r.get()));
  EXPECT_FALSE(ldns_pkt_ra(r.get()));
}

TEST_F(DnsZoneTest, FamilyWithoutAddressesIsNoDataWithSoa) {
  DnsZone::Options options = BaseOptions();
  options.addresses = {Ip("192.0.2.10")};
  options.ttl_seconds = 30;
  Init(std::move(options));
  PktPtr r = Ask(Query("cam-1.devices.example.com", LDNS_RR_TYPE_AAAA));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
  EXPECT_THAT(Section(ldns_pkt_authority(r.get())),
              ElementsAre("devices.example.com. 30 IN SOA ns.devices.example.com. "
                          "hostmaster.devices.example.com. 1 3600 600 86400 30"));
}

TEST_F(DnsZoneTest, OtherTypeAtDeviceIsNoData) {
  PktPtr r = Ask(Query("cam-1.devices.example.com", LDNS_RR_TYPE_TXT));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
  EXPECT_THAT(Section(ldns_pkt_authority(r.get())), SizeIs(1));
}

TEST_F(DnsZoneTest, AnyQueryGetsOneRrset) {
  PktPtr r = Ask(Query("cam-1.devices.example.com", LDNS_RR_TYPE_ANY));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("cam-1.devices.example.com. 60 IN A 192.0.2.10",
                          "cam-1.devices.example.com. 60 IN A 192.0.2.11"));
}

TEST_F(DnsZoneTest, UnknownDeviceIsNxdomainWithSoa) {
  PktPtr r = Ask(Query("stranger.devices.example.com", LDNS_RR_TYPE_A));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
  EXPECT_THAT(Section(ldns_pkt_authority(r.get())),
              ElementsAre("devices.example.com. 60 IN SOA ns.devices.example.com. "
                          "hostmaster.devices.example.com. 1 3600 600 86400 60"));
  EXPECT_EQ(zone_->counters().nxdomain, 1u);
}

TEST_F(DnsZoneTest, RevokedDeviceBecomesNxdomain) {
  PktPtr before = Ask(Query("cam-1.devices.example.com"));
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(before.get()), LDNS_RCODE_NOERROR);
  known_.erase("cam-1");
  PktPtr after = Ask(Query("cam-1.devices.example.com"));
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(after.get()), LDNS_RCODE_NXDOMAIN);
}

TEST_F(DnsZoneTest, InvalidDeviceLabelsAreNxdomainWithoutLookup) {
  for (const char* name : {"bad_id.devices.example.com", "-cam.devices.example.com",
                           "cam-.devices.example.com", "c\\032m.devices.example.com",
                           "c\\.m.devices.example.com", "\\000.devices.example.com"}) {
    PktPtr r = Ask(Query(name));
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NXDOMAIN) << name;
  }
  EXPECT_THAT(lookups_, IsEmpty());
}

TEST_F(DnsZoneTest, NamesBelowADeviceAreNxdomain) {
  for (const char* name : {"x.cam-1.devices.example.com", "a.b.c.devices.example.com"}) {
    PktPtr r = Ask(Query(name));
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NXDOMAIN) << name;
    EXPECT_TRUE(ldns_pkt_aa(r.get()));
    EXPECT_THAT(Section(ldns_pkt_authority(r.get())), SizeIs(1));
  }
}

TEST_F(DnsZoneTest, ApexServesSoa) {
  DnsZone::Options options = BaseOptions();
  options.soa_serial = 2024060101;
  options.soa_rname = "ops.example.org";
  Init(std::move(options));
  PktPtr r = Ask(Query("devices.example.com", LDNS_RR_TYPE_SOA));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("devices.example.com. 60 IN SOA ns.devices.example.com. "
                          "ops.example.org. 2024060101 3600 600 86400 60"));
}

TEST_F(DnsZoneTest, ApexServesNsWithGlue) {
  PktPtr r = Ask(Query("devices.example.com", LDNS_RR_TYPE_NS));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(ldns_pkt_aa(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("devices.example.com. 60 IN NS ns.devices.example.com."));
  EXPECT_THAT(Section(ldns_pkt_additional(r.get())),
              ElementsAre("ns.devices.example.com. 60 IN A 192.0.2.10",
                          "ns.devices.example.com. 60 IN A 192.0.2.11",
                          "ns.devices.example.com. 60 IN AAAA 2001:db8::10"));
}

TEST_F(DnsZoneTest, NsNameOutsideTheZoneHasNoGlue) {
  DnsZone::Options options = BaseOptions();
  options.ns_name = "ns1.vendor.example.net.";
  Init(std::move(options));
  PktPtr r = Ask(Query("devices.example.com", LDNS_RR_TYPE_NS));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("devices.example.com. 60 IN NS ns1.vendor.example.net."));
  EXPECT_THAT(Section(ldns_pkt_additional(r.get())), IsEmpty());
  // "ns" is then an ordinary (unknown) device label.
  PktPtr ns = Ask(Query("ns.devices.example.com"));
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(ns.get()), LDNS_RCODE_NXDOMAIN);
}

TEST_F(DnsZoneTest, InZoneNsNameHasAddresses) {
  PktPtr r = Ask(Query("ns.devices.example.com", LDNS_RR_TYPE_AAAA));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("ns.devices.example.com. 60 IN AAAA 2001:db8::10"));
  EXPECT_THAT(lookups_, IsEmpty());
}

TEST_F(DnsZoneTest, ApexServesBasestationAddresses) {
  PktPtr a = Ask(Query("devices.example.com", LDNS_RR_TYPE_A));
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(Section(ldns_pkt_answer(a.get())),
              ElementsAre("devices.example.com. 60 IN A 192.0.2.10",
                          "devices.example.com. 60 IN A 192.0.2.11"));
  PktPtr aaaa = Ask(Query("devices.example.com", LDNS_RR_TYPE_AAAA));
  ASSERT_NE(aaaa, nullptr);
  EXPECT_THAT(Section(ldns_pkt_answer(aaaa.get())),
              ElementsAre("devices.example.com. 60 IN AAAA 2001:db8::10"));
  PktPtr mx = Ask(Query("devices.example.com", LDNS_RR_TYPE_MX));
  ASSERT_NE(mx, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(mx.get()), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Section(ldns_pkt_answer(mx.get())), IsEmpty());
  EXPECT_THAT(Section(ldns_pkt_authority(mx.get())), SizeIs(1));
}

TEST_F(DnsZoneTest, NamesOutsideTheZoneAreRefused) {
  for (const char* name : {"example.com", "www.example.org", "xdevices.example.com",
                           "devices.example.com.evil.net", "."}) {
    PktPtr r = Ask(Query(name));
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_REFUSED) << name;
    EXPECT_FALSE(ldns_pkt_aa(r.get())) << name;
    EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
    EXPECT_EQ(ldns_pkt_qdcount(r.get()), 1) << name;
  }
  EXPECT_EQ(zone_->counters().refused, 5u);
}

TEST_F(DnsZoneTest, OtherClassesAndZoneTransfersAreRefused) {
  PktPtr chaos = Ask(ToWire(
      NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH).get()));
  ASSERT_NE(chaos, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(chaos.get()), LDNS_RCODE_REFUSED);
  PktPtr axfr = Ask(Query("devices.example.com", LDNS_RR_TYPE_AXFR));
  ASSERT_NE(axfr, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(axfr.get()), LDNS_RCODE_REFUSED);
}

TEST_F(DnsZoneTest, UnsupportedOpcodesAreNotImplemented) {
  for (ldns_pkt_opcode opcode : {LDNS_PACKET_IQUERY, LDNS_PACKET_STATUS, LDNS_PACKET_NOTIFY,
                                 LDNS_PACKET_UPDATE}) {
    PktPtr query = NewQuery("devices.example.com", LDNS_RR_TYPE_SOA);
    ldns_pkt_set_opcode(query.get(), opcode);
    std::vector<uint8_t> wire = ToWire(query.get());
    std::optional<std::vector<uint8_t>> response = zone_->Answer(wire);
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(LDNS_OPCODE_WIRE(response->data()), opcode);
    EXPECT_EQ(LDNS_RCODE_WIRE(response->data()), LDNS_RCODE_NOTIMPL);
    EXPECT_TRUE(LDNS_QR_WIRE(response->data()));
  }
  // An opcode ldns has no name for is echoed too.
  std::vector<uint8_t> wire = Query("devices.example.com");
  LDNS_OPCODE_SET(wire.data(), 15);
  std::optional<std::vector<uint8_t>> response = zone_->Answer(wire);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(LDNS_OPCODE_WIRE(response->data()), 15);
  EXPECT_EQ(LDNS_RCODE_WIRE(response->data()), LDNS_RCODE_NOTIMPL);
  EXPECT_EQ(zone_->counters().notimp, 5u);
}

TEST_F(DnsZoneTest, QuestionCountOtherThanOneIsFormErr) {
  PktPtr empty(ldns_pkt_new());
  ldns_pkt_set_id(empty.get(), kId);
  PktPtr r0 = Ask(ToWire(empty.get()));
  ASSERT_NE(r0, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r0.get()), LDNS_RCODE_FORMERR);
  EXPECT_EQ(ldns_pkt_qdcount(r0.get()), 0);

  PktPtr two = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_A);
  ldns_rr* second = ldns_rr_new();
  ldns_rr_set_owner(second, ldns_dname_new_frm_str("lock-7.devices.example.com"));
  ldns_rr_set_type(second, LDNS_RR_TYPE_A);
  ldns_rr_set_question(second, true);
  ASSERT_TRUE(ldns_pkt_push_rr(two.get(), LDNS_SECTION_QUESTION, second));
  std::vector<uint8_t> wire = ToWire(two.get());
  ASSERT_EQ(LDNS_QDCOUNT(wire.data()), 2);
  PktPtr r2 = Ask(wire);
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r2.get()), LDNS_RCODE_FORMERR);
  EXPECT_THAT(Section(ldns_pkt_answer(r2.get())), IsEmpty());
  EXPECT_EQ(zone_->counters().formerr, 2u);
}

TEST_F(DnsZoneTest, ResponsesAreDroppedNeverAnswered) {
  std::optional<std::vector<uint8_t>> response =
      zone_->Answer(Query("cam-1.devices.example.com"));
  ASSERT_TRUE(response.has_value());
  // Our own answer reflected back at us, and the same with its rcode made an error.
  EXPECT_EQ(zone_->Answer(*response), std::nullopt);
  LDNS_RCODE_SET(response->data(), LDNS_RCODE_FORMERR);
  EXPECT_EQ(zone_->Answer(*response), std::nullopt);
  std::vector<uint8_t> query = Query("stranger.devices.example.com");
  LDNS_QR_SET(query.data());
  EXPECT_EQ(zone_->Answer(query), std::nullopt);
  EXPECT_EQ(zone_->counters().queries, 4u);
  EXPECT_EQ(zone_->counters().answered, 1u);
  EXPECT_EQ(zone_->counters().dropped_malformed, 3u);
  EXPECT_EQ(zone_->counters().nxdomain, 0u);
}

TEST_F(DnsZoneTest, MatchesNamesCaseInsensitively) {
  PktPtr r = Ask(Query("CAM-1.DEVICES.EXAMPLE.COM", LDNS_RR_TYPE_A));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), SizeIs(2));
  EXPECT_THAT(lookups_, ElementsAre("cam-1"));  // Ids reach the registry in lower case.
  PktPtr apex = Ask(Query("Devices.Example.COM.", LDNS_RR_TYPE_SOA));
  ASSERT_NE(apex, nullptr);
  EXPECT_THAT(Section(ldns_pkt_answer(apex.get())), SizeIs(1));
}

TEST_F(DnsZoneTest, EchoesDns0x20MixedCaseQuestionExactly) {
  const std::string mixed = "cAm-1.DeViCeS.eXaMpLe.CoM";
  std::vector<uint8_t> query = Query(mixed, LDNS_RR_TYPE_A);
  PktPtr sent = Parse(query);
  ASSERT_NE(sent, nullptr);
  PktPtr r = Ask(query);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(QuestionName(r.get()), QuestionName(sent.get()));
  EXPECT_THAT(QuestionName(r.get()), HasSubstr("DeViCeS"));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())),
              ElementsAre("cAm-1.DeViCeS.eXaMpLe.CoM. 60 IN A 192.0.2.10",
                          "cAm-1.DeViCeS.eXaMpLe.CoM. 60 IN A 192.0.2.11"));
  // Same for a refusal and an NXDOMAIN.
  for (const std::string& name : {std::string("wWw.ExAmPlE.oRg"),
                                  std::string("NoSuCh.dEvIcEs.ExAmPlE.cOm")}) {
    std::vector<uint8_t> q = Query(name);
    PktPtr s = Parse(q);
    PktPtr a = Ask(q);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(QuestionName(a.get()), QuestionName(s.get())) << name;
  }
}

DnsZone::Options ManyAddresses(DnsZone::Options options, int count) {
  options.addresses.clear();
  for (int i = 0; i < count; ++i) {
    std::array<uint8_t, 16> ip = {0x20, 0x01, 0x0d, 0xb8};
    ip[15] = static_cast<uint8_t>(i + 1);
    options.addresses.push_back(net::Endpoint::Ipv6(ip, 0));
  }
  return options;
}

TEST_F(DnsZoneTest, TruncatesPlainUdpAnswersAt512Bytes) {
  Init(ManyAddresses(BaseOptions(), 40));  // 40 AAAA records: ~1.1 KB.
  PktPtr r = Ask(Query("cam-1.devices.example.com", LDNS_RR_TYPE_AAAA));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(ldns_pkt_tc(r.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_qdcount(r.get()), 1);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
  EXPECT_EQ(zone_->counters().truncated, 1u);
}

TEST_F(DnsZoneTest, HonorsEdnsPayloadSize) {
  Init(ManyAddresses(BaseOptions(), 40));
  PktPtr query = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_AAAA);
  ldns_pkt_set_edns_udp_size(query.get(), 4096);
  std::optional<std::vector<uint8_t>> response = zone_->Answer(ToWire(query.get()));
  ASSERT_TRUE(response.has_value());
  EXPECT_GT(response->size(), 512u);
  EXPECT_LE(response->size(), 1232u);  // Capped by max_udp_payload, not the query's 4096.
  PktPtr r = Parse(*response);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(ldns_pkt_tc(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), SizeIs(40));
  EXPECT_TRUE(ldns_pkt_edns(r.get()));
  EXPECT_EQ(ldns_pkt_edns_udp_size(r.get()), 1232);

  // An EDNS query advertising less than 512 still gets 512.
  ldns_pkt_set_edns_udp_size(query.get(), 100);
  PktPtr small = Ask(ToWire(query.get()));
  ASSERT_NE(small, nullptr);
  EXPECT_TRUE(ldns_pkt_tc(small.get()));
  EXPECT_TRUE(ldns_pkt_edns(small.get()));
}

TEST_F(DnsZoneTest, GlueIsDroppedBeforeTruncating) {
  Init(ManyAddresses(BaseOptions(), 40));
  PktPtr r = Ask(Query("devices.example.com", LDNS_RR_TYPE_NS));
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(ldns_pkt_tc(r.get()));
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), SizeIs(1));
  EXPECT_THAT(Section(ldns_pkt_additional(r.get())), IsEmpty());
}

TEST_F(DnsZoneTest, UnknownEdnsVersionIsBadVers) {
  PktPtr query = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_A);
  ldns_pkt_set_edns_udp_size(query.get(), 1232);
  ldns_pkt_set_edns_version(query.get(), 1);
  PktPtr r = Ask(ToWire(query.get()));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);  // Low four bits of BADVERS (16).
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(r.get()), 1);
  EXPECT_EQ(ldns_pkt_edns_version(r.get()), 0);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), IsEmpty());
}

TEST_F(DnsZoneTest, EveryTruncationOfAQueryIsDroppedOrFormErr) {
  PktPtr query = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_A);
  ldns_pkt_set_edns_udp_size(query.get(), 1232);
  const std::vector<uint8_t> wire = ToWire(query.get());
  for (size_t len = 0; len < wire.size(); ++len) {
    std::optional<std::vector<uint8_t>> response =
        zone_->Answer(absl::MakeConstSpan(wire.data(), len));
    if (len < 12) {
      EXPECT_EQ(response, std::nullopt) << len;
      continue;
    }
    ASSERT_TRUE(response.has_value()) << len;
    EXPECT_EQ(response->size(), 12u) << len;  // Header only: never larger than the query.
    EXPECT_EQ(LDNS_RCODE_WIRE(response->data()), LDNS_RCODE_FORMERR) << len;
    EXPECT_EQ(LDNS_ID_WIRE(response->data()), kId);
    EXPECT_TRUE(LDNS_QR_WIRE(response->data()));
  }
  EXPECT_EQ(zone_->counters().dropped_malformed, 12u);
  EXPECT_EQ(zone_->counters().formerr, wire.size() - 12);
  EXPECT_EQ(zone_->counters().answered, wire.size() - 12);
}

// CheckSane asserts the invariants every response to any input keeps.
void CheckSane(const std::vector<uint8_t>& input,
               const std::optional<std::vector<uint8_t>>& response) {
  if (!response) return;
  ASSERT_GE(input.size(), 12u);
  EXPECT_FALSE(LDNS_QR_WIRE(input.data()));
  ASSERT_GE(response->size(), 12u);
  EXPECT_LE(response->size(), 512u);
  EXPECT_TRUE(LDNS_QR_WIRE(response->data()));
  EXPECT_EQ(LDNS_ID_WIRE(response->data()), LDNS_ID_WIRE(input.data()));
  EXPECT_NE(Parse(*response), nullptr);
}

TEST_F(DnsZoneTest, SurvivesSeededRandomGarbage) {
  std::mt19937 rng(0xed9e11c);
  const std::vector<uint8_t> valid = Query("cam-1.devices.example.com");
  constexpr int kRounds = 4000;
  for (int i = 0; i < kRounds; ++i) {
    std::vector<uint8_t> input(rng() % 600);
    for (uint8_t& byte : input) byte = static_cast<uint8_t>(rng());
    // Half of them start with a plausible query header, to get past the first checks.
    if (i % 2 == 0 && input.size() >= 12) {
      std::copy(valid.begin(), valid.begin() + 12, input.begin());
      input[5] = static_cast<uint8_t>(rng() % 3);  // QDCOUNT 0..2.
    }
    std::optional<std::vector<uint8_t>> response = zone_->Answer(input);
    CheckSane(input, response);
  }
  const DnsZone::Counters& c = zone_->counters();
  EXPECT_EQ(c.queries, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(c.answered + c.dropped_malformed, c.queries);
  EXPECT_GT(c.dropped_malformed, 0u);
  EXPECT_GT(c.formerr, 0u);
}

TEST_F(DnsZoneTest, SurvivesEveryBitFlipOfAValidQuery) {
  PktPtr query = NewQuery("cam-1.devices.example.com", LDNS_RR_TYPE_A);
  ldns_pkt_set_edns_udp_size(query.get(), 1232);
  const std::vector<uint8_t> valid = ToWire(query.get());
  for (size_t bit = 0; bit < valid.size() * 8; ++bit) {
    std::vector<uint8_t> input = valid;
    input[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    std::optional<std::vector<uint8_t>> response = zone_->Answer(input);
    CheckSane(input, response);
    // Only flipping QR (bit 7 of byte 2) silences the zone.
    EXPECT_EQ(response.has_value(), bit != 2 * 8 + 7) << bit;
  }
}

TEST_F(DnsZoneTest, TenKilobyteNameIsFormErrNotACrash) {
  std::vector<uint8_t> query = {0x4a, 0x7b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  while (query.size() < 10 * 1024) {
    query.push_back(63);
    query.insert(query.end(), 63, 'a');
  }
  query.insert(query.end(), {0, 0, 1, 0, 1});  // Root label, type A, class IN.
  std::optional<std::vector<uint8_t>> response = zone_->Answer(query);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->size(), 12u);
  EXPECT_EQ(LDNS_RCODE_WIRE(response->data()), LDNS_RCODE_FORMERR);
  EXPECT_EQ(zone_->counters().formerr, 1u);
}

TEST_F(DnsZoneTest, CompressionPointerLoopIsFormErr) {
  // The question name is a pointer to itself (offset 12).
  const std::vector<uint8_t> query = {0x4a, 0x7b, 0x01, 0x00, 0, 1, 0, 0, 0,
                                      0,    0,    0,    0xc0, 12, 0, 1, 0, 1};
  std::optional<std::vector<uint8_t>> response = zone_->Answer(query);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(LDNS_RCODE_WIRE(response->data()), LDNS_RCODE_FORMERR);
}

// LongestZone is 189 characters: with a 63-character device label, a 255-byte name.
std::string LongestZone() {
  std::string zone;
  while (zone.size() < 190) zone += "abcdefghi.";
  zone.pop_back();
  return zone;
}

TEST_F(DnsZoneTest, LongestZoneStillFitsTheLongestDeviceId) {
  DnsZone::Options options = BaseOptions();
  options.zone = LongestZone();
  Init(std::move(options));
  const std::string id(63, 'd');
  known_.insert(id);
  PktPtr r = Ask(Query(id + "." + LongestZone()));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_THAT(Section(ldns_pkt_answer(r.get())), SizeIs(2));
}

TEST(DnsZoneNewTest, NormalizesTheZoneName) {
  DnsZone::Options options;
  options.zone = "Devices.Example.COM.";
  options.addresses = {Ip("192.0.2.1")};
  options.is_known_device = [](absl::string_view) { return false; };
  absl::StatusOr<std::unique_ptr<DnsZone>> zone = DnsZone::New(options);
  ASSERT_THAT(zone, IsOk());
  EXPECT_EQ((*zone)->zone(), "devices.example.com");
}

TEST(DnsZoneNewTest, RejectsBadOptions) {
  DnsZone::Options good;
  good.zone = kZone;
  good.addresses = {Ip("192.0.2.1")};
  good.is_known_device = [](absl::string_view) { return false; };
  ASSERT_THAT(DnsZone::New(good), IsOk());

  auto with = [&](auto change) {
    DnsZone::Options options = good;
    change(options);
    return DnsZone::New(std::move(options)).status();
  };
  using Opts = DnsZone::Options;
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(with([](Opts& o) { o.zone = ""; }), StatusIs(kInvalid, HasSubstr("zone")));
  EXPECT_THAT(with([](Opts& o) { o.zone = "."; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.zone = "a..b"; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.zone = "dev_ices.example.com"; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.zone = "-devices.example.com"; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.zone = std::string(64, 'a') + ".com"; }),
              StatusIs(kInvalid));
  // 190 characters leave no room for a 63-character device label in 255 bytes.
  EXPECT_THAT(with([&](Opts& o) { o.zone = LongestZone() + "x"; }),
              StatusIs(kInvalid, HasSubstr("too long")));
  EXPECT_THAT(with([](Opts& o) { o.addresses.clear(); }),
              StatusIs(kInvalid, HasSubstr("address")));
  EXPECT_THAT(with([](Opts& o) { o.addresses.push_back(net::Endpoint()); }),
              StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.is_known_device = nullptr; }),
              StatusIs(kInvalid, HasSubstr("is_known_device")));
  EXPECT_THAT(with([](Opts& o) { o.ttl_seconds = 0x80000000u; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.max_udp_payload = 511; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.ns_name = "a.b.devices.example.com"; }),
              StatusIs(kInvalid, HasSubstr("direct child")));
  EXPECT_THAT(with([](Opts& o) { o.ns_name = "devices.example.com"; }), StatusIs(kInvalid));
  EXPECT_THAT(with([](Opts& o) { o.soa_rname = "host master.example.com"; }),
              StatusIs(kInvalid, HasSubstr("soa_rname")));
}

}  // namespace
}  // namespace edgelink::basestation
