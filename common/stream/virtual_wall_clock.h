// VirtualWallClock: makes gettimeofday return a time the test sets, so usrsctp runs entirely on a
// virtual clock. Test-only; link it into a test binary, never into a program.
//
// Why: usrsctp does not take all its time from usrsctp_handle_timers. It also reads gettimeofday
// for RTT samples, for which chunks a T3 timeout may retransmit (only those sent more than an RTO
// ago), for whether a heartbeat is due, and for cookie lifetime. Drive its timers with a virtual
// clock that runs ahead of the real one and a T3 timeout retransmits nothing, the path is marked
// down, and no heartbeat ever brings it back: loss recovery stalls for good. So a test (or the
// simulator) that drives SctpTransport with virtual time must give usrsctp the same virtual
// wall clock; this class does it by defining gettimeofday in the executable, which the dynamic
// linker binds libusrsctp's calls to ahead of libc's.
#ifndef EDGELINK_COMMON_STREAM_VIRTUAL_WALL_CLOCK_H_
#define EDGELINK_COMMON_STREAM_VIRTUAL_WALL_CLOCK_H_

#include "absl/time/time.h"

namespace edgelink::stream::testing {

// While one exists, gettimeofday returns the last time Set; otherwise the real time. One at a
// time per process.
class VirtualWallClock {
 public:
  explicit VirtualWallClock(absl::Time start);
  ~VirtualWallClock();
  VirtualWallClock(const VirtualWallClock&) = delete;
  VirtualWallClock& operator=(const VirtualWallClock&) = delete;

  void Set(absl::Time now);

  // True if libusrsctp's gettimeofday calls come here (the executable's definition won the
  // dynamic link), so tests can check their premise.
  static bool Interposed();
};

}  // namespace edgelink::stream::testing

#endif  // EDGELINK_COMMON_STREAM_VIRTUAL_WALL_CLOCK_H_
