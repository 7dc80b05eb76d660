#include "basestation/core/session_table.h"

#include <utility>

#include "absl/hash/hash.h"

namespace edgelink::basestation {

size_t SessionTable::DeviceHash::operator()(uint32_t slot) const {
  return absl::Hash<absl::string_view>()(table->At(slot).device_id);
}

size_t SessionTable::DeviceHash::operator()(absl::string_view id) const {
  return absl::Hash<absl::string_view>()(id);
}

SessionTable::SessionTable() : by_device_(0, DeviceHash{this}, DeviceEq{this}) {}

AttachSession* SessionTable::Find(uint64_t connection_id) {
  const uint64_t slot = connection_id >> 32;
  if (connection_id == 0 || slot >= slots_used_) return nullptr;
  AttachSession& session = At(static_cast<uint32_t>(slot));
  return session.connection_id == connection_id ? &session : nullptr;
}

AttachSession* SessionTable::FindDevice(absl::string_view device_id) {
  auto it = by_device_.find(device_id);
  return it == by_device_.end() ? nullptr : &At(*it);
}

AttachSession& SessionTable::Insert(std::string device_id, uint32_t random32) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slots_used_ == chunks_.size() * kChunkSize) {
      chunks_.push_back(std::make_unique<AttachSession[]>(kChunkSize));
    }
    slot = slots_used_++;
  }
  AttachSession& session = At(slot);
  session = AttachSession();
  session.device_id = std::move(device_id);
  session.connection_id = uint64_t{slot} << 32 | random32;
  by_device_.insert(slot);
  return session;
}

void SessionTable::Erase(AttachSession& session) {
  const uint32_t slot = static_cast<uint32_t>(session.connection_id >> 32);
  by_device_.erase(slot);
  // Wipes the keys (DirectionKeys zero themselves) and frees the id's heap, if any.
  session = AttachSession();
  free_.push_back(slot);
}

}  // namespace edgelink::basestation
