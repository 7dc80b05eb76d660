#include "device/dns/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "basestation/dns/dns_zone.h"
#include "common/net/endpoint.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
// Without stdbool.h first, ldns/common.h defines `true` and `false` as macros (breaking gmock).
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>

namespace edgelink::device {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

net::Endpoint Ep(const char* text) {
  absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(text);
  EXPECT_THAT(endpoint, IsOk()) << text;
  return endpoint.value_or(net::Endpoint());
}

// FakeDnsServer answers UDP datagrams on a loopback port chosen by the kernel, from its own
// thread, with whatever `handler` returns (nothing for std::nullopt). The handler runs only on
// that thread.
class FakeDnsServer {
 public:
  using Handler =
      std::function<std::optional<std::vector<uint8_t>>(const std::vector<uint8_t>& query)>;

  // Start returns null if the loopback address of `family` cannot be bound (no IPv6).
  static std::unique_ptr<FakeDnsServer> Start(int family, Handler handler) {
    const int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    sockaddr_storage addr;
    std::memset(&addr, 0, sizeof(addr));
    socklen_t len;
    if (family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&addr);
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*sin);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&addr);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = in6addr_loopback;
      len = sizeof(*sin6);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(fd);
      return nullptr;
    }
    net::Endpoint endpoint;
    if (family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
      std::array<uint8_t, 4> ip;
      std::memcpy(ip.data(), &sin->sin_addr, 4);
      endpoint = net::Endpoint::Ipv4(ip, ntohs(sin->sin_port));
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      std::array<uint8_t, 16> ip;
      std::memcpy(ip.data(), &sin6->sin6_addr, 16);
      endpoint = net::Endpoint::Ipv6(ip, ntohs(sin6->sin6_port));
    }
    return std::unique_ptr<FakeDnsServer>(new FakeDnsServer(fd, endpoint, std::move(handler)));
  }

  ~FakeDnsServer() {
    const char stop = 's';
    while (write(stop_[1], &stop, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
    close(stop_[0]);
    close(stop_[1]);
    close(fd_);
  }

  const net::Endpoint& endpoint() const { return endpoint_; }
  int queries() const { return queries_.load(); }

 private:
  FakeDnsServer(int fd, net::Endpoint endpoint, Handler handler)
      : fd_(fd), endpoint_(endpoint), handler_(std::move(handler)) {
    if (pipe2(stop_, O_CLOEXEC) != 0) std::abort();
    thread_ = std::thread([this] { Run(); });
  }

  void Run() {
    std::vector<uint8_t> buffer(65536);
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      sockaddr_storage peer;
      socklen_t peer_len = sizeof(peer);
      const ssize_t n = recvfrom(fd_, buffer.data(), buffer.size(), 0,
                                 reinterpret_cast<sockaddr*>(&peer), &peer_len);
      if (n < 0) continue;
      ++queries_;
      std::optional<std::vector<uint8_t>> response =
          handler_(std::vector<uint8_t>(buffer.begin(), buffer.begin() + n));
      if (response) {
        sendto(fd_, response->data(), response->size(), 0, reinterpret_cast<sockaddr*>(&peer),
               peer_len);
      }
    }
  }

  const int fd_;
  const net::Endpoint endpoint_;
  const Handler handler_;
  int stop_[2] = {-1, -1};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

// Reply answers `query` (parsed with ldns) with `rcode` and, for queries of `type`, the records
// given in zone-file syntax.
std::optional<std::vector<uint8_t>> Reply(const std::vector<uint8_t>& query, ldns_pkt_rcode rcode,
                                          ldns_rr_type type = LDNS_RR_TYPE_A,
                                          const std::vector<std::string>& records = {}) {
  ldns_pkt* q = nullptr;
  if (ldns_wire2pkt(&q, query.data(), query.size()) != LDNS_STATUS_OK) return std::nullopt;
  ldns_pkt* r = ldns_pkt_new();
  ldns_pkt_set_id(r, ldns_pkt_id(q));
  ldns_pkt_set_qr(r, true);
  ldns_pkt_set_rd(r, ldns_pkt_rd(q));
  ldns_pkt_set_ra(r, true);
  ldns_pkt_set_rcode(r, rcode);
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
  ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  if (ldns_rr_get_type(question) == type) {
    for (const std::string& text : records) {
      ldns_rr* rr = nullptr;
      EXPECT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 60, nullptr, nullptr), LDNS_STATUS_OK)
          << text;
      ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
    }
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, r, &size), LDNS_STATUS_OK);
  std::vector<uint8_t> out(wire, wire + size);
  free(wire);
  ldns_pkt_free(r);
  ldns_pkt_free(q);
  return out;
}

