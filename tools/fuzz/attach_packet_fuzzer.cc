// Fuzzes basestation::AttachServer::OnPacket, the basestation's UDP attach port: every byte of it
// comes from the Internet before any authentication.
//
// Each run builds an AttachWorld (attach_world.h): a real device has attached, so the server holds
// one session whose keys the harness knows, and sealed packets can reach the parsers behind the
// AEAD. The input is a script of records (fuzz_input.h); op % 9:
//   0  raw datagram from the device's address
//   1  raw datagram from another address ((op >> 3) % 3: an IPv4 host, an IPv6 host, or the
//      device's IP with another port, as after a NAT rebinding; e.g. op 1, 10, 19)
//   2  packet sealed by the harness under the session keys, from the device's address:
//      type u8 (1 + type % 12) || packet number u8 || connection selector u8 || body
//      (selector 0: the session's id, 1: 0, 2: the id with its random half changed, other: the
//      id with another slot index)
//   3  the same from another address (the device moved)
//   4  time passes: u16 seconds, then OnTimeout if it is due
//   5  the real device's turn: its timers run, and what it sends reaches the basestation
//   6  basestation action, first byte % 3: Revoke, SendConnectRequest, SendDeviceRequest (the
//      record's other bytes are the payload)
//   7  the device restarts: Stop, Start, and a full exchange (a second handshake replaces the
//      session)
//   8  PROOF made by the harness, from the device's address (so the cookie check can be passed):
//      flags u8 (bit 0: genuine cookie, bit 1: genuine proof tag, bit 2: the directory now says
//      the device is revoked, bit 3: absolute timestamp) || timestamp (bit 3: u64 Unix seconds;
//      else u8, seconds from now as a signed byte) || device nonce[16] || server nonce[16] ||
//      device id (the rest)
// What the basestation sends to the device's address is delivered to the real device.
//
// Invariant checked: a raw (unauthenticated) datagram never makes the basestation send more
// bytes than it received (no amplification), unless it was accepted as a KEEPALIVE (an on-path
// replay of a captured, never-delivered packet can be).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tools/fuzz/attach_world.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "attach_packet_fuzzer";

net::Endpoint OtherAddress(uint8_t op) {
  switch ((op >> 3) % 3) {
    case 0:
      return net::Endpoint::Ipv4({192, 0, 2, 99}, 5555);
    case 1:
      return net::Endpoint::Ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9},
                                 5555);
    default:
      return AttachWorld::DeviceAddress().WithPort(40001);
  }
}

uint64_t SelectConnection(uint8_t selector, uint64_t session) {
  switch (selector) {
    case 0:
      return session;
    case 1:
      return 0;
    case 2:
      return session ^ 0x5a5a5a5a;
    default:
      return session ^ (uint64_t{selector} << 32);
  }
}

class Harness {
 public:
  Harness() : world_(AttachWorld::Stage::kAttached) {}

  void Run(FuzzInput& input) {
    FuzzInput::Record record;
    while (input.NextRecord(&record)) Step(record);
  }

