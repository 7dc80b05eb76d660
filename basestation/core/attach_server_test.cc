// AttachServer under a basestation clock that steps backwards (an NTP step, a VM restored from a
// snapshot): the device and the server keep separate clocks here, and packets arrive at once.
#include "basestation/core/attach_server.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_matchers.h"
#include "common/testing/seeded_random.h"
#include "common/wire/packet.h"
#include "device/core/attach_client.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

crypto::SecretBytes Filled(uint8_t fill) {
  return crypto::SecretBytes::CopyFrom(std::vector<uint8_t>(32, fill));
}

class OneDevice : public DeviceDirectory {
 public:
  absl::StatusOr<DeviceCredentials> FindDevice(absl::string_view id) override {
    if (id != "cam-1") return absl::NotFoundError("no such device");
    return DeviceCredentials{Filled(0x5a), false};
  }
};

class ServerClockStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, AttachServer::New({}, Filled(0x01), &directory_, &random_));
    PowerOnDevice();
  }

  // A device with no state (first boot, or after a power cycle), attaching.
  void PowerOnDevice() {
    device::AttachClientOptions options;
    options.device_id = "cam-1";
    options.secret = Filled(0x5a);
    options.server = kServer;
    ASSERT_OK_AND_ASSIGN(device_, device::AttachClient::New(std::move(options), &random_));
    device_->Start(device_now_);
    Pump();
  }

  void Pump() {
    bool moved = true;
    while (moved) {
      moved = false;
      for (net::Datagram& d : device_->TakeOutgoing()) {
        moved = true;
        if (device_silent_) continue;
        if (static_cast<wire::PacketType>(d.bytes.at(1)) == wire::PacketType::kProof) {
          proofs_.push_back(d.bytes);
        }
        server_->OnPacket(kDevice, d.bytes, server_now_);
      }
      for (net::Datagram& d : server_->TakeOutgoing()) {
        moved = true;
        if (d.to == kDevice && !device_silent_) device_->OnPacket(kServer, d.bytes, device_now_);
      }
    }
  }

  // Both clocks move on by `duration`; each side's timers run on its own clock.
  void RunFor(absl::Duration duration) {
    for (absl::Duration t; t < duration; t += absl::Milliseconds(100)) {
      device_now_ += absl::Milliseconds(100);
      server_now_ += absl::Milliseconds(100);
      if (device_->next_timeout() <= device_now_) device_->OnTimeout(device_now_);
      if (server_->next_timeout() <= server_now_) server_->OnTimeout(server_now_);
      Pump();
    }
  }

  bool Attached() {
    return device_->state() == device::AttachClient::State::kAttached &&
           server_->IsAttached("cam-1");
  }

  const net::Endpoint kServer = *net::Endpoint::Parse("198.51.100.1:7000");
  const net::Endpoint kDevice = *net::Endpoint::Parse("203.0.113.5:40000");
  testing::SeededRandom random_{3};
  OneDevice directory_;
  std::unique_ptr<AttachServer> server_;
  std::unique_ptr<device::AttachClient> device_;
  absl::Time device_now_ = absl::FromUnixSeconds(1'800'000'000);
  absl::Time server_now_ = absl::FromUnixSeconds(1'800'000'000);
  bool device_silent_ = false;
  std::vector<std::vector<uint8_t>> proofs_;  // Every PROOF the device sent, in order.
};

// The control: with a clock that only moves forward, an older handshake's PROOF, replayed from the
// device's address while its cookie is fresh, is refused and leaves the newer session alone.
TEST_F(ServerClockStepTest, OlderProofReplayedWithinItsCookieLifetimeIsRefused) {
  RunFor(absl::Seconds(1));
  ASSERT_TRUE(Attached());
  const std::vector<uint8_t> first = proofs_.back();
  RunFor(absl::Seconds(5));
  PowerOnDevice();
  RunFor(absl::Seconds(1));
  ASSERT_TRUE(Attached());
  const uint64_t connection_id = device_->connection_id();
  server_->OnPacket(kDevice, first, server_now_);
  Pump();
  EXPECT_EQ(server_->counters().dropped[static_cast<int>(DropReason::kReplay)], 1u);
  RunFor(absl::Seconds(1));
  EXPECT_TRUE(Attached());
  EXPECT_EQ(device_->connection_id(), connection_id);
  EXPECT_EQ(server_->counters().attaches, 2u);
}

// A device that lost its state while the server still holds its session sends a PROOF stamped
// (by the server's own CHALLENGE) an hour before that session's: the server's clock went back,
// not the PROOF. It replaces the session rather than being refused as a replay for an hour.
TEST_F(ServerClockStepTest, DeviceReattachingAfterTheServerClockSteppedBackIsNotRefused) {
  RunFor(absl::Hours(2));
  PowerOnDevice();  // A session made two hours after the server's first.
  RunFor(absl::Seconds(10));
  ASSERT_TRUE(Attached());
  server_now_ -= absl::Hours(1);
  PowerOnDevice();
  RunFor(absl::Seconds(5));
  EXPECT_TRUE(Attached());
  EXPECT_EQ(server_->attached_count(), 1u);
  EXPECT_EQ(server_->counters().attaches, 3u);
  EXPECT_EQ(server_->counters().dropped[static_cast<int>(DropReason::kReplay)], 0u);
}

// The same step further back than the server's first attach: a device that went silent just after
// it must still expire once the clock is back past that point, not be shown online for ever.
TEST_F(ServerClockStepTest, SessionHeardBeforeTheServersEpochStillExpires) {
  RunFor(absl::Seconds(10));
  ASSERT_TRUE(Attached());
  server_now_ -= absl::Hours(1);
  RunFor(absl::Seconds(30));  // A keep-alive arrives with the clock before the first attach.
  device_silent_ = true;
  RunFor(absl::Hours(1) + absl::Minutes(2));
  EXPECT_FALSE(server_->IsAttached("cam-1"));
  EXPECT_EQ(server_->counters().expired, 1u);
}

}  // namespace
}  // namespace edgelink::basestation
