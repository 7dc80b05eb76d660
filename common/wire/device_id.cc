#include "common/wire/device_id.h"

#include "absl/strings/str_cat.h"

namespace edgelink::wire {

absl::Status ValidateDeviceId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("device id is empty");
  if (id.size() > kMaxDeviceIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("device id is ", id.size(), " characters; at most 63 allowed"));
  }
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return absl::InvalidArgumentError(
          "device id may contain only a-z, 0-9 and '-' (it is a DNS label)");
    }
  }
  if (id.front() == '-' || id.back() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("device id \"", id, "\" must not start or end with '-'"));
  }
  return absl::OkStatus();
}

}  // namespace edgelink::wire