 private:
  void Step(const FuzzInput::Record& record) {
    basestation::AttachServer& server = world_.server();
    FuzzInput bytes(record.bytes);
    switch (record.op % 9) {
      case 0:
        Raw(AttachWorld::DeviceAddress(), record.bytes);
        break;
      case 1:
        Raw(OtherAddress(record.op), record.bytes);
        break;
      case 2:
      case 3: {
        const auto type = static_cast<wire::PacketType>(1 + bytes.TakeByte() % 12);
        const uint64_t packet_number = bytes.TakeByte();
        const uint64_t connection_id =
            SelectConnection(bytes.TakeByte(), world_.connection_id());
        const std::vector<uint8_t> packet =
            world_.SealToServer(type, connection_id, packet_number, bytes.TakeRest());
        const net::Endpoint from =
            record.op % 9 == 2 ? AttachWorld::DeviceAddress() : OtherAddress(record.op);
        server.OnPacket(from, packet, world_.now);
        DeliverToDevice(server.TakeOutgoing());
        break;
      }
      case 4:
        world_.now += absl::Seconds(bytes.TakeU16());
        if (world_.now >= server.next_timeout()) server.OnTimeout(world_.now);
        DeliverToDevice(server.TakeOutgoing());
        break;
      case 5:
        if (world_.now >= world_.client().next_timeout()) world_.client().OnTimeout(world_.now);
        Exchange();
        break;
      case 6: {
        const uint8_t action = bytes.TakeByte() % 3;
        if (action == 0) {
          server.Revoke(kAttachDeviceId, world_.now);
        } else if (action == 1) {
          wire::ConnectRequest request;
          request.request_id = 7;
          request.client_name = "fuzz";
          request.client_candidates = {
              {wire::Candidate::Kind::kHost, net::Endpoint::Ipv4({10, 0, 0, 1}, 5000)}};
          (void)server.SendConnectRequest(kAttachDeviceId, request);
        } else {
          wire::DeviceRequest request;
          request.request_id = 8;
          request.method = "users.list";
          const absl::Span<const uint8_t> payload = bytes.TakeBytes(wire::kMaxPayload);
          request.payload.assign(payload.begin(), payload.end());
          (void)server.SendDeviceRequest(kAttachDeviceId, request);
        }
        DeliverToDevice(server.TakeOutgoing());
        break;
      }
      case 7:
        world_.client().Stop();
        world_.client().Start(world_.now);
        Exchange();
        break;
      case 8: {
        const uint8_t flags = bytes.TakeByte();
        wire::Proof proof;
        if ((flags & 8) != 0) {
          proof.timestamp_ms = bytes.TakeU64();
        } else {
          const auto delta = static_cast<int8_t>(bytes.TakeByte());
          // Half-second steps: +-63 s spans the cookie's lifetime and the clock-skew edge.
          proof.timestamp_ms =
              static_cast<uint64_t>(absl::ToUnixMillis(world_.now) + int64_t{delta} * 500);
        }
        const absl::Span<const uint8_t> device_nonce = bytes.TakeBytes(wire::kNonceSize);
        std::copy(device_nonce.begin(), device_nonce.end(), proof.device_nonce.begin());
        const absl::Span<const uint8_t> server_nonce = bytes.TakeBytes(wire::kNonceSize);
        std::copy(server_nonce.begin(), server_nonce.end(), proof.server_nonce.begin());
        const absl::Span<const uint8_t> id = bytes.TakeRest();
        proof.device_id.assign(id.begin(), id.end());
        world_.directory().revoked = (flags & 4) != 0;
        Raw(AttachWorld::DeviceAddress(),
            AttachWorld::MakeProof(AttachWorld::DeviceAddress(), std::move(proof),
                                   (flags & 1) != 0, (flags & 2) != 0));
        break;
      }
    }
    server.TakePresenceEvents();
    server.TakeReplies();
  }

  void Raw(const net::Endpoint& from, absl::Span<const uint8_t> packet) {
    basestation::AttachServer& server = world_.server();
    const uint64_t keepalives = server.counters().keepalives;
    server.OnPacket(from, packet, world_.now);
    std::vector<net::Datagram> out = server.TakeOutgoing();
    size_t sent = 0;
    for (const net::Datagram& d : out) sent += d.bytes.size();
    if (server.counters().keepalives == keepalives) {
      EDGELINK_FUZZ_CHECK(kName, sent <= packet.size());
    }
    DeliverToDevice(std::move(out));
  }

  // What the basestation sent to the device's address reaches the device; the rest is lost.
  void DeliverToDevice(std::vector<net::Datagram> datagrams) {
    for (const net::Datagram& d : datagrams) {
      EDGELINK_FUZZ_CHECK(kName, d.bytes.size() <= wire::kMaxPacketSize);
      if (d.to == AttachWorld::DeviceAddress()) {
        world_.client().OnPacket(AttachWorld::ServerAddress(), d.bytes, world_.now);
      }
    }
  }

  // A few rounds of device -> basestation -> device.
  void Exchange() {
    for (int round = 0; round < 4; ++round) {
      std::vector<net::Datagram> from_device = world_.client().TakeOutgoing();
      if (from_device.empty()) return;
      for (const net::Datagram& d : from_device) {
        world_.server().OnPacket(AttachWorld::DeviceAddress(), d.bytes, world_.now);
      }
      DeliverToDevice(world_.server().TakeOutgoing());
    }
  }

  AttachWorld world_;
};

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::FuzzInput input(data, size);
  edgelink::fuzz::Harness harness;
  harness.Run(input);
  return 0;
}
