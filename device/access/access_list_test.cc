// Tests for the device access list: pairing, lockout, owner operations and the file, on real
// files under TEST_TMPDIR with virtual time. Built and run once per crypto backend.
#include "device/access/access_list.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/crypto/hmac.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::device {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;

constexpr char kSticker[] = "BQ6R-T6CL-673M-ZLT8";
const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// Distinct valid fingerprints.
const std::string kAlice(64, 'a');
const std::string kBob(64, 'b');
const std::string kCarol(64, 'c');
const std::string kMallory = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

crypto::SecretBytes Secret(absl::string_view text) {
  return crypto::SecretBytes::CopyFrom(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// Matches an absl::StatusOr<T> that holds `value`.
MATCHER_P(IsOkAndHolds, value, "") {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  return *arg == value;
}

std::vector<uint8_t> ProofWith(absl::string_view sticker, absl::string_view fingerprint) {
  absl::StatusOr<crypto::Sha256Digest> proof = PairingProof(Secret(sticker), fingerprint);
  EXPECT_THAT(proof, IsOk());
  if (!proof.ok()) return {};
  return std::vector<uint8_t>(proof->begin(), proof->end());
}

std::vector<uint8_t> Proof(absl::string_view fingerprint) {
  return ProofWith(kSticker, fingerprint);
}

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

class AccessListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    // Parameterized test names contain '/'.
    dir_ = absl::StrCat(tmp, "/", absl::StrReplaceAll(test->test_suite_name(), {{"/", "_"}}), "_",
                        absl::StrReplaceAll(test->name(), {{"/", "_"}}));
    for (const std::string& name : DirEntries(dir_)) unlink((dir_ + "/" + name).c_str());
    rmdir(dir_.c_str());
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    path_ = dir_ + "/acl";
  }

  absl::StatusOr<std::unique_ptr<AccessList>> OpenList(absl::string_view sticker = kSticker) {
    return AccessList::Open(path_, Secret(sticker));
  }

  void WriteRaw(absl::string_view contents) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << contents;
  }

  std::string ReadRaw() {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream contents;
    contents << in.rdbuf();
    return contents.str();
  }

  // A list paired by Alice at kT0.
  std::unique_ptr<AccessList> PairedByAlice() {
    absl::StatusOr<std::unique_ptr<AccessList>> list = OpenList();
    EXPECT_THAT(list, IsOk());
    if (!list.ok()) return nullptr;
    EXPECT_THAT((*list)->Pair(kAlice, "alice phone", Proof(kAlice), kT0), IsOk());
    return std::move(list).value();
  }

  std::string dir_;
  std::string path_;
};

// --- Pairing ---

TEST_F(AccessListTest, NewDeviceIsUnpairedAndRefusesEveryone) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  EXPECT_TRUE(list->pairing_open());
  EXPECT_FALSE(list->IsAllowed(kAlice));
  EXPECT_EQ(list->RoleOf(kAlice), std::nullopt);
  EXPECT_THAT(list->List(), IsEmpty());
  EXPECT_THAT(list->List(kAlice), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(DirEntries(dir_), IsEmpty());  // Nothing written until something changes.
}

TEST_F(AccessListTest, FirstCorrectProofMakesOwnerAndClosesPairing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  EXPECT_THAT(list->Pair(kAlice, "alice phone", Proof(kAlice), kT0 + absl::Milliseconds(700)),
              IsOkAndHolds(Role::kOwner));
  EXPECT_FALSE(list->pairing_open());
  EXPECT_THAT(list->RoleOf(kAlice), Optional(Role::kOwner));
  EXPECT_TRUE(list->IsAllowed(kAlice));
  EXPECT_THAT(list->List(),
              ElementsAre(AccessList::Entry{kAlice, Role::kOwner, "alice phone", kT0}));
}

