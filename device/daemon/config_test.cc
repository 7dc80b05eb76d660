#include "device/daemon/config.h"

#include <set>
#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::device {
namespace {

using ::edgelink::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSecret(64, 'a');

TEST(DeviceConfigTest, ParsesEveryKey) {
  ASSERT_OK_AND_ASSIGN(DeviceConfig config,
                       ParseDeviceConfig("# comment\n"
                                         "device_id = cam-1\n"
                                         "secret = " + kSecret + "  # trailing comment\n"
                                         "zone = Devices.Example.com\n"
                                         "basestation_port = 7001\n"
                                         "dns_server = 127.0.0.1:5353\n"
                                         "remote_access = off\n"
                                         "pairing_secret = BQ6R-T6CL-673M-ZLT8\n",
                                         "test.conf"));
  EXPECT_EQ(config.device_id, "cam-1");
  EXPECT_EQ(config.secret.size(), 32u);
  EXPECT_EQ(config.BasestationHostname(), "cam-1.devices.example.com");
  EXPECT_EQ(config.basestation_port, 7001);
  EXPECT_EQ(config.dns_server->ToString(), "127.0.0.1:5353");
  EXPECT_FALSE(config.remote_access);
  EXPECT_FALSE(config.basestation.has_value());
}

TEST(DeviceConfigTest, ErrorsNameFileAndLineAndNeverTheSecret) {
  const std::string base = "device_id = cam-1\nzone = z\npairing_secret = ABCD-EFGH\n";
  EXPECT_THAT(ParseDeviceConfig(base + "secret = 1234\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, "d.conf:4: secret must be at least 16 bytes (32 hex digits)"));
  auto bad_hex = ParseDeviceConfig(base + "secret = " + std::string(63, 'a') + "x\n", "d.conf");
  EXPECT_THAT(bad_hex, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d.conf:4")));
  EXPECT_THAT(std::string(bad_hex.status().message()), Not(HasSubstr("aaaa")));
  EXPECT_THAT(ParseDeviceConfig(base + "colour = blue\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, "d.conf:4: unknown key \"colour\""));
  EXPECT_THAT(ParseDeviceConfig(base + "remote_access = maybe\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("on or off")));
  EXPECT_THAT(ParseDeviceConfig(base + "just words\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key = value")));
  EXPECT_THAT(ParseDeviceConfig("device_id = Cam\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d.conf:1")));
  EXPECT_THAT(ParseDeviceConfig("secret = " + kSecret + "\nzone = z\npairing_secret = ABCD-EFGH\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, "d.conf: no device_id"));
  EXPECT_THAT(ParseDeviceConfig("device_id = a\nsecret = " + kSecret + "\npairing_secret = ABCD-EFGH\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zone or basestation")));
  EXPECT_THAT(ParseDeviceConfig(base + "basestation_port = 70000\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDeviceConfig(base + "basestation = nowhere\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("basestation:")));
}

TEST(DeviceConfigTest, TunnelPortsAreAnAllowList) {
  const std::string base = "device_id = cam-1\nzone = z\npairing_secret = ABCD-EFGH\nsecret = " +
                           kSecret + "\n";
  ASSERT_OK_AND_ASSIGN(DeviceConfig none, ParseDeviceConfig(base, "d.conf"));
  EXPECT_TRUE(none.tunnel_ports.empty());  // Absent: no tunnels.
  ASSERT_OK_AND_ASSIGN(DeviceConfig empty, ParseDeviceConfig(base + "tunnel_ports =\n", "d.conf"));
  EXPECT_TRUE(empty.tunnel_ports.empty());
  ASSERT_OK_AND_ASSIGN(
      DeviceConfig two,
      ParseDeviceConfig(base + "tunnel_ports = 80, 554  # http, rtsp\n", "d.conf"));
  EXPECT_EQ(two.tunnel_ports, (std::set<uint16_t>{80, 554}));
  ASSERT_OK_AND_ASSIGN(DeviceConfig edges,
                       ParseDeviceConfig(base + "tunnel_ports=1,65535\n", "d.conf"));
  EXPECT_EQ(edges.tunnel_ports, (std::set<uint16_t>{1, 65535}));
  // A later line replaces an earlier one, as for every key.
  ASSERT_OK_AND_ASSIGN(
      DeviceConfig later,
      ParseDeviceConfig(base + "tunnel_ports = 80\ntunnel_ports = 22\n", "d.conf"));
  EXPECT_EQ(later.tunnel_ports, (std::set<uint16_t>{22}));

  for (const char* bad : {"0", "65536", "http", "80,,554", "80,", "-1", "80 554", "0x50"}) {
    EXPECT_THAT(ParseDeviceConfig(base + "tunnel_ports = " + bad + "\n", "d.conf"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d.conf:5: tunnel_ports")))
        << bad;
  }
  EXPECT_THAT(ParseDeviceConfig(base + "tunnel_ports = 80, 80\n", "d.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "d.conf:5: tunnel_ports: port 80 is listed twice"));
}

TEST(DeviceConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadDeviceConfig("/nonexistent/edgelink.conf"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/edgelink.conf")));
}

TEST(DeviceConfigTest, BinaryGarbageIsAnErrorNotACrash) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>(i * 131 % 256));
  EXPECT_THAT(ParseDeviceConfig(junk, "junk"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace edgelink::device
