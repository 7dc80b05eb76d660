#include "common/io/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/io/run_until.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgelink::io {
namespace {

using ::edgelink::testing::IsOk;
using ::edgelink::testing::StatusIs;
using ::testing::ElementsAre;

// A loop on a clock the test moves by hand.
class FakeClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(loop_, EventLoop::New([this] { return now_; }));
  }
  void Advance(absl::Duration d) { now_ += d; }
  absl::Time At(int ms) const { return start_ + absl::Milliseconds(ms); }

  const absl::Time start_ = absl::FromUnixSeconds(1700000000);
  absl::Time now_ = start_;
  std::unique_ptr<EventLoop> loop_;
};

// An eventfd that owns itself; Signal() makes it readable until Drain().
class TestFd {
 public:
  TestFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~TestFd() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  void Signal() const {
    const uint64_t one = 1;
    ASSERT_EQ(write(fd_, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }
  void Drain() const {
    uint64_t value;
    [[maybe_unused]] ssize_t n = read(fd_, &value, sizeof(value));
  }

 private:
  const int fd_;
};

TEST_F(FakeClockTest, FiresTimersByDeadlineThenAddOrderAndSkipsCancelled) {
  std::vector<std::string> fired;
  loop_->AddTimer(At(30), [&] { fired.push_back("30"); });
  loop_->AddTimer(At(10), [&] { fired.push_back("10a"); });
  const TimerId cancelled = loop_->AddTimer(At(20), [&] { fired.push_back("20-cancelled"); });
  loop_->AddTimer(At(20), [&] { fired.push_back("20"); });
  loop_->AddTimer(At(10), [&] { fired.push_back("10b"); });
  loop_->CancelTimer(cancelled);
  loop_->CancelTimer(cancelled);  // Twice is harmless.

  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(fired.empty());
  Advance(absl::Milliseconds(25));
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(fired, ElementsAre("10a", "10b", "20"));
  Advance(absl::Milliseconds(5));  // Exactly the deadline: due.
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(fired, ElementsAre("10a", "10b", "20", "30"));
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
}

TEST_F(FakeClockTest, InfiniteFutureMeansNoTimer) {
  bool fired = false;
  EXPECT_EQ(loop_->AddTimer(absl::InfiniteFuture(), [&] { fired = true; }), kNoTimer);
  Advance(absl::Hours(24 * 365));
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_FALSE(fired);
  loop_->CancelTimer(kNoTimer);  // No-op.
}

TEST_F(FakeClockTest, TimerCallbacksMayCancelAndAddTimers) {
  std::vector<std::string> fired;
  TimerId second = kNoTimer;
  loop_->AddTimer(At(1), [&] {
    fired.push_back("first");
    loop_->CancelTimer(second);  // Also due this round: must not run.
    loop_->AddTimer(At(0), [&] { fired.push_back("added-already-due"); });
  });
  second = loop_->AddTimer(At(2), [&] { fired.push_back("second"); });
  Advance(absl::Milliseconds(5));
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  // A timer added by a callback waits for the next round even if due.
  EXPECT_THAT(fired, ElementsAre("first"));
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(fired, ElementsAre("first", "added-already-due"));
}

TEST_F(FakeClockTest, TimerScheduleReplacesThePreviousDeadline) {
  int fired = 0;
  Timer timer(loop_.get(), [&] { ++fired; });
  EXPECT_FALSE(timer.is_scheduled());
  EXPECT_EQ(timer.deadline(), absl::InfiniteFuture());

  timer.Schedule(At(10));
  timer.Schedule(At(20));  // Later replaces earlier.
  EXPECT_EQ(timer.deadline(), At(20));
  Advance(absl::Milliseconds(15));
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fired, 0);

  timer.Schedule(At(16));  // Earlier replaces later.
  Advance(absl::Milliseconds(1));
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(timer.is_scheduled());
  Advance(absl::Milliseconds(10));  // Past 20: the replaced deadline must not fire too.
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fired, 1);

