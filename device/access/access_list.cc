#include "device/access/access_list.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace edgelink::device {
namespace {

constexpr absl::string_view kHeader = "edgelink-acl";
constexpr int kFormatVersion = 1;
constexpr absl::string_view kProofLabel = "edgelink pair v1";
// Bounds what Open reads: a full list is about 40 KiB.
constexpr size_t kMaxFileSize = 256 * 1024;
// Saturates the counter long before int overflow; the lockout is at its cap by then anyway.
constexpr int kMaxFailures = 1 << 20;

absl::Span<const uint8_t> AsBytes(absl::string_view text) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

// The proof under an already normalized key; the one definition both sides use.
absl::StatusOr<crypto::Sha256Digest> ProofWithKey(const crypto::SecretBytes& key,
                                                  absl::string_view fingerprint) {
  ASSIGN_OR_RETURN(crypto::HmacSha256 hmac, crypto::HmacSha256::New(key));
  RETURN_IF_ERROR(hmac.Update(AsBytes(kProofLabel)));
  RETURN_IF_ERROR(hmac.Update(AsBytes(fingerprint)));
  return hmac.Finish();
}

// Strict decimal: digits only, no sign or space, small enough for any int64 time in seconds.
bool ParseDecimal(absl::string_view text, int64_t max, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

absl::Time FloorToSecond(absl::Time t) { return absl::FromUnixSeconds(absl::ToUnixSeconds(t)); }

absl::Time CeilToSecond(absl::Time t) {
  const absl::Time floor = FloorToSecond(t);
  return floor == t ? t : floor + absl::Seconds(1);
}

// The lockout a wrong proof starts, given the consecutive failures including it.
absl::Duration LockoutAfter(int failures) {
  if (failures < kPairingFailuresBeforeLockout) return absl::ZeroDuration();
  const int doublings = failures - kPairingFailuresBeforeLockout;
  absl::Duration lockout = kFirstPairingLockout;
  for (int i = 0; i < doublings && lockout < kMaxPairingLockout; ++i) lockout *= 2;
  return std::min(lockout, kMaxPairingLockout);
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status Errno(int err, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

// ReadFile sets *exists to false (and returns OK) if there is no file at `path`.
absl::Status ReadFile(const std::string& path, std::string* contents, bool* exists) {
  *exists = false;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(errno, "cannot open access list", path);
  }
  *exists = true;
  absl::Status status;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Errno(errno, "cannot read access list", path);
      break;
    }
    if (n == 0) break;
    contents->append(buffer, static_cast<size_t>(n));
    if (contents->size() > kMaxFileSize) {
      status = absl::DataLossError(absl::StrCat(path, ": larger than ", kMaxFileSize, " bytes"));
      break;
    }
  }
  close(fd);
  return status;
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// WriteFileAtomically replaces `path` with `contents` so that a crash at any point leaves either
// the old file or the new one, never a mix; and once it returns OK the new file survives power
// loss. The temporary file lives in the same directory (rename is only atomic within a file
// system) and is removed on failure.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Errno(errno, "cannot create temporary file for", path);
  absl::Status status;
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    status = absl::ErrnoToStatus(errno, "fchmod");
  }
  if (status.ok()) status = WriteAll(fd, contents);
  if (status.ok() && fsync(fd) != 0) status = absl::ErrnoToStatus(errno, "fsync");
  if (close(fd) != 0 && status.ok()) status = absl::ErrnoToStatus(errno, "close");
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::ErrnoToStatus(errno, "rename");
  }
  if (!status.ok()) {
    unlink(temp.c_str());
    return absl::Status(status.code(),
                        absl::StrCat("cannot write access list ", path, ": ", status.message()));
  }
  // The rename is durable only once the directory entry is.
  const std::string dir = DirectoryOf(path);
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno(errno, "cannot open directory to sync", dir);
  const bool synced = fsync(dir_fd) == 0;
  const int sync_errno = errno;
  close(dir_fd);
  if (!synced) return Errno(sync_errno, "cannot fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateFingerprint(absl::string_view fingerprint) {
  if (fingerprint.size() != kFingerprintLength) {
    return absl::InvalidArgumentError(absl::StrCat("fingerprint must be ", kFingerprintLength,
                                                   " hex digits, got ", fingerprint.size(),
                                                   " characters"));
  }
  for (char c : fingerprint) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError("fingerprint must be lower-case hex digits");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateEntryName(absl::string_view name) {
  if (name.size() > kMaxEntryNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("name must be at most ", kMaxEntryNameLength, " characters"));
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("name must be printable ASCII");
    }
  }
  return absl::OkStatus();
}

