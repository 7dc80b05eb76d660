#include "common/wire/device_methods.h"

#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

using ::edgelink::testing::StatusIs;

TEST(DeviceMethodsTest, ArgumentsRoundTrip) {
  PairArgs pair;
  pair.proof.fill(3);
  pair.name = "alice";
  auto p = ParsePairArgs(EncodePairArgs(pair));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->proof, pair.proof);
  EXPECT_EQ(p->name, "alice");

  UserEntry user{{}, Role::kGuest, "bob", 0};
  user.fingerprint.fill(0xab);
  auto u = ParseUserArgs(EncodeUserArgs(user));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->role, Role::kGuest);
  EXPECT_EQ(u->fingerprint, user.fingerprint);

  std::vector<UserEntry> users(3, user);
  users[1].role = Role::kOwner;
  users[2].added_unix_s = 1800000000;
  auto list = ParseUserList(EncodeUserList(users));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[1].role, Role::kOwner);
  EXPECT_EQ((*list)[2].added_unix_s, 1800000000u);
}

TEST(DeviceMethodsTest, RejectsMalformedArguments) {
  std::vector<uint8_t> bad_role = EncodeUserArgs({{}, Role::kUser, "x", 0});
  bad_role[32] = 4;
  EXPECT_THAT(ParseUserArgs(bad_role), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<uint8_t> pair = EncodePairArgs({{}, "x"});
  for (size_t n = 0; n < pair.size(); ++n) {
    EXPECT_FALSE(ParsePairArgs(absl::MakeConstSpan(pair).first(n)).ok()) << n;
  }
  EXPECT_FALSE(ParseFingerprintArgs(std::vector<uint8_t>(31)).ok());
  EXPECT_FALSE(ParseUserList({17}).ok());  // More users than fit.
  EXPECT_FALSE(ParseUserList({}).ok());
}

TEST(DeviceMethodsTest, FingerprintHexRoundTripsAndRejectsOtherText) {
  Fingerprint f;
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<uint8_t>(i * 7);
  ASSERT_EQ(FingerprintHex(f).size(), 64u);
  EXPECT_EQ(*ParseFingerprintHex(FingerprintHex(f)), f);
  EXPECT_FALSE(ParseFingerprintHex(std::string(63, 'a')).ok());
  EXPECT_FALSE(ParseFingerprintHex(std::string(64, 'A')).ok());
  EXPECT_FALSE(ParseFingerprintHex(std::string(64, 'g')).ok());
  EXPECT_EQ(*ParseRole("user"), Role::kUser);
  EXPECT_FALSE(ParseRole("admin").ok());
}

}  // namespace
}  // namespace edgelink::wire
