// LoopThread: an EventLoop running on a thread of its own, for tests and benchmarks that put a
// server, a device and a client in one process.
#ifndef EDGELINK_COMMON_IO_LOOP_THREAD_H_
#define EDGELINK_COMMON_IO_LOOP_THREAD_H_

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "common/io/event_loop.h"

namespace edgelink::io {

class LoopThread {
 public:
  // Aborts if no event loop can be made (out of file descriptors): nothing can run without one.
  LoopThread() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::New();
    if (!loop.ok()) {
      std::fprintf(stderr, "LoopThread: %s\n", loop.status().ToString().c_str());
      std::abort();
    }
    loop_ = *std::move(loop);
  }
  ~LoopThread() { Stop(); }

  // Start runs the loop on a new thread; Stop ends it and joins. Objects registered on the loop
  // may be destroyed only after Stop (or on the loop's thread).
  void Start() {
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    loop_->Stop();
    thread_.join();
  }

  // Run calls `f` on the loop's thread and returns its result to the caller's.
  template <typename F>
  auto Run(F f) {
    using R = decltype(f());
    std::mutex mu;
    std::condition_variable cv;
    std::optional<R> result;
    loop_->Post([&] {
      R r = f();
      std::lock_guard<std::mutex> lock(mu);
      result.emplace(std::move(r));
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
    return *std::move(result);
  }

  EventLoop* get() { return loop_.get(); }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_LOOP_THREAD_H_
