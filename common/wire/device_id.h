// Device ids: the name a device is provisioned, attaches and is connected to under.
#ifndef EDGELINK_COMMON_WIRE_DEVICE_ID_H_
#define EDGELINK_COMMON_WIRE_DEVICE_ID_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace edgelink::wire {

// A device id is also the first label of the device's DNS name, <device-id>.<zone>, so it follows
// the DNS label rules (RFC 1035, lower case only): 1 to 63 characters of a-z, 0-9 and '-', not
// starting or ending with '-'.
inline constexpr size_t kMaxDeviceIdLength = 63;

// ValidateDeviceId returns OK, or kInvalidArgument saying what is wrong. The message quotes the id
// only when it is short and printable, so hostile input cannot flood a log.
absl::Status ValidateDeviceId(absl::string_view id);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_DEVICE_ID_H_
