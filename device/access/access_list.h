// AccessList: the device's own list of who may connect (DESIGN.md, trust model 4). Identities are
// client certificate fingerprints; the first client to prove the one-time pairing secret becomes
// owner, and owners add and remove everyone else. The basestation only relays: it can neither
// grant access nor replay one client's pairing proof for another.
//
// The logic is sans-I/O apart from persistence: no socket, thread or clock inside (the time is
// passed in); every change is written to one small file before it takes effect.
#ifndef EDGELINK_DEVICE_ACCESS_ACCESS_LIST_H_
#define EDGELINK_DEVICE_ACCESS_ACCESS_LIST_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/hmac.h"
#include "common/crypto/secret_bytes.h"
#include "common/wire/role.h"

namespace edgelink::device {

// A fingerprint is the SHA-256 of a client certificate as 64 lower-case hex digits.
inline constexpr size_t kFingerprintLength = 64;
// Entry names are printable ASCII (0x20..0x7e), at most this many bytes; empty is allowed.
inline constexpr size_t kMaxEntryNameLength = 64;
// The list never holds more entries than this (AddUser and Pair fail with kResourceExhausted).
inline constexpr size_t kMaxAccessListEntries = 256;
// Pairing lockout: after this many consecutive wrong proofs pairing is locked for
// kFirstPairingLockout; every further wrong proof doubles it, up to kMaxPairingLockout.
inline constexpr int kPairingFailuresBeforeLockout = 5;
inline constexpr absl::Duration kFirstPairingLockout = absl::Minutes(1);
inline constexpr absl::Duration kMaxPairingLockout = absl::Hours(1);
// Open refuses a pairing secret shorter than this once normalized (the stickers carry 16).
inline constexpr size_t kMinPairingSecretLength = 8;

using wire::Role;
using wire::RoleName;

// ValidateFingerprint returns kInvalidArgument unless `fingerprint` is exactly 64 lower-case hex
// digits. (Upper case is refused rather than folded, so one identity has one spelling.)
absl::Status ValidateFingerprint(absl::string_view fingerprint);

// ValidateEntryName returns kInvalidArgument unless `name` is printable ASCII of at most
// kMaxEntryNameLength bytes.
absl::Status ValidateEntryName(absl::string_view name);

// NormalizePairingSecret returns the sticker text with '-' and ' ' removed and ASCII letters
// upper-cased, so "bq6r-t6cl 673m-zlt8" and "BQ6RT6CL673MZLT8" are the same secret. Every other
// byte is kept as is.
crypto::SecretBytes NormalizePairingSecret(const crypto::SecretBytes& pairing_secret_text);

// PairingProof is what a client sends to pair with a device:
//   HMAC-SHA256(key = NormalizePairingSecret(text), "edgelink pair v1" || fingerprint)
// with the fingerprint as its 64 ASCII hex digits. The proof is bound to the client's own
// fingerprint, so whoever relays it cannot use it to pair a different identity. Fails with
// kInvalidArgument for an invalid fingerprint, kInternal if the crypto backend fails. The result
// is a credential: never log it.
absl::StatusOr<crypto::Sha256Digest> PairingProof(const crypto::SecretBytes& pairing_secret_text,
                                                  absl::string_view fingerprint);

// AccessList holds the device's access list and its pairing state, persisted in one file.
//
// Every mutating call is all-or-nothing: it returns OK only once the new list is durably on disk
// (temp file in the same directory, fsync, rename over, fsync of the directory; mode 0600), and on
// any error the list in memory is unchanged. The one exception is the wrong-proof counter, which
// takes effect in memory even if it could not be written, so a full disk cannot disable the
// lockout.
//
// The failure count and the lockout's end are persisted, so rebooting the device does not reset a
// lockout. Should the clock jump backwards (a device without an RTC), a lockout is clamped at the
// length it was set for, never stretched.
//
// Not thread-safe: owned by one event loop.
class AccessList {
 public:
  struct Entry {
    std::string fingerprint;
    Role role = Role::kGuest;
    std::string name;
    absl::Time added;  // Whole seconds (that is what the file keeps).

    friend bool operator==(const Entry& a, const Entry& b) {
      return a.fingerprint == b.fingerprint && a.role == b.role && a.name == b.name &&
             a.added == b.added;
    }
  };

