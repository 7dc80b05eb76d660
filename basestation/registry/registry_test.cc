#include "basestation/registry/registry.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;
using ::testing::SizeIs;

// DeviceSummary (what List returns) must have no secret in it.
template <typename T, typename = void>
struct HasSecretMember : std::false_type {};
template <typename T>
struct HasSecretMember<T, std::void_t<decltype(std::declval<T>().secret)>> : std::true_type {};
static_assert(!HasSecretMember<DeviceSummary>::value, "List must not return secrets");
static_assert(HasSecretMember<DeviceRecord>::value);

std::string AsText(const crypto::SecretBytes& secret) {
  return std::string(reinterpret_cast<const char*>(secret.span().data()), secret.size());
}

// A second, raw connection to a registry file, to inspect or damage it behind Registry's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    db_.reset(raw);
  }

  void Exec(const std::string& sql) {
    EXPECT_EQ(sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_.get());
  }

  // The first column of the first row `sql` returns, as text ("" for none or NULL).
  std::string Query(const std::string& sql) {
    std::string result;
    auto first_value = [](void* out, int columns, char** values, char**) {
      if (columns > 0 && values[0] != nullptr) *static_cast<std::string*>(out) = values[0];
      return 1;  // Stop after the first row.
    };
    const int rc = sqlite3_exec(db_.get(), sql.c_str(), first_value, &result, nullptr);
    EXPECT_TRUE(rc == SQLITE_OK || rc == SQLITE_ABORT) << sql << ": " << sqlite3_errmsg(db_.get());
    return result;
  }

 private:
  struct Close {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Close> db_;
};

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmpdir, nullptr) << "run under bazel test";
    path_ = absl::StrCat(tmpdir, "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }

  absl::StatusOr<std::unique_ptr<Registry>> OpenRegistry() {
    return Registry::Open(path_, [this] { return now_; });
  }

  std::string path_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(RegistryTest, ProvisionThenFindReturnsTheSameSecret) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(ProvisionedDevice provisioned, registry->Provision("cam-1", "camera v2"));
  EXPECT_EQ(provisioned.device_id, "cam-1");
  EXPECT_EQ(provisioned.product, "camera v2");
  ASSERT_EQ(provisioned.secret.size(), kDeviceSecretSize);

  ASSERT_OK_AND_ASSIGN(DeviceRecord record, registry->Find("cam-1"));
  EXPECT_TRUE(crypto::ConstantTimeEquals(record.secret.span(), provisioned.secret.span()));
  EXPECT_EQ(record.device_id, "cam-1");
  EXPECT_EQ(record.product, "camera v2");
  EXPECT_EQ(record.created, now_);
  EXPECT_FALSE(record.revoked);
  EXPECT_FALSE(record.online);
  EXPECT_EQ(record.last_seen, std::nullopt);
  EXPECT_EQ(record.last_address, "");
}

TEST_F(RegistryTest, DeviceSecretsAreFreshPerDevice) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(ProvisionedDevice a, registry->Provision("a", "p"));
  ASSERT_OK_AND_ASSIGN(ProvisionedDevice b, registry->Provision("b", "p"));
  EXPECT_FALSE(crypto::ConstantTimeEquals(a.secret.span(), b.secret.span()));
}

TEST_F(RegistryTest, FindUnknownIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  EXPECT_THAT(registry->Find("nobody"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"nobody\"")));
}

TEST_F(RegistryTest, ProvisionRefusesADuplicateIdEvenIfRevoked) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(ProvisionedDevice first, registry->Provision("lock", "p"));
  EXPECT_THAT(registry->Provision("lock", "p"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"lock\"")));
  ASSERT_THAT(registry->Revoke("lock"), IsOk());
  EXPECT_THAT(registry->Provision("lock", "p"), StatusIs(absl::StatusCode::kAlreadyExists));

  // The refused provisioning changed nothing.
  ASSERT_OK_AND_ASSIGN(DeviceRecord record, registry->Find("lock"));
  EXPECT_TRUE(crypto::ConstantTimeEquals(record.secret.span(), first.secret.span()));
}

