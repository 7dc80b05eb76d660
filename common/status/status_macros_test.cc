#include "common/status/status_macros.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return n / 2;
}

absl::Status CheckEven(int n) { return Half(n).status(); }

absl::Status CountCalls(int* calls, absl::Status result) {
  ++*calls;
  return result;
}

absl::Status ReturnIfErrorTwice(int* calls, absl::Status first) {
  RETURN_IF_ERROR(CountCalls(calls, first));
  RETURN_IF_ERROR(CountCalls(calls, absl::OkStatus()));
  return absl::OkStatus();
}

absl::StatusOr<int> Quarter(int n) {
  ASSIGN_OR_RETURN(int half, Half(n));
  ASSIGN_OR_RETURN(half, Half(half));  // Reassigns an existing variable.
  return half;
}

absl::StatusOr<std::unique_ptr<int>> MakeBox(int n) {
  if (n < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(n);
}

absl::StatusOr<int> Unbox(int n) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> box, MakeBox(n));  // Move-only value.
  return *box;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstError) {
  int calls = 0;
  EXPECT_THAT(ReturnIfErrorTwice(&calls, absl::NotFoundError("gone")),
              StatusIs(absl::StatusCode::kNotFound, "gone"));
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorContinuesOnOk) {
  int calls = 0;
  EXPECT_THAT(ReturnIfErrorTwice(&calls, absl::OkStatus()), IsOk());
  EXPECT_EQ(calls, 2);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesErrorFromEitherStep) {
  EXPECT_THAT(Quarter(8), IsOk());
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(7), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("odd")));
}

TEST(StatusMacrosTest, AssignOrReturnMovesOnlyValues) {
  EXPECT_EQ(*Unbox(5), 5);
  EXPECT_THAT(Unbox(-1), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(StatusMatchersTest, MatchersRejectWhatTheyShould) {
  EXPECT_THAT(CheckEven(3), Not(IsOk()));
  EXPECT_THAT(Half(3), Not(IsOk()));
  EXPECT_THAT(Half(3), Not(StatusIs(absl::StatusCode::kNotFound)));
  EXPECT_THAT(Half(3), Not(StatusIs(absl::StatusCode::kInvalidArgument, "even")));
  EXPECT_THAT(absl::OkStatus(), Not(StatusIs(absl::StatusCode::kInvalidArgument)));
}

}  // namespace
}  // namespace edgelink