class ResolverTest : public ::testing::Test {
 protected:
  // A basestation zone for devices.example.com that knows cam-1, served on 127.0.0.1:<port>.
  void StartZone(std::vector<net::Endpoint> addresses, int family = AF_INET) {
    basestation::DnsZone::Options options;
    options.zone = "devices.example.com";
    options.addresses = std::move(addresses);
    options.is_known_device = [](absl::string_view id) { return id == "cam-1"; };
    absl::StatusOr<std::unique_ptr<basestation::DnsZone>> zone =
        basestation::DnsZone::New(std::move(options));
    ASSERT_THAT(zone, IsOk());
    zone_ = std::move(zone).value();
    server_ = FakeDnsServer::Start(family, [zone = zone_.get()](const std::vector<uint8_t>& q) {
      return zone->Answer(q);
    });
  }

  // Declared before server_ so the zone outlives the thread that uses it.
  std::unique_ptr<basestation::DnsZone> zone_;
  std::unique_ptr<FakeDnsServer> server_;
};

TEST_F(ResolverTest, ResolvesADeviceNameThroughTheBasestationZone) {
  StartZone({Ep("192.0.2.10:0"), Ep("[2001:db8::10]:0"), Ep("192.0.2.11:0")});
  ASSERT_NE(server_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("cam-1.devices.example.com", 4433, server_->endpoint()));
  EXPECT_THAT(addresses, ElementsAre(Ep("192.0.2.10:4433"), Ep("192.0.2.11:4433"),
                                     Ep("[2001:db8::10]:4433")));
  EXPECT_EQ(server_->queries(), 2);  // One A, one AAAA.
}

TEST_F(ResolverTest, IgnoresCaseAndTrailingDot) {
  StartZone({Ep("192.0.2.10:0")});
  ASSERT_NE(server_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("CAM-1.Devices.Example.COM.", 53, server_->endpoint()));
  EXPECT_THAT(addresses, ElementsAre(Ep("192.0.2.10:53")));
}

TEST_F(ResolverTest, MissingFamilyIsNotAnError) {
  StartZone({Ep("[2001:db8::10]:0")});  // A is NODATA, AAAA answers.
  ASSERT_NE(server_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("cam-1.devices.example.com", 4433, server_->endpoint()));
  EXPECT_THAT(addresses, ElementsAre(Ep("[2001:db8::10]:4433")));
}

TEST_F(ResolverTest, NxdomainIsNotFoundAndStopsAtTheFirstQuery) {
  StartZone({Ep("192.0.2.10:0")});
  ASSERT_NE(server_, nullptr);
  EXPECT_THAT(ResolveHost("stranger.devices.example.com", 4433, server_->endpoint()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("\"stranger.devices.example.com\"")));
  EXPECT_EQ(server_->queries(), 1);
}

TEST_F(ResolverTest, NoDataForBothFamiliesIsNotFound) {
  server_ = FakeDnsServer::Start(AF_INET, [](const std::vector<uint8_t>& q) {
    return Reply(q, LDNS_RCODE_NOERROR);
  });
  ASSERT_NE(server_, nullptr);
  EXPECT_THAT(ResolveHost("empty.example.com", 1, server_->endpoint()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no A or AAAA")));
}

TEST_F(ResolverTest, RefusedIsUnavailable) {
  StartZone({Ep("192.0.2.10:0")});
  ASSERT_NE(server_, nullptr);
  // Outside the basestation's zone.
  EXPECT_THAT(ResolveHost("www.example.org", 443, server_->endpoint()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("\"www.example.org\"")));
}

TEST_F(ResolverTest, ServerFailuresAreUnavailable) {
  for (ldns_pkt_rcode rcode : {LDNS_RCODE_SERVFAIL, LDNS_RCODE_FORMERR, LDNS_RCODE_NOTIMPL}) {
    server_ = FakeDnsServer::Start(AF_INET, [rcode](const std::vector<uint8_t>& q) {
      return Reply(q, rcode);
    });
    ASSERT_NE(server_, nullptr);
    EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 1, server_->endpoint()),
                StatusIs(absl::StatusCode::kUnavailable))
        << rcode;
    // Only the A query: the AAAA query would fail the same way.
    EXPECT_LE(server_->queries(), kResolveAttempts) << rcode;
  }
}

TEST_F(ResolverTest, SilentServerIsUnavailableWithinTheRetryBudget) {
  server_ = FakeDnsServer::Start(AF_INET, [](const std::vector<uint8_t>&) {
    return std::optional<std::vector<uint8_t>>();
  });
  ASSERT_NE(server_, nullptr);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 1, server_->endpoint()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("timed out")));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Budget: kResolveAttempts * kResolveAttemptTimeoutSeconds for A; AAAA is not tried.
  EXPECT_LT(elapsed, std::chrono::seconds(kResolveAttempts * kResolveAttemptTimeoutSeconds + 3));
  EXPECT_EQ(server_->queries(), kResolveAttempts);
}