TEST_F(RegistryTest, RefusesInvalidIds) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  for (const std::string& id :
       {std::string(), std::string("Cam-1"), std::string(64, 'x'), std::string(10240, 'x')}) {
    EXPECT_THAT(registry->Provision(id, "p"), StatusIs(absl::StatusCode::kInvalidArgument))
        << id.size();
    EXPECT_THAT(registry->Find(id), StatusIs(absl::StatusCode::kInvalidArgument)) << id.size();
    EXPECT_THAT(registry->Revoke(id), StatusIs(absl::StatusCode::kInvalidArgument)) << id.size();
  }
  // A 10 KB id is not echoed into the message.
  EXPECT_THAT(registry->Provision(std::string(10240, 'x'), "p"),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("xxxxxxxxxxxxxxxx"))));
  ASSERT_OK_AND_ASSIGN(std::vector<DeviceSummary> devices, registry->List());
  EXPECT_THAT(devices, IsEmpty());
  EXPECT_THAT(registry->Provision(std::string(63, 'x'), "p"), IsOk());
}

TEST_F(RegistryTest, RefusesOverlongOrControlCharacterProducts) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  EXPECT_THAT(registry->Provision("a", std::string(kMaxProductLength + 1, 'p')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry->Provision("b", "cam\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry->Provision("c", std::string("cam\0", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry->Provision("d", std::string(kMaxProductLength, 'p')), IsOk());
  EXPECT_THAT(registry->Provision("e", "Türschloss"), IsOk());
  EXPECT_THAT(registry->Provision("f", ""), IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord e, registry->Find("e"));
  EXPECT_EQ(e.product, "Türschloss");
}

TEST_F(RegistryTest, RevokeMarksRevokedAndOfflineAndIsIdempotent) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_THAT(registry->Provision("cam", "p"), IsOk());
  const PresenceChange online{"cam", true, "203.0.113.5:4500", now_};
  ASSERT_THAT(registry->RecordPresence({online}), IsOk());

  const absl::Time revoked_at = now_ + absl::Hours(1);
  now_ = revoked_at;
  ASSERT_THAT(registry->Revoke("cam"), IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord record, registry->Find("cam"));
  EXPECT_TRUE(record.revoked);
  EXPECT_FALSE(record.online);

  now_ += absl::Hours(1);
  EXPECT_THAT(registry->Revoke("cam"), IsOk());
  ASSERT_OK_AND_ASSIGN(record, registry->Find("cam"));
  EXPECT_TRUE(record.revoked);
  // The second revocation kept the first one's time.
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT revoked_unix_s FROM devices WHERE device_id = 'cam'"),
            absl::StrCat(absl::ToUnixSeconds(revoked_at)));
}

TEST_F(RegistryTest, RevokeUnknownIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_THAT(registry->Provision("known", "p"), IsOk());
  EXPECT_THAT(registry->Revoke("unknown"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"unknown\"")));
  ASSERT_OK_AND_ASSIGN(DeviceRecord known, registry->Find("known"));
  EXPECT_FALSE(known.revoked);
}

TEST_F(RegistryTest, ListIsOrderedByIdAndIncludesRevokedDevices) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  for (const char* id : {"zeta", "alpha", "mid-1", "0-first", "alpha-2"}) {
    ASSERT_THAT(registry->Provision(id, absl::StrCat("product-", id)), IsOk());
  }
  ASSERT_THAT(registry->Revoke("mid-1"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<DeviceSummary> devices, registry->List());
  std::vector<std::string> ids;
  for (const DeviceSummary& device : devices) {
    ids.push_back(device.device_id);
    EXPECT_EQ(device.product, "product-" + device.device_id);
    EXPECT_EQ(device.revoked, device.device_id == "mid-1") << device.device_id;
  }
  EXPECT_THAT(ids, ElementsAre("0-first", "alpha", "alpha-2", "mid-1", "zeta"));
}

