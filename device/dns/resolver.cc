#include "device/dns/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace edgelink::device {
namespace {

constexpr size_t kMaxHostnameLength = 253;
constexpr size_t kMaxLabelLength = 63;
constexpr int kMaxCnameChain = 8;

// Quote puts `hostname` in a message only while it is short and printable: hostile or broken
// configuration must not flood a log.
std::string Quote(absl::string_view hostname) {
  if (hostname.size() <= kMaxHostnameLength + 1 &&
      std::all_of(hostname.begin(), hostname.end(),
                  [](char c) { return absl::ascii_isgraph(c); })) {
    return absl::StrCat("\"", hostname, "\"");
  }
  return absl::StrCat("(a ", hostname.size(), "-byte name)");
}

absl::Status ValidateHostname(absl::string_view hostname) {
  absl::string_view name = hostname;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return absl::InvalidArgumentError("hostname is empty");
  if (name.size() > kMaxHostnameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("hostname ", Quote(hostname), " is longer than 253 characters"));
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    const bool allowed = std::all_of(label.begin(), label.end(), [](char c) {
      return absl::ascii_isalnum(c) || c == '-' || c == '_';
    });
    if (label.empty() || label.size() > kMaxLabelLength || !allowed) {
      return absl::InvalidArgumentError(
          absl::StrCat("hostname ", Quote(hostname),
                       " is not a host name (labels of 1 to 63 letters, digits, '-' or '_')"));
    }
  }
  return absl::OkStatus();
}

// NormalizeName lower-cases a presentation-format name and drops its trailing dot.
std::string NormalizeName(absl::string_view name) {
  std::string out = absl::AsciiStrToLower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

void AddUnique(std::vector<net::Endpoint>* out, const net::Endpoint& endpoint) {
  if (std::find(out->begin(), out->end(), endpoint) == out->end()) out->push_back(endpoint);
}

net::Endpoint FromIpv4Bytes(const void* bytes, uint16_t port) {
  std::array<uint8_t, 4> ip;
  std::memcpy(ip.data(), bytes, ip.size());
  return net::Endpoint::Ipv4(ip, port);
}

net::Endpoint FromIpv6Bytes(const void* bytes, uint16_t port) {
  std::array<uint8_t, 16> ip;
  std::memcpy(ip.data(), bytes, ip.size());
  return net::Endpoint::Ipv6(ip, port);
}

// ---- The system resolver -------------------------------------------------------------------

struct AddrinfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

absl::StatusOr<std::vector<net::Endpoint>> ResolveWithSystem(absl::string_view hostname,
                                                              uint16_t port) {
  const std::string name(hostname);
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;  // One entry per address rather than one per socket type.
  addrinfo* raw = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &raw);
  std::unique_ptr<addrinfo, AddrinfoDeleter> result(raw);
  const std::string what = absl::StrCat("resolving ", Quote(hostname), " with the system resolver");
  switch (rc) {
    case 0:
      break;
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
      return absl::NotFoundError(absl::StrCat(what, ": no such host or no address"));
    case EAI_AGAIN:
      return absl::UnavailableError(absl::StrCat(what, ": temporary failure (no answer)"));
    case EAI_FAIL:
      return absl::UnavailableError(absl::StrCat(what, ": name server failure"));
    case EAI_MEMORY:
      return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
    default:
      return absl::UnavailableError(absl::StrCat(what, ": getaddrinfo error ", rc));
  }
  std::vector<net::Endpoint> out;
  for (const addrinfo* info = result.get(); info != nullptr; info = info->ai_next) {
    if (info->ai_family == AF_INET && info->ai_addrlen >= sizeof(sockaddr_in)) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(info->ai_addr);
      AddUnique(&out, FromIpv4Bytes(&sin->sin_addr, port));
    } else if (info->ai_family == AF_INET6 && info->ai_addrlen >= sizeof(sockaddr_in6)) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(info->ai_addr);
      AddUnique(&out, FromIpv6Bytes(&sin6->sin6_addr, port));
    }
  }
  if (out.empty()) return absl::NotFoundError(absl::StrCat(what, ": no IPv4 or IPv6 address"));
  return out;
}

