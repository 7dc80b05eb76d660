// Fuzzes device::AttachClient::OnPacket, the device's view of its basestation: datagrams that
// claim to come from the basestation's address (anyone can spoof that), in each handshake state.
//
// Each run builds an AttachWorld (attach_world.h) and drives the real handshake against a real
// AttachServer to the stage the first input byte picks (% 3): hello (CHALLENGE pending), proof
// (ATTACHED pending) or attached. The harness knows the handshake's keys, so it can seal what a
// genuine basestation would. The rest of the input is a script of records (fuzz_input.h); op % 8:
//   0  raw datagram from the basestation's address
//   1  raw datagram from another address
//   2  packet sealed by the harness as the basestation would:
//      type u8 (1 + type % 12) || packet number u8 || connection selector u8 || body
//      (selector 0: the device's current connection id, 1: the session's id from ATTACHED,
//      2: 0, other: the session's id XOR the selector)
//   3  time passes: u16 in units of 100 ms, then OnTimeout if it is due
//   4  exchange with the real basestation: a few rounds of device -> basestation -> device
//   5  the real basestation sends a request, first byte % 2: CONNECT_REQUEST (fixed) or
//      DEVICE_REQUEST (the record's other bytes are the payload)
//   6  device control, first byte % 4: Stop, Start, Detach, SetServer (to another address and
//      back on the next one)
//   7  RESET with the genuine token, for: first byte % 3 = the current id, the session's, 0
//
// Invariants checked: the device only ever sends to its configured basestation, and never a
// datagram larger than wire::kMaxPacketSize.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tools/fuzz/attach_world.h"
#include "tools/fuzz/fuzz_input.h"

namespace edgelink::fuzz {
namespace {

constexpr char kName[] = "attach_client_fuzzer";

net::Endpoint OtherServer() { return net::Endpoint::Ipv4({203, 0, 113, 2}, 7000); }

class Harness {
 public:
  explicit Harness(AttachWorld::Stage stage) : world_(stage) {}

  void Run(FuzzInput& input) {
    FuzzInput::Record record;
    while (input.NextRecord(&record)) Step(record);
  }

 private:
  void Step(const FuzzInput::Record& record) {
    device::AttachClient& client = world_.client();
    basestation::AttachServer& server = world_.server();
    FuzzInput bytes(record.bytes);
    switch (record.op % 8) {
      case 0:
        client.OnPacket(server_address_, record.bytes, world_.now);
        break;
      case 1:
        client.OnPacket(OtherServer().WithPort(static_cast<uint16_t>(record.op)), record.bytes,
                        world_.now);
        break;
      case 2: {
        const auto type = static_cast<wire::PacketType>(1 + bytes.TakeByte() % 12);
        const uint64_t packet_number = bytes.TakeByte();
        const uint8_t selector = bytes.TakeByte();
        uint64_t connection_id;
        switch (selector) {
          case 0:
            connection_id = client.connection_id();
            break;
          case 1:
            connection_id = world_.connection_id();
            break;
          case 2:
            connection_id = 0;
            break;
          default:
            connection_id = world_.connection_id() ^ selector;
        }
        client.OnPacket(server_address_,
                        world_.SealToDevice(type, connection_id, packet_number, bytes.TakeRest()),
                        world_.now);
        break;
      }
      case 3:
        world_.now += absl::Milliseconds(100) * bytes.TakeU16();
        if (world_.now >= client.next_timeout()) client.OnTimeout(world_.now);
        break;
      case 4:
        Exchange();
        break;
      case 5:
        if (bytes.TakeByte() % 2 == 0) {
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
        DeliverFromServer();
        break;
      case 6:
        switch (bytes.TakeByte() % 4) {
          case 0:
            client.Stop();
            break;
          case 1:
            client.Start(world_.now);
            break;
          case 2:
            client.Detach();
            break;
          case 3:
            server_address_ = server_address_ == AttachWorld::ServerAddress()
                                  ? OtherServer()
                                  : AttachWorld::ServerAddress();
            client.SetServer(server_address_, world_.now);
            break;
        }
        break;
      case 7: {
        const uint8_t which = bytes.TakeByte() % 3;
        const uint64_t connection_id = which == 0   ? client.connection_id()
                                       : which == 1 ? world_.connection_id()
                                                    : 0;
        client.OnPacket(server_address_, AttachWorld::ResetFor(connection_id), world_.now);
        break;
      }
    }
    TakeFromDevice();
  }

  // Checks what the device sent and queues it for the basestation (bounded).
  void TakeFromDevice() {
    for (net::Datagram& d : world_.client().TakeOutgoing()) {
      EDGELINK_FUZZ_CHECK(kName, d.to == server_address_);
      EDGELINK_FUZZ_CHECK(kName, d.bytes.size() <= wire::kMaxPacketSize);
      if (to_server_.size() < 64) to_server_.push_back(std::move(d.bytes));
    }
  }

  void DeliverFromServer() {
    for (const net::Datagram& d : world_.server().TakeOutgoing()) {
      if (d.to == AttachWorld::DeviceAddress()) {
        world_.client().OnPacket(AttachWorld::ServerAddress(), d.bytes, world_.now);
      }
    }
    world_.server().TakePresenceEvents();
    world_.server().TakeReplies();
    TakeFromDevice();
  }

  // The real basestation only listens at its own address: packets the device sent elsewhere
  // (after SetServer) are lost.
  void Exchange() {
    for (int round = 0; round < 4 && !to_server_.empty(); ++round) {
      std::vector<std::vector<uint8_t>> packets = std::move(to_server_);
      to_server_.clear();
      if (server_address_ != AttachWorld::ServerAddress()) continue;
      for (const std::vector<uint8_t>& packet : packets) {
        world_.server().OnPacket(AttachWorld::DeviceAddress(), packet, world_.now);
      }
      DeliverFromServer();
    }
  }

  AttachWorld world_;
  net::Endpoint server_address_ = AttachWorld::ServerAddress();
  std::vector<std::vector<uint8_t>> to_server_;
};

AttachWorld::Stage StageFrom(uint8_t byte) {
  switch (byte % 3) {
    case 0:
      return AttachWorld::Stage::kHello;
    case 1:
      return AttachWorld::Stage::kProof;
    default:
      return AttachWorld::Stage::kAttached;
  }
}

}  // namespace
}  // namespace edgelink::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelink::fuzz::FuzzInput input(data, size);
  edgelink::fuzz::Harness harness(edgelink::fuzz::StageFrom(input.TakeByte()));
  harness.Run(input);
  return 0;
}