TEST_F(AccessListTest, SecondCorrectProofAfterPairingIsRefused) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  EXPECT_THAT(list->Pair(kBob, "bob", Proof(kBob), kT0 + absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(list->IsAllowed(kBob));
  EXPECT_EQ(list->List().size(), 1u);
}

TEST_F(AccessListTest, WrongProofIsRefusedAndCounted) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  EXPECT_THAT(list->Pair(kMallory, "", ProofWith("AAAA-BBBB-CCCC-DDDD", kMallory), kT0),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(list->failed_pairing_attempts(), 1);
  EXPECT_TRUE(list->pairing_open());
  EXPECT_FALSE(list->IsAllowed(kMallory));
}

TEST_F(AccessListTest, ProofOfWrongLengthIsRefused) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  std::vector<uint8_t> proof = Proof(kAlice);
  proof.resize(16);  // A truncated HMAC is not accepted as a pairing proof.
  EXPECT_THAT(list->Pair(kAlice, "", proof, kT0), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(list->Pair(kAlice, "", {}, kT0), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(list->IsAllowed(kAlice));
}

TEST_F(AccessListTest, EveryFlippedBitOfTheProofIsRefused) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  const std::vector<uint8_t> good = Proof(kAlice);
  absl::Time now = kT0;
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::vector<uint8_t> bad = good;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    now += absl::Hours(2);  // Past any lockout, so each attempt is judged on the proof.
    ASSERT_THAT(list->Pair(kAlice, "", bad, now), StatusIs(absl::StatusCode::kPermissionDenied))
        << "bit " << bit;
  }
  EXPECT_FALSE(list->IsAllowed(kAlice));
  now += absl::Hours(2);
  EXPECT_THAT(list->Pair(kAlice, "", good, now), IsOkAndHolds(Role::kOwner));
}

TEST_F(AccessListTest, ProofForOneFingerprintDoesNotPairAnother) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  EXPECT_NE(Proof(kAlice), Proof(kBob));
  // The basestation relays Alice's proof but swaps in its own fingerprint.
  EXPECT_THAT(list->Pair(kMallory, "", Proof(kAlice), kT0),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(list->IsAllowed(kMallory));
  EXPECT_TRUE(list->pairing_open());
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0), IsOkAndHolds(Role::kOwner));
}

TEST_F(AccessListTest, FourWrongProofsDoNotLockOut) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  const std::vector<uint8_t> wrong = ProofWith("WRONG-WRONG", kMallory);
  for (int i = 1; i < kPairingFailuresBeforeLockout; ++i) {
    EXPECT_THAT(list->Pair(kMallory, "", wrong, kT0),
                StatusIs(absl::StatusCode::kPermissionDenied, Not(HasSubstr("locked"))));
  }
  EXPECT_EQ(list->failed_pairing_attempts(), kPairingFailuresBeforeLockout - 1);
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0), IsOkAndHolds(Role::kOwner));
}

TEST_F(AccessListTest, FiveWrongProofsLockOutEvenTheRightProofUntilTimePasses) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  const std::vector<uint8_t> wrong = ProofWith("WRONG-WRONG", kMallory);
  for (int i = 1; i < kPairingFailuresBeforeLockout; ++i) {
    ASSERT_THAT(list->Pair(kMallory, "", wrong, kT0),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
  EXPECT_THAT(list->Pair(kMallory, "", wrong, kT0),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("locked for 60 seconds")));
  EXPECT_EQ(list->pairing_locked_until(), kT0 + absl::Minutes(1));

  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry after 60 seconds")));
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0 + absl::Seconds(59.5)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry after 1 seconds")));
  EXPECT_EQ(list->failed_pairing_attempts(), 5) << "locked attempts are not counted";
  EXPECT_FALSE(list->IsAllowed(kAlice));

  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0 + absl::Minutes(1)),
              IsOkAndHolds(Role::kOwner));
  EXPECT_EQ(list->failed_pairing_attempts(), 0);
}

TEST_F(AccessListTest, LockoutDoublesWithEachFurtherFailureUpToAnHour) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  const std::vector<uint8_t> wrong = ProofWith("WRONG-WRONG", kMallory);
  absl::Time now = kT0;
  for (int i = 1; i < kPairingFailuresBeforeLockout; ++i) {
    ASSERT_THAT(list->Pair(kMallory, "", wrong, now),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
  const std::vector<int> expected_minutes = {1, 2, 4, 8, 16, 32, 60, 60, 60};
  for (int minutes : expected_minutes) {
    ASSERT_THAT(list->Pair(kMallory, "", wrong, now),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_EQ(list->pairing_locked_until() - now, absl::Minutes(minutes));
    // One second before the end it is still locked; at the end the next attempt is judged.
    EXPECT_THAT(list->Pair(kMallory, "", wrong, now + absl::Minutes(minutes) - absl::Seconds(1)),
                StatusIs(absl::StatusCode::kResourceExhausted));
    now += absl::Minutes(minutes);
  }
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), now), IsOkAndHolds(Role::kOwner));
}

