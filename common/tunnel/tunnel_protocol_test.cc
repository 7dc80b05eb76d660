#include "common/tunnel/tunnel_protocol.h"

#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::tunnel {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TunnelProtocolTest, RequestIsVersionThenBigEndianPort) {
  EXPECT_THAT(EncodeRequest(554), ElementsAre(1, 0x02, 0x2a));
  EXPECT_THAT(EncodeRequest(65535), ElementsAre(1, 0xff, 0xff));
}

TEST(TunnelProtocolTest, RequestArrivingByteByByteParses) {
  const auto request = EncodeRequest(8080);
  RequestReader reader;
  EXPECT_THAT(reader.Parse(), StatusIs(absl::StatusCode::kFailedPrecondition));
  for (uint8_t byte : request) {
    EXPECT_FALSE(reader.complete());
    EXPECT_EQ(reader.Feed(absl::MakeConstSpan(&byte, 1)), 1u);
  }
  ASSERT_TRUE(reader.complete());
  ASSERT_OK_AND_ASSIGN(TunnelRequest parsed, reader.Parse());
  EXPECT_EQ(parsed.version, kTunnelVersion);
  EXPECT_EQ(parsed.port, 8080);
}

TEST(TunnelProtocolTest, BytesAfterTheRequestAreLeftForTheConnection) {
  const std::vector<uint8_t> bytes = {1, 0, 80, 'G', 'E', 'T'};
  RequestReader reader;
  EXPECT_EQ(reader.Feed(bytes), 3u);
  EXPECT_EQ(reader.Feed(bytes), 0u);  // Complete: takes nothing more.
  ASSERT_OK_AND_ASSIGN(TunnelRequest parsed, reader.Parse());
  EXPECT_EQ(parsed.port, 80);
}

TEST(TunnelProtocolTest, UnknownVersionIsRejected) {
  for (uint8_t version : {0, 2, 0x7f, 0xff}) {
    const std::vector<uint8_t> bytes = {version, 0, 80};
    RequestReader reader;
    reader.Feed(bytes);
    EXPECT_THAT(reader.Parse(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version")))
        << int{version};
  }
}

TEST(TunnelProtocolTest, StatusBytesMapToDocumentedCodes) {
  EXPECT_THAT(StatusFromWire(0, 80), IsOk());
  EXPECT_THAT(StatusFromWire(1, 80),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("port 80")));
  EXPECT_THAT(StatusFromWire(2, 554),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("port 554")));
  EXPECT_THAT(StatusFromWire(3, 80), StatusIs(absl::StatusCode::kUnimplemented));
  for (int status = 4; status < 256; ++status) {
    EXPECT_THAT(StatusFromWire(static_cast<uint8_t>(status), 80),
                StatusIs(absl::StatusCode::kInternal, HasSubstr("unknown")));
  }
}

}  // namespace
}  // namespace edgelink::tunnel
