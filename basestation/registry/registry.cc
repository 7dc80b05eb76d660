#include "basestation/registry/registry.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/status/status_macros.h"
#include "common/wire/device_id.h"

namespace edgelink::basestation {
namespace {

// The server_keys row holding the server key.
constexpr char kServerKeyName[] = "server";

// Version 1. Secrets are BLOBs of fixed size (checked); times are Unix seconds.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY NOT NULL,
  secret BLOB NOT NULL CHECK (length(secret) = 32),
  pairing_secret TEXT NOT NULL,
  product TEXT NOT NULL,
  created_unix_s INTEGER NOT NULL,
  revoked_unix_s INTEGER,
  online INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
  last_seen_unix_s INTEGER,
  last_address TEXT
) WITHOUT ROWID;
CREATE TABLE grants (
  device_id TEXT NOT NULL REFERENCES devices (device_id),
  fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
  role TEXT NOT NULL,
  PRIMARY KEY (device_id, fingerprint)
) WITHOUT ROWID;
CREATE INDEX grants_by_fingerprint ON grants (fingerprint);
CREATE TABLE server_keys (
  name TEXT PRIMARY KEY NOT NULL,
  key BLOB NOT NULL CHECK (length(key) = 32)
) WITHOUT ROWID;
)sql";
static_assert(kDeviceSecretSize == 32 && kServerKeySize == 32, "the schema checks these sizes");

// The columns ReadSummary reads, first in every SELECT of a device.
#define EDGELINK_SUMMARY_COLUMNS \
  "device_id, product, created_unix_s, revoked_unix_s, online, last_seen_unix_s, last_address"
constexpr int kSummaryColumnCount = 7;

// ScopedReset resets a kept statement and clears its bindings when it goes out of scope, so the
// statement neither holds a read transaction open (which would hide other connections' commits
// and stall WAL checkpoints) nor keeps pointers to bound buffers that are about to die.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* statement) : statement_(statement) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }

 private:
  sqlite3_stmt* const statement_;
};

// Bindings use SQLITE_STATIC: the bound buffers outlive the step, and ScopedReset clears them.
// A null pointer would bind SQL NULL, so empty text binds "".
int BindText(sqlite3_stmt* statement, int index, absl::string_view text) {
  return sqlite3_bind_text(statement, index, text.empty() ? "" : text.data(),
                           static_cast<int>(text.size()), SQLITE_STATIC);
}

int BindBlob(sqlite3_stmt* statement, int index, absl::Span<const uint8_t> bytes) {
  return sqlite3_bind_blob(statement, index, bytes.data(), static_cast<int>(bytes.size()),
                           SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* statement, int column) {
  const unsigned char* text = sqlite3_column_text(statement, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(statement, column)));
}

// ColumnSecret copies a BLOB column of exactly `size` bytes into a secret, or returns nullopt.
std::optional<crypto::SecretBytes> ColumnSecret(sqlite3_stmt* statement, int column, size_t size) {
  if (sqlite3_column_type(statement, column) != SQLITE_BLOB) return std::nullopt;
  const void* data = sqlite3_column_blob(statement, column);
  const int bytes = sqlite3_column_bytes(statement, column);
  if (data == nullptr || bytes < 0 || static_cast<size_t>(bytes) != size) return std::nullopt;
  return crypto::SecretBytes::CopyFrom(
      absl::MakeConstSpan(static_cast<const uint8_t*>(data), size));
}

DeviceSummary ReadSummary(sqlite3_stmt* statement) {
  DeviceSummary summary;
  summary.device_id = ColumnText(statement, 0);
  summary.product = ColumnText(statement, 1);
  summary.created = absl::FromUnixSeconds(sqlite3_column_int64(statement, 2));
  summary.revoked = sqlite3_column_type(statement, 3) != SQLITE_NULL;
  summary.online = sqlite3_column_int64(statement, 4) != 0;
  if (sqlite3_column_type(statement, 5) != SQLITE_NULL) {
    summary.last_seen = absl::FromUnixSeconds(sqlite3_column_int64(statement, 5));
  }
  summary.last_address = ColumnText(statement, 6);
  return summary;
}

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_SCHEMA:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_NOMEM:
    case SQLITE_FULL:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInternal;
  }
}

// SQLite's messages name tables, columns and constraints, never bound values, so no secret can
// reach them.
absl::Status ErrorFor(const std::string& path, sqlite3* db, int rc, absl::string_view what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if ((rc & 0xff) == SQLITE_NOTADB) {
    return absl::FailedPreconditionError(absl::StrCat("registry ", path,
                                                      " is not a SQLite database (", what, ": ",
                                                      message, ")"));
  }
  return absl::Status(CodeFor(rc), absl::StrCat("registry ", path, ": ", what, ": ", message));
}

