// Fuzzes rpc::RpcEndpoint::OnDatagram, the RPC layer on top of the peer channel: requests and
// responses from the (authenticated, but not trusted) peer.
//
// The endpoint serves "echo" (answers the payload) and "fail" (answers INVALID_ARGUMENT with the
// payload as message), and has three calls of its own pending (ids 1, 2, 3: "echo", "fail",
// "nosuch"), so responses can match them. The input is a script of records (fuzz_input.h);
// op % 3:
//   0  datagram from the peer
//   1  time passes: u16 in units of 10 ms, then OnTimeout (retransmissions, deadlines)
//   2  a new call: method str (first byte = length) || payload; deadline 2 s
//
// Invariants checked: every call's callback runs exactly once (at the latest when the harness
// cancels what is left at the end), and no datagram the endpoint sends exceeds the largest frame.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/rpc/rpc.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "rpc_frame_fuzzer";
// u8 kind || u32 id || u8 code || str8 message || u16 length || payload.
constexpr size_t kMaxFrame = 1 + 4 + 1 + 1 + 255 + 2 + rpc::kMaxRpcPayload;

class Harness {
 public:
  Harness() {
    endpoint_.Handle("echo", [](absl::Span<const uint8_t> payload) -> rpc::Reply {
      return std::vector<uint8_t>(payload.begin(), payload.end());
    });
    endpoint_.Handle("fail", [](absl::Span<const uint8_t> payload) -> rpc::Reply {
      return absl::InvalidArgumentError(
          std::string(reinterpret_cast<const char*>(payload.data()), payload.size()));
    });
    Call("echo", {1, 2, 3});
    Call("fail", {});
    Call("nosuch", {4});
  }

  void Run(FuzzInput& input) {
    FuzzInput::Record record;
    while (input.NextRecord(&record)) {
      FuzzInput bytes(record.bytes);
      switch (record.op % 3) {
        case 0:
          endpoint_.OnDatagram(record.bytes, now_);
          break;
        case 1:
          now_ += absl::Milliseconds(10) * bytes.TakeU16();
          endpoint_.OnTimeout(now_);
          break;
        case 2: {
          const absl::Span<const uint8_t> method = bytes.TakeBytes(bytes.TakeByte());
          const absl::Span<const uint8_t> payload = bytes.TakeRest();
          Call(std::string(method.begin(), method.end()),
               std::vector<uint8_t>(payload.begin(), payload.end()));
          break;
        }
      }
      for (const std::vector<uint8_t>& d : endpoint_.TakeOutgoing()) {
        EDGELINK_FUZZ_CHECK(kName, d.size() <= kMaxFrame);
      }
    }
    endpoint_.CancelAll(absl::CancelledError("fuzz run over"));
    EDGELINK_FUZZ_CHECK(kName, endpoint_.pending() == 0);
    for (int calls : *done_) EDGELINK_FUZZ_CHECK(kName, calls == 1);
  }

 private:
  void Call(const std::string& method, const std::vector<uint8_t>& payload) {
    if (done_->size() >= 256) return;
    const size_t index = done_->size();
    done_->push_back(0);
    std::shared_ptr<std::vector<int>> done = done_;
    endpoint_.Call(method, payload, now_ + absl::Seconds(2),
                   [done, index](rpc::Reply) { ++(*done)[index]; }, now_);
  }

  rpc::RpcEndpoint endpoint_;
  absl::Time now_ = StartTime();
  // How often each call's callback ran, by call order.
  std::shared_ptr<std::vector<int>> done_ = std::make_shared<std::vector<int>>();
};

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::FuzzInput input(data, size);
  edgelink::fuzz::Harness harness;
  harness.Run(input);
  return 0;
}
