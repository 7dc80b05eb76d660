// Fuzzes channel::PeerConnection::OnPacket, the client <-> device channel's receive path: peer
// packets from known and new addresses, and the relay's replies (first byte 0x03).
//
// Each run builds a PeerWorld (peer_world.h): a client and a device connection that went through
// the real setup with each other and a real RelayServer, so the client under test has a direct
// path, a relay path and paths still probing. The harness holds the device's keys and can seal
// what the device would send. The input is a script of records (fuzz_input.h); op % 8:
//   0  raw datagram from the device's address (a known path)
//   1  raw datagram from the relay's address (relay replies, or peer packets it forwards)
//   2  raw datagram from a new address ((op >> 3) % 2: IPv4 or IPv6)
//   3  packet sealed as the device would:
//      type u8 (1 + (type & 0x7f) % 5; bit 7: the next key generation) || packet number u16
//      (offset by 1000, past what the setup used) || payload; sent from (op >> 3) % 3: the
//      device's address, the relay's, a new address
//   4  time passes: u16 in units of 10 ms, then OnTimeout if it is due
//   5  client action, first byte % 4: Send (kind u8 || bytes), Close, AddRemoteCandidate
//      (kind u8 || IPv4 address[4] || port u16), Send of an oversized datagram
//   6  relay reply forms from the relay's address, first byte % 2: RELAY_BOUND for this session
//      with state u8, or RELAY_REFLECTION with endpoint bytes (family u8 || address || port)
//   7  exchange: what the client sent reaches the device and the relay, and their answers come
//      back, for a few rounds
//
// Invariants checked: the client only sends to the relay or to the remote address of one of its
// paths, never a datagram over kMaxPeerPacket, and an active path is always a usable one.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/wire/bytes.h"
#include "tools/fuzz/fuzz_input.h"
#include "tools/fuzz/peer_world.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "peer_channel_fuzzer";

net::Endpoint NewAddress(uint8_t op) {
  if ((op >> 3) % 2 == 0) return net::Endpoint::Ipv4({198, 51, 100, 9}, 7777);
  return net::Endpoint::Ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 6000);
}

class Harness {
 public:
  void Run(FuzzInput& input) {
    FuzzInput::Record record;
    while (input.NextRecord(&record)) {
      Step(record);
      Check();
    }
  }

 private:
  void Step(const FuzzInput::Record& record) {
    channel::PeerConnection& client = world_.client();
    FuzzInput bytes(record.bytes);
    switch (record.op % 8) {
      case 0:
        client.OnPacket(PeerWorld::DeviceAddress(), record.bytes, world_.now);
        break;
      case 1:
        client.OnPacket(PeerWorld::RelayAddress(), record.bytes, world_.now);
        break;
      case 2:
        client.OnPacket(NewAddress(record.op), record.bytes, world_.now);
        break;
      case 3: {
        const uint8_t type = bytes.TakeByte();
        const uint64_t packet_number = 1000 + uint64_t{bytes.TakeU16()};
        const std::vector<uint8_t> packet = world_.SealFromDevice(
            static_cast<channel::PeerPacketType>(1 + (type & 0x7f) % 5), (type & 0x80) != 0,
            packet_number, bytes.TakeBytes(channel::kMaxPeerPayload));
        switch ((record.op >> 3) % 3) {
          case 0:
            client.OnPacket(PeerWorld::DeviceAddress(), packet, world_.now);
            break;
          case 1:
            client.OnPacket(PeerWorld::RelayAddress(), packet, world_.now);
            break;
          default:
            client.OnPacket(NewAddress(record.op >> 1), packet, world_.now);
        }
        break;
      }
      case 4:
        world_.now += absl::Milliseconds(10) * bytes.TakeU16();
        if (world_.now >= client.next_timeout()) client.OnTimeout(world_.now);
        break;
      case 5:
        switch (bytes.TakeByte() % 4) {
          case 0: {
            const auto kind = static_cast<channel::DataKind>(1 + bytes.TakeByte() % 4);
            (void)client.Send(kind, bytes.TakeRest(), world_.now);
            break;
          }
          case 1:
            client.Close(world_.now);
            break;
          case 2: {
            const auto kind = static_cast<wire::Candidate::Kind>(1 + bytes.TakeByte() % 4);
            std::array<uint8_t, 4> ip{};
            for (uint8_t& b : ip) b = bytes.TakeByte();
            client.AddRemoteCandidate({kind, net::Endpoint::Ipv4(ip, bytes.TakeU16())},
                                      world_.now);
            break;
          }
          case 3: {
            const std::vector<uint8_t> big(channel::kMaxPeerPayload + bytes.TakeByte() % 4, 0x42);
            (void)client.Send(channel::DataKind::kStream, big, world_.now);
            break;
          }
        }
        break;
      case 6: {
        wire::ByteWriter out;
        out.WriteU8(channel::kRelayMarker);
        if (bytes.TakeByte() % 2 == 0) {
          out.WriteU8(2);  // RELAY_BOUND
          out.WriteBytes(PeerWorld::SessionId());
          out.WriteU8(bytes.TakeByte());
        } else {
          out.WriteU8(4);  // RELAY_REFLECTION
          out.WriteBytes(bytes.TakeRest());
        }
        client.OnPacket(PeerWorld::RelayAddress(), out.bytes(), world_.now);
        break;
      }
      case 7: {
        std::vector<net::Datagram> pending = std::move(pending_);
        pending_.clear();
        for (const net::Datagram& d : pending) world_.Deliver(PeerWorld::ClientAddress(), d);
        world_.Pump([this](const net::Datagram& d) { CheckSent(d); });
        break;
      }
    }
  }

  void CheckSent(const net::Datagram& d) {
    EDGELINK_FUZZ_CHECK(kName, d.bytes.size() <= channel::kMaxPeerPacket);
    bool known = d.to == PeerWorld::RelayAddress();
    for (const channel::PeerConnection::Path& path : world_.client().paths()) {
      known |= path.remote == d.to;
    }
    EDGELINK_FUZZ_CHECK(kName, known);
  }

  // Checks what the client sent and keeps it (bounded) for the next exchange.
  void Check() {
    channel::PeerConnection& client = world_.client();
    for (net::Datagram& d : client.TakeOutgoing()) {
      CheckSent(d);
      if (pending_.size() < 64) pending_.push_back(std::move(d));
    }
    if (const channel::PeerConnection::Path* active = client.active_path()) {
      EDGELINK_FUZZ_CHECK(kName, active->state == channel::PeerConnection::PathState::kUsable);
    }
    client.TakeReceived();
  }

  PeerWorld world_;
  std::vector<net::Datagram> pending_;
};

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::FuzzInput input(data, size);
  edgelink::fuzz::Harness harness;
  harness.Run(input);
  return 0;
}