TEST_F(RegistryTest, RecordPresenceAppliesABatchInOrder) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_THAT(registry->Provision("a", "p"), IsOk());
  ASSERT_THAT(registry->Provision("b", "p"), IsOk());
  const absl::Time t1 = now_ + absl::Seconds(10);
  const absl::Time t2 = now_ + absl::Seconds(20);
  const std::vector<PresenceChange> batch = {
      {"a", true, "198.51.100.1:1000", t1},
      {"b", true, "[2001:db8::2]:2000", t1},
      {"not-provisioned", true, "198.51.100.9:9", t1},  // Skipped.
      {"a", false, "", t2},                             // Keeps a's address.
  };
  ASSERT_THAT(registry->RecordPresence(batch), IsOk());

  ASSERT_OK_AND_ASSIGN(DeviceRecord a, registry->Find("a"));
  EXPECT_FALSE(a.online);
  EXPECT_THAT(a.last_seen, Optional(t2));
  EXPECT_EQ(a.last_address, "198.51.100.1:1000");
  ASSERT_OK_AND_ASSIGN(DeviceRecord b, registry->Find("b"));
  EXPECT_TRUE(b.online);
  EXPECT_THAT(b.last_seen, Optional(t1));
  EXPECT_EQ(b.last_address, "[2001:db8::2]:2000");
  EXPECT_THAT(registry->Find("not-provisioned"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(registry->RecordPresence({}), IsOk());
}

TEST_F(RegistryTest, RecordPresenceTakesThousandsOfChangesInOneCall) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  constexpr int kDevices = 200;
  constexpr int kRounds = 25;
  for (int i = 0; i < kDevices; ++i) {
    ASSERT_THAT(registry->Provision(absl::StrCat("dev-", i), "p"), IsOk());
  }
  std::vector<PresenceChange> batch;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kDevices; ++i) {
      batch.push_back({absl::StrCat("dev-", i), (round + i) % 2 == 0,
                       absl::StrCat("192.0.2.1:", 1000 + round), now_ + absl::Seconds(round)});
    }
  }
  ASSERT_THAT(registry->RecordPresence(batch), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<DeviceSummary> devices, registry->List());
  ASSERT_THAT(devices, SizeIs(kDevices));
  for (const DeviceSummary& device : devices) {
    const int i = std::stoi(device.device_id.substr(4));
    EXPECT_EQ(device.online, (kRounds - 1 + i) % 2 == 0) << device.device_id;
    EXPECT_THAT(device.last_seen, Optional(now_ + absl::Seconds(kRounds - 1)));
    EXPECT_EQ(device.last_address, absl::StrCat("192.0.2.1:", 1000 + kRounds - 1));
  }
}

TEST_F(RegistryTest, RecordPresenceKeepsRevokedDevicesOffline) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_THAT(registry->Provision("gone", "p"), IsOk());
  ASSERT_THAT(registry->Revoke("gone"), IsOk());
  ASSERT_THAT(registry->RecordPresence({{"gone", true, "192.0.2.7:7", now_}}), IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord record, registry->Find("gone"));
  EXPECT_FALSE(record.online);
  EXPECT_THAT(record.last_seen, Optional(now_));
}

TEST_F(RegistryTest, MarkAllOfflineKeepsLastSeenAndAddress) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_THAT(registry->Provision("a", "p"), IsOk());
  ASSERT_THAT(registry->Provision("b", "p"), IsOk());
  ASSERT_THAT(registry->RecordPresence({{"a", true, "192.0.2.1:1", now_},
                                        {"b", true, "192.0.2.2:2", now_}}),
              IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord before, registry->Find("a"));
  ASSERT_TRUE(before.online);

  ASSERT_THAT(registry->MarkAllOffline(), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<DeviceSummary> devices, registry->List());
  ASSERT_THAT(devices, SizeIs(2));
  for (const DeviceSummary& device : devices) {
    EXPECT_FALSE(device.online) << device.device_id;
    EXPECT_THAT(device.last_seen, Optional(now_));
  }
  EXPECT_EQ(devices[1].last_address, "192.0.2.2:2");
}

