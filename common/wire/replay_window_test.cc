#include "common/wire/replay_window.h"

#include <cstdint>
#include <limits>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace edgelink::wire {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// The two-step use the header asks for: check, then (after authentication) record.
bool CheckAndAccept(ReplayWindow& window, uint64_t pn) {
  if (!window.CanAccept(pn)) return false;
  window.Accept(pn);
  return true;
}

TEST(ReplayWindowTest, FreshWindowAcceptsAnyPacketNumber) {
  const ReplayWindow window;
  for (uint64_t pn : {uint64_t{0}, uint64_t{1}, uint64_t{63}, uint64_t{64}, uint64_t{1} << 40,
                      kMax - 1, kMax}) {
    EXPECT_TRUE(window.CanAccept(pn)) << pn;
  }
}

TEST(ReplayWindowTest, RejectsDuplicate) {
  ReplayWindow window;
  EXPECT_TRUE(CheckAndAccept(window, 5));
  EXPECT_FALSE(window.CanAccept(5));
  EXPECT_TRUE(CheckAndAccept(window, 6));
  EXPECT_FALSE(window.CanAccept(5));
  EXPECT_FALSE(window.CanAccept(6));
}

TEST(ReplayWindowTest, PacketNumberZeroIsAcceptedOnceLikeAnyOther) {
  ReplayWindow window;
  EXPECT_TRUE(CheckAndAccept(window, 0));
  EXPECT_EQ(window.highest(), 0u);
  EXPECT_FALSE(window.CanAccept(0));
  EXPECT_TRUE(CheckAndAccept(window, 1));
  EXPECT_FALSE(window.CanAccept(0));
  EXPECT_FALSE(window.CanAccept(1));
}

TEST(ReplayWindowTest, ZeroAcceptedLateWithinTheWindowOnlyOnce) {
  ReplayWindow window;
  EXPECT_TRUE(CheckAndAccept(window, 10));
  EXPECT_TRUE(CheckAndAccept(window, 0));
  EXPECT_FALSE(window.CanAccept(0));
  EXPECT_EQ(window.highest(), 10u);
}

TEST(ReplayWindowTest, OutOfOrderWithinTheWindowIsAcceptedOnce) {
  ReplayWindow window;
  EXPECT_TRUE(CheckAndAccept(window, 100));
  for (uint64_t pn : {uint64_t{99}, uint64_t{70}, uint64_t{37}, uint64_t{98}}) {
    EXPECT_TRUE(CheckAndAccept(window, pn)) << pn;
    EXPECT_FALSE(window.CanAccept(pn)) << pn;
  }
  EXPECT_EQ(window.highest(), 100u);
  // Numbers in the window not yet seen are still accepted.
  EXPECT_TRUE(window.CanAccept(97));
  EXPECT_TRUE(window.CanAccept(38));
}

TEST(ReplayWindowTest, Accepts63BelowHighestAndRejects64Below) {
  ReplayWindow window;
  ASSERT_TRUE(CheckAndAccept(window, 1000));
  EXPECT_TRUE(window.CanAccept(1000 - 63));
  EXPECT_FALSE(window.CanAccept(1000 - 64));
  EXPECT_FALSE(window.CanAccept(1000 - 65));
  EXPECT_FALSE(window.CanAccept(0));
  EXPECT_TRUE(CheckAndAccept(window, 1000 - 63));
  EXPECT_FALSE(window.CanAccept(1000 - 63));
}

TEST(ReplayWindowTest, OldestSlotSurvivesASlideOf63) {
  ReplayWindow window;
  ASSERT_TRUE(CheckAndAccept(window, 200));
  ASSERT_TRUE(CheckAndAccept(window, 263));  // 200 is now exactly 63 below: still remembered.
  EXPECT_FALSE(window.CanAccept(200));
  EXPECT_TRUE(window.CanAccept(201));
  ASSERT_TRUE(CheckAndAccept(window, 264));  // 200 is now 64 below: too old.
  EXPECT_FALSE(window.CanAccept(200));
  EXPECT_TRUE(window.CanAccept(201));
}

TEST(ReplayWindowTest, SmallSlideKeepsSeenBits) {
  ReplayWindow window;
  for (uint64_t pn : {uint64_t{10}, uint64_t{12}, uint64_t{15}}) ASSERT_TRUE(CheckAndAccept(window, pn));
  ASSERT_TRUE(CheckAndAccept(window, 20));
  EXPECT_FALSE(window.CanAccept(10));
  EXPECT_FALSE(window.CanAccept(12));
  EXPECT_FALSE(window.CanAccept(15));
  EXPECT_TRUE(window.CanAccept(11));
  EXPECT_TRUE(window.CanAccept(13));
  EXPECT_TRUE(window.CanAccept(19));
}