TEST_F(AccessListTest, LockoutSurvivesAReboot) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
    for (int i = 0; i < kPairingFailuresBeforeLockout; ++i) {
      ASSERT_THAT(list->Pair(kMallory, "", Proof(kAlice), kT0),
                  StatusIs(absl::StatusCode::kPermissionDenied));
    }
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> rebooted, OpenList());
  EXPECT_EQ(rebooted->failed_pairing_attempts(), kPairingFailuresBeforeLockout);
  EXPECT_THAT(rebooted->Pair(kAlice, "", Proof(kAlice), kT0 + absl::Seconds(30)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry after 30 seconds")));
  // The count survives too: the next wrong proof after the lockout doubles it.
  EXPECT_THAT(rebooted->Pair(kMallory, "", Proof(kAlice), kT0 + absl::Minutes(1)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("locked for 120 seconds")));
}

TEST_F(AccessListTest, LockoutIsNotStretchedWhenTheClockStepsBack) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
    for (int i = 0; i < kPairingFailuresBeforeLockout; ++i) {
      ASSERT_THAT(list->Pair(kMallory, "", Proof(kAlice), kT0),
                  StatusIs(absl::StatusCode::kPermissionDenied));
    }
  }
  // Rebooted without a real-time clock: time restarts near the epoch.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> rebooted, OpenList());
  const absl::Time boot = absl::FromUnixSeconds(100);
  EXPECT_THAT(rebooted->Pair(kAlice, "", Proof(kAlice), boot),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry after 60 seconds")));
  EXPECT_THAT(rebooted->Pair(kAlice, "", Proof(kAlice), boot + absl::Minutes(1)),
              IsOkAndHolds(Role::kOwner));
}

TEST_F(AccessListTest, SuccessResetsTheFailureCount) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  for (int i = 0; i < kPairingFailuresBeforeLockout - 1; ++i) {
    ASSERT_THAT(list->Pair(kMallory, "", Proof(kAlice), kT0),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
  ASSERT_EQ(list->failed_pairing_attempts(), kPairingFailuresBeforeLockout - 1);
  ASSERT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0), IsOkAndHolds(Role::kOwner));
  EXPECT_EQ(list->failed_pairing_attempts(), 0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> reopened, OpenList());
  EXPECT_EQ(reopened->failed_pairing_attempts(), 0);
}

TEST_F(AccessListTest, StickerIsNormalizedOnTheDeviceToo) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList("bq6r t6cl-673m zlt8"));
  EXPECT_THAT(list->Pair(kAlice, "", ProofWith("BQ6RT6CL673MZLT8", kAlice), kT0),
              IsOkAndHolds(Role::kOwner));
}

// --- PairingProof ---

TEST(PairingProofTest, NormalizesCaseDashesAndSpaces) {
  ASSERT_OK_AND_ASSIGN(crypto::Sha256Digest messy,
                       PairingProof(Secret("bq6r-t6cl 673m-zlt8"), kAlice));
  ASSERT_OK_AND_ASSIGN(crypto::Sha256Digest clean,
                       PairingProof(Secret("BQ6RT6CL673MZLT8"), kAlice));
  ASSERT_OK_AND_ASSIGN(crypto::Sha256Digest other,
                       PairingProof(Secret("BQ6RT6CL673MZLT9"), kAlice));
  EXPECT_EQ(messy, clean);
  EXPECT_NE(clean, other);
}

TEST(PairingProofTest, MatchesKnownAnswer) {
  // HMAC-SHA256(key "BQ6RT6CL673MZLT8", "edgelink pair v1" || fingerprint), from Python's hmac.
  ASSERT_OK_AND_ASSIGN(crypto::Sha256Digest proof, PairingProof(Secret(kSticker), kMallory));
  EXPECT_EQ(Hex(proof), "d19d30b9379b8ca36c60d9c525f953efe2b156b30b740409de0b75c5cd55d121");
}

