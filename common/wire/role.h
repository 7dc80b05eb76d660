// Role: what a client on a device's access list is. Shared by the access list (device/access), its
// file, and the device methods that carry roles on the wire (device_methods.h).
#ifndef EDGELINK_COMMON_WIRE_ROLE_H_
#define EDGELINK_COMMON_WIRE_ROLE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edgelink::wire {

// The values are the wire's. kUser and kGuest may both connect; what each may do once connected
// is the device's policy. Only kOwner may change the list.
enum class Role : uint8_t { kOwner = 1, kUser = 2, kGuest = 3 };

// RoleName is the lower-case name used in files, flags and messages: "owner", "user", "guest".
absl::string_view RoleName(Role role);
// ParseRole reads such a name; kInvalidArgument otherwise.
absl::StatusOr<Role> ParseRole(absl::string_view name);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_ROLE_H_
