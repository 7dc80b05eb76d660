#include "common/stream/virtual_wall_clock.h"

#include <dlfcn.h>
#include <sys/time.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace edgelink::stream::testing {
namespace {

// Microseconds since the epoch, or kReal.
constexpr int64_t kReal = INT64_MIN;
std::atomic<int64_t> virtual_micros{kReal};

}  // namespace

VirtualWallClock::VirtualWallClock(absl::Time start) {
  if (virtual_micros.load() != kReal) std::abort();  // One at a time.
  Set(start);
}

VirtualWallClock::~VirtualWallClock() { virtual_micros.store(kReal); }

void VirtualWallClock::Set(absl::Time now) { virtual_micros.store(absl::ToUnixMicros(now)); }

bool VirtualWallClock::Interposed() {
  using Function = int (*)(struct timeval*, void*);
  // What a shared library's unversioned reference resolves to: the first definition in the
  // global lookup scope, which starts with the executable.
  void* found = dlsym(RTLD_DEFAULT, "gettimeofday");
  return found == reinterpret_cast<void*>(static_cast<Function>(&::gettimeofday));
}

}  // namespace edgelink::stream::testing

// Replaces libc's for the whole process (see the header).
extern "C" int gettimeofday(struct timeval* __restrict tv, void* __restrict tz) __THROW {
  const int64_t micros = edgelink::stream::testing::virtual_micros.load();
  if (micros == edgelink::stream::testing::kReal) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    tv->tv_sec = now.tv_sec;
    tv->tv_usec = now.tv_nsec / 1000;
  } else {
    tv->tv_sec = micros / 1'000'000;
    tv->tv_usec = micros % 1'000'000;
  }
  if (tz != nullptr) {
    static_cast<struct timezone*>(tz)->tz_minuteswest = 0;
    static_cast<struct timezone*>(tz)->tz_dsttime = 0;
  }
  return 0;
}