TEST(PairingProofTest, RejectsInvalidFingerprint) {
  EXPECT_THAT(PairingProof(Secret(kSticker), "abc"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Validation ---

TEST_F(AccessListTest, InvalidFingerprintsAreRejected) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  ASSERT_THAT(list->ReopenPairing(kAlice), IsOk());
  const std::vector<std::string> invalid = {
      "",
      std::string(63, 'a'),                                // Short.
      std::string(65, 'a'),                                // Long.
      std::string(64, 'A'),                                // Upper case.
      std::string(63, 'a') + "g",                          // Not hex.
      std::string(63, 'a') + " ",                          // Space.
      std::string(32, 'a') + '\0' + std::string(31, 'a'),  // NUL inside.
  };
  for (const std::string& fp : invalid) {
    SCOPED_TRACE(absl::CEscape(fp));
    EXPECT_THAT(ValidateFingerprint(fp), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(list->Pair(fp, "", Proof(kAlice), kT0),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(list->AddUser(kAlice, fp, Role::kUser, "", kT0),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(list->RemoveUser(kAlice, fp), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(list->AddUser(fp, kBob, Role::kUser, "", kT0),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_FALSE(list->IsAllowed(fp));
  }
  EXPECT_EQ(list->failed_pairing_attempts(), 0) << "malformed requests are not guesses";
  EXPECT_EQ(list->List().size(), 1u);
  EXPECT_THAT(ValidateFingerprint(kMallory), IsOk());
}

TEST_F(AccessListTest, InvalidNamesAreRejected) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  // A newline would inject a line into the file.
  for (const std::string& name :
       {std::string("bob\nowner ") + kMallory + " 0 x", std::string(kMaxEntryNameLength + 1, 'x'),
        std::string("tab\there"), std::string("caf\xc3\xa9")}) {
    SCOPED_TRACE(absl::CEscape(name));
    EXPECT_THAT(list->AddUser(kAlice, kBob, Role::kUser, name, kT0),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_FALSE(list->IsAllowed(kBob));
  EXPECT_FALSE(list->IsAllowed(kMallory));
  EXPECT_THAT(list->AddUser(kAlice, kBob, Role::kUser, std::string(kMaxEntryNameLength, 'x'), kT0),
              IsOk());
}

TEST_F(AccessListTest, OpenRejectsShortSecretAndMissingDirectory) {
  EXPECT_THAT(OpenList("ab-cd-ef"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AccessList::Open(dir_ + "/no/such/acl", Secret(kSticker)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(dir_ + "/no/such")));
}

// --- Owner operations ---

TEST_F(AccessListTest, OwnerAddsAndRemovesUsersAndRemovalIsReported) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  std::vector<std::string> removed;
  list->set_on_removed([&](absl::string_view fp) { removed.emplace_back(fp); });

  ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kUser, "bob laptop", kT0 + absl::Seconds(5)),
              IsOk());
  ASSERT_THAT(list->AddUser(kAlice, kCarol, Role::kGuest, "carol", kT0 + absl::Seconds(6)), IsOk());
  EXPECT_THAT(list->RoleOf(kBob), Optional(Role::kUser));
  EXPECT_THAT(list->RoleOf(kCarol), Optional(Role::kGuest));
  EXPECT_THAT(list->AddUser(kAlice, kBob, Role::kGuest, "again", kT0),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(list->RoleOf(kBob), Optional(Role::kUser));

  ASSERT_THAT(list->RemoveUser(kAlice, kBob), IsOk());
  EXPECT_FALSE(list->IsAllowed(kBob));
  EXPECT_THAT(removed, ElementsAre(kBob));
  EXPECT_THAT(list->RemoveUser(kAlice, kBob), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(removed, ElementsAre(kBob));
  EXPECT_THAT(list->List(), ElementsAre(AccessList::Entry{kAlice, Role::kOwner, "alice phone", kT0},
                                        AccessList::Entry{kCarol, Role::kGuest, "carol",
                                                          kT0 + absl::Seconds(6)}));
}

TEST_F(AccessListTest, NonOwnersCannotChangeTheList) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kUser, "bob", kT0), IsOk());
  ASSERT_THAT(list->AddUser(kAlice, kCarol, Role::kGuest, "carol", kT0), IsOk());
  int removals = 0;
  list->set_on_removed([&](absl::string_view) { ++removals; });
  const std::vector<AccessList::Entry> before = list->List();

  for (const std::string& caller : {kBob, kCarol, kMallory}) {
    SCOPED_TRACE(caller);
    EXPECT_THAT(list->AddUser(caller, kMallory, Role::kUser, "", kT0),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(list->AddUser(caller, caller, Role::kOwner, "", kT0),  // Self-promotion.
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(list->RemoveUser(caller, kAlice), StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(list->RemoveUser(caller, kCarol), StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(list->ReopenPairing(caller), StatusIs(absl::StatusCode::kPermissionDenied));
  }
  EXPECT_EQ(list->List(), before);
  EXPECT_FALSE(list->pairing_open());
  EXPECT_EQ(removals, 0);
}

TEST_F(AccessListTest, LastOwnerCannotBeRemoved) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  int removals = 0;
  list->set_on_removed([&](absl::string_view) { ++removals; });
  EXPECT_THAT(list->RemoveUser(kAlice, kAlice), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(list->RoleOf(kAlice), Optional(Role::kOwner));

  // With a second owner, either may leave, but not both.
  ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kOwner, "bob", kT0), IsOk());
  EXPECT_THAT(list->RemoveUser(kAlice, kAlice), IsOk());
  EXPECT_FALSE(list->IsAllowed(kAlice));
  EXPECT_THAT(list->RemoveUser(kBob, kBob), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(list->RoleOf(kBob), Optional(Role::kOwner));
  EXPECT_EQ(removals, 1);
}

TEST_F(AccessListTest, ReopenedPairingAddsAnotherOwner) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  ASSERT_THAT(list->AddUser(kAlice, kCarol, Role::kUser, "carol", kT0), IsOk());
  ASSERT_THAT(list->ReopenPairing(kAlice), IsOk());
  EXPECT_TRUE(list->pairing_open());
  // A user on the list pairing again is promoted.
  EXPECT_THAT(list->Pair(kCarol, "carol new phone", Proof(kCarol), kT0 + absl::Seconds(9)),
              IsOkAndHolds(Role::kOwner));
  EXPECT_FALSE(list->pairing_open());
  EXPECT_THAT(list->RoleOf(kAlice), Optional(Role::kOwner));
  EXPECT_THAT(list->RoleOf(kCarol), Optional(Role::kOwner));
  EXPECT_EQ(list->List().size(), 2u);
  EXPECT_THAT(list->Pair(kBob, "", Proof(kBob), kT0),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(AccessListTest, OwnerListsEveryoneOthersOnlyThemselves) {
  std::unique_ptr<AccessList> list = PairedByAlice();
  ASSERT_NE(list, nullptr);
  ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kUser, "bob", kT0), IsOk());
  ASSERT_THAT(list->AddUser(kAlice, kCarol, Role::kGuest, "carol", kT0), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<AccessList::Entry> owner_view, list->List(kAlice));
  EXPECT_EQ(owner_view.size(), 3u);
  ASSERT_OK_AND_ASSIGN(std::vector<AccessList::Entry> user_view, list->List(kBob));
  EXPECT_THAT(user_view, ElementsAre(AccessList::Entry{kBob, Role::kUser, "bob", kT0}));
  ASSERT_OK_AND_ASSIGN(std::vector<AccessList::Entry> guest_view, list->List(kCarol));
  EXPECT_THAT(guest_view, ElementsAre(AccessList::Entry{kCarol, Role::kGuest, "carol", kT0}));
  EXPECT_THAT(list->List(kMallory), StatusIs(absl::StatusCode::kPermissionDenied));
}

// --- Persistence ---

TEST_F(AccessListTest, PersistsAcrossReopen) {
  std::vector<AccessList::Entry> before;
  {
    std::unique_ptr<AccessList> list = PairedByAlice();
    ASSERT_NE(list, nullptr);
    ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kUser, "bob's  laptop ", kT0), IsOk());
    ASSERT_THAT(list->AddUser(kAlice, kCarol, Role::kGuest, "", kT0 + absl::Hours(1)), IsOk());
    ASSERT_THAT(list->RemoveUser(kAlice, kBob), IsOk());
    ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kOwner, "bob's  laptop ", kT0), IsOk());
    before = list->List();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> reopened, OpenList());
  EXPECT_EQ(reopened->List(), before);
  EXPECT_EQ(before.size(), 3u);
  EXPECT_FALSE(reopened->pairing_open());
  EXPECT_THAT(reopened->Pair(kMallory, "", Proof(kMallory), kT0),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_THAT(reopened->ReopenPairing(kBob), IsOk());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> again, OpenList());
  EXPECT_TRUE(again->pairing_open());
  EXPECT_EQ(again->List(), before);
}

TEST_F(AccessListTest, WritesAreAtomicOwnerOnlyAndLeaveNoTempFiles) {
  const mode_t old_umask = umask(0);  // Mode must not depend on the daemon's umask.
  std::unique_ptr<AccessList> list = PairedByAlice();
  umask(old_umask);
  ASSERT_NE(list, nullptr);
  ASSERT_THAT(list->AddUser(kAlice, kBob, Role::kUser, "bob", kT0), IsOk());
  ASSERT_THAT(list->RemoveUser(kAlice, kBob), IsOk());
  ASSERT_THAT(list->ReopenPairing(kAlice), IsOk());
  EXPECT_THAT(DirEntries(dir_), ElementsAre("acl"));
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadRaw(), absl::StrCat("edgelink-acl 1\n"
                                    "pairing open\n"
                                    "failures 0 0\n"
                                    "owner ",
                                    kAlice, " 1700000000 alice phone\n", "end 1\n"));
}

TEST_F(AccessListTest, FailedWriteChangesNothing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  ASSERT_EQ(rmdir(dir_.c_str()), 0);  // Root ignores permissions; a missing directory does not.
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path_)));
  EXPECT_TRUE(list->pairing_open());
  EXPECT_FALSE(list->IsAllowed(kAlice));
  // A wrong proof still counts even though it could not be saved.
  EXPECT_THAT(list->Pair(kMallory, "", Proof(kAlice), kT0), Not(IsOk()));
  EXPECT_EQ(list->failed_pairing_attempts(), 1);

  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0), IsOkAndHolds(Role::kOwner));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> reopened, OpenList());
  EXPECT_THAT(reopened->RoleOf(kAlice), Optional(Role::kOwner));
}

