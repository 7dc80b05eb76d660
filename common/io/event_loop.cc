#include "common/io/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "common/io/posix_error.h"

namespace edgelink::io {
namespace {

constexpr int kMaxEventsPerRound = 64;
// Generation 0 in the epoll data marks the loop's own descriptors (eventfd, signalfd).
constexpr uint32_t kInternalGeneration = 0;

uint64_t EventData(int fd, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
}

absl::StatusCode CodeForFdExhaustion(int err) {
  return (err == EMFILE || err == ENFILE || err == ENOMEM) ? absl::StatusCode::kResourceExhausted
                                                           : absl::StatusCode::kInternal;
}

// EpollTimeout rounds up to whole milliseconds, so a wake-up is not early by the rounding and
// the loop does not spin for the last sub-millisecond before a deadline.
int EpollTimeout(absl::Duration wait) {
  if (wait == absl::InfiniteDuration()) return -1;
  if (wait <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

}  // namespace

absl::Time MonotonicClock() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
}

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::New(Clock clock) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    const int err = errno;
    return ErrnoStatus(CodeForFdExhaustion(err), err, "epoll_create1");
  }
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int err = errno;
    close(epoll_fd);
    return ErrnoStatus(CodeForFdExhaustion(err), err, "eventfd");
  }
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = EventData(wake_fd, kInternalGeneration);
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0) {
    const int err = errno;
    close(wake_fd);
    close(epoll_fd);
    return ErrnoStatus(CodeForFdExhaustion(err), err, "epoll_ctl(ADD eventfd)");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(clock), epoll_fd, wake_fd));
}

EventLoop::EventLoop(Clock clock, int epoll_fd, int wake_fd)
    : clock_(std::move(clock)), epoll_fd_(epoll_fd), wake_fd_(wake_fd) {
  sigemptyset(&signal_mask_);
}

EventLoop::~EventLoop() {
  if (signal_fd_ >= 0) close(signal_fd_);
  close(wake_fd_);
  close(epoll_fd_);
}

absl::Status EventLoop::Watch(int fd, std::function<void()> on_readable) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("cannot watch fd ", fd));
  if (watches_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " is already watched"));
  }
  uint32_t generation = next_generation_++;
  if (generation == kInternalGeneration) generation = next_generation_++;
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = EventData(fd, generation);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    const int err = errno;
    const absl::StatusCode code = (err == EBADF || err == EPERM || err == EINVAL || err == ELOOP)
                                      ? absl::StatusCode::kInvalidArgument
                                      : CodeForFdExhaustion(err);
    return ErrnoStatus(code, err, absl::StrCat("epoll_ctl(ADD fd ", fd, ")"));
  }
  watches_[fd] =
      std::make_shared<WatchEntry>(WatchEntry{generation, std::move(on_readable)});
  return absl::OkStatus();
}

void EventLoop::Unwatch(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  // Fails only if the caller already closed fd, which removed it from the epoll set anyway.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  watches_.erase(it);
}

TimerId EventLoop::AddTimer(absl::Time deadline, std::function<void()> on_fire) {
  if (deadline == absl::InfiniteFuture()) return kNoTimer;
  const TimerId id = next_timer_id_++;
  timers_.emplace(TimerKey{deadline, id}, std::move(on_fire));
  timer_deadlines_.emplace(id, deadline);
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(TimerKey{it->second, id});
  timer_deadlines_.erase(it);
}

void EventLoop::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(task));
  }
  Wake();
}

absl::Status EventLoop::OnSignal(int signo, std::function<void()> on_signal) {
  sigset_t just_this;
  sigemptyset(&just_this);
  // sigaddset rejects out-of-range numbers and glibc's internal real-time signals.
  if (signo == SIGKILL || signo == SIGSTOP || sigaddset(&just_this, signo) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("signal ", signo, " cannot be handled"));
  }
  if (signal_handlers_.contains(signo)) {
    return absl::AlreadyExistsError(absl::StrCat("signal ", signo, " already has a handler"));
  }
  // Blocked before the signalfd exists, so an arrival in between stays pending instead of taking
  // the default action (for SIGHUP: terminate).
  const int rc = pthread_sigmask(SIG_BLOCK, &just_this, nullptr);
  if (rc != 0) return ErrnoStatus(absl::StatusCode::kInternal, rc, "pthread_sigmask");
  sigset_t mask = signal_mask_;
  sigaddset(&mask, signo);
  const int fd = signalfd(signal_fd_, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return ErrnoStatus(CodeForFdExhaustion(err), err, "signalfd");
  }
  if (signal_fd_ < 0) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = EventData(fd, kInternalGeneration);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(CodeForFdExhaustion(err), err, "epoll_ctl(ADD signalfd)");
    }
    signal_fd_ = fd;
  }
  signal_mask_ = mask;
  signal_handlers_[signo] = std::make_shared<std::function<void()>>(std::move(on_signal));
  return absl::OkStatus();
}