  timer.Schedule(At(30));
  timer.Schedule(absl::InfiniteFuture());  // A core with nothing pending disarms.
  EXPECT_FALSE(timer.is_scheduled());
  timer.Schedule(At(31));
  timer.Cancel();
  Advance(absl::Seconds(1));
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fired, 1);
}

TEST_F(FakeClockTest, TimerReschedulesItselfFromItsCallback) {
  int fired = 0;
  std::unique_ptr<Timer> timer;
  timer = std::make_unique<Timer>(loop_.get(), [&] {
    ++fired;
    if (fired < 3) timer->Schedule(loop_->Now() + absl::Milliseconds(10));
  });
  timer->Schedule(At(10));
  for (int i = 0; i < 5; ++i) {
    Advance(absl::Milliseconds(10));
    loop_->RunOnce(absl::ZeroDuration());
  }
  EXPECT_EQ(fired, 3);
  EXPECT_FALSE(timer->is_scheduled());
}

TEST_F(FakeClockTest, TimerMayBeDestroyedByItsOwnCallback) {
  int fired = 0;
  std::unique_ptr<Timer> timer;
  std::string captured = "kept alive while running";
  timer = std::make_unique<Timer>(loop_.get(), [&, captured] {
    timer.reset();  // Under ASan, touching this closure afterwards would be reported.
    fired += captured.size() > 0 ? 1 : 0;
  });
  timer->Schedule(At(1));
  Advance(absl::Milliseconds(1));
  EXPECT_TRUE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(timer, nullptr);
}

TEST_F(FakeClockTest, DestroyingATimerCancelsIt) {
  bool fired = false;
  {
    Timer timer(loop_.get(), [&] { fired = true; });
    timer.Schedule(At(1));
  }
  Advance(absl::Milliseconds(2));
  EXPECT_FALSE(loop_->RunOnce(absl::ZeroDuration()));
  EXPECT_FALSE(fired);
}

TEST(EventLoopTest, RealClockTimerFiresNotBeforeItsDeadline) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  const absl::Time deadline = loop->Now() + absl::Milliseconds(20);
  absl::Time fired_at = absl::InfinitePast();
  loop->AddTimer(deadline, [&] { fired_at = loop->Now(); });
  ASSERT_TRUE(RunUntil(*loop, [&] { return fired_at != absl::InfinitePast(); }));
  EXPECT_GE(fired_at, deadline);
}

TEST(EventLoopTest, RunOnceSleepsUntilTheNextTimerNotTheWholeMaxWait) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  bool fired = false;
  loop->AddTimer(loop->Now() + absl::Milliseconds(5), [&] { fired = true; });
  const absl::Time before = absl::Now();
  // One long RunOnce: it must wake for the timer (possibly a round early against the wall clock).
  for (int i = 0; i < 3 && !fired; ++i) loop->RunOnce(absl::Seconds(30));
  EXPECT_TRUE(fired);
  EXPECT_LT(absl::Now() - before, absl::Seconds(30));
}

TEST(EventLoopTest, PostFromAnotherThreadWakesABlockedLoop) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  std::atomic<bool> ran{false};
  std::thread poster([&] { loop->Post([&] { ran = true; }); });
  // No timers and a long max_wait: only the Post wake-up ends this RunOnce early.
  const absl::Time before = absl::Now();
  bool dispatched = false;
  while (!dispatched && absl::Now() - before < absl::Seconds(30)) {
    dispatched = loop->RunOnce(absl::Seconds(30));
  }
  poster.join();
  EXPECT_TRUE(dispatched);
  EXPECT_TRUE(ran);
}

