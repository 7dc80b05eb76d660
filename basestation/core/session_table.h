// SessionTable: the attach server's sessions, stored compactly for hundreds of thousands of
// devices (docs/PROTOCOL.md; attach_bench measures bytes per attached device).
#ifndef EDGELINK_BASESTATION_CORE_SESSION_TABLE_H_
#define EDGELINK_BASESTATION_CORE_SESSION_TABLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "common/net/endpoint.h"
#include "common/wire/attach_crypto.h"
#include "common/wire/replay_window.h"

namespace edgelink::basestation {

// One attached device. 184 bytes.
struct AttachSession {
  std::string device_id;
  uint64_t connection_id = 0;  // 0: the slot is free.
  net::Endpoint address;
  wire::DirectionKeys rx;  // device to server
  wire::DirectionKeys tx;  // server to device
  wire::ReplayWindow replay;
  uint64_t tx_packet_number = 0;
  // The handshake that made this session: a PROOF with this device nonce (first 8 bytes) is a
  // retransmission (answered with ATTACHED again, under the same session nonce), and one with an
  // older or equal timestamp a replay.
  uint64_t device_nonce_prefix = 0;
  uint64_t proof_timestamp_ms = 0;
  wire::Nonce session_nonce{};
  uint32_t last_heard_s = 0;  // Seconds since the table's epoch (the owner's choice).
};

// Sessions live in fixed-size chunks, so they never move once made. A connection id is the slot
// index in its high 32 bits and 32 random bits below: finding a session by id is an index and a
// compare, and ids cannot be guessed from one another. The index by device id is a hash set of
// slot numbers (4 bytes each) that hashes through to the session's id. Not thread-safe.
class SessionTable {
 public:
  SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // Find returns the session with this connection id, or null.
  AttachSession* Find(uint64_t connection_id);
  AttachSession* FindDevice(absl::string_view device_id);
  // Insert makes a session for a device that has none (check FindDevice first), with a connection
  // id built from `random32`, which must be non-zero.
  AttachSession& Insert(std::string device_id, uint32_t random32);
  void Erase(AttachSession& session);

  size_t size() const { return by_device_.size(); }
  bool empty() const { return size() == 0; }

  template <typename F>
  void ForEach(F&& f) {
    for (uint32_t slot : by_device_) f(At(slot));
  }

 private:
  static constexpr uint32_t kChunkSize = 1024;

  AttachSession& At(uint32_t slot) { return chunks_[slot / kChunkSize][slot % kChunkSize]; }
  const AttachSession& At(uint32_t slot) const {
    return chunks_[slot / kChunkSize][slot % kChunkSize];
  }

  struct DeviceHash {
    using is_transparent = void;
    const SessionTable* table;
    size_t operator()(uint32_t slot) const;
    size_t operator()(absl::string_view id) const;
  };
  struct DeviceEq {
    using is_transparent = void;
    const SessionTable* table;
    absl::string_view Id(uint32_t slot) const { return table->At(slot).device_id; }
    absl::string_view Id(absl::string_view id) const { return id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) == Id(b);
    }
  };

  std::vector<std::unique_ptr<AttachSession[]>> chunks_;
  uint32_t slots_used_ = 0;       // Slots ever handed out (chunks_.size() * kChunkSize bounds it).
  std::vector<uint32_t> free_;    // Slots handed out and since erased.
  absl::flat_hash_set<uint32_t, DeviceHash, DeviceEq> by_device_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_CORE_SESSION_TABLE_H_
