// Fuzzes the device daemon's config file reader: device::ParseDeviceConfig on the input as text,
// and device::LoadDeviceConfig on the same bytes written to a file under $TMPDIR.
//
// Invariants checked: Load and Parse agree (both succeed or both fail); a parsed config has what
// ParseDeviceConfig promises (a valid device id, a secret of at least 16 bytes, a pairing secret,
// and a zone or a basestation); and an error message never quotes the value of a `secret` or
// `pairing_secret` line (unless that text also appears elsewhere in the file).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/wire/device_id.h"
#include "device/daemon/config.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/tmp_file.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "device_config_fuzzer";

size_t Count(absl::string_view haystack, absl::string_view needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != absl::string_view::npos;
       at = haystack.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The values of secret lines, as ParseDeviceConfig reads them (comment cut, whitespace stripped).
std::vector<absl::string_view> SecretValues(absl::string_view text) {
  std::vector<absl::string_view> values;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    if (key == "secret" || key == "pairing_secret") {
      values.push_back(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    }
  }
  return values;
}

void Fuzz(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<device::DeviceConfig> parsed = device::ParseDeviceConfig(text, "fuzz.conf");
  if (parsed.ok()) {
    EDGELINK_FUZZ_CHECK(kName, wire::ValidateDeviceId(parsed->device_id).ok());
    EDGELINK_FUZZ_CHECK(kName, parsed->secret.size() >= 16);
    EDGELINK_FUZZ_CHECK(kName, !parsed->pairing_secret.empty());
    EDGELINK_FUZZ_CHECK(kName, !parsed->zone.empty() || parsed->basestation.has_value());
  } else {
    const absl::string_view message = parsed.status().message();
    for (absl::string_view secret : SecretValues(text)) {
      if (secret.size() >= 8 && Count(text, secret) == 1) {
        EDGELINK_FUZZ_CHECK(kName, !absl::StrContains(message, secret));
      }
    }
  }

  static const std::string* path = new std::string(ScratchDirectory() + "/device.conf");
  WriteScratchFile(*path, data, size);
  const absl::StatusOr<device::DeviceConfig> loaded = device::LoadDeviceConfig(*path);
  EDGELINK_FUZZ_CHECK(kName, loaded.ok() == parsed.ok() || size > 64 * 1024);
}

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::Fuzz(data, size);
  return 0;
}