// CreatePrivateFile creates `path` readable by its owner only, unless it exists. SQLite gives its
// -wal and -shm files the database file's permissions, so they are private too.
absl::Status CreatePrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return absl::OkStatus();
  }
  if (errno == EEXIST) return absl::OkStatus();
  return absl::ErrnoToStatus(errno, absl::StrCat("registry ", path, ": creating the file"));
}

absl::Status ValidateProduct(absl::string_view product) {
  if (product.size() > kMaxProductLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("product is ", product.size(), " bytes; at most ", kMaxProductLength,
                     " allowed"));
  }
  for (char c : product) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError("product must not contain control characters");
    }
  }
  return absl::OkStatus();
}

// NewPairingSecret draws each character uniformly from kPairingSecretAlphabet: random bytes at or
// above the largest multiple of the alphabet's size are rejected, so `byte % size` has no bias.
absl::StatusOr<crypto::SecretBytes> NewPairingSecret() {
  constexpr size_t kAlphabetSize = kPairingSecretAlphabet.size();
  static_assert(kAlphabetSize > 0 && kAlphabetSize <= 256, "one random byte per draw");
  constexpr unsigned kLimit = 256 - 256 % kAlphabetSize;

  crypto::SecretBytes secret(kPairingSecretSize);
  crypto::SecretBytes pool(32);  // Wiped on return, like the secret's other copies.
  size_t used = pool.size();
  absl::Span<uint8_t> out = secret.mutable_span();
  for (size_t i = 0; i < out.size(); ++i) {
    if (i % (kPairingSecretGroupLength + 1) == kPairingSecretGroupLength) {
      out[i] = '-';
      continue;
    }
    uint8_t byte;
    do {
      if (used == pool.size()) {
        RETURN_IF_ERROR(crypto::RandomBytes(pool.mutable_span()));
        used = 0;
      }
      byte = pool.span()[used++];
    } while (byte >= kLimit);
    out[i] = static_cast<uint8_t>(kPairingSecretAlphabet[byte % kAlphabetSize]);
  }
  return secret;
}

}  // namespace

// Transaction is a BEGIN IMMEDIATE ... COMMIT, rolled back if destroyed before Commit. IMMEDIATE
// takes the write lock up front, where the busy timeout applies, rather than failing with
// SQLITE_BUSY on a read-to-write upgrade halfway through.
class Registry::Transaction {
 public:
  explicit Transaction(Registry& registry) : registry_(registry) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, ...).
    if (active_ && !sqlite3_get_autocommit(registry_.db_.get())) {
      registry_.Run(registry_.rollback_.get(), "rolling back").IgnoreError();
    }
  }

  absl::Status Begin() {
    RETURN_IF_ERROR(registry_.Run(registry_.begin_.get(), "beginning a transaction"));
    active_ = true;
    return absl::OkStatus();
  }

  absl::Status Commit() {
    RETURN_IF_ERROR(registry_.Run(registry_.commit_.get(), "committing"));
    active_ = false;
    return absl::OkStatus();
  }

 private:
  Registry& registry_;
  bool active_ = false;
};

void Registry::CloseDb::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

void Registry::FinalizeStatement::operator()(sqlite3_stmt* statement) const {
  sqlite3_finalize(statement);
}

Registry::Registry(std::string path, DbPtr db, std::function<absl::Time()> now)
    : path_(std::move(path)), now_(std::move(now)), db_(std::move(db)) {}

Registry::~Registry() = default;

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(const std::string& path) {
  return Open(path, [] { return absl::Now(); });
}

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(const std::string& path,
                                                         std::function<absl::Time()> now) {
  if (!now) return absl::InvalidArgumentError("Registry::Open needs a clock");
  RETURN_IF_ERROR(CreatePrivateFile(path));
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  DbPtr db(raw);  // Even a failed open allocates a handle (for its message) that must be closed.
  if (rc != SQLITE_OK) return ErrorFor(path, db.get(), rc, "opening");
  auto registry = absl::WrapUnique(new Registry(path, std::move(db), std::move(now)));
  RETURN_IF_ERROR(registry->Initialize());
  return registry;
}

