#include "device/daemon/config.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/device_id.h"

namespace edgelink::device {
namespace {

constexpr size_t kMaxConfigSize = 64 * 1024;

bool IsHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<DeviceConfig> ParseDeviceConfig(absl::string_view text, absl::string_view source) {
  DeviceConfig config;
  bool have_secret = false;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view problem) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", problem));
    };
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return error("expected \"key = value\"");
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (key == "device_id") {
      if (absl::Status s = wire::ValidateDeviceId(value); !s.ok()) return error(s.message());
      config.device_id = std::string(value);
    } else if (key == "secret") {
      if (value.size() % 2 != 0 || !IsHex(value)) return error("secret must be hex digits");
      if (value.size() / 2 < wire::kMinDeviceSecretSize) {
        return error("secret must be at least 16 bytes (32 hex digits)");
      }
      std::string bytes = absl::HexStringToBytes(value);
      config.secret = crypto::SecretBytes::CopyFrom(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      crypto::internal::Cleanse(bytes.data(), bytes.size());
      have_secret = true;
    } else if (key == "zone") {
      if (value.empty() || value.size() > 190) return error("zone must be a DNS name");
      config.zone = absl::AsciiStrToLower(value);
    } else if (key == "basestation") {
      absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(value);
      if (!endpoint.ok()) return error(absl::StrCat("basestation: ", endpoint.status().message()));
      config.basestation = *endpoint;
    } else if (key == "basestation_port") {
      uint32_t port = 0;
      if (!absl::SimpleAtoi(value, &port) || port == 0 || port > 65535) {
        return error("basestation_port must be 1..65535");
      }
      config.basestation_port = static_cast<uint16_t>(port);
    } else if (key == "dns_server") {
      absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(value);
      if (!endpoint.ok()) return error(absl::StrCat("dns_server: ", endpoint.status().message()));
      config.dns_server = *endpoint;
    } else if (key == "pairing_secret") {
      if (value.size() < 8 || value.size() > 64) return error("pairing_secret must be 8 to 64 characters");
      config.pairing_secret = crypto::SecretBytes::CopyFrom(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(value.data()), value.size()));
    } else if (key == "access_list") {
      if (value.empty()) return error("access_list must be a path");
      config.access_list_path = std::string(value);
    } else if (key == "tunnel_ports") {
      config.tunnel_ports.clear();
      if (value.empty()) continue;  // No tunnels.
      for (absl::string_view item : absl::StrSplit(value, ',')) {
        item = absl::StripAsciiWhitespace(item);
        uint32_t port = 0;
        if (item.empty() || !absl::SimpleAtoi(item, &port) || port == 0 || port > 65535) {
          return error(absl::StrCat("tunnel_ports: \"", absl::CHexEscape(item.substr(0, 20)),
                                    "\" is not a port (1..65535, comma-separated)"));
        }
        if (!config.tunnel_ports.insert(static_cast<uint16_t>(port)).second) {
          return error(absl::StrCat("tunnel_ports: port ", port, " is listed twice"));
        }
      }
    } else if (key == "remote_access") {
      if (value == "on") {
        config.remote_access = true;
      } else if (value == "off") {
        config.remote_access = false;
      } else {
        return error("remote_access must be on or off");
      }
    } else {
      return error(absl::StrCat("unknown key \"", absl::CHexEscape(key.substr(0, 40)), "\""));
    }
  }
  if (config.device_id.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no device_id"));
  if (!have_secret) return absl::InvalidArgumentError(absl::StrCat(source, ": no secret"));
  if (config.pairing_secret.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no pairing_secret"));
  }
  if (config.zone.empty() && !config.basestation.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": need zone or basestation"));
  }
  return config;
}

absl::StatusOr<DeviceConfig> LoadDeviceConfig(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string text(kMaxConfigSize + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(file.gcount()));
  if (text.size() > kMaxConfigSize) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": larger than 64 KiB"));
  }
  absl::StatusOr<DeviceConfig> config = ParseDeviceConfig(text, path);
  crypto::internal::Cleanse(text.data(), text.size());
  return config;
}

}  // namespace edgelink::device