TEST_F(RegistryTest, ServerKeyIsStableAcrossReopen) {
  crypto::SecretBytes first;
  {
    ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
    ASSERT_OK_AND_ASSIGN(first, registry->ServerKey());
    ASSERT_EQ(first.size(), kServerKeySize);
    ASSERT_OK_AND_ASSIGN(crypto::SecretBytes again, registry->ServerKey());
    EXPECT_TRUE(crypto::ConstantTimeEquals(first.span(), again.span()));
  }
  ASSERT_OK_AND_ASSIGN(auto reopened, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes after, reopened->ServerKey());
  EXPECT_TRUE(crypto::ConstantTimeEquals(first.span(), after.span()));

  // Another file has its own key.
  ASSERT_OK_AND_ASSIGN(auto other, Registry::Open(path_ + ".other"));
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes other_key, other->ServerKey());
  EXPECT_FALSE(crypto::ConstantTimeEquals(first.span(), other_key.span()));
}

TEST_F(RegistryTest, DataVersionChangesWhenAnotherConnectionCommits) {
  ASSERT_OK_AND_ASSIGN(auto server, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(auto cli, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(const int64_t initial, server->DataVersion());

  // The server's own commits do not count.
  ASSERT_THAT(server->Provision("own", "p"), IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t version, server->DataVersion());
  EXPECT_EQ(version, initial);

  ASSERT_THAT(cli->Provision("from-cli", "p"), IsOk());
  ASSERT_OK_AND_ASSIGN(const int64_t after_provision, server->DataVersion());
  EXPECT_NE(after_provision, initial);
  ASSERT_OK_AND_ASSIGN(DeviceRecord seen, server->Find("from-cli"));
  EXPECT_FALSE(seen.revoked);

  ASSERT_THAT(cli->Revoke("own"), IsOk());
  ASSERT_OK_AND_ASSIGN(version, server->DataVersion());
  EXPECT_NE(version, after_provision);
  ASSERT_OK_AND_ASSIGN(DeviceRecord revoked, server->Find("own"));
  EXPECT_TRUE(revoked.revoked);
}

TEST_F(RegistryTest, ReopenKeepsEverything) {
  crypto::SecretBytes secret_a;
  {
    ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
    ASSERT_OK_AND_ASSIGN(ProvisionedDevice a, registry->Provision("a", "thermostat"));
    secret_a = std::move(a.secret);
    ASSERT_THAT(registry->Provision("b", "lock"), IsOk());
    ASSERT_THAT(registry->Revoke("b"), IsOk());
    ASSERT_THAT(registry->RecordPresence({{"a", true, "192.0.2.1:4500", now_}}), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  ASSERT_OK_AND_ASSIGN(DeviceRecord a, registry->Find("a"));
  EXPECT_TRUE(crypto::ConstantTimeEquals(a.secret.span(), secret_a.span()));
  EXPECT_EQ(a.product, "thermostat");
  EXPECT_EQ(a.created, now_);
  EXPECT_TRUE(a.online);
  EXPECT_THAT(a.last_seen, Optional(now_));
  EXPECT_EQ(a.last_address, "192.0.2.1:4500");
  ASSERT_OK_AND_ASSIGN(DeviceRecord b, registry->Find("b"));
  EXPECT_TRUE(b.revoked);
  EXPECT_EQ(b.product, "lock");
  ASSERT_OK_AND_ASSIGN(std::vector<DeviceSummary> devices, registry->List());
  EXPECT_THAT(devices, SizeIs(2));
}

TEST_F(RegistryTest, CreatesAPrivateWalFileWithTheCurrentSchemaVersion) {
  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << std::oct << st.st_mode;
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA user_version"), absl::StrCat(kRegistrySchemaVersion));
}

TEST_F(RegistryTest, RefusesAFileThatIsNotADatabase) {
  {
    std::ofstream file(path_);
    for (int i = 0; i < 100; ++i) file << "this is a text file, not a database\n";
  }
  EXPECT_THAT(OpenRegistry(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       AllOf(HasSubstr(path_), HasSubstr("not a database"))));
}

TEST_F(RegistryTest, RefusesANewerSchemaVersion) {
  { ASSERT_THAT(OpenRegistry(), IsOk()); }
  RawDb(path_).Exec(absl::StrCat("PRAGMA user_version = ", kRegistrySchemaVersion + 1));
  EXPECT_THAT(OpenRegistry(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path_),
                             HasSubstr(absl::StrCat("schema version ",
                                                    kRegistrySchemaVersion + 1)))));
}

TEST_F(RegistryTest, RefusesASqliteDatabaseThatIsNotARegistry) {
  RawDb(path_).Exec("CREATE TABLE photos (name TEXT)");
  EXPECT_THAT(OpenRegistry(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       AllOf(HasSubstr(path_), HasSubstr("not a registry"))));
  // And left it alone.
  EXPECT_EQ(RawDb(path_).Query("SELECT count(*) FROM sqlite_master"), "1");
}

TEST_F(RegistryTest, OpenInAMissingDirectoryNamesThePath) {
  const std::string path = path_ + ".missing/registry.db";
  EXPECT_THAT(Registry::Open(path), StatusIs(Not(absl::StatusCode::kOk), HasSubstr(path)));
}

TEST_F(RegistryTest, PairingSecretsHaveTheDocumentedFormatAndDiffer) {
  EXPECT_EQ(kPairingSecretAlphabet.size(), 32u);  // 5 bits a character, 80 in all.
  for (char ambiguous : {'0', '1', 'I', 'O'}) {
    EXPECT_EQ(kPairingSecretAlphabet.find(ambiguous), absl::string_view::npos) << ambiguous;
  }

  ASSERT_OK_AND_ASSIGN(auto registry, OpenRegistry());
  std::set<std::string> seen;
  std::set<char> characters;
  constexpr int kDevices = 64;
  for (int i = 0; i < kDevices; ++i) {
    ASSERT_OK_AND_ASSIGN(ProvisionedDevice device,
                         registry->Provision(absl::StrCat("dev-", i), "p"));
    const std::string text = AsText(device.pairing_secret);
    ASSERT_EQ(text.size(), kPairingSecretSize);
    ASSERT_EQ(text.size(), 19u);
    for (size_t j = 0; j < text.size(); ++j) {
      if (j % 5 == 4) {
        EXPECT_EQ(text[j], '-') << j;
      } else {
        EXPECT_NE(kPairingSecretAlphabet.find(text[j]), absl::string_view::npos) << text[j];
        characters.insert(text[j]);
      }
    }
    seen.insert(text);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kDevices));
  // 64 * 16 draws reach every one of the 32 characters unless the generator is broken (the
  // chance that a fair one misses any is below 1e-12).
  EXPECT_EQ(characters.size(), kPairingSecretAlphabet.size());
}

}  // namespace
}  // namespace edgelink::basestation