absl::Status Registry::Initialize() {
  sqlite3* db = db_.get();
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(kBusyTimeout)));

  // The first statement to read the file: where a file that is not a database is found out.
  {
    ASSIGN_OR_RETURN(StatementPtr wal, Prepare("PRAGMA journal_mode = WAL"));
    const int rc = sqlite3_step(wal.get());
    if (rc != SQLITE_ROW) return SqliteError(rc, "switching to WAL mode");
    const std::string mode = ColumnText(wal.get(), 0);
    if (mode != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          "registry ", path_, ": SQLite cannot use WAL mode for it (journal mode is \"", mode,
          "\"); it must be a file on a local file system"));
    }
  }
  // FULL: in WAL mode, NORMAL may lose the last commits on power loss; FULL syncs every commit.
  RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL", "setting synchronous=FULL"));
  RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "enabling foreign keys"));

  ASSIGN_OR_RETURN(begin_, Prepare("BEGIN IMMEDIATE"));
  ASSIGN_OR_RETURN(commit_, Prepare("COMMIT"));
  ASSIGN_OR_RETURN(rollback_, Prepare("ROLLBACK"));

  {
    // Under the write lock, so two processes opening a new file do not both create the schema.
    Transaction transaction(*this);
    RETURN_IF_ERROR(transaction.Begin());
    ASSIGN_OR_RETURN(StatementPtr user_version, Prepare("PRAGMA user_version"));
    const int rc = sqlite3_step(user_version.get());
    if (rc != SQLITE_ROW) return SqliteError(rc, "reading the schema version");
    const int64_t version = sqlite3_column_int64(user_version.get(), 0);
    user_version.reset();
    if (version > kRegistrySchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "registry ", path_, " has schema version ", version, ", newer than version ",
          kRegistrySchemaVersion, " that this build understands; use a newer build"));
    }
    if (version < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("registry ", path_, " has invalid schema version ", version));
    }
    if (version == 0) RETURN_IF_ERROR(CreateSchema());
    RETURN_IF_ERROR(transaction.Commit());
  }
  return PrepareStatements();
}

absl::Status Registry::CreateSchema() {
  {
    ASSIGN_OR_RETURN(StatementPtr count, Prepare("SELECT count(*) FROM sqlite_master"));
    const int rc = sqlite3_step(count.get());
    if (rc != SQLITE_ROW) return SqliteError(rc, "reading the schema");
    if (sqlite3_column_int64(count.get(), 0) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "registry ", path_,
          ": the file is a SQLite database with tables but no schema version, not a registry"));
    }
  }
  RETURN_IF_ERROR(Exec(kSchemaV1, "creating the schema"));

  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::RandomSecret(kServerKeySize));
  ASSIGN_OR_RETURN(StatementPtr insert,
                   Prepare("INSERT INTO server_keys (name, key) VALUES (?1, ?2)"));
  int rc = BindText(insert.get(), 1, kServerKeyName);
  if (rc == SQLITE_OK) rc = BindBlob(insert.get(), 2, key.span());
  if (rc != SQLITE_OK) return SqliteError(rc, "binding the server key");
  RETURN_IF_ERROR(Run(insert.get(), "storing the server key"));

  return Exec(absl::StrCat("PRAGMA user_version = ", kRegistrySchemaVersion).c_str(),
              "setting the schema version");
}

absl::Status Registry::PrepareStatements() {
  ASSIGN_OR_RETURN(insert_device_,
                   Prepare("INSERT INTO devices (device_id, secret, pairing_secret, product, "
                           "created_unix_s, online) VALUES (?1, ?2, ?3, ?4, ?5, 0)"));
  ASSIGN_OR_RETURN(revoke_,
                   Prepare("UPDATE devices SET revoked_unix_s = coalesce(revoked_unix_s, ?2), "
                           "online = 0 WHERE device_id = ?1"));
  ASSIGN_OR_RETURN(find_, Prepare("SELECT " EDGELINK_SUMMARY_COLUMNS
                                  ", secret FROM devices WHERE device_id = ?1"));
  ASSIGN_OR_RETURN(list_,
                   Prepare("SELECT " EDGELINK_SUMMARY_COLUMNS " FROM devices ORDER BY device_id"));
  ASSIGN_OR_RETURN(record_presence_,
                   Prepare("UPDATE devices SET "
                           "online = CASE WHEN revoked_unix_s IS NULL THEN ?2 ELSE 0 END, "
                           "last_seen_unix_s = ?3, last_address = coalesce(?4, last_address) "
                           "WHERE device_id = ?1"));
  ASSIGN_OR_RETURN(mark_all_offline_, Prepare("UPDATE devices SET online = 0 WHERE online <> 0"));
  ASSIGN_OR_RETURN(server_key_, Prepare("SELECT key FROM server_keys WHERE name = ?1"));
  ASSIGN_OR_RETURN(data_version_, Prepare("PRAGMA data_version"));
  ASSIGN_OR_RETURN(list_granted_,
                   Prepare("SELECT " EDGELINK_SUMMARY_COLUMNS " FROM devices WHERE device_id IN "
                           "(SELECT device_id FROM grants WHERE fingerprint = ?1) "
                           "ORDER BY device_id"));
  return absl::OkStatus();
}

