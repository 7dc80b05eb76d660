#include "common/net/endpoint.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace edgelink::net {

Endpoint Endpoint::Ipv4(std::array<uint8_t, 4> ip, uint16_t port) {
  Endpoint e;
  e.family_ = Family::kIpv4;
  std::copy(ip.begin(), ip.end(), e.ip_.begin());
  e.port_ = port;
  return e;
}

Endpoint Endpoint::Ipv6(const std::array<uint8_t, 16>& ip, uint16_t port) {
  Endpoint e;
  e.family_ = Family::kIpv6;
  e.ip_ = ip;
  e.port_ = port;
  return e;
}

Endpoint Endpoint::WithPort(uint16_t port) const {
  Endpoint e = *this;
  e.port_ = port;
  return e;
}

absl::StatusOr<Endpoint> Endpoint::ParseIp(absl::string_view text, uint16_t port) {
  // inet_pton needs a terminated string; addresses are short.
  const std::string ip(text);
  std::array<uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, ip.c_str(), bytes.data()) == 1) {
    return Ipv4({bytes[0], bytes[1], bytes[2], bytes[3]}, port);
  }
  if (inet_pton(AF_INET6, ip.c_str(), bytes.data()) == 1) return Ipv6(bytes, port);
  return absl::InvalidArgumentError(absl::StrCat("not an IP address: \"", text, "\""));
}

absl::StatusOr<Endpoint> Endpoint::Parse(absl::string_view text) {
  absl::string_view host;
  absl::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected [IPv6]:port, got \"", text, "\""));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected IPv4:port or [IPv6]:port, got \"", text, "\""));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in \"", text, "\""));
  }
  return ParseIp(host, static_cast<uint16_t>(port));
}

std::string Endpoint::IpString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  switch (family_) {
    case Family::kIpv4:
      inet_ntop(AF_INET, ip_.data(), buffer, sizeof(buffer));
      return buffer;
    case Family::kIpv6:
      inet_ntop(AF_INET6, ip_.data(), buffer, sizeof(buffer));
      return buffer;
    case Family::kNone:
      break;
  }
  return "none";
}

std::string Endpoint::ToString() const {
  switch (family_) {
    case Family::kIpv4:
      return absl::StrCat(IpString(), ":", port_);
    case Family::kIpv6:
      return absl::StrCat("[", IpString(), "]:", port_);
    case Family::kNone:
      break;
  }
  return "none";
}

}  // namespace edgelink::net