TEST(ReplayWindowTest, JumpOfMoreThan64ClearsTheBitmap) {
  ReplayWindow window;
  for (uint64_t pn = 0; pn < 64; ++pn) ASSERT_TRUE(CheckAndAccept(window, pn));
  ASSERT_TRUE(CheckAndAccept(window, 63 + 100));
  EXPECT_EQ(window.highest(), 163u);
  // Everything in the new window except its top is unseen, including numbers that were in the
  // old bitmap's bit positions.
  for (uint64_t pn = 163 - 63; pn < 163; ++pn) EXPECT_TRUE(window.CanAccept(pn)) << pn;
  EXPECT_FALSE(window.CanAccept(163));
  // The old numbers are below the window now.
  for (uint64_t pn = 0; pn < 64; ++pn) EXPECT_FALSE(window.CanAccept(pn)) << pn;
}

TEST(ReplayWindowTest, JumpOfExactly64ClearsTheBitmap) {
  ReplayWindow window;
  for (uint64_t pn = 0; pn <= 10; ++pn) ASSERT_TRUE(CheckAndAccept(window, pn));
  ASSERT_TRUE(CheckAndAccept(window, 10 + 64));
  for (uint64_t pn = 11; pn < 74; ++pn) EXPECT_TRUE(window.CanAccept(pn)) << pn;
  EXPECT_FALSE(window.CanAccept(10));
  EXPECT_FALSE(window.CanAccept(74));
}

TEST(ReplayWindowTest, HandlesMaximumPacketNumber) {
  ReplayWindow window;
  ASSERT_TRUE(CheckAndAccept(window, 0));
  // A jump of 2^64 - 1 must not shift by 64 or more (undefined) nor wrap.
  ASSERT_TRUE(CheckAndAccept(window, kMax));
  EXPECT_EQ(window.highest(), kMax);
  EXPECT_FALSE(window.CanAccept(kMax));
  EXPECT_TRUE(window.CanAccept(kMax - 1));
  EXPECT_TRUE(window.CanAccept(kMax - 63));
  EXPECT_FALSE(window.CanAccept(kMax - 64));
  EXPECT_FALSE(window.CanAccept(0));
  ASSERT_TRUE(CheckAndAccept(window, kMax - 63));
  EXPECT_FALSE(window.CanAccept(kMax - 63));
}

TEST(ReplayWindowTest, MaximumAsFirstPacketNumber) {
  ReplayWindow window;
  ASSERT_TRUE(CheckAndAccept(window, kMax));
  EXPECT_FALSE(window.CanAccept(kMax));
  EXPECT_TRUE(window.CanAccept(kMax - 1));
  EXPECT_FALSE(window.CanAccept(0));
}

TEST(ReplayWindowTest, CanAcceptNeverChangesTheWindow) {
  ReplayWindow window;
  // Checked but never accepted (say it failed authentication): it must not move the window.
  EXPECT_TRUE(window.CanAccept(1'000'000));
  EXPECT_TRUE(window.CanAccept(1'000'000));
  ASSERT_TRUE(CheckAndAccept(window, 50));
  EXPECT_EQ(window.highest(), 50u);
  EXPECT_TRUE(window.CanAccept(1'000'000));
  EXPECT_TRUE(window.CanAccept(1'000'000));
  EXPECT_EQ(window.highest(), 50u);
  EXPECT_TRUE(window.CanAccept(49));
  EXPECT_TRUE(window.CanAccept(49));
  EXPECT_FALSE(window.CanAccept(50));
  EXPECT_FALSE(window.CanAccept(50));
  // 49 was only checked, so it is still acceptable.
  EXPECT_TRUE(CheckAndAccept(window, 49));
  EXPECT_FALSE(window.CanAccept(49));
}

// Compares the window against a set-based model over a seeded stream of packet numbers around a
// moving base: reordering, duplicates and jumps.
TEST(ReplayWindowTest, MatchesAReferenceModelOnSeededTraffic) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> offset(-80, 8);
  std::uniform_int_distribution<int> jump(0, 99);
  ReplayWindow window;
  std::set<uint64_t> accepted;
  uint64_t base = 100;
  int accepts = 0, rejects = 0;
  for (int i = 0; i < 20000; ++i) {
    if (jump(rng) == 0) base += 70 + jump(rng);  // occasionally leave the window behind
    base += 1;
    const uint64_t pn = base + offset(rng);
    const uint64_t highest = accepted.empty() ? 0 : *accepted.rbegin();
    const bool model = accepted.count(pn) == 0 &&
                       (accepted.empty() || pn > highest || highest - pn < ReplayWindow::kSize);
    ASSERT_EQ(window.CanAccept(pn), model) << "i=" << i << " pn=" << pn << " highest=" << highest;
    if (model) {
      window.Accept(pn);
      accepted.insert(pn);
      ++accepts;
    } else {
      ++rejects;
    }
    ASSERT_EQ(window.highest(), *accepted.rbegin());
  }
  // The stream exercised both outcomes.
  EXPECT_GT(accepts, 1000);
  EXPECT_GT(rejects, 1000);
}

}  // namespace
}  // namespace edgelink::wire
