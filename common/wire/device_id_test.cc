#include "common/wire/device_id.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::Not;

TEST(DeviceIdTest, AcceptsDnsLabels) {
  for (const char* id : {"a", "cam-1", "0", "front-door-lock-42"}) {
    EXPECT_THAT(ValidateDeviceId(id), IsOk()) << id;
  }
  EXPECT_THAT(ValidateDeviceId(std::string(63, 'x')), IsOk());
}

TEST(DeviceIdTest, RejectsWhatIsNotALabel) {
  for (const char* id : {"", "-cam", "cam-", "Cam", "cam.1", "cam 1", "cam_1", "ü"}) {
    EXPECT_THAT(ValidateDeviceId(id), StatusIs(absl::StatusCode::kInvalidArgument)) << id;
  }
  EXPECT_THAT(ValidateDeviceId(std::string(64, 'x')), Not(IsOk()));
  EXPECT_THAT(ValidateDeviceId(std::string(10240, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, "device id is 10240 characters; at most 63 allowed"));
  EXPECT_THAT(ValidateDeviceId(std::string("a\0b", 3)), Not(IsOk()));
}

}  // namespace
}  // namespace edgelink::wire
