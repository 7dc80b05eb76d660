// FuzzInput: how the multi-packet fuzz targets read their input. Most targets here are protocol
// state machines, so one input is a script of steps rather than a single datagram:
//
//   input   := prefix-bytes? record*
//   record  := op u8 || length u16 (big-endian) || bytes[length]
//
// A record whose length runs past the end takes what is left, so every input is a valid script.
// Each target documents what its ops mean; unknown ops fold onto known ones (op % count). The
// seed generator (corpus.cc) writes scripts with AppendRecord, so seeds and harnesses agree.
#ifndef EDGELINK_TOOLS_FUZZ_FUZZ_INPUT_H_
#define EDGELINK_TOOLS_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"

namespace edgelink::fuzz {

// Every harness starts its virtual clock here, so handshakes (cookie timestamps, tickets) are the
// same in every run and in the seed generator.
inline absl::Time StartTime() { return absl::FromUnixSeconds(1700000000); }

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data, size) {}
  explicit FuzzInput(absl::Span<const uint8_t> data) : data_(data) {}

  bool empty() const { return offset_ >= data_.size(); }
  size_t remaining() const { return data_.size() - offset_; }

  // The next byte, or 0 once the input is used up.
  uint8_t TakeByte() { return empty() ? 0 : data_[offset_++]; }
  uint16_t TakeU16() {
    const uint16_t high = TakeByte();
    return static_cast<uint16_t>(high << 8 | TakeByte());
  }
  uint64_t TakeU64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = value << 8 | TakeByte();
    return value;
  }
  // Up to `n` bytes (fewer at the end of the input).
  absl::Span<const uint8_t> TakeBytes(size_t n) {
    n = std::min(n, remaining());
    absl::Span<const uint8_t> out = data_.subspan(offset_, n);
    offset_ += n;
    return out;
  }
  absl::Span<const uint8_t> TakeRest() { return TakeBytes(remaining()); }

  struct Record {
    uint8_t op = 0;
    absl::Span<const uint8_t> bytes;
  };
  // NextRecord reads one record; false once the input is used up.
  bool NextRecord(Record* record) {
    if (empty()) return false;
    record->op = TakeByte();
    const uint16_t length = TakeU16();
    record->bytes = TakeBytes(length);
    return true;
  }

 private:
  absl::Span<const uint8_t> data_;
  size_t offset_ = 0;
};

inline void AppendRecord(std::vector<uint8_t>& out, uint8_t op, absl::Span<const uint8_t> bytes) {
  const size_t n = std::min<size_t>(bytes.size(), 0xffff);
  out.push_back(op);
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), bytes.begin(), bytes.begin() + n);
}

inline void AppendRecord(std::vector<uint8_t>& out, uint8_t op,
                         std::initializer_list<uint8_t> bytes) {
  AppendRecord(out, op, absl::MakeConstSpan(bytes.begin(), bytes.size()));
}

// Concatenation, for building record payloads in the seed generator.
inline std::vector<uint8_t> Concat(std::initializer_list<absl::Span<const uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (absl::Span<const uint8_t> part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A harness found a broken invariant of the code under test (not merely a rejected input): say
// which, and abort so libFuzzer saves the input. The regression test reports the same message.
[[noreturn]] inline void InvariantFailed(const char* fuzzer, const char* what) {
  std::fprintf(stderr, "%s: invariant violated: %s\n", fuzzer, what);
  std::abort();
}

#define EDGELINK_FUZZ_CHECK(fuzzer, condition) \
  do {                                         \
    if (!(condition)) ::edgelink::fuzz::InvariantFailed(fuzzer, #condition); \
  } while (0)

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_FUZZ_INPUT_H_
