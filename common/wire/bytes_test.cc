#include "common/wire/bytes.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

using ::testing::ElementsAre;
using ::testing::Each;
using ::testing::Eq;

// --- ByteWriter: big-endian layout ---

TEST(ByteWriterTest, WritesIntegersBigEndian) {
  ByteWriter out;
  out.WriteU8(0x01);
  out.WriteU16(0x0203);
  out.WriteU32(0x04050607);
  out.WriteU64(0x08090a0b0c0d0e0f);
  EXPECT_THAT(out.bytes(), ElementsAre(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                       0x0b, 0x0c, 0x0d, 0x0e, 0x0f));
  EXPECT_EQ(out.size(), 15u);
}

TEST(ByteWriterTest, WriteString8PrefixesTheLength) {
  ByteWriter out;
  out.WriteString8("abc");
  out.WriteString8("");
  EXPECT_THAT(out.bytes(), ElementsAre(3, 'a', 'b', 'c', 0));
}

TEST(ByteWriterTest, WriteString8TruncatesAt255Bytes) {
  std::string long_text(300, 'x');
  long_text[254] = 'L';  // last byte kept
  long_text[255] = 'D';  // first byte dropped
  ByteWriter out;
  out.WriteString8(long_text);
  ASSERT_EQ(out.size(), 1u + 255u);
  EXPECT_EQ(out.bytes()[0], 255);
  EXPECT_EQ(out.bytes()[255], 'L');

  ByteReader in(out.bytes());
  std::string read;
  ASSERT_TRUE(in.ReadString8(&read));
  EXPECT_EQ(read, long_text.substr(0, 255));
  EXPECT_TRUE(in.done());
}

TEST(ByteWriterTest, WriteString8KeepsExactly255Bytes) {
  const std::string text(255, 'y');
  ByteWriter out;
  out.WriteString8(text);
  ASSERT_EQ(out.size(), 256u);
  EXPECT_EQ(out.bytes()[0], 255);
  ByteReader in(out.bytes());
  std::string read;
  ASSERT_TRUE(in.ReadString8(&read));
  EXPECT_EQ(read, text);
}

TEST(ByteWriterTest, PadToAppendsZerosUpToTheSize) {
  ByteWriter out;
  out.WriteU16(0xffff);
  out.PadTo(6);
  EXPECT_THAT(out.bytes(), ElementsAre(0xff, 0xff, 0, 0, 0, 0));
}

TEST(ByteWriterTest, PadToNeverShrinks) {
  ByteWriter out;
  out.WriteU32(0xaabbccdd);
  out.PadTo(2);
  out.PadTo(4);
  EXPECT_THAT(out.bytes(), ElementsAre(0xaa, 0xbb, 0xcc, 0xdd));
}

TEST(ByteWriterTest, PadToOnEmptyWriterGivesAllZeros) {
  ByteWriter out;
  out.PadTo(78);
  EXPECT_EQ(out.size(), 78u);
  EXPECT_THAT(out.bytes(), Each(Eq(0)));
}

TEST(ByteWriterTest, TakeHandsOverTheBytes) {
  ByteWriter out(8);
  out.WriteU16(0x1234);
  const std::vector<uint8_t> bytes = out.Take();
  EXPECT_THAT(bytes, ElementsAre(0x12, 0x34));
}

// --- ByteReader: round trips ---

TEST(ByteReaderTest, RoundTripsEveryWidthAtItsEdges) {
  const std::vector<uint8_t> u8s = {0, 1, 0x7f, 0x80, 0xff};
  const std::vector<uint16_t> u16s = {0, 1, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xffff};
  const std::vector<uint32_t> u32s = {0, 1, 0xff, 0xffff, 0x01000000, 0x7fffffff, 0x80000000,
                                      0xffffffff};
  const std::vector<uint64_t> u64s = {0,
                                      1,
                                      0xffffffff,
                                      0x100000000,
                                      0x0123456789abcdef,
                                      0x7fffffffffffffff,
                                      0x8000000000000000,
                                      std::numeric_limits<uint64_t>::max()};
  ByteWriter out;
  for (uint8_t v : u8s) out.WriteU8(v);
  for (uint16_t v : u16s) out.WriteU16(v);
  for (uint32_t v : u32s) out.WriteU32(v);
  for (uint64_t v : u64s) out.WriteU64(v);
  EXPECT_EQ(out.size(), u8s.size() + 2 * u16s.size() + 4 * u32s.size() + 8 * u64s.size());

  ByteReader in(out.bytes());
  for (uint8_t want : u8s) {
    uint8_t got = 0;
    ASSERT_TRUE(in.ReadU8(&got));
    EXPECT_EQ(got, want);
  }
  for (uint16_t want : u16s) {
    uint16_t got = 0;
    ASSERT_TRUE(in.ReadU16(&got));
    EXPECT_EQ(got, want);
  }
  for (uint32_t want : u32s) {
    uint32_t got = 0;
    ASSERT_TRUE(in.ReadU32(&got));
    EXPECT_EQ(got, want);
  }
  for (uint64_t want : u64s) {
    uint64_t got = 0;
    ASSERT_TRUE(in.ReadU64(&got));
    EXPECT_EQ(got, want);
  }
  EXPECT_TRUE(in.done());
}

