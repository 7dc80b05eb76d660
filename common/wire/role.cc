#include "common/wire/role.h"

#include "absl/status/status.h"

namespace edgelink::wire {

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kOwner:
      return "owner";
    case Role::kUser:
      return "user";
    case Role::kGuest:
      return "guest";
  }
  return "?";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role role : {Role::kOwner, Role::kUser, Role::kGuest}) {
    if (name == RoleName(role)) return role;
  }
  return absl::InvalidArgumentError("role must be owner, user or guest");
}

}  // namespace edgelink::wire
