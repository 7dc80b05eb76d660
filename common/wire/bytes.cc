#include "common/wire/bytes.h"

#include <algorithm>

namespace edgelink::wire {

bool ByteReader::Take(size_t size, const uint8_t** out) {
  if (!ok_ || data_.size() - offset_ < size) {
    ok_ = false;
    return false;
  }
  *out = data_.data() + offset_;
  offset_ += size;
  return true;
}

bool ByteReader::ReadU8(uint8_t* out) {
  const uint8_t* p;
  if (!Take(1, &p)) return false;
  *out = p[0];
  return true;
}

bool ByteReader::ReadU16(uint16_t* out) {
  const uint8_t* p;
  if (!Take(2, &p)) return false;
  *out = static_cast<uint16_t>(p[0] << 8 | p[1]);
  return true;
}

bool ByteReader::ReadU32(uint32_t* out) {
  const uint8_t* p;
  if (!Take(4, &p)) return false;
  *out = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
  return true;
}

bool ByteReader::ReadU64(uint64_t* out) {
  uint32_t high, low;
  if (remaining() < 8) {
    ok_ = false;
    return false;
  }
  ReadU32(&high);
  ReadU32(&low);
  *out = uint64_t{high} << 32 | low;
  return true;
}

bool ByteReader::ReadBytes(absl::Span<uint8_t> out) {
  const uint8_t* p;
  if (!Take(out.size(), &p)) return false;
  std::copy_n(p, out.size(), out.data());
  return true;
}

bool ByteReader::ReadSpan(size_t size, absl::Span<const uint8_t>* out) {
  const uint8_t* p;
  if (!Take(size, &p)) return false;
  *out = absl::MakeConstSpan(p, size);
  return true;
}

bool ByteReader::ReadString8(std::string* out) {
  uint8_t size;
  absl::Span<const uint8_t> bytes;
  const size_t start = offset_;
  if (!ReadU8(&size) || !ReadSpan(size, &bytes)) {
    offset_ = start;
    return false;
  }
  out->assign(bytes.begin(), bytes.end());
  return true;
}

void ByteWriter::WriteU16(uint16_t value) {
  bytes_.push_back(static_cast<uint8_t>(value >> 8));
  bytes_.push_back(static_cast<uint8_t>(value));
}

void ByteWriter::WriteU32(uint32_t value) {
  WriteU16(static_cast<uint16_t>(value >> 16));
  WriteU16(static_cast<uint16_t>(value));
}

void ByteWriter::WriteU64(uint64_t value) {
  WriteU32(static_cast<uint32_t>(value >> 32));
  WriteU32(static_cast<uint32_t>(value));
}

void ByteWriter::WriteString8(absl::string_view text) {
  const size_t size = std::min<size_t>(text.size(), 255);
  WriteU8(static_cast<uint8_t>(size));
  WriteBytes(AsBytes(text.substr(0, size)));
}

}  // namespace edgelink::wire