TEST(ByteReaderTest, ReadsHandWrittenBigEndianBytes) {
  const std::vector<uint8_t> data = {0x80, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
                                     0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  ByteReader in(data);
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  ASSERT_TRUE(in.ReadU8(&u8));
  ASSERT_TRUE(in.ReadU16(&u16));
  ASSERT_TRUE(in.ReadU32(&u32));
  ASSERT_TRUE(in.ReadU64(&u64));
  EXPECT_EQ(u8, 0x80);
  EXPECT_EQ(u16, 0x0102);
  EXPECT_EQ(u32, 0xdeadbeefu);
  EXPECT_EQ(u64, 0x0102030405060708u);
  EXPECT_TRUE(in.done());
}

TEST(ByteReaderTest, ReadString8RoundTrips) {
  ByteWriter out;
  out.WriteString8("front-door");
  out.WriteString8("");
  out.WriteString8(std::string("a\0b", 3));
  ByteReader in(out.bytes());
  std::string a, b, c;
  ASSERT_TRUE(in.ReadString8(&a));
  ASSERT_TRUE(in.ReadString8(&b));
  ASSERT_TRUE(in.ReadString8(&c));
  EXPECT_EQ(a, "front-door");
  EXPECT_EQ(b, "");
  EXPECT_EQ(c, std::string("a\0b", 3));
  EXPECT_TRUE(in.done());
}

TEST(ByteReaderTest, ReadBytesAndReadSpanTakeExactSizes) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  ByteReader in(data);
  std::vector<uint8_t> two(2);
  ASSERT_TRUE(in.ReadBytes(absl::MakeSpan(two)));
  EXPECT_THAT(two, ElementsAre(1, 2));
  absl::Span<const uint8_t> view;
  ASSERT_TRUE(in.ReadSpan(3, &view));
  EXPECT_THAT(view, ElementsAre(3, 4, 5));
  // A view, not a copy.
  EXPECT_EQ(view.data(), data.data() + 2);
  EXPECT_TRUE(in.done());
}

TEST(ByteReaderTest, ZeroSizeReadsSucceedEvenWhenEmpty) {
  ByteReader in(absl::Span<const uint8_t>{});
  absl::Span<const uint8_t> view;
  EXPECT_TRUE(in.ReadSpan(0, &view));
  EXPECT_TRUE(view.empty());
  EXPECT_TRUE(in.ReadBytes(absl::Span<uint8_t>{}));
  EXPECT_TRUE(in.done());
}

TEST(ByteReaderTest, RemainingCountsDown) {
  const std::vector<uint8_t> data(11, 0);
  ByteReader in(data);
  EXPECT_EQ(in.remaining(), 11u);
  uint16_t u16;
  ASSERT_TRUE(in.ReadU16(&u16));
  EXPECT_EQ(in.remaining(), 9u);
  uint64_t u64;
  ASSERT_TRUE(in.ReadU64(&u64));
  EXPECT_EQ(in.remaining(), 1u);
  EXPECT_EQ(in.rest().size(), 1u);
}

// --- ByteReader: reads past the end ---

