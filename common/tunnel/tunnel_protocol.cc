#include "common/tunnel/tunnel_protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace edgelink::tunnel {

std::array<uint8_t, kRequestSize> EncodeRequest(uint16_t port) {
  return {kTunnelVersion, static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port & 0xff)};
}

size_t RequestReader::Feed(absl::Span<const uint8_t> data) {
  const size_t n = std::min(data.size(), kRequestSize - have_);
  std::copy(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), bytes_.begin() + have_);
  have_ += n;
  return n;
}

absl::StatusOr<TunnelRequest> RequestReader::Parse() const {
  if (!complete()) return absl::FailedPreconditionError("request incomplete");
  if (bytes_[0] != kTunnelVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported tunnel protocol version ", bytes_[0]));
  }
  TunnelRequest request;
  request.version = bytes_[0];
  request.port = static_cast<uint16_t>((bytes_[1] << 8) | bytes_[2]);
  return request;
}

absl::Status StatusFromWire(uint8_t status, uint16_t port) {
  switch (static_cast<TunnelStatus>(status)) {
    case TunnelStatus::kOk:
      return absl::OkStatus();
    case TunnelStatus::kPortNotAllowed:
      return absl::PermissionDeniedError(absl::StrCat("the device does not allow tunnels to port ",
                                                      port, " (not in its tunnel_ports)"));
    case TunnelStatus::kConnectFailed:
      return absl::UnavailableError(absl::StrCat("the device could not connect to its port ", port,
                                                 " (connection refused or failed)"));
    case TunnelStatus::kBadRequest:
      return absl::UnimplementedError(
          absl::StrCat("the device does not speak tunnel protocol version ", kTunnelVersion));
  }
  return absl::InternalError(
      absl::StrCat("the device answered an unknown tunnel status ", static_cast<int>(status)));
}

}  // namespace edgelink::tunnel