// ---- A given DNS server, through libresolv --------------------------------------------------

// ResolverState owns a private `struct __res_state` aimed at one server. res_ninit reads
// /etc/resolv.conf; everything it takes from there is replaced. res_nclose runs on every path.
class ResolverState {
 public:
  ResolverState() { std::memset(&state_, 0, sizeof(state_)); }
  ~ResolverState() {
    if (initialized_) res_nclose(&state_);
  }
  ResolverState(const ResolverState&) = delete;
  ResolverState& operator=(const ResolverState&) = delete;

  absl::Status Init(const net::Endpoint& server) {
    if (res_ninit(&state_) != 0) {
      return absl::InternalError("res_ninit failed to initialize a resolver state");
    }
    initialized_ = true;
    // res_ninit copies resolv.conf's IPv6 servers into malloc'd nsaddrs; glibc frees only the
    // first nscount of them, so drop all before shrinking the list to our one server.
    for (int i = 0; i < MAXNS; ++i) {
      std::free(state_._u._ext.nsaddrs[i]);
      state_._u._ext.nsaddrs[i] = nullptr;
    }
    std::memset(&state_.nsaddr_list[0], 0, sizeof(state_.nsaddr_list[0]));
    if (server.family() == net::Endpoint::Family::kIpv4) {
      sockaddr_in& sin = state_.nsaddr_list[0];
      sin.sin_family = AF_INET;
      sin.sin_port = htons(server.port());
      std::memcpy(&sin.sin_addr, server.ip().data(), 4);
    } else {
      // glibc's documented-by-code convention (__res_get_nsaddr): sin_family 0 in nsaddr_list
      // means "the server is the sockaddr_in6 in _u._ext.nsaddrs", which res_nclose frees.
      auto* sin6 = static_cast<sockaddr_in6*>(std::calloc(1, sizeof(sockaddr_in6)));
      if (sin6 == nullptr) return absl::ResourceExhaustedError("out of memory");
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(server.port());
      std::memcpy(&sin6->sin6_addr, server.ip().data(), 16);
      state_._u._ext.nsaddrs[0] = sin6;
    }
    state_.nscount = 1;
    state_.retrans = kResolveAttemptTimeoutSeconds;
    state_.retry = kResolveAttempts;
    // Recursion desired; no search list, rotation, EDNS0 or other resolv.conf options.
    state_.options = RES_INIT | RES_RECURSE;
    return absl::OkStatus();
  }

  res_state get() { return &state_; }

 private:
  struct __res_state state_;
  bool initialized_ = false;
};

