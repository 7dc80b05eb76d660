// Registry: the basestation's device registry, a SQLite file shared by the running server and the
// operator's CLI.
#ifndef EDGELINK_BASESTATION_REGISTRY_REGISTRY_H_
#define EDGELINK_BASESTATION_REGISTRY_REGISTRY_H_

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
#include "common/crypto/secret_bytes.h"

// SQLite's handle types (sqlite3.h declares them the same way), so this header need not include it.
struct sqlite3;
struct sqlite3_stmt;

namespace edgelink::basestation {

// The on-disk schema version (PRAGMA user_version) this build writes and understands.
inline constexpr int kRegistrySchemaVersion = 1;

// A device's long-term secret, shared with the device at provisioning.
inline constexpr size_t kDeviceSecretSize = 32;
// The server key: one per registry file, for stateless cookies and reset tokens.
inline constexpr size_t kServerKeySize = 32;
// Products longer than this, or holding ASCII control characters, are refused (kInvalidArgument).
inline constexpr size_t kMaxProductLength = 256;

// A pairing secret is kPairingSecretGroups groups of kPairingSecretGroupLength characters from
// kPairingSecretAlphabet joined by '-', e.g. "7KQ2-XW9M-C4TN-PH3R": 16 characters of 5 bits each,
// 80 bits in all. The alphabet leaves out 0, 1, I and O, which are easily misread.
inline constexpr absl::string_view kPairingSecretAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
inline constexpr size_t kPairingSecretGroups = 4;
inline constexpr size_t kPairingSecretGroupLength = 4;
inline constexpr size_t kPairingSecretSize =
    kPairingSecretGroups * kPairingSecretGroupLength + (kPairingSecretGroups - 1);

// ProvisionedDevice is what Provision hands to the operator, once, to install on the device.
struct ProvisionedDevice {
  std::string device_id;
  crypto::SecretBytes secret;  // kDeviceSecretSize random bytes.
  // The ASCII text of the one-time pairing secret (kPairingSecretSize bytes, format above): for
  // the device config and the owner's sticker only; the registry does not keep it. Kept
  // as SecretBytes, not std::string, so it is wiped after use and cannot be logged by accident;
  // a CLI shows it with absl::string_view(reinterpret_cast<const char*>(span().data()), size()).
  crypto::SecretBytes pairing_secret;
  std::string product;
};

// DeviceSummary is a device's row without its secrets (what List returns).
struct DeviceSummary {
  std::string device_id;
  std::string product;
  absl::Time created;
  bool revoked = false;
  bool online = false;                  // Never true for a revoked device.
  std::optional<absl::Time> last_seen;  // Unset until the device's first presence change.
  std::string last_address;             // Empty until the first change that carries an address.
};

// DeviceRecord is a device's row with its secret (what Find returns to the attach server). A
// revoked device keeps its record and secret; callers must check `revoked`.
struct DeviceRecord : DeviceSummary {
  crypto::SecretBytes secret;  // kDeviceSecretSize bytes.
};

// PresenceChange says that a device went online or offline at `at`, last heard from `address`
// (an "ip:port" string; empty keeps the address already recorded).
struct PresenceChange {
  std::string device_id;
  bool online = false;
  std::string address;
  absl::Time at;
};

// Registry is one connection to a registry file. The file is in WAL mode with synchronous=FULL,
// so a change is on disk when the call that made it returns OK; several processes (the server, a
// CLI) may open the same file, each waiting up to kBusyTimeout for another's write to finish
// before failing with kUnavailable.
//
// Errors name the file and carry SQLite's message, never a secret: kInvalidArgument for bad
// input, kNotFound / kAlreadyExists as documented per method, kUnavailable when the file stayed
// locked, kFailedPrecondition when the file is not a usable registry, kDataLoss when a row is
// malformed, kInternal for anything else SQLite reports.
//
// Not thread-safe: one Registry per thread or process.
class Registry {
 public:
  // How long a call waits for another connection's write lock.
  static constexpr absl::Duration kBusyTimeout = absl::Seconds(5);

