// AccessRequestHandler: the device's own decision on connects, as the daemon wires it.
#include "device/daemon/request_handler.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/crypto/secret_bytes.h"
#include "common/status/status_matchers.h"
#include "common/wire/device_methods.h"
#include "device/access/access_list.h"
#include "gtest/gtest.h"

namespace edgelink::device {
namespace {

constexpr char kSticker[] = "BQ6R-T6CL-673M-ZLT8";
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class RequestHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    const std::string path =
        std::string(tmp) + "/" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".acl";
    std::remove(path.c_str());
    const crypto::SecretBytes sticker = crypto::SecretBytes::CopyFrom(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kSticker), sizeof(kSticker) - 1));
    ASSERT_OK_AND_ASSIGN(access_, AccessList::Open(path, sticker));
    owner_.fill(0xA1);
    const std::string owner_hex = wire::FingerprintHex(owner_);
    ASSERT_OK_AND_ASSIGN(const crypto::Sha256Digest proof, PairingProof(sticker, owner_hex));
    ASSERT_THAT(access_->Pair(owner_hex, "owner", proof, kT0), testing::IsOk());
    handler_ = std::make_unique<AccessRequestHandler>(
        access_.get(), [] { return std::vector<wire::Candidate>{}; },
        [this](const wire::ConnectRequest& request, const wire::Nonce& device_nonce) {
          opened_.push_back(device_nonce);
          EXPECT_EQ(request.client_fingerprint, owner_);
        });
  }

  wire::ConnectRequest Request(uint64_t id, uint8_t session_fill) const {
    wire::ConnectRequest request;
    request.request_id = id;
    request.session_id.fill(session_fill);
    request.client_fingerprint = owner_;
    request.client_name = "owner";
    return request;
  }

  std::unique_ptr<AccessList> access_;
  std::unique_ptr<AccessRequestHandler> handler_;
  wire::Fingerprint owner_{};
  std::vector<wire::Nonce> opened_;  // The device nonce of each peer channel opened.
};

// A session id the device already accepted (a duplicate the attach client could not recognise,
// or a basestation asking twice) never opens a second channel with the same session key.
TEST_F(RequestHandlerTest, SessionAlreadyAcceptedIsAnsweredBusyAndOpensNothing) {
  wire::Nonce first, second;
  first.fill(1);
  second.fill(2);
  EXPECT_EQ(handler_->OnConnectRequest(Request(1, 0x33), first, kT0).verdict,
            wire::ConnectVerdict::kAccepted);
  EXPECT_EQ(handler_->OnConnectRequest(Request(2, 0x33), second, kT0).verdict,
            wire::ConnectVerdict::kBusy);
  EXPECT_EQ(opened_, std::vector<wire::Nonce>{first});
  // Another session of the same client is a new channel.
  EXPECT_EQ(handler_->OnConnectRequest(Request(3, 0x34), second, kT0).verdict,
            wire::ConnectVerdict::kAccepted);
  EXPECT_EQ(opened_.size(), 2u);
}

}  // namespace
}  // namespace edgelink::device