TEST_F(AccessListTest, FailedRenameLeavesNoTempFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  ASSERT_EQ(mkdir(path_.c_str(), 0700), 0);  // rename() of a file over a directory fails.
  EXPECT_THAT(list->Pair(kAlice, "", Proof(kAlice), kT0), Not(IsOk()));
  EXPECT_FALSE(list->IsAllowed(kAlice));
  EXPECT_THAT(DirEntries(dir_), ElementsAre("acl"));
  ASSERT_EQ(rmdir(path_.c_str()), 0);
}

struct CorruptCase {
  const char* label;
  std::string contents;
  int line;
};

void PrintTo(const CorruptCase& c, std::ostream* os) { *os << c.label; }

class CorruptFileTest : public AccessListTest, public ::testing::WithParamInterface<CorruptCase> {};

const std::string kOwnerLine = absl::StrCat("owner ", std::string(64, 'a'), " 1700000000 alice\n");
const std::string kGoodPrefix = "edgelink-acl 1\npairing closed\nfailures 0 0\n";

TEST_P(CorruptFileTest, IsAnErrorNamingPathAndLine) {
  WriteRaw(GetParam().contents);
  EXPECT_THAT(OpenList(), StatusIs(absl::StatusCode::kDataLoss,
                                   HasSubstr(absl::StrCat(path_, ":", GetParam().line, ": "))));
}