  // Open opens the registry at `path`, creating it (mode 0600, as it holds secrets) with the
  // current schema and a fresh server key if it does not exist. Fails with kFailedPrecondition
  // if the file is not a SQLite database, is a SQLite database that is not a registry, or has a
  // newer schema version than kRegistrySchemaVersion; other failures as described above.
  static absl::StatusOr<std::unique_ptr<Registry>> Open(const std::string& path);
  // As Open(path), with `now` (which must not be empty) as the clock for the created and
  // revoked times.
  static absl::StatusOr<std::unique_ptr<Registry>> Open(const std::string& path,
                                                        std::function<absl::Time()> now);

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // Provision adds a device with a fresh random secret and pairing secret and returns them; this
  // is the only time the pairing secret is returned. Fails with kInvalidArgument if `device_id`
  // is not a valid device id (wire::ValidateDeviceId) or `product` is too long or holds control
  // characters, and kAlreadyExists if the id is registered, even if revoked.
  absl::StatusOr<ProvisionedDevice> Provision(absl::string_view device_id,
                                              absl::string_view product);

  // Revoke marks a device revoked (and offline). Revoking a revoked device is OK and keeps the
  // first revocation time. Fails with kInvalidArgument for an invalid id, kNotFound if unknown.
  absl::Status Revoke(absl::string_view device_id);

  // Find returns a device's record. Fails with kInvalidArgument for an invalid id (the message
  // quotes it only if short and printable), kNotFound if unknown.
  absl::StatusOr<DeviceRecord> Find(absl::string_view device_id);

  // List returns every device, revoked ones included, without secrets, ordered by id.
  absl::StatusOr<std::vector<DeviceSummary>> List();

  // RecordPresence applies `changes` in order in one transaction: all or none are stored. Each
  // sets the device's online flag (a revoked device stays offline), its last-seen time and, if the
  // change has one, its address. Changes for ids not in the registry are skipped.
  absl::Status RecordPresence(absl::Span<const PresenceChange> changes);

  // MarkAllOffline marks every device offline (the server calls it when it starts, as no device
  // is attached to it yet). Last-seen times and addresses are kept.
  absl::Status MarkAllOffline();

  // Grants record which clients a device let in (by pairing or by its owner adding them), as the
  // device answered through this basestation. They only decide what ListGranted shows a client;
  // the device's own access list decides who may connect.
  absl::Status SetGrant(absl::string_view device_id, absl::string_view fingerprint,
                        absl::string_view role);
  absl::Status RemoveGrant(absl::string_view device_id, absl::string_view fingerprint);
  absl::StatusOr<std::vector<DeviceSummary>> ListGranted(absl::string_view fingerprint);

  // ServerKey returns the file's kServerKeySize-byte server key, the same for every connection
  // and across restarts.
  absl::StatusOr<crypto::SecretBytes> ServerKey();

  // DataVersion returns SQLite's PRAGMA data_version: a value that changes when another
  // connection (another process, or another Registry on the same file) commits a change, and not
  // when this one does. The server polls it to notice a CLI provisioning or revoking.
  absl::StatusOr<int64_t> DataVersion();

 private:
  struct CloseDb {
    void operator()(sqlite3* db) const;
  };
  struct FinalizeStatement {
    void operator()(sqlite3_stmt* statement) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, CloseDb>;
  using StatementPtr = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;
  class Transaction;

  Registry(std::string path, DbPtr db, std::function<absl::Time()> now);

  absl::Status Initialize();
  absl::Status CreateSchema();
  absl::Status PrepareStatements();
  absl::StatusOr<StatementPtr> Prepare(absl::string_view sql);
  // Steps `statement`, which returns no rows, to completion; resets it whatever happens.
  absl::Status Run(sqlite3_stmt* statement, absl::string_view what);
  absl::Status Exec(const char* sql, absl::string_view what);
  // SqliteError turns SQLite result `rc` into a status naming the file, `what` was being done and
  // SQLite's message for the connection's last error.
  absl::Status SqliteError(int rc, absl::string_view what) const;

  const std::string path_;
  const std::function<absl::Time()> now_;
  // Declared before the statements, so it is closed after every one of them is finalized.
  DbPtr db_;
  // Prepared once and kept: Find is on the attach server's hot path.
  StatementPtr begin_;
  StatementPtr commit_;
  StatementPtr rollback_;
  StatementPtr insert_device_;
  StatementPtr revoke_;
  StatementPtr find_;
  StatementPtr list_;
  StatementPtr record_presence_;
  StatementPtr mark_all_offline_;
  StatementPtr server_key_;
  StatementPtr data_version_;
  StatementPtr list_granted_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_REGISTRY_REGISTRY_H_