  // Open loads the access list at `path`. A missing file is a new, unpaired device: empty list,
  // pairing open; nothing is written until the first change. Fails with kInvalidArgument if the
  // normalized pairing secret is shorter than kMinPairingSecretLength or the file's directory
  // does not exist, kDataLoss ("<path>:<line>: <problem>") if the file is corrupt (a corrupt file
  // is never treated as empty, which would reopen pairing), or an errno-derived code if it cannot
  // be read. The pairing secret is copied (normalized); the caller may wipe its own.
  static absl::StatusOr<std::unique_ptr<AccessList>> Open(
      std::string path, const crypto::SecretBytes& pairing_secret);

  AccessList(const AccessList&) = delete;
  AccessList& operator=(const AccessList&) = delete;

  // RoleOf returns the role of `fingerprint`, or nullopt if it is not on the list (or invalid).
  std::optional<Role> RoleOf(absl::string_view fingerprint) const;
  // IsAllowed reports whether `fingerprint` may connect at all (any role).
  bool IsAllowed(absl::string_view fingerprint) const { return RoleOf(fingerprint).has_value(); }
  // List returns every entry, oldest first: for the device itself (its console, its daemon).
  std::vector<Entry> List() const;

  // Pair claims ownership with a proof from PairingProof. Checked in this order:
  //   kInvalidArgument     invalid fingerprint or name (not counted as a wrong proof);
  //   kFailedPrecondition  pairing is closed;
  //   kResourceExhausted   locked out after too many wrong proofs ("retry after N seconds"),
  //                        without looking at the proof;
  //   kPermissionDenied    wrong proof (compared in constant time); counted toward the lockout;
  //   kResourceExhausted   the list is full.
  // On success `fingerprint` becomes an owner (an existing entry for it is replaced), pairing
  // closes, the failure count resets, and kOwner is returned. If the file cannot be written the
  // write's error is returned and (for a right proof) nothing changes.
  absl::StatusOr<Role> Pair(absl::string_view fingerprint, absl::string_view name,
                            absl::Span<const uint8_t> proof, absl::Time now);

  // The owner operations below fail with kInvalidArgument for an invalid argument and with
  // kPermissionDenied unless `caller` is an owner; then as documented on each.

  // AddUser adds `fingerprint` with `role`. Any role may be granted, kOwner included: a household
  // may have several owners, and a second owner is how one recovers from a lost phone.
  // kAlreadyExists if the fingerprint is on the list (remove it first to change its role),
  // kResourceExhausted if the list is full.
  absl::Status AddUser(absl::string_view caller, absl::string_view fingerprint, Role role,
                       absl::string_view name, absl::Time now);

  // RemoveUser removes `fingerprint` (an owner may remove itself if another owner remains), then
  // calls on_removed. kNotFound if it is not on the list, kFailedPrecondition if it is the last
  // owner.
  absl::Status RemoveUser(absl::string_view caller, absl::string_view fingerprint);

  // ReopenPairing lets the next client proving the pairing secret become an (additional) owner;
  // existing entries are kept. Also clears the failure count and any lockout. A no-op if open.
  absl::Status ReopenPairing(absl::string_view caller);

  // List for a remote caller: an owner sees every entry, a user or guest sees only its own entry
  // (so a guest cannot enumerate the household), anyone else gets kPermissionDenied.
  absl::StatusOr<std::vector<Entry>> List(absl::string_view caller) const;

  // on_removed is called with the fingerprint of every removed entry, after the removal is on
  // disk, so the daemon can end that client's open sessions. It may call this object's const
  // methods.
  void set_on_removed(std::function<void(absl::string_view fingerprint)> on_removed) {
    on_removed_ = std::move(on_removed);
  }

  bool pairing_open() const { return state_.pairing_open; }
  // Consecutive wrong proofs since the last successful pairing or reopening.
  int failed_pairing_attempts() const { return state_.failures; }
  // When the current pairing lockout ends (in the past if there is none).
  absl::Time pairing_locked_until() const { return state_.locked_until; }
  const std::string& path() const { return path_; }

 private:
  struct State {
    bool pairing_open = true;
    int failures = 0;
    absl::Time locked_until = absl::UnixEpoch();
    std::vector<Entry> entries;
  };

  AccessList(std::string path, crypto::SecretBytes pairing_key, State state);

  const Entry* Find(absl::string_view fingerprint) const;
  absl::Status CheckOwner(absl::string_view caller) const;
  // Save writes `state` to path_ atomically; then the caller commits it to state_.
  absl::Status Save(const State& state) const;

  std::string path_;
  crypto::SecretBytes pairing_key_;  // Normalized.
  State state_;
  std::function<void(absl::string_view)> on_removed_;
};

}  // namespace edgelink::device

#endif  // EDGELINK_DEVICE_ACCESS_ACCESS_LIST_H_
