#include "common/wire/device_methods.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/wire/bytes.h"

namespace edgelink::wire {
namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed ", what, " arguments"));
}

bool ReadRole(ByteReader& in, Role* role) {
  uint8_t value = 0;
  if (!in.ReadU8(&value) || value < 1 || value > 3) return false;
  *role = static_cast<Role>(value);
  return true;
}

}  // namespace

std::vector<uint8_t> EncodePairArgs(const PairArgs& args) {
  ByteWriter out;
  out.WriteBytes(args.proof);
  out.WriteString8(args.name);
  return out.Take();
}

absl::StatusOr<PairArgs> ParsePairArgs(absl::Span<const uint8_t> payload) {
  ByteReader in(payload);
  PairArgs args;
  in.ReadBytes(absl::MakeSpan(args.proof));
  in.ReadString8(&args.name);
  if (!in.done()) return Malformed("pair");
  return args;
}

std::vector<uint8_t> EncodeUserArgs(const UserEntry& user) {
  ByteWriter out;
  out.WriteBytes(user.fingerprint);
  out.WriteU8(static_cast<uint8_t>(user.role));
  out.WriteString8(user.name);
  return out.Take();
}

absl::StatusOr<UserEntry> ParseUserArgs(absl::Span<const uint8_t> payload) {
  ByteReader in(payload);
  UserEntry user;
  in.ReadBytes(absl::MakeSpan(user.fingerprint));
  if (!ReadRole(in, &user.role) || !in.ReadString8(&user.name) || !in.done()) {
    return Malformed("users.add");
  }
  return user;
}

std::vector<uint8_t> EncodeFingerprintArgs(const Fingerprint& fingerprint) {
  return std::vector<uint8_t>(fingerprint.begin(), fingerprint.end());
}

absl::StatusOr<Fingerprint> ParseFingerprintArgs(absl::Span<const uint8_t> payload) {
  if (payload.size() != kFingerprintSize) return Malformed("fingerprint");
  Fingerprint fingerprint;
  std::copy(payload.begin(), payload.end(), fingerprint.begin());
  return fingerprint;
}

std::vector<uint8_t> EncodeUserList(const std::vector<UserEntry>& users) {
  ByteWriter out;
  const size_t n = std::min(users.size(), kMaxListedUsers);
  out.WriteU8(static_cast<uint8_t>(n));
  for (size_t i = 0; i < n; ++i) {
    out.WriteU8(static_cast<uint8_t>(users[i].role));
    out.WriteBytes(users[i].fingerprint);
    out.WriteU64(users[i].added_unix_s);
    out.WriteString8(users[i].name.substr(0, 64));
  }
  return out.Take();
}

absl::StatusOr<std::vector<UserEntry>> ParseUserList(absl::Span<const uint8_t> payload) {
  ByteReader in(payload);
  uint8_t n = 0;
  if (!in.ReadU8(&n) || n > kMaxListedUsers) return Malformed("users.list");
  std::vector<UserEntry> users(n);
  for (UserEntry& user : users) {
    if (!ReadRole(in, &user.role) || !in.ReadBytes(absl::MakeSpan(user.fingerprint)) ||
        !in.ReadU64(&user.added_unix_s) || !in.ReadString8(&user.name)) {
      return Malformed("users.list");
    }
  }
  if (!in.done()) return Malformed("users.list");
  return users;
}

std::string FingerprintHex(const Fingerprint& fingerprint) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(fingerprint.data()), fingerprint.size()));
}

absl::StatusOr<Fingerprint> ParseFingerprintHex(absl::string_view hex) {
  if (hex.size() != 2 * kFingerprintSize ||
      !std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return absl::InvalidArgumentError(
        "a fingerprint is 64 lower-case hex digits (SHA-256 of the certificate)");
  }
  const std::string bytes = absl::HexStringToBytes(hex);
  Fingerprint fingerprint;
  std::copy(bytes.begin(), bytes.end(), fingerprint.begin());
  return fingerprint;
}

}  // namespace edgelink::wire
