// The reference device daemon's config file: one "key = value" per line, '#' comments.
//
//   device_id = cam-1
//   secret = 64 hex digits (from `basestation provision`)
//   zone = devices.example.com        # the basestation is found at <device_id>.<zone>
//   basestation = 192.0.2.10:7000     # optional: skip DNS and use this address
//   basestation_port = 7000           # port used with the address DNS returns
//   dns_server = 192.0.2.53:53        # optional: ask this server instead of the system resolver
//   remote_access = on | off          # the master switch: off sends nothing at all
//   pairing_secret = BQ6R-T6CL-673M-ZLT8   # the sticker: the first client to prove it owns us
//   access_list = /var/lib/edgelink/access  # where the owner's list lives (default: beside the
//                                           # config file, <config>.access)
//   tunnel_ports = 80, 554            # local TCP ports clients may tunnel to (127.0.0.1 only);
//                                     # empty or absent: no tunnels
#ifndef EDGELINK_DEVICE_DAEMON_CONFIG_H_
#define EDGELINK_DEVICE_DAEMON_CONFIG_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/secret_bytes.h"
#include "common/net/endpoint.h"

namespace edgelink::device {

struct DeviceConfig {
  std::string device_id;
  crypto::SecretBytes secret;
  std::string zone;
  std::optional<net::Endpoint> basestation;
  uint16_t basestation_port = 7000;
  std::optional<net::Endpoint> dns_server;
  bool remote_access = true;
  crypto::SecretBytes pairing_secret;
  std::string access_list_path;  // Empty: "<config path>.access".
  // The allow-list for TCP tunnels: the device connects to 127.0.0.1:<port> for these only.
  std::set<uint16_t> tunnel_ports;

  // The name the device resolves to find its basestation.
  std::string BasestationHostname() const { return device_id + "." + zone; }
};

// ParseDeviceConfig reads config text. Errors are one line, "<source>:<line>: <problem>", and
// never quote a secret. Requires device_id, secret, and zone or basestation.
absl::StatusOr<DeviceConfig> ParseDeviceConfig(absl::string_view text, absl::string_view source);

// LoadDeviceConfig reads and parses a file (at most 64 KiB).
absl::StatusOr<DeviceConfig> LoadDeviceConfig(const std::string& path);

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_DAEMON_CONFIG_H_
