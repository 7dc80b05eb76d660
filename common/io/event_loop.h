// EventLoop: the one place a component waits: readable file descriptors, timers, tasks posted
// from other threads and signals, on Linux epoll. Sans-I/O cores never see it; their bindings feed
// them bytes from the callbacks here and arm a Timer with the next deadline the core returns.
#ifndef EDGELINK_COMMON_IO_EVENT_LOOP_H_
#define EDGELINK_COMMON_IO_EVENT_LOOP_H_

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace edgelink::io {

// TimerId names one AddTimer call. kNoTimer is never returned for a live timer.
using TimerId = uint64_t;
inline constexpr TimerId kNoTimer = 0;

// MonotonicClock is an EventLoop::Clock that never jumps when the wall clock is set, and keeps
// counting while the machine sleeps (CLOCK_BOOTTIME): for timers, not for calendar time.
absl::Time MonotonicClock();

// EventLoop runs callbacks on the thread that calls Run/RunOnce. It is NOT thread-safe: Watch,
// Unwatch, AddTimer, CancelTimer, OnSignal, Run and RunOnce must all be called from that one thread
// (or before it starts). Post and Stop are the exceptions: they are thread-safe.
//
// Callbacks may call any method re-entrantly, including Unwatch of the fd being dispatched and
// CancelTimer of any timer; a callback removed while another event for it is pending in the same
// round is not run, and a callback's own captures stay alive until it returns. Callbacks must not
// call Run/RunOnce, and must not destroy the loop.
//
// Within one round, fd/post/signal callbacks run first (in the kernel's order), then the timers
// that are due at Now(), by deadline and then by AddTimer order. A timer added during a round fires
// in a later round even if already due, so a callback re-arming "now" cannot starve the fds.
class EventLoop {
 public:
  // Clock returns the current time. The loop still sleeps in real time (epoll_wait) for
  // (next deadline - clock()), so a test driving a fake clock advances it and calls
  // RunOnce(absl::ZeroDuration()).
  using Clock = std::function<absl::Time()>;

  // New creates the epoll instance and the eventfd behind Post/Stop. `clock` defaults to
  // absl::Now (the wall clock: a jump backwards delays timers by the jump). Fails with kInternal
  // (or kResourceExhausted when out of file descriptors) naming the failed call.
  static absl::StatusOr<std::unique_ptr<EventLoop>> New(Clock clock = nullptr);

  // The destructor closes the loop's own descriptors (never watched ones) and drops pending timers
  // and posted tasks without running them. Signals passed to OnSignal stay blocked. Any Timer on
  // this loop must be destroyed first.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watch calls `on_readable` (level-triggered) while `fd` is readable or has an error or hangup
  // pending; the callback must read (recvmmsg reports a pending error) or Unwatch, or it is called
  // again on the next round. The loop does not own `fd`: Unwatch it before closing it.
  // Fails with kAlreadyExists if `fd` is already watched, kInvalidArgument if epoll refuses it
  // (not open, or a regular file).
  absl::Status Watch(int fd, std::function<void()> on_readable);
  // Unwatch stops watching `fd` and destroys its callback (after it returns, if it is running).
  // No-op if `fd` is not watched.
  void Unwatch(int fd);

  // AddTimer calls `on_fire` once, in the first round at or after `deadline` (by Now()).
  // A deadline in the past fires on the next round. absl::InfiniteFuture() means never: the
  // callback is dropped and kNoTimer returned.
  TimerId AddTimer(absl::Time deadline, std::function<void()> on_fire);
  // CancelTimer drops the timer's callback without running it. No-op for kNoTimer, a timer that
  // already fired, or one already cancelled.
  void CancelTimer(TimerId id);

  // Post queues `task` to run on the loop thread, in Post order, and wakes the loop. The task never
  // runs inside Post, even when called on the loop thread; a task posted by a posted task runs in a
  // later round. THREAD-SAFE. The loop must outlive every thread that may still Post.
  void Post(std::function<void()> task);

  // OnSignal calls `on_signal` on the loop thread when `signo` arrives (several arrivals between
  // two rounds run it once). It blocks `signo` in the calling thread (threads inherit the mask, so
  // call it before starting other threads, or a process-directed signal may go to a thread that
  // has it unblocked) and reads it from a signalfd. Only one loop per process should take a given
  // signal. Fails with kInvalidArgument for a signal that cannot be blocked or caught (SIGKILL,
  // SIGSTOP, glibc-internal ones, out of range), kAlreadyExists if this loop already takes `signo`.
  absl::Status OnSignal(int signo, std::function<void()> on_signal);

  // Run runs rounds until Stop() is called. If Stop() was called while the loop was not running,
  // Run returns at once (so a thread may Stop a loop that has not reached Run yet). Run clears the
  // stop request when it returns, so the loop can be run again.
  void Run();
  // RunOnce waits at most `max_wait` (absl::InfiniteDuration() for no bound, zero to poll) for
  // something to do, runs one round, and returns whether any callback ran. It may return false
  // before `max_wait` (a Stop() wake-up, or a timer waking a little early against the wall clock).
  bool RunOnce(absl::Duration max_wait);
  // Stop makes Run return after the current round. THREAD-SAFE; not async-signal-safe (use
  // OnSignal for signals).
  void Stop();

  // Now returns the loop's clock: absl::Now() unless New was given a clock.
  absl::Time Now() const { return clock_ ? clock_() : absl::Now(); }

 private:
  struct WatchEntry {
    uint32_t generation;
    std::function<void()> on_readable;
  };
  // (deadline, id): ids grow, so equal deadlines fire in AddTimer order.
  using TimerKey = std::pair<absl::Time, TimerId>;

  EventLoop(Clock clock, int epoll_fd, int wake_fd);

  bool Dispatch(uint64_t data);
  bool DrainWakeups();
  bool DrainSignals();
  bool RunDueTimers();
  void Wake();

  const Clock clock_;
  const int epoll_fd_;
  const int wake_fd_;  // eventfd: Post and Stop write to it.
  int signal_fd_ = -1;
  sigset_t signal_mask_;

  // fd -> entry. The generation is also in the epoll event data, so an event for an fd that was
  // unwatched (and maybe re-watched) earlier in the same round is recognised as stale.
  absl::flat_hash_map<int, std::shared_ptr<WatchEntry>> watches_;
  uint32_t next_generation_ = 1;

  std::map<TimerKey, std::function<void()>> timers_;
  absl::flat_hash_map<TimerId, absl::Time> timer_deadlines_;
  TimerId next_timer_id_ = 1;

  absl::flat_hash_map<int, std::shared_ptr<std::function<void()>>> signal_handlers_;

  std::atomic<bool> stop_requested_{false};
  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with TSan annotations, so
  // TSan could not see absl::Mutex synchronise.
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(post_mu_);
};

// Timer is a re-armable single deadline on an EventLoop: what a sans-I/O core's "next deadline"
// maps to. After every input the binding calls Schedule(core.NextDeadline()); Schedule replaces the
// previous deadline, and absl::InfiniteFuture() disarms. Not thread-safe (loop thread only).
// The callback may Schedule, Cancel or destroy this Timer. The loop must outlive the Timer.
class Timer {
 public:
  Timer(EventLoop* loop, std::function<void()> on_fire);
  ~Timer() { Cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Schedule arms the timer for `deadline`, replacing any earlier deadline; a deadline already
  // past fires on the next round. absl::InfiniteFuture() is Cancel(). Scheduling the deadline that
  // is already armed keeps it (and its place among timers with the same deadline).
  void Schedule(absl::Time deadline);
  // Cancel disarms the timer; no-op if it is not armed.
  void Cancel();

  bool is_scheduled() const { return id_ != kNoTimer; }
  // deadline is the armed deadline, or absl::InfiniteFuture() when not armed.
  absl::Time deadline() const { return deadline_; }

 private:
  EventLoop* const loop_;
  // Shared with the armed loop callback, so the callback survives the Timer's destruction from
  // inside it.
  const std::shared_ptr<std::function<void()>> on_fire_;
  TimerId id_ = kNoTimer;
  absl::Time deadline_ = absl::InfiniteFuture();
};

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_EVENT_LOOP_H_