// Each short read: returns false, leaves `out` untouched, consumes nothing (rest() unchanged) and
// fails the reader, so even a read that would have fit afterwards fails.
TEST(ByteReaderTest, ShortReadU16FailsConsumesNothingAndSticks) {
  const std::vector<uint8_t> data = {0xab};
  ByteReader in(data);
  uint16_t out = 0x5555;
  EXPECT_FALSE(in.ReadU16(&out));
  EXPECT_EQ(out, 0x5555);
  EXPECT_FALSE(in.ok());
  EXPECT_EQ(in.rest().size(), 1u);
  EXPECT_EQ(in.remaining(), 0u);
  uint8_t fits = 0;
  EXPECT_FALSE(in.ReadU8(&fits));
  EXPECT_EQ(fits, 0);
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, ShortReadU32FailsConsumesNothingAndSticks) {
  const std::vector<uint8_t> data = {1, 2, 3};
  ByteReader in(data);
  uint32_t out = 0x55555555;
  EXPECT_FALSE(in.ReadU32(&out));
  EXPECT_EQ(out, 0x55555555u);
  EXPECT_FALSE(in.ok());
  EXPECT_EQ(in.rest().size(), 3u);
  uint16_t fits = 0;
  EXPECT_FALSE(in.ReadU16(&fits));
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, ShortReadU64FailsConsumesNothingAndSticks) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5, 6, 7};
  ByteReader in(data);
  uint64_t out = 0x5555555555555555;
  EXPECT_FALSE(in.ReadU64(&out));
  EXPECT_EQ(out, 0x5555555555555555u);
  EXPECT_FALSE(in.ok());
  EXPECT_EQ(in.rest().size(), 7u);
  uint32_t fits = 0;
  EXPECT_FALSE(in.ReadU32(&fits));
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, ReadU8OnEmptyFails) {
  ByteReader in(absl::Span<const uint8_t>{});
  uint8_t out = 7;
  EXPECT_FALSE(in.ReadU8(&out));
  EXPECT_EQ(out, 7);
  EXPECT_FALSE(in.ok());
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, ShortReadBytesAndReadSpanFailAndConsumeNothing) {
  const std::vector<uint8_t> data = {1, 2, 3};
  {
    ByteReader in(data);
    std::vector<uint8_t> out(4, 0xee);
    EXPECT_FALSE(in.ReadBytes(absl::MakeSpan(out)));
    EXPECT_THAT(out, Each(Eq(0xee)));
    EXPECT_FALSE(in.ok());
    EXPECT_EQ(in.rest().size(), 3u);
  }
  {
    ByteReader in(data);
    absl::Span<const uint8_t> view;
    EXPECT_FALSE(in.ReadSpan(4, &view));
    EXPECT_TRUE(view.empty());
    EXPECT_FALSE(in.ok());
    EXPECT_EQ(in.rest().size(), 3u);
  }
  {
    // A size that would overflow an offset + size comparison.
    ByteReader in(data);
    absl::Span<const uint8_t> view;
    EXPECT_FALSE(in.ReadSpan(std::numeric_limits<size_t>::max(), &view));
    EXPECT_FALSE(in.ok());
  }
}

TEST(ByteReaderTest, ReadString8WithShortBodyConsumesNotEvenTheLength) {
  // Length byte says 5; only 2 bytes follow.
  const std::vector<uint8_t> data = {5, 'a', 'b'};
  ByteReader in(data);
  std::string out = "unchanged";
  EXPECT_FALSE(in.ReadString8(&out));
  EXPECT_EQ(out, "unchanged");
  EXPECT_FALSE(in.ok());
  EXPECT_EQ(in.rest().size(), 3u);
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, ReadString8OnEmptyFails) {
  ByteReader in(absl::Span<const uint8_t>{});
  std::string out = "unchanged";
  EXPECT_FALSE(in.ReadString8(&out));
  EXPECT_EQ(out, "unchanged");
  EXPECT_FALSE(in.ok());
}

TEST(ByteReaderTest, FailureAfterSuccessfulReadsKeepsTheirOffset) {
  const std::vector<uint8_t> data = {1, 2, 3};
  ByteReader in(data);
  uint16_t first = 0;
  ASSERT_TRUE(in.ReadU16(&first));
  uint16_t second = 0;
  EXPECT_FALSE(in.ReadU16(&second));
  EXPECT_EQ(first, 0x0102);
  EXPECT_EQ(in.rest().size(), 1u);
  EXPECT_FALSE(in.ok());
}

// --- done() ---

TEST(ByteReaderTest, DoneOnlyWhenEverythingWasReadWithoutFailure) {
  const std::vector<uint8_t> data = {1, 2, 3};
  ByteReader in(data);
  EXPECT_FALSE(in.done());
  uint16_t u16 = 0;
  ASSERT_TRUE(in.ReadU16(&u16));
  EXPECT_FALSE(in.done());
  uint8_t u8 = 0;
  ASSERT_TRUE(in.ReadU8(&u8));
  EXPECT_TRUE(in.done());
  EXPECT_TRUE(in.ok());
  // A failed read at the end makes the reader not done, though the offset is at the end.
  EXPECT_FALSE(in.ReadU8(&u8));
  EXPECT_FALSE(in.done());
}

TEST(ByteReaderTest, EmptyReaderIsDoneAtOnce) {
  ByteReader in(absl::Span<const uint8_t>{});
  EXPECT_TRUE(in.ok());
  EXPECT_TRUE(in.done());
  EXPECT_EQ(in.remaining(), 0u);
}

TEST(AsBytesTest, ViewsTheStringsBytes) {
  const std::string text = "hi\xff";
  const absl::Span<const uint8_t> bytes = AsBytes(text);
  EXPECT_THAT(bytes, ElementsAre('h', 'i', 0xff));
  EXPECT_EQ(static_cast<const void*>(bytes.data()), static_cast<const void*>(text.data()));
}

}  // namespace
}  // namespace edgelink::wire