TEST_F(ResolverTest, NothingListeningIsUnavailable) {
  // Bind a port, then free it: nothing listens there any more.
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  const net::Endpoint dead = net::Endpoint::Ipv4({127, 0, 0, 1}, ntohs(addr.sin_port));

  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 1, dead),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(dead.ToString()), HasSubstr("unreachable"))));
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            std::chrono::seconds(kResolveAttempts * kResolveAttemptTimeoutSeconds + 3));
}

TEST_F(ResolverTest, FollowsCnameChainAndIgnoresUnrelatedRecords) {
  server_ = FakeDnsServer::Start(AF_INET, [](const std::vector<uint8_t>& q) {
    return Reply(q, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_A,
                 {// Out of order on purpose, with a record for a name nobody asked about.
                  "mid.example.net. 60 IN CNAME target.example.org.",
                  "other.example.com. 60 IN A 203.0.113.9",
                  "target.example.org. 60 IN A 192.0.2.7",
                  "alias.example.com. 60 IN CNAME mid.example.net."});
  });
  ASSERT_NE(server_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("alias.example.com", 80, server_->endpoint()));
  EXPECT_THAT(addresses, ElementsAre(Ep("192.0.2.7:80")));
}

TEST_F(ResolverTest, AnswerWithOnlyForeignRecordsIsNotFound) {
  server_ = FakeDnsServer::Start(AF_INET, [](const std::vector<uint8_t>& q) {
    return Reply(q, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_A, {"evil.example.com. 60 IN A 203.0.113.9"});
  });
  ASSERT_NE(server_, nullptr);
  EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 80, server_->endpoint()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ResolverTest, WorksWithAnIpv6DnsServer) {
  StartZone({Ep("192.0.2.10:0")}, AF_INET6);
  if (server_ == nullptr) GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_EQ(server_->endpoint().family(), net::Endpoint::Family::kIpv6);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("cam-1.devices.example.com", 4433, server_->endpoint()));
  EXPECT_THAT(addresses, ElementsAre(Ep("192.0.2.10:4433")));
}

TEST_F(ResolverTest, IpLiteralsNeedNoLookup) {
  StartZone({Ep("192.0.2.10:0")});
  ASSERT_NE(server_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> v4,
                       ResolveHost("198.51.100.4", 7, server_->endpoint()));
  EXPECT_THAT(v4, ElementsAre(Ep("198.51.100.4:7")));
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> v6, ResolveHost("2001:db8::4", 7, std::nullopt));
  EXPECT_THAT(v6, ElementsAre(Ep("[2001:db8::4]:7")));
  EXPECT_EQ(server_->queries(), 0);
}

TEST_F(ResolverTest, RejectsBadHostnamesWithoutAQuery) {
  StartZone({Ep("192.0.2.10:0")});
  ASSERT_NE(server_, nullptr);
  const std::string long_label = std::string(64, 'a') + ".example.com";
  std::string long_name;
  while (long_name.size() < 260) long_name += "abcdefgh.";
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string("a..b"), std::string(".a"),
        std::string("has space.example.com"), std::string("semi;colon.com"),
        std::string("nul\0byte.com", 12), long_label, long_name}) {
    EXPECT_THAT(ResolveHost(bad, 1, server_->endpoint()),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
    EXPECT_THAT(ResolveHost(bad, 1, std::nullopt), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  // A hostile name is summarized, never copied into the message.
  const std::string huge(10000, 'x');
  absl::StatusOr<std::vector<net::Endpoint>> result = ResolveHost(huge, 1, std::nullopt);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument,
                               Not(HasSubstr(std::string(300, 'x')))));
  EXPECT_EQ(server_->queries(), 0);
}

TEST_F(ResolverTest, RejectsUnusableDnsServer) {
  EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 1, net::Endpoint()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveHost("cam-1.devices.example.com", 1, Ep("127.0.0.1:0")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SystemResolverTest, ResolvesLocalhost) {
  ASSERT_OK_AND_ASSIGN(std::vector<net::Endpoint> addresses,
                       ResolveHost("localhost", 8080, std::nullopt));
  EXPECT_THAT(addresses, Contains(Ep("127.0.0.1:8080")));
  for (const net::Endpoint& endpoint : addresses) EXPECT_EQ(endpoint.port(), 8080);
}

}  // namespace
}  // namespace edgelink::device