#undef EDGELINK_SUMMARY_COLUMNS

absl::StatusOr<Registry::StatementPtr> Registry::Prepare(absl::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StatementPtr statement(raw);
  if (rc != SQLITE_OK) return SqliteError(rc, absl::StrCat("preparing \"", sql, "\""));
  return statement;
}

absl::Status Registry::Run(sqlite3_stmt* statement, absl::string_view what) {
  ScopedReset reset(statement);
  int rc;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return SqliteError(rc, what);
  return absl::OkStatus();
}

absl::Status Registry::Exec(const char* sql, absl::string_view what) {
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, what);
  return absl::OkStatus();
}

absl::Status Registry::SqliteError(int rc, absl::string_view what) const {
  return ErrorFor(path_, db_.get(), rc, what);
}

absl::StatusOr<ProvisionedDevice> Registry::Provision(absl::string_view device_id,
                                                      absl::string_view product) {
  RETURN_IF_ERROR(wire::ValidateDeviceId(device_id));
  RETURN_IF_ERROR(ValidateProduct(product));
  ProvisionedDevice device;
  device.device_id = std::string(device_id);
  device.product = std::string(product);
  ASSIGN_OR_RETURN(device.secret, crypto::RandomSecret(kDeviceSecretSize));
  ASSIGN_OR_RETURN(device.pairing_secret, NewPairingSecret());

  sqlite3_stmt* insert = insert_device_.get();
  ScopedReset reset(insert);
  int rc = BindText(insert, 1, device.device_id);
  if (rc == SQLITE_OK) rc = BindBlob(insert, 2, device.secret.span());
  // The pairing secret is not kept: whoever holds it can become the device's owner, and the
  // basestation must not be able to (DESIGN.md, trust model 4). The column stays empty.
  if (rc == SQLITE_OK) rc = BindText(insert, 3, "");
  if (rc == SQLITE_OK) rc = BindText(insert, 4, device.product);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(insert, 5, absl::ToUnixSeconds(now_()));
  if (rc != SQLITE_OK) return SqliteError(rc, "binding a new device");
  rc = sqlite3_step(insert);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(
        absl::StrCat("registry ", path_, ": device \"", device_id, "\" is already provisioned"));
  }
  if (rc != SQLITE_DONE) return SqliteError(rc, "adding a device");
  return device;
}

