// Fuzzes the device daemon's config file reader: device::ParseDeviceConfig on the input as text,
// and device::LoadDeviceConfig on the same bytes written to a file under $TMPDIR.
//
// Invariants checked: Load and Parse agree (both succeed or both fail); a parsed config has what
// ParseDeviceConfig promises (a valid device id, a secret of at least 16 bytes, a pairing secret,
// and a zone or a basestation); and the values of `secret` and `pairing_secret` lines never show
// in an error (changing them changes neither the outcome nor the message).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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

// Masked returns `text` with the value of every `secret` and `pairing_secret` line changed in
// place: each letter and digit moved to another of its own class (hex digits stay hex digits), so
// the value is just as valid or invalid as before, only different.
std::string Masked(absl::string_view text) {
  std::string out(text);
  size_t line_start = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const absl::string_view content = line.substr(0, line.find('#'));
    const size_t eq = content.find('=');
    if (eq != absl::string_view::npos) {
      const absl::string_view key = absl::StripAsciiWhitespace(content.substr(0, eq));
      if (key == "secret" || key == "pairing_secret") {
        for (size_t i = line_start + eq + 1; i < line_start + content.size(); ++i) {
          char& c = out[i];
          if (c >= '0' && c <= '9') c = c == '9' ? '0' : c + 1;
          else if (c >= 'a' && c <= 'f') c = c == 'f' ? 'a' : c + 1;
          else if (c >= 'A' && c <= 'F') c = c == 'F' ? 'A' : c + 1;
          else if (c >= 'g' && c <= 'z') c = c == 'z' ? 'g' : c + 1;
          else if (c >= 'G' && c <= 'Z') c = c == 'Z' ? 'G' : c + 1;
        }
      }
    }
    line_start += line.size() + 1;
  }
  return out;
}

void Fuzz(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<device::DeviceConfig> parsed = device::ParseDeviceConfig(text, "fuzz.conf");
  if (parsed.ok()) {
    EDGELINK_FUZZ_CHECK(kName, wire::ValidateDeviceId(parsed->device_id).ok());
    EDGELINK_FUZZ_CHECK(kName, parsed->secret.size() >= 16);
    EDGELINK_FUZZ_CHECK(kName, !parsed->pairing_secret.empty());
    EDGELINK_FUZZ_CHECK(kName, !parsed->zone.empty() || parsed->basestation.has_value());
  }
  // Secrets never reach a message: with every secret value changed, the outcome and the message
  // are exactly the same.
  const absl::StatusOr<device::DeviceConfig> masked =
      device::ParseDeviceConfig(Masked(text), "fuzz.conf");
  EDGELINK_FUZZ_CHECK(kName, masked.status() == parsed.status());

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