void EventLoop::Run() {
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    RunOnce(absl::InfiniteDuration());
  }
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  Wake();
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the loop is already due to wake.
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof(one));
}

bool EventLoop::RunOnce(absl::Duration max_wait) {
  absl::Duration wait = max_wait;
  if (!timers_.empty()) wait = std::min(wait, timers_.begin()->first.first - Now());
  epoll_event events[kMaxEventsPerRound];
  int count = epoll_wait(epoll_fd_, events, kMaxEventsPerRound, EpollTimeout(wait));
  if (count < 0) {
    const int err = errno;
    // EINTR: a signal with a handler (a debugger, a profiler) interrupted the wait.
    if (err != EINTR) DieWithErrno(err, "epoll_wait");
    count = 0;
  }
  bool ran = false;
  for (int i = 0; i < count; ++i) {
    if (Dispatch(events[i].data.u64)) ran = true;
  }
  if (RunDueTimers()) ran = true;
  return ran;
}

bool EventLoop::Dispatch(uint64_t data) {
  const int fd = static_cast<int>(static_cast<uint32_t>(data));
  const uint32_t generation = static_cast<uint32_t>(data >> 32);
  if (generation == kInternalGeneration) {
    if (fd == wake_fd_) return DrainWakeups();
    if (fd == signal_fd_) return DrainSignals();
    return false;
  }
  auto it = watches_.find(fd);
  if (it == watches_.end() || it->second->generation != generation) return false;  // Stale.
  // The copy keeps the callback alive if it unwatches its own fd.
  const std::shared_ptr<WatchEntry> entry = it->second;
  entry->on_readable();
  return true;
}

bool EventLoop::DrainWakeups() {
  uint64_t count;
  // Reset the counter before taking the queue: a Post after the read writes again, so the next
  // round wakes for it.
  [[maybe_unused]] const ssize_t n = read(wake_fd_, &count, sizeof(count));
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
  return !tasks.empty();
}

bool EventLoop::DrainSignals() {
  bool ran = false;
  signalfd_siginfo infos[8];
  for (;;) {
    const ssize_t n = read(signal_fd_, infos, sizeof(infos));
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) return ran;
      DieWithErrno(err, "read(signalfd)");
    }
    const size_t received = static_cast<size_t>(n) / sizeof(signalfd_siginfo);
    for (size_t i = 0; i < received; ++i) {
      auto it = signal_handlers_.find(static_cast<int>(infos[i].ssi_signo));
      if (it == signal_handlers_.end()) continue;
      // A copy, so OnSignal from inside the handler may rehash the map.
      const std::shared_ptr<std::function<void()>> handler = it->second;
      (*handler)();
      ran = true;
    }
    if (received < sizeof(infos) / sizeof(infos[0])) return ran;
  }
}

bool EventLoop::RunDueTimers() {
  if (timers_.empty()) return false;
  const absl::Time now = Now();
  // Only the timers due when the round started: ones added by these callbacks wait for the next
  // round, and any of these cancelled by an earlier callback is skipped.
  std::vector<TimerId> due;
  for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= now; ++it) {
    due.push_back(it->first.second);
  }
  bool ran = false;
  for (const TimerId id : due) {
    auto deadline = timer_deadlines_.find(id);
    if (deadline == timer_deadlines_.end()) continue;  // Cancelled by an earlier callback.
    auto timer = timers_.find(TimerKey{deadline->second, id});
    std::function<void()> on_fire = std::move(timer->second);
    timers_.erase(timer);
    timer_deadlines_.erase(deadline);
    on_fire();
    ran = true;
  }
  return ran;
}

Timer::Timer(EventLoop* loop, std::function<void()> on_fire)
    : loop_(loop), on_fire_(std::make_shared<std::function<void()>>(std::move(on_fire))) {}

void Timer::Schedule(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    Cancel();
    return;
  }
  if (id_ != kNoTimer && deadline == deadline_) return;
  Cancel();
  deadline_ = deadline;
  id_ = loop_->AddTimer(deadline, [this, on_fire = on_fire_] {
    // Disarmed before the callback runs, so it may Schedule again or destroy this Timer.
    id_ = kNoTimer;
    deadline_ = absl::InfiniteFuture();
    (*on_fire)();
  });
}

void Timer::Cancel() {
  if (id_ == kNoTimer) return;
  loop_->CancelTimer(id_);
  id_ = kNoTimer;
  deadline_ = absl::InfiniteFuture();
}

}  // namespace edgelink::io