INSTANTIATE_TEST_SUITE_P(
    AccessList, CorruptFileTest,
    ::testing::Values(
        CorruptCase{"Empty", "", 1},
        CorruptCase{"Garbage",
                    std::string("\x7f"
                                "ELF\x02\x01\x01\0\0\n",
                                10),
                    1},
        CorruptCase{"WrongHeader", "edgelink-config 1\n", 1},
        CorruptCase{"WrongVersion", "edgelink-acl 2\npairing open\nfailures 0 0\nend 0\n", 1},
        CorruptCase{"BadPairingLine", "edgelink-acl 1\npairing maybe\nfailures 0 0\nend 0\n", 2},
        CorruptCase{"BadFailuresLine", "edgelink-acl 1\npairing open\nfailures -1 0\nend 0\n", 3},
        CorruptCase{"TruncatedMidLine", kGoodPrefix + "owner aaaa", 4},
        CorruptCase{"TruncatedAtLineBoundary", kGoodPrefix + kOwnerLine, 5},
        CorruptCase{"EndLineWithoutNewline", kGoodPrefix + kOwnerLine + "end 1", 5},
        CorruptCase{"HeaderOnly", "edgelink-acl 1\n", 2},
        CorruptCase{"ShortFingerprint",
                    kGoodPrefix + "owner " + std::string(63, 'a') + " 1700000000 x\nend 1\n", 4},
        CorruptCase{"UpperCaseFingerprint",
                    kGoodPrefix + "owner " + std::string(64, 'A') + " 1700000000 x\nend 1\n", 4},
        CorruptCase{
            "UnknownRole",
            kGoodPrefix + kOwnerLine + "admin " + std::string(64, 'b') + " 1700000000 x\nend 2\n",
            5},
        CorruptCase{"MissingName",
                    kGoodPrefix + "owner " + std::string(64, 'a') + " 1700000000\nend 1\n", 4},
        CorruptCase{"BadTime", kGoodPrefix + "owner " + std::string(64, 'a') + " 17e8 x\nend 1\n",
                    4},
        CorruptCase{"DuplicateFingerprint", kGoodPrefix + kOwnerLine + kOwnerLine + "end 2\n", 5},
        CorruptCase{"CountMismatch", kGoodPrefix + kOwnerLine + "end 2\n", 5},
        CorruptCase{"TextAfterEnd", kGoodPrefix + kOwnerLine + "end 1\nuser x\n", 6},
        CorruptCase{"ClosedWithoutOwner",
                    kGoodPrefix + "user " + std::string(64, 'b') + " 1700000000 bob\nend 1\n", 5},
        CorruptCase{"CarriageReturns", "edgelink-acl 1\r\npairing open\r\n", 1}),
    [](const ::testing::TestParamInfo<CorruptCase>& test) { return test.param.label; });

