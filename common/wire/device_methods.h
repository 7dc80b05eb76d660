// Payloads of the DEVICE_REQUEST methods the basestation forwards from clients to a device
// (docs/PROTOCOL.md, "Device requests"): pairing and the access list.
#ifndef EDGELINK_COMMON_WIRE_DEVICE_METHODS_H_
#define EDGELINK_COMMON_WIRE_DEVICE_METHODS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/wire/role.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/wire/packet.h"

namespace edgelink::wire {

inline constexpr char kMethodPair[] = "pair";
inline constexpr char kMethodAddUser[] = "users.add";
inline constexpr char kMethodRemoveUser[] = "users.remove";
inline constexpr char kMethodListUsers[] = "users.list";
inline constexpr char kMethodReopenPairing[] = "pairing.reopen";

// "pair": proof[32] || str8 name  ->  role u8
struct PairArgs {
  std::array<uint8_t, 32> proof{};
  std::string name;
};
std::vector<uint8_t> EncodePairArgs(const PairArgs& args);
absl::StatusOr<PairArgs> ParsePairArgs(absl::Span<const uint8_t> payload);

struct UserEntry {
  Fingerprint fingerprint{};
  Role role = Role::kGuest;
  std::string name;
  uint64_t added_unix_s = 0;
};
// "users.add": fingerprint[32] || role u8 || str8 name; "users.remove": fingerprint[32].
std::vector<uint8_t> EncodeUserArgs(const UserEntry& user);
absl::StatusOr<UserEntry> ParseUserArgs(absl::Span<const uint8_t> payload);
std::vector<uint8_t> EncodeFingerprintArgs(const Fingerprint& fingerprint);
absl::StatusOr<Fingerprint> ParseFingerprintArgs(absl::Span<const uint8_t> payload);
// "users.list" answer: count u8 || (role u8 || fingerprint[32] || added u64 || str8 name)*.
// At most kMaxListedUsers fit in one response.
inline constexpr size_t kMaxListedUsers = 16;
std::vector<uint8_t> EncodeUserList(const std::vector<UserEntry>& users);
absl::StatusOr<std::vector<UserEntry>> ParseUserList(absl::Span<const uint8_t> payload);

// Fingerprints as people see them: 64 lower-case hex digits.
std::string FingerprintHex(const Fingerprint& fingerprint);
absl::StatusOr<Fingerprint> ParseFingerprintHex(absl::string_view hex);

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_DEVICE_METHODS_H_