// Query asks for one record type. OK with an empty list means the name exists without such
// records (NODATA).
absl::StatusOr<std::vector<net::Endpoint>> Query(ResolverState& state, absl::string_view hostname,
                                                 const std::string& server, int type,
                                                 uint16_t port) {
  const std::string name(hostname);
  const char* type_name = type == ns_t_a ? "A" : "AAAA";
  std::vector<unsigned char> answer(NS_MAXMSG);
  errno = 0;
  const int n = res_nquery(state.get(), name.c_str(), ns_c_in, type, answer.data(),
                           static_cast<int>(answer.size()));
  const int saved_errno = errno;
  if (n < 0) {
    const std::string what =
        absl::StrCat("resolving ", Quote(hostname), " (", type_name, ") via DNS server ", server);
    switch (state.get()->res_h_errno) {
      case HOST_NOT_FOUND:
        return absl::NotFoundError(absl::StrCat(what, ": no such name (NXDOMAIN)"));
      case NO_DATA:
        return std::vector<net::Endpoint>();
      case TRY_AGAIN:
        // glibc reports SERVFAIL and REFUSED (after trying every attempt) like a timeout.
        return absl::UnavailableError(absl::StrCat(
            what, saved_errno == ECONNREFUSED ? ": unreachable (connection refused)"
                                              : ": timed out, or SERVFAIL/REFUSED"));
      case NO_RECOVERY:
        return absl::UnavailableError(
            absl::StrCat(what, ": the server rejected the query (FORMERR or another error)"));
      default:
        return absl::UnavailableError(absl::StrCat(what, ": resolver error, errno ", saved_errno));
    }
  }
  const std::string malformed =
      absl::StrCat("resolving ", Quote(hostname), " via DNS server ", server, ": malformed answer");
  ns_msg msg;
  if (ns_initparse(answer.data(), std::min(n, static_cast<int>(answer.size())), &msg) < 0) {
    return absl::UnavailableError(malformed);
  }
  const int count = ns_msg_count(msg, ns_s_an);

  // The owner names whose addresses count: the query name and its CNAME chain, whatever order
  // the server put the records in.
  std::vector<std::string> names = {NormalizeName(hostname)};
  for (int pass = 0; pass < kMaxCnameChain; ++pass) {
    bool grew = false;
    for (int i = 0; i < count; ++i) {
      ns_rr rr;
      if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) return absl::UnavailableError(malformed);
      if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in) continue;
      if (std::find(names.begin(), names.end(), NormalizeName(ns_rr_name(rr))) == names.end()) {
        continue;
      }
      char target[NS_MAXDNAME];
      if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr), target,
                             sizeof(target)) < 0) {
        return absl::UnavailableError(malformed);
      }
      std::string alias = NormalizeName(target);
      if (std::find(names.begin(), names.end(), alias) == names.end()) {
        names.push_back(std::move(alias));
        grew = true;
      }
    }
    if (!grew) break;
  }

  std::vector<net::Endpoint> out;
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) return absl::UnavailableError(malformed);
    if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in) continue;
    if (std::find(names.begin(), names.end(), NormalizeName(ns_rr_name(rr))) == names.end()) {
      continue;
    }
    if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
      AddUnique(&out, FromIpv4Bytes(ns_rr_rdata(rr), port));
    } else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
      AddUnique(&out, FromIpv6Bytes(ns_rr_rdata(rr), port));
    } else {
      return absl::UnavailableError(malformed);
    }
  }
  return out;
}

absl::StatusOr<std::vector<net::Endpoint>> ResolveWithServer(absl::string_view hostname,
                                                              uint16_t port,
                                                              const net::Endpoint& server) {
  ResolverState state;
  RETURN_IF_ERROR(state.Init(server));
  const std::string server_text = server.ToString();
  // NXDOMAIN or an unavailable server ends the lookup here: asking again for AAAA would only
  // double the wait.
  ASSIGN_OR_RETURN(std::vector<net::Endpoint> out,
                   Query(state, hostname, server_text, ns_t_a, port));
  absl::StatusOr<std::vector<net::Endpoint>> v6 =
      Query(state, hostname, server_text, ns_t_aaaa, port);
  if (!v6.ok()) {
    if (!out.empty()) return out;  // IPv4 is enough to reach the basestation.
    return v6.status();
  }
  for (const net::Endpoint& endpoint : *v6) AddUnique(&out, endpoint);
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat("resolving ", Quote(hostname), " via DNS server ",
                                            server_text, ": no A or AAAA record"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<net::Endpoint>> ResolveHost(
    absl::string_view hostname, uint16_t port, const std::optional<net::Endpoint>& dns_server) {
  if (absl::StatusOr<net::Endpoint> literal = net::Endpoint::ParseIp(hostname, port);
      literal.ok()) {
    return std::vector<net::Endpoint>{*literal};
  }
  RETURN_IF_ERROR(ValidateHostname(hostname));
  if (!dns_server.has_value()) return ResolveWithSystem(hostname, port);
  if (!dns_server->is_set() || dns_server->port() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS server for ", Quote(hostname), " needs an address and a non-zero port"));
  }
  return ResolveWithServer(hostname, port, *dns_server);
}

}  // namespace edgelink::device