namespace edgelink::basestation {
namespace {

TEST(RegistryGrantsTest, ListGrantedShowsOnlyTheCallersDevicesAndPairingSecretIsNotStored) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/grants.db";
  auto registry = *Registry::Open(path);
  ASSERT_TRUE(registry->Provision("cam-a", "").ok());
  ASSERT_TRUE(registry->Provision("cam-b", "").ok());
  const std::string alice(64, 'a'), bob(64, 'b');
  ASSERT_TRUE(registry->SetGrant("cam-a", alice, "owner").ok());
  ASSERT_TRUE(registry->SetGrant("cam-b", alice, "user").ok());
  ASSERT_TRUE(registry->SetGrant("cam-b", bob, "owner").ok());
  EXPECT_EQ(registry->ListGranted(alice)->size(), 2u);
  ASSERT_TRUE(registry->RemoveGrant("cam-b", alice).ok());
  auto mine = *registry->ListGranted(alice);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].device_id, "cam-a");
  EXPECT_TRUE(registry->ListGranted(std::string(64, 'c'))->empty());
  EXPECT_FALSE(registry->SetGrant("cam-zz", alice, "owner").ok());  // No such device.
  EXPECT_FALSE(registry->SetGrant("cam-a", "short", "owner").ok());

  // Whoever knows the pairing secret can become owner: the basestation must not keep it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM devices WHERE pairing_secret <> ''", -1,
                               &statement, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(statement, 0), 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

}  // namespace
}  // namespace edgelink::basestation