TEST(EventLoopTest, PostsFromManyThreadsAllRunInPerThreadOrder) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  constexpr int kThreads = 4;
  constexpr int kPostsPerThread = 500;
  // Touched only by tasks, which run on this thread.
  std::vector<std::vector<int>> seen(kThreads);
  int total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPostsPerThread; ++i) {
        loop->Post([&, t, i] {
          seen[t].push_back(i);
          ++total;
        });
      }
    });
  }
  const bool all_ran = RunUntil(*loop, [&] { return total == kThreads * kPostsPerThread; });
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(all_ran) << total;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPostsPerThread));
    for (int i = 0; i < kPostsPerThread; ++i) ASSERT_EQ(seen[t][i], i) << "thread " << t;
  }
}

TEST(EventLoopTest, PostedTaskMayPostAnotherForTheNextRound) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  std::vector<int> order;
  loop->Post([&] {
    order.push_back(1);
    loop->Post([&] { order.push_back(2); });
  });
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(order, ElementsAre(1));
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(order, ElementsAre(1, 2));
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  std::atomic<bool> running{false};
  bool watchdog_fired = false;
  // Only a safety net so a broken Stop fails instead of hanging.
  loop->AddTimer(loop->Now() + absl::Seconds(30), [&] {
    watchdog_fired = true;
    loop->Stop();
  });
  loop->Post([&] { running = true; });
  std::thread stopper([&] {
    while (!running) std::this_thread::yield();
    loop->Stop();  // The loop is inside Run, blocked in epoll_wait or about to be.
  });
  loop->Run();
  stopper.join();
  EXPECT_TRUE(running);
  EXPECT_FALSE(watchdog_fired);
}

TEST(EventLoopTest, StopBeforeRunMakesRunReturnAndLoopRunsAgainAfterwards) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  std::thread stopper([&] { loop->Stop(); });
  stopper.join();
  loop->Run();  // Returns at once: the stop request was remembered.

  // The request was consumed: a second Run keeps going until a callback stops it.
  int rounds = 0;
  std::function<void()> tick = [&] {
    if (++rounds == 3) {
      loop->Stop();
    } else {
      loop->Post(tick);
    }
  };
  loop->Post(tick);
  loop->Run();
  EXPECT_EQ(rounds, 3);
}

TEST(EventLoopTest, OnSignalRunsHandlerForRaisedSighup) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  int hups = 0;
  ASSERT_THAT(loop->OnSignal(SIGHUP, [&] { ++hups; }), IsOk());
  sigset_t blocked;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &blocked), 0);
  EXPECT_TRUE(sigismember(&blocked, SIGHUP));

  ASSERT_EQ(raise(SIGHUP), 0);  // Would terminate the test if not blocked and read.
  ASSERT_TRUE(RunUntil(*loop, [&] { return hups == 1; }));
  ASSERT_EQ(raise(SIGHUP), 0);
  ASSERT_TRUE(RunUntil(*loop, [&] { return hups == 2; }));
  EXPECT_EQ(hups, 2);
}

TEST(EventLoopTest, OnSignalTakesSeveralSignalsOnOneLoop) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  std::vector<int> seen;
  ASSERT_THAT(loop->OnSignal(SIGUSR1, [&] { seen.push_back(SIGUSR1); }), IsOk());
  ASSERT_THAT(loop->OnSignal(SIGUSR2, [&] { seen.push_back(SIGUSR2); }), IsOk());
  ASSERT_EQ(raise(SIGUSR2), 0);
  ASSERT_TRUE(RunUntil(*loop, [&] { return seen.size() == 1; }));
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_TRUE(RunUntil(*loop, [&] { return seen.size() == 2; }));
  EXPECT_THAT(seen, ElementsAre(SIGUSR2, SIGUSR1));
}

