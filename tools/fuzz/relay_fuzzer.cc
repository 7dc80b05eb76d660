// Fuzzes basestation::RelayServer::OnPacket, the relay's UDP port: control packets (BIND,
// REFLECT) and peer packets to forward, from anyone on the Internet.
//
// The input is a script of records (fuzz_input.h); the source address of a packet is one of four
// (relay_world.h), picked by (op >> 3) % 4. op % 8:
//   0     raw datagram
//   4     peer packet of a harness session (so forwarding is reached without guessing a channel
//         id): session u8 (one of six ids) || type u8 || rest (packet number, sealed bytes),
//         sent as 0x02 || type || channel id of the session || rest
//   1, 5  RELAY_BIND with a genuine ticket made by the harness (so sessions get bound and
//         forwarding is reached): side u8 || session u8 (one of six ids; two share a channel id)
//         || expiry u8 (seconds from now, minus 16, so some have expired) || extra padding length
//         u8 (each padding byte is zero)
//   2, 6  RELAY_REFLECT (well formed)
//   3, 7  time passes: u16 seconds, then OnTimeout if it is due
//
// Invariants checked: the relay never answers with more bytes than it received, every RELAY_BOUND
// it sends parses, a RELAY_REFLECTION names the address the REFLECT came from, and it forwards
// only peer packets, never back to their sender, and only between the two bound sides of the
// session their channel id names.
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
    switch (record.op % 8) {
      case 0:
        Packet(from, record.bytes);
        break;
      case 4: {
        const uint8_t session = bytes.TakeByte();
        const uint8_t type = bytes.TakeByte();
        Packet(from, RelayFuzzPeerPacket(session, type, bytes.TakeRest()));
        break;
      }
      case 1:
      case 5: {
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
      case 2:
      case 6: {
        std::vector<uint8_t> reflect(basestation::kRelayReflectSize, 0);
        reflect[0] = basestation::kRelayControlByte;
        reflect[1] = basestation::kRelayReflectType;
        Packet(from, reflect);
        break;
      }
      case 3:
      case 7:
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
      EDGELINK_FUZZ_CHECK(kName, packet.size() >= 18 && packet[0] == 0x02);
      // Only tickets the harness made can bind, so the two ends are among its sessions: the one
      // the packet's channel id names, `from` bound on one side and `to` on the other.
      uint64_t channel_id = 0;
      for (size_t i = 2; i < 10; ++i) channel_id = channel_id << 8 | packet[i];
      bool bound = false;
      for (uint8_t i = 0; i < kRelayFuzzSessions && !bound; ++i) {
        const basestation::RelaySessionId session = RelayFuzzSession(i);
        if (basestation::RelayChannelId(session) != channel_id) continue;
        const auto client = relay_->AddressOf(session, basestation::RelaySide::kClient);
        const auto device = relay_->AddressOf(session, basestation::RelaySide::kDevice);
        bound = (client == from && device == *to) || (device == from && client == *to);
      }
      EDGELINK_FUZZ_CHECK(kName, bound);
    }
    // Sessions 1 and 5 share a channel id: never both live.
    EDGELINK_FUZZ_CHECK(kName, !(Live(1) && Live(5)));
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

  // Whether harness session `index` exists (a session always has a side bound).
  bool Live(uint8_t index) const {
    const basestation::RelaySessionId session = RelayFuzzSession(index);
    return relay_->AddressOf(session, basestation::RelaySide::kClient).has_value() ||
           relay_->AddressOf(session, basestation::RelaySide::kDevice).has_value();
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