TEST_F(AccessListTest, ValidHandWrittenFileLoads) {
  WriteRaw(kGoodPrefix + kOwnerLine + "guest " + std::string(64, 'c') + " 1700000001 \nend 2\n");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  EXPECT_THAT(list->List(),
              ElementsAre(AccessList::Entry{kAlice, Role::kOwner, "alice", kT0},
                          AccessList::Entry{kCarol, Role::kGuest, "", kT0 + absl::Seconds(1)}));
}

// --- Secrets stay secret ---

TEST_F(AccessListTest, ErrorsNeverContainThePairingSecretOrProof) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AccessList> list, OpenList());
  const std::vector<uint8_t> proof = Proof(kAlice);
  const std::string proof_bytes(proof.begin(), proof.end());
  std::vector<absl::Status> errors;
  for (int i = 0; i < kPairingFailuresBeforeLockout + 1; ++i) {
    errors.push_back(list->Pair(kMallory, "", proof, kT0).status());
  }
  errors.push_back(list->Pair("bad", "", proof, kT0).status());
  errors.push_back(OpenList("short").status());
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ASSERT_OK_AND_ASSIGN(list, OpenList());
  ASSERT_THAT(list->Pair(kAlice, "", proof, kT0), IsOk());
  errors.push_back(list->Pair(kBob, "", proof, kT0).status());
  for (const absl::Status& error : errors) {
    ASSERT_FALSE(error.ok());
    const std::string message(error.message());
    for (const std::string& secret : {std::string(kSticker), std::string("BQ6RT6CL673MZLT8"),
                                      std::string("BQ6R"), Hex(proof), proof_bytes}) {
      EXPECT_THAT(message, Not(HasSubstr(secret))) << error;
    }
  }
  EXPECT_THAT(ReadRaw(), Not(HasSubstr("BQ6R")));
}

}  // namespace
}  // namespace edgelink::device