absl::Status Registry::Revoke(absl::string_view device_id) {
  RETURN_IF_ERROR(wire::ValidateDeviceId(device_id));
  sqlite3_stmt* revoke = revoke_.get();
  {
    ScopedReset reset(revoke);
    int rc = BindText(revoke, 1, device_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(revoke, 2, absl::ToUnixSeconds(now_()));
    if (rc != SQLITE_OK) return SqliteError(rc, "binding a revocation");
    rc = sqlite3_step(revoke);
    if (rc != SQLITE_DONE) return SqliteError(rc, "revoking a device");
  }
  // An UPDATE counts the rows it matched, changed or not, so revoking twice still counts one.
  if (sqlite3_changes(db_.get()) == 0) {
    return absl::NotFoundError(
        absl::StrCat("registry ", path_, ": no device \"", device_id, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceRecord> Registry::Find(absl::string_view device_id) {
  RETURN_IF_ERROR(wire::ValidateDeviceId(device_id));
  sqlite3_stmt* find = find_.get();
  ScopedReset reset(find);
  const int bind_rc = BindText(find, 1, device_id);
  if (bind_rc != SQLITE_OK) return SqliteError(bind_rc, "binding a device id");
  const int rc = sqlite3_step(find);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(
        absl::StrCat("registry ", path_, ": no device \"", device_id, "\""));
  }
  if (rc != SQLITE_ROW) return SqliteError(rc, "finding a device");
  DeviceRecord record;
  static_cast<DeviceSummary&>(record) = ReadSummary(find);
  std::optional<crypto::SecretBytes> secret =
      ColumnSecret(find, kSummaryColumnCount, kDeviceSecretSize);
  if (!secret.has_value()) {
    return absl::DataLossError(absl::StrCat("registry ", path_, ": device \"", device_id,
                                            "\" has a malformed secret"));
  }
  record.secret = *std::move(secret);
  return record;
}

absl::StatusOr<std::vector<DeviceSummary>> Registry::List() {
  sqlite3_stmt* list = list_.get();
  ScopedReset reset(list);
  std::vector<DeviceSummary> devices;
  int rc;
  while ((rc = sqlite3_step(list)) == SQLITE_ROW) devices.push_back(ReadSummary(list));
  if (rc != SQLITE_DONE) return SqliteError(rc, "listing devices");
  return devices;
}

absl::Status Registry::RecordPresence(absl::Span<const PresenceChange> changes) {
  if (changes.empty()) return absl::OkStatus();
  Transaction transaction(*this);
  RETURN_IF_ERROR(transaction.Begin());
  sqlite3_stmt* update = record_presence_.get();
  for (const PresenceChange& change : changes) {
    ScopedReset reset(update);
    int rc = BindText(update, 1, change.device_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(update, 2, change.online ? 1 : 0);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(update, 3, absl::ToUnixSeconds(change.at));
    // ?4 left unbound is NULL, which keeps the recorded address.
    if (rc == SQLITE_OK && !change.address.empty()) rc = BindText(update, 4, change.address);
    if (rc != SQLITE_OK) return SqliteError(rc, "binding a presence change");
    rc = sqlite3_step(update);
    if (rc != SQLITE_DONE) return SqliteError(rc, "recording presence");
  }
  return transaction.Commit();
}

absl::Status Registry::MarkAllOffline() {
  return Run(mark_all_offline_.get(), "marking all devices offline");
}

absl::StatusOr<crypto::SecretBytes> Registry::ServerKey() {
  sqlite3_stmt* select = server_key_.get();
  ScopedReset reset(select);
  const int bind_rc = BindText(select, 1, kServerKeyName);
  if (bind_rc != SQLITE_OK) return SqliteError(bind_rc, "binding the server key's name");
  const int rc = sqlite3_step(select);
  if (rc == SQLITE_DONE) {
    return absl::DataLossError(absl::StrCat("registry ", path_, " has no server key"));
  }
  if (rc != SQLITE_ROW) return SqliteError(rc, "reading the server key");
  std::optional<crypto::SecretBytes> key = ColumnSecret(select, 0, kServerKeySize);
  if (!key.has_value()) {
    return absl::DataLossError(absl::StrCat("registry ", path_, ": the server key is malformed"));
  }
  return *std::move(key);
}

absl::StatusOr<int64_t> Registry::DataVersion() {
  sqlite3_stmt* pragma = data_version_.get();
  ScopedReset reset(pragma);
  const int rc = sqlite3_step(pragma);
  if (rc != SQLITE_ROW) return SqliteError(rc, "reading the data version");
  return sqlite3_column_int64(pragma, 0);
}

}  // namespace edgelink::basestation

namespace edgelink::basestation {

absl::Status Registry::SetGrant(absl::string_view device_id, absl::string_view fingerprint,
                                absl::string_view role) {
  ASSIGN_OR_RETURN(StatementPtr statement,
                   Prepare("INSERT OR REPLACE INTO grants (device_id, fingerprint, role) "
                           "VALUES (?1, ?2, ?3)"));
  int rc = BindText(statement.get(), 1, device_id);
  if (rc == SQLITE_OK) rc = BindText(statement.get(), 2, fingerprint);
  if (rc == SQLITE_OK) rc = BindText(statement.get(), 3, role);
  if (rc == SQLITE_OK) rc = sqlite3_step(statement.get());
  if (rc != SQLITE_DONE) return SqliteError(rc, "recording a grant");
  return absl::OkStatus();
}

absl::Status Registry::RemoveGrant(absl::string_view device_id, absl::string_view fingerprint) {
  ASSIGN_OR_RETURN(StatementPtr statement,
                   Prepare("DELETE FROM grants WHERE device_id = ?1 AND fingerprint = ?2"));
  int rc = BindText(statement.get(), 1, device_id);
  if (rc == SQLITE_OK) rc = BindText(statement.get(), 2, fingerprint);
  if (rc == SQLITE_OK) rc = sqlite3_step(statement.get());
  if (rc != SQLITE_DONE) return SqliteError(rc, "removing a grant");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DeviceSummary>> Registry::ListGranted(absl::string_view fingerprint) {
  sqlite3_stmt* list = list_granted_.get();
  ScopedReset reset(list);
  int rc = BindText(list, 1, fingerprint);
  if (rc != SQLITE_OK) return SqliteError(rc, "binding a fingerprint");
  std::vector<DeviceSummary> devices;
  while ((rc = sqlite3_step(list)) == SQLITE_ROW) devices.push_back(ReadSummary(list));
  if (rc != SQLITE_DONE) return SqliteError(rc, "listing granted devices");
  return devices;
}

}  // namespace edgelink::basestation
