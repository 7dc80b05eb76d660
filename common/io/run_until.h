// RunUntil: drive an EventLoop until a condition holds or a real-time limit passes. Tests wait on
// conditions this way, never with a fixed sleep.
#ifndef EDGELINK_COMMON_IO_RUN_UNTIL_H_
#define EDGELINK_COMMON_IO_RUN_UNTIL_H_

#include <algorithm>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/io/event_loop.h"

namespace edgelink::io {

// RunUntil runs rounds of `loop` until `done()` returns true (checked before each round) or
// `limit` of wall-clock time has passed, and returns done(). The limit is a safety net for a broken
// build, not a timing assumption: a passing test finishes as soon as the condition holds.
inline bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
                     absl::Duration limit = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!done()) {
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) return done();
    loop.RunOnce(std::min(left, absl::Milliseconds(100)));
  }
  return true;
}

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_RUN_UNTIL_H_
