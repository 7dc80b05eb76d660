// Fuzzes basestation::RelayServer::OnPacket, the relay's UDP port: control packets (BIND,
// REFLECT) and peer packets to forward, from anyone on the Internet.
//
// The input is a script of records (fuzz_input.h); the source address of a packet is one of four
// (relay_world.h), picked by (op >> 3) % 4. op % 4:
//   0  raw datagram
//   1  RELAY_BIND with a genuine ticket made by the harness (so sessions get bound and forwarding
//      is reached): side u8 || session u8 (one of five ids) || expiry u8 (seconds from now, minus
//      16, so some have expired) || extra padding length u8 (each padding byte is zero)
//   2  RELAY_REFLECT (well formed)
//   3  time passes: u16 seconds, then OnTimeout if it is due
//
// Invariants checked: the relay never answers with more bytes than it received, every RELAY_BOUND
// it sends parses, a RELAY_REFLECTION names the address the REFLECT came from, and it never
// forwards a packet back to its sender or to an address that is not bound.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/wire/bytes.h"
#include "common/wire/packet.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/relay_world.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "relay_fuzzer";

// Derived once per process: it is the same in every run, and HKDF is much of a short run's time.
const basestation::RelayKey& Key() {
  static const basestation::RelayKey* key = new basestation::RelayKey(RelayFuzzKey());
  return *key;
}

class Harness {
 public:
  Harness() {
    absl::StatusOr<std::unique_ptr<basestation::RelayServer>> relay =
        basestation::RelayServer::New(RelayFuzzOptions(), Key());
    if (!relay.ok()) InvariantFailed(kName, "RelayServer::New");
    relay_ = *std::move(relay);
  }

  void Run(FuzzInput& input) {
    FuzzInput::Record record;
    while (input.NextRecord(&record)) Step(record);
  }

 private:
  void Step(const FuzzInput::Record& record) {
    const net::Endpoint from = RelayFuzzPeer(static_cast<uint8_t>(record.op >> 3));
    FuzzInput bytes(record.bytes);
    switch (record.op % 4) {
      case 0:
        Packet(from, record.bytes);
        break;
      case 1: {
        const auto side = static_cast<basestation::RelaySide>(bytes.TakeByte() % 2);
        const basestation::RelaySessionId session = RelayFuzzSession(bytes.TakeByte());
        const int expiry_s = static_cast<int>(bytes.TakeByte()) - 16;
        const basestation::RelayTicket ticket =
            basestation::MakeRelayTicket(Key(), session, now_ + absl::Seconds(expiry_s));
        std::vector<uint8_t> bind = basestation::BuildRelayBind(side, ticket);
        bind.resize(bind.size() + bytes.TakeByte(), 0);
        Packet(from, bind);
        break;
      }
      case 2: {
        std::vector<uint8_t> reflect(basestation::kRelayReflectSize, 0);
        reflect[0] = basestation::kRelayControlByte;
        reflect[1] = basestation::kRelayReflectType;
        Packet(from, reflect);
        break;
      }
      case 3:
        now_ += absl::Seconds(bytes.TakeU16());
        if (now_ >= relay_->next_timeout()) relay_->OnTimeout(now_);
        EDGELINK_FUZZ_CHECK(kName, relay_->TakeOutgoing().empty());
        break;
    }
  }

  void Packet(const net::Endpoint& from, absl::Span<const uint8_t> packet) {
    const std::optional<net::Endpoint> to = relay_->OnPacket(from, packet, now_);
    if (to.has_value()) {
      EDGELINK_FUZZ_CHECK(kName, *to != from);
      // Only tickets the harness made can bind, so the two ends are among its sessions.
      bool bound = false;
      for (uint8_t i = 0; i < 5 && !bound; ++i) {
        for (auto side : {basestation::RelaySide::kClient, basestation::RelaySide::kDevice}) {
          bound |= relay_->AddressOf(RelayFuzzSession(i), side) == *to;
        }
      }
      EDGELINK_FUZZ_CHECK(kName, bound);
    }
    size_t answered = 0;
    for (const net::Datagram& d : relay_->TakeOutgoing()) {
      answered += d.bytes.size();
      EDGELINK_FUZZ_CHECK(kName, d.bytes.size() >= 2 &&
                                     d.bytes[0] == basestation::kRelayControlByte);
      if (d.bytes[1] == basestation::kRelayBoundType) {
        EDGELINK_FUZZ_CHECK(kName, basestation::ParseRelayBound(d.bytes).ok());
      } else {
        EDGELINK_FUZZ_CHECK(kName, d.bytes[1] == basestation::kRelayReflectionType);
        EDGELINK_FUZZ_CHECK(kName, d.to == from);
        wire::ByteReader reader(absl::MakeConstSpan(d.bytes).subspan(2));
        net::Endpoint reflected;
        EDGELINK_FUZZ_CHECK(kName, wire::ReadEndpoint(reader, &reflected) && reader.done() &&
                                       reflected == from);
      }
    }
    EDGELINK_FUZZ_CHECK(kName, answered <= packet.size());
  }

  std::unique_ptr<basestation::RelayServer> relay_;
  absl::Time now_ = StartTime();
};

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::FuzzInput input(data, size);
  edgelink::fuzz::Harness harness;
  harness.Run(input);
  return 0;
}
