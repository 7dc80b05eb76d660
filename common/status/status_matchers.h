// GoogleTest matchers for absl::Status and absl::StatusOr<T>:
//   EXPECT_THAT(DoIt(), IsOk());
//   EXPECT_THAT(Parse(bytes), StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(Parse(bytes), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("short")));
// and ASSERT_OK_AND_ASSIGN(lhs, expr), which fails the test on error.
#ifndef EDGELINK_COMMON_STATUS_STATUS_MATCHERS_H_
#define EDGELINK_COMMON_STATUS_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }

template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

template <typename StatusType>
class StatusIsMatcherImpl : public ::testing::MatcherInterface<StatusType> {
 public:
  StatusIsMatcherImpl(::testing::Matcher<absl::StatusCode> code,
                      ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  void DescribeTo(std::ostream* os) const override {
    *os << "has a status code that ";
    code_.DescribeTo(os);
    *os << " and a message that ";
    message_.DescribeTo(os);
  }

  bool MatchAndExplain(StatusType actual,
                       ::testing::MatchResultListener* listener) const override {
    const absl::Status& status = GetStatus(actual);
    *listener << "whose status is " << status;
    return code_.Matches(status.code()) && message_.Matches(std::string(status.message()));
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

class StatusIsMatcher {
 public:
  StatusIsMatcher(::testing::Matcher<absl::StatusCode> code,
                  ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  template <typename StatusType>
  operator ::testing::Matcher<StatusType>() const {  // NOLINT: implicit by design.
    return ::testing::Matcher<StatusType>(
        new StatusIsMatcherImpl<const StatusType&>(code_, message_));
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

}  // namespace internal

// StatusIs matches an absl::Status or absl::StatusOr<T> whose code matches `code` and whose
// message matches `message` (anything, when omitted).
inline internal::StatusIsMatcher StatusIs(
    ::testing::Matcher<absl::StatusCode> code,
    ::testing::Matcher<const std::string&> message = ::testing::_) {
  return internal::StatusIsMatcher(std::move(code), std::move(message));
}

// IsOk matches an OK absl::Status or an absl::StatusOr<T> that holds a value.
inline internal::StatusIsMatcher IsOk() { return StatusIs(absl::StatusCode::kOk); }

}  // namespace edgelink::testing

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                        \
  EDGELINK_ASSERT_OK_AND_ASSIGN_IMPL_(EDGELINK_TEST_CONCAT_(edgelink_statusor_, __LINE__), lhs, \
                                      expr)

#define EDGELINK_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                        \
  ASSERT_TRUE(statusor.ok()) << statusor.status();               \
  lhs = std::move(statusor).value()

#define EDGELINK_TEST_CONCAT_(a, b) EDGELINK_TEST_CONCAT_INNER_(a, b)
#define EDGELINK_TEST_CONCAT_INNER_(a, b) a##b

#endif  // EDGELINK_COMMON_STATUS_STATUS_MATCHERS_H_
