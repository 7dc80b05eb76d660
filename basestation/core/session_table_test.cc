#include "basestation/core/session_table.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace edgelink::basestation {
namespace {

TEST(SessionTableTest, FindsByConnectionIdAndDeviceId) {
  SessionTable table;
  AttachSession& a = table.Insert("cam-a", 7);
  AttachSession& b = table.Insert("cam-b", 9);
  EXPECT_NE(a.connection_id, b.connection_id);
  EXPECT_EQ(table.Find(a.connection_id), &a);
  EXPECT_EQ(table.FindDevice("cam-b"), &b);
  EXPECT_EQ(table.FindDevice("cam-c"), nullptr);
  EXPECT_EQ(table.Find(0), nullptr);
  EXPECT_EQ(table.Find(a.connection_id ^ 1), nullptr);  // Right slot, wrong random bits.
  EXPECT_EQ(table.Find(uint64_t{5000} << 32 | 7), nullptr);  // Slot never used.
  EXPECT_EQ(table.size(), 2u);
}

TEST(SessionTableTest, ErasedSlotIsReusedAndItsOldIdIsDead) {
  SessionTable table;
  AttachSession& a = table.Insert("cam-a", 7);
  const uint64_t old_id = a.connection_id;
  table.Erase(a);
  EXPECT_EQ(table.Find(old_id), nullptr);
  EXPECT_EQ(table.FindDevice("cam-a"), nullptr);
  EXPECT_TRUE(table.empty());
  AttachSession& c = table.Insert("cam-c", 8);
  EXPECT_EQ(&c, &a);  // Same slot, new id.
  EXPECT_NE(c.connection_id, old_id);
  EXPECT_EQ(table.Find(old_id), nullptr);
  EXPECT_EQ(table.FindDevice("cam-c"), &c);
}

TEST(SessionTableTest, ManySessionsAcrossChunksStayAddressable) {
  SessionTable table;
  std::set<uint64_t> ids;
  for (int i = 0; i < 5000; ++i) {
    ids.insert(table.Insert(absl::StrCat("d-", i), static_cast<uint32_t>(i + 1)).connection_id);
  }
  EXPECT_EQ(ids.size(), 5000u);
  for (int i = 0; i < 5000; i += 2) table.Erase(*table.FindDevice(absl::StrCat("d-", i)));
  int seen = 0;
  table.ForEach([&](AttachSession& s) {
    ++seen;
    EXPECT_EQ(table.Find(s.connection_id), &s);
  });
  EXPECT_EQ(seen, 2500);
  EXPECT_NE(table.FindDevice("d-4999"), nullptr);
  EXPECT_EQ(table.FindDevice("d-4998"), nullptr);
}

TEST(SessionTableTest, SessionStaysSmall) {
  // attach_bench measures the whole process; this pins the part that scales with devices.
  EXPECT_LE(sizeof(AttachSession), 184u);
}

}  // namespace
}  // namespace edgelink::basestation