TEST(EventLoopTest, OnSignalRejectsUncatchableAndDuplicateSignals) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  EXPECT_THAT(loop->OnSignal(SIGKILL, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(loop->OnSignal(SIGSTOP, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(loop->OnSignal(0, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(loop->OnSignal(1000, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(loop->OnSignal(SIGTERM, [] {}), IsOk());
  EXPECT_THAT(loop->OnSignal(SIGTERM, [] {}), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(EventLoopTest, WatchCallsBackWhileReadableAndUnwatchStops) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  TestFd fd;
  int calls = 0;
  ASSERT_THAT(loop->Watch(fd.fd(), [&] { ++calls; }), IsOk());
  EXPECT_FALSE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(calls, 0);
  fd.Signal();
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));  // Level-triggered: not drained yet.
  EXPECT_EQ(calls, 2);
  fd.Drain();
  EXPECT_FALSE(loop->RunOnce(absl::ZeroDuration()));
  fd.Signal();
  loop->Unwatch(fd.fd());
  loop->Unwatch(fd.fd());  // Twice is harmless.
  EXPECT_FALSE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(calls, 2);
}

// The monotonic clock only moves forward, and a loop on it runs its timers by it.
TEST(EventLoopTest, RunsTimersOnTheMonotonicClock) {
  const absl::Time before = MonotonicClock();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventLoop> loop, EventLoop::New(MonotonicClock));
  EXPECT_GE(loop->Now(), before);
  bool fired = false;
  loop->AddTimer(loop->Now() + absl::Milliseconds(20), [&] { fired = true; });
  ASSERT_TRUE(RunUntil(*loop, [&] { return fired; }, absl::Seconds(5)));
  EXPECT_GE(MonotonicClock() - before, absl::Milliseconds(20));
}

TEST(EventLoopTest, WatchRejectsBadAndDuplicateFds) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  EXPECT_THAT(loop->Watch(-1, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  TestFd closed;
  const int stale = dup(closed.fd());
  ASSERT_GE(stale, 0);
  close(stale);
  EXPECT_THAT(loop->Watch(stale, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  const int regular = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(regular, 0);
  EXPECT_THAT(loop->Watch(regular, [] {}), StatusIs(absl::StatusCode::kInvalidArgument));
  close(regular);
  TestFd fd;
  ASSERT_THAT(loop->Watch(fd.fd(), [] {}), IsOk());
  EXPECT_THAT(loop->Watch(fd.fd(), [] {}), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(EventLoopTest, CallbackMayUnwatchItsOwnFdAndWatchItAgain) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  TestFd fd;
  std::vector<std::string> calls;
  const std::string tag = "first";  // Captured by value: freed early would show under ASan.
  ASSERT_THAT(loop->Watch(fd.fd(),
                          [&, tag] {
                            loop->Unwatch(fd.fd());
                            calls.push_back(tag);
                            ASSERT_THAT(loop->Watch(fd.fd(), [&] { calls.push_back("second"); }),
                                        IsOk());
                          }),
              IsOk());
  fd.Signal();
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(calls, ElementsAre("first", "second"));
}

TEST(EventLoopTest, EventForFdUnwatchedEarlierInTheSameRoundIsDropped) {
  ASSERT_OK_AND_ASSIGN(auto loop, EventLoop::New());
  TestFd a;
  TestFd b;
  int first_calls = 0;
  bool replacement_called = false;
  // Whichever callback runs first unwatches the other fd and puts a fresh, never-signalled eventfd
  // under the same number with a new callback. The other fd's event from this round is then stale
  // and must reach neither the old callback nor the new one.
  auto replace_other = [&](const TestFd& self, const TestFd& other) {
    ++first_calls;
    self.Drain();
    loop->Unwatch(self.fd());
    loop->Unwatch(other.fd());
    const int fresh = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(fresh, 0);
    ASSERT_EQ(dup3(fresh, other.fd(), O_CLOEXEC), other.fd());
    close(fresh);
    ASSERT_THAT(loop->Watch(other.fd(), [&] { replacement_called = true; }), IsOk());
  };
  ASSERT_THAT(loop->Watch(a.fd(), [&] { replace_other(a, b); }), IsOk());
  ASSERT_THAT(loop->Watch(b.fd(), [&] { replace_other(b, a); }), IsOk());
  a.Signal();
  b.Signal();
  EXPECT_TRUE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_FALSE(loop->RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(first_calls, 1);
  EXPECT_FALSE(replacement_called);
}

}  // namespace
}  // namespace edgelink::io
