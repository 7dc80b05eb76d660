// ByteReader and ByteWriter: bounds-checked big-endian encoding for the wire protocol.
#ifndef EDGELINK_COMMON_WIRE_BYTES_H_
#define EDGELINK_COMMON_WIRE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace edgelink::wire {

// ByteReader consumes a buffer it does not own. Every read checks the remaining length; a failed
// read returns false, consumes nothing, and leaves the reader failed (ok() == false), so a parser
// can read a whole message and check once at the end.
class ByteReader {
 public:
  explicit ByteReader(absl::Span<const uint8_t> data) : data_(data) {}

  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  // Copies exactly out.size() bytes.
  bool ReadBytes(absl::Span<uint8_t> out);
  // Returns a view of the next `size` bytes.
  bool ReadSpan(size_t size, absl::Span<const uint8_t>* out);
  // A string preceded by its one-byte length.
  bool ReadString8(std::string* out);

  size_t remaining() const { return ok_ ? data_.size() - offset_ : 0; }
  absl::Span<const uint8_t> rest() const { return data_.subspan(offset_); }
  bool ok() const { return ok_; }
  // True when everything was read and nothing failed.
  bool done() const { return ok_ && offset_ == data_.size(); }

 private:
  bool Take(size_t size, const uint8_t** out);

  absl::Span<const uint8_t> data_;
  size_t offset_ = 0;
  bool ok_ = true;
};

// ByteWriter appends to a vector it owns.
class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(size_t reserve) { bytes_.reserve(reserve); }

  void WriteU8(uint8_t value) { bytes_.push_back(value); }
  void WriteU16(uint16_t value);
  void WriteU32(uint32_t value);
  void WriteU64(uint64_t value);
  void WriteBytes(absl::Span<const uint8_t> bytes) {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  // Writes a one-byte length then the string; the caller keeps strings under 256 bytes.
  void WriteString8(absl::string_view text);
  void PadTo(size_t size) {
    if (bytes_.size() < size) bytes_.resize(size, 0);
  }

  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

inline absl::Span<const uint8_t> AsBytes(absl::string_view text) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_BYTES_H_