crypto::SecretBytes NormalizePairingSecret(const crypto::SecretBytes& pairing_secret_text) {
  auto kept = [](uint8_t c) { return c != '-' && c != ' '; };
  const absl::Span<const uint8_t> text = pairing_secret_text.span();
  crypto::SecretBytes normalized(
      static_cast<size_t>(std::count_if(text.begin(), text.end(), kept)));
  uint8_t* out = normalized.mutable_span().data();
  for (uint8_t c : text) {
    if (kept(c)) *out++ = static_cast<uint8_t>(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  return normalized;
}

absl::StatusOr<crypto::Sha256Digest> PairingProof(const crypto::SecretBytes& pairing_secret_text,
                                                  absl::string_view fingerprint) {
  RETURN_IF_ERROR(ValidateFingerprint(fingerprint));
  return ProofWithKey(NormalizePairingSecret(pairing_secret_text), fingerprint);
}

// --- File format ---
//
//   edgelink-acl 1
//   pairing open|closed
//   failures <consecutive wrong proofs> <lockout end, unix seconds>
//   <owner|user|guest> <fingerprint> <added, unix seconds> <name, may be empty or hold spaces>
//   ...
//   end <number of entries>
//
// Every line ends in '\n'. The trailer makes a file cut short at a line boundary an error rather
// than a shorter list.

namespace {

std::string Serialize(bool pairing_open, int failures, absl::Time locked_until,
                      const std::vector<AccessList::Entry>& entries) {
  std::string out = absl::StrCat(kHeader, " ", kFormatVersion, "\n");
  absl::StrAppend(&out, "pairing ", pairing_open ? "open" : "closed", "\n");
  absl::StrAppend(&out, "failures ", failures, " ",
                  std::max<int64_t>(0, absl::ToUnixSeconds(locked_until)), "\n");
  for (const AccessList::Entry& entry : entries) {
    absl::StrAppend(&out, RoleName(entry.role), " ", entry.fingerprint, " ",
                    absl::ToUnixSeconds(entry.added), " ", entry.name, "\n");
  }
  absl::StrAppend(&out, "end ", entries.size(), "\n");
  return out;
}

// Splits "<keyword> <value>" exactly; false if the keyword differs.
bool KeywordValue(absl::string_view line, absl::string_view keyword, absl::string_view* value) {
  if (line.size() <= keyword.size() || line.substr(0, keyword.size()) != keyword ||
      line[keyword.size()] != ' ') {
    return false;
  }
  *value = line.substr(keyword.size() + 1);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessList>> AccessList::Open(
    std::string path, const crypto::SecretBytes& pairing_secret) {
  crypto::SecretBytes key = NormalizePairingSecret(pairing_secret);
  if (key.size() < kMinPairingSecretLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("pairing secret must have at least ", kMinPairingSecretLength, " characters"));
  }
  if (path.empty()) return absl::InvalidArgumentError("access list path is empty");
  // Fail at start-up rather than at the first pairing if the path can never be written.
  const std::string dir = DirectoryOf(path);
  struct stat dir_stat;
  if (stat(dir.c_str(), &dir_stat) != 0 || !S_ISDIR(dir_stat.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("access list directory ", dir, " does not exist"));
  }

  std::string text;
  bool exists = false;
  RETURN_IF_ERROR(ReadFile(path, &text, &exists));
  State state;
  if (!exists) {
    return std::unique_ptr<AccessList>(
        new AccessList(std::move(path), std::move(key), std::move(state)));
  }

  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  // A complete file ends in '\n', which leaves an empty last piece.
  if (!lines.back().empty()) {
    return absl::DataLossError(
        absl::StrCat(path, ":", lines.size(), ": line not terminated by a newline (truncated?)"));
  }
  lines.pop_back();
  size_t line_number = 0;
  auto error = [&](absl::string_view problem) {
    return absl::DataLossError(absl::StrCat(path, ":", line_number, ": ", problem));
  };
  // Reports the line that is missing, one past the last line read.
  auto missing = [&](absl::string_view what) {
    ++line_number;
    return error(absl::StrCat("truncated: missing ", what));
  };
  auto next_line = [&](absl::string_view* line) {
    if (line_number >= lines.size()) return false;
    *line = lines[line_number++];
    return true;
  };

  absl::string_view line;
  absl::string_view value;
  if (!next_line(&line)) return missing("header (empty file)");
  if (!KeywordValue(line, kHeader, &value)) return error("not an edgelink access list");
  if (value != absl::StrCat(kFormatVersion)) {
    return error(
        absl::StrCat("unsupported format version (this build reads ", kFormatVersion, ")"));
  }

  if (!next_line(&line)) return missing("pairing line");
  if (!KeywordValue(line, "pairing", &value) || (value != "open" && value != "closed")) {
    return error("expected \"pairing open\" or \"pairing closed\"");
  }
  state.pairing_open = value == "open";

  if (!next_line(&line)) return missing("failures line");
  {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    int64_t failures = 0;
    int64_t locked_until = 0;
    if (fields.size() != 3 || fields[0] != "failures" ||
        !ParseDecimal(fields[1], kMaxFailures, &failures) ||
        !ParseDecimal(fields[2], int64_t{1} << 40, &locked_until)) {
      return error("expected \"failures <count> <unix seconds>\"");
    }
    state.failures = static_cast<int>(failures);
    state.locked_until = absl::FromUnixSeconds(locked_until);
  }

  while (true) {
    if (!next_line(&line)) return missing("end line");
    if (KeywordValue(line, "end", &value)) {
      int64_t count = 0;
      if (!ParseDecimal(value, kMaxAccessListEntries, &count) ||
          static_cast<size_t>(count) != state.entries.size()) {
        return error(
            absl::StrCat("end line does not match the ", state.entries.size(), " entries read"));
      }
      break;
    }
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (fields.size() != 4) return error("expected \"<role> <fingerprint> <unix seconds> <name>\"");
    Entry entry;
    const absl::StatusOr<Role> role = wire::ParseRole(fields[0]);
    if (!role.ok()) return error("unknown role (expected owner, user or guest)");
    entry.role = *role;
    if (absl::Status s = ValidateFingerprint(fields[1]); !s.ok()) return error(s.message());
    entry.fingerprint = std::string(fields[1]);
    int64_t added = 0;
    if (!ParseDecimal(fields[2], int64_t{1} << 40, &added)) return error("bad time added");
    entry.added = absl::FromUnixSeconds(added);
    if (absl::Status s = ValidateEntryName(fields[3]); !s.ok()) return error(s.message());
    entry.name = std::string(fields[3]);
    for (const Entry& seen : state.entries) {
      if (seen.fingerprint == entry.fingerprint) return error("fingerprint listed twice");
    }
    if (state.entries.size() >= kMaxAccessListEntries) {
      return error(absl::StrCat("more than ", kMaxAccessListEntries, " entries"));
    }
    state.entries.push_back(std::move(entry));
  }
  if (line_number != lines.size()) {
    ++line_number;
    return error("text after the end line");
  }
  // Pairing closes only when someone becomes owner and the last owner cannot be removed, so a
  // closed list without an owner can only come from damage; loading it would lock out everyone.
  if (!state.pairing_open && std::none_of(state.entries.begin(), state.entries.end(),
                                          [](const Entry& e) { return e.role == Role::kOwner; })) {
    return error("pairing is closed but no owner is listed");
  }
  return std::unique_ptr<AccessList>(
      new AccessList(std::move(path), std::move(key), std::move(state)));
}

AccessList::AccessList(std::string path, crypto::SecretBytes pairing_key, State state)
    : path_(std::move(path)), pairing_key_(std::move(pairing_key)), state_(std::move(state)) {}

const AccessList::Entry* AccessList::Find(absl::string_view fingerprint) const {
  for (const Entry& entry : state_.entries) {
    if (entry.fingerprint == fingerprint) return &entry;
  }
  return nullptr;
}

std::optional<Role> AccessList::RoleOf(absl::string_view fingerprint) const {
  const Entry* entry = Find(fingerprint);
  if (entry == nullptr) return std::nullopt;
  return entry->role;
}

std::vector<AccessList::Entry> AccessList::List() const { return state_.entries; }

absl::Status AccessList::Save(const State& state) const {
  return WriteFileAtomically(
      path_, Serialize(state.pairing_open, state.failures, state.locked_until, state.entries));
}

absl::Status AccessList::CheckOwner(absl::string_view caller) const {
  RETURN_IF_ERROR(ValidateFingerprint(caller));
  if (RoleOf(caller) != Role::kOwner) {
    return absl::PermissionDeniedError("only an owner may change the access list");
  }
  return absl::OkStatus();
}

absl::StatusOr<Role> AccessList::Pair(absl::string_view fingerprint, absl::string_view name,
                                      absl::Span<const uint8_t> proof, absl::Time now) {
  RETURN_IF_ERROR(ValidateFingerprint(fingerprint));
  RETURN_IF_ERROR(ValidateEntryName(name));
  if (!state_.pairing_open) {
    return absl::FailedPreconditionError("pairing is closed; ask an owner to add you");
  }
  // After the clock steps backwards a stored lockout end may lie far ahead; never wait longer
  // than the lockout that was set.
  const absl::Duration set_lockout = LockoutAfter(state_.failures);
  if (state_.locked_until - now > set_lockout) {
    state_.locked_until = CeilToSecond(now + set_lockout);
  }
  if (now < state_.locked_until) {
    const int64_t retry_after =
        absl::ToInt64Seconds(absl::Ceil(state_.locked_until - now, absl::Seconds(1)));
    return absl::ResourceExhaustedError(absl::StrCat("pairing locked after ", state_.failures,
                                                     " wrong proofs; retry after ", retry_after,
                                                     " seconds"));
  }

  ASSIGN_OR_RETURN(crypto::Sha256Digest expected, ProofWithKey(pairing_key_, fingerprint));
  // A wrong length simply fails the comparison; the length of a proof is not secret.
  const bool proven = crypto::ConstantTimeEquals(expected, proof);
  crypto::internal::Cleanse(expected.data(), expected.size());

  if (!proven) {
    // In memory first, whatever the disk says: the lockout must hold even if it cannot be saved.
    state_.failures = std::min(state_.failures + 1, kMaxFailures);
    const absl::Duration lockout = LockoutAfter(state_.failures);
    if (lockout > absl::ZeroDuration()) state_.locked_until = CeilToSecond(now + lockout);
    RETURN_IF_ERROR(Save(state_));
    if (lockout > absl::ZeroDuration()) {
      return absl::PermissionDeniedError(absl::StrCat("wrong pairing proof; pairing locked for ",
                                                      absl::ToInt64Seconds(lockout), " seconds"));
    }
    return absl::PermissionDeniedError("wrong pairing proof");
  }

  State next = state_;
  next.entries.erase(std::remove_if(next.entries.begin(), next.entries.end(),
                                    [&](const Entry& e) { return e.fingerprint == fingerprint; }),
                     next.entries.end());
  if (next.entries.size() >= kMaxAccessListEntries) {
    return absl::ResourceExhaustedError("access list is full");
  }
  next.entries.push_back(
      Entry{std::string(fingerprint), Role::kOwner, std::string(name), FloorToSecond(now)});
  next.pairing_open = false;
  next.failures = 0;
  next.locked_until = absl::UnixEpoch();
  RETURN_IF_ERROR(Save(next));
  state_ = std::move(next);
  return Role::kOwner;
}

absl::Status AccessList::AddUser(absl::string_view caller, absl::string_view fingerprint, Role role,
                                 absl::string_view name, absl::Time now) {
  RETURN_IF_ERROR(ValidateFingerprint(fingerprint));
  RETURN_IF_ERROR(ValidateEntryName(name));
  RETURN_IF_ERROR(CheckOwner(caller));
  if (Find(fingerprint) != nullptr) {
    return absl::AlreadyExistsError("fingerprint is already on the access list");
  }
  if (state_.entries.size() >= kMaxAccessListEntries) {
    return absl::ResourceExhaustedError("access list is full");
  }
  State next = state_;
  next.entries.push_back(
      Entry{std::string(fingerprint), role, std::string(name), FloorToSecond(now)});
  RETURN_IF_ERROR(Save(next));
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::Status AccessList::RemoveUser(absl::string_view caller, absl::string_view fingerprint) {
  RETURN_IF_ERROR(ValidateFingerprint(fingerprint));
  RETURN_IF_ERROR(CheckOwner(caller));
  const Entry* entry = Find(fingerprint);
  if (entry == nullptr) return absl::NotFoundError("fingerprint is not on the access list");
  if (entry->role == Role::kOwner &&
      std::count_if(state_.entries.begin(), state_.entries.end(),
                    [](const Entry& e) { return e.role == Role::kOwner; }) == 1) {
    return absl::FailedPreconditionError("cannot remove the last owner; add another owner first");
  }
  State next = state_;
  next.entries.erase(std::remove_if(next.entries.begin(), next.entries.end(),
                                    [&](const Entry& e) { return e.fingerprint == fingerprint; }),
                     next.entries.end());
  RETURN_IF_ERROR(Save(next));
  state_ = std::move(next);
  if (on_removed_) on_removed_(fingerprint);
  return absl::OkStatus();
}

absl::Status AccessList::ReopenPairing(absl::string_view caller) {
  RETURN_IF_ERROR(CheckOwner(caller));
  if (state_.pairing_open) return absl::OkStatus();
  State next = state_;
  next.pairing_open = true;
  next.failures = 0;
  next.locked_until = absl::UnixEpoch();
  RETURN_IF_ERROR(Save(next));
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AccessList::Entry>> AccessList::List(absl::string_view caller) const {
  RETURN_IF_ERROR(ValidateFingerprint(caller));
  const Entry* self = Find(caller);
  if (self == nullptr) return absl::PermissionDeniedError("not on the access list");
  if (self->role == Role::kOwner) return state_.entries;
  return std::vector<Entry>{*self};
}

}  // namespace edgelink::device
