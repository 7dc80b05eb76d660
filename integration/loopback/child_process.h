// Child processes for the loopback tests written in C++: start a program, start `basestation
// serve` and wait (with a time limit) for its READY line, stop it, read its resident memory.
//
// Children are started with posix_spawn, not fork: these tests also use gRPC, and posix_spawn runs
// no fork handlers and copies no threads' state. Children stay in the test's process group, so
// Bazel's test runner kills whatever a crashed test left behind.
#ifndef EDGELINK_INTEGRATION_LOOPBACK_CHILD_PROCESS_H_
#define EDGELINK_INTEGRATION_LOOPBACK_CHILD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net/endpoint.h"

namespace edgelink::loopback {

// Spawn starts `argv[0]` (a path) with arguments `argv`. Its standard output goes to `stdout_fd`
// (-1: this process's), its standard error to this process's. Fails with the errno-derived code
// if the program cannot be started.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd = -1);

// WaitExit waits up to `limit` for child `pid` to end, reaps it and returns its wait status
// (see waitpid). kDeadlineExceeded if it is still running then (it is left running).
absl::StatusOr<int> WaitExit(pid_t pid, absl::Duration limit);

// DescribeWaitStatus: "exit 0", "exit 23", "killed by signal 9".
std::string DescribeWaitStatus(int status);

// ResidentBytes is VmRSS from /proc/<pid>/status. kNotFound if the process is gone.
absl::StatusOr<int64_t> ResidentBytes(pid_t pid);

// BasestationProcess is one `basestation serve` child. The destructor kills it (SIGKILL) if it
// is still running.
class BasestationProcess {
 public:
  // Start runs `binary serve flags...` and waits up to `limit` for its READY line. Fails with
  // kDeadlineExceeded (the child is killed) if none comes, kInternal if the child exits first or
  // the line lacks the attach address.
  static absl::StatusOr<std::unique_ptr<BasestationProcess>> Start(
      const std::string& binary, const std::vector<std::string>& flags,
      absl::Duration limit = absl::Seconds(60));

  BasestationProcess(const BasestationProcess&) = delete;
  BasestationProcess& operator=(const BasestationProcess&) = delete;
  ~BasestationProcess();

  pid_t pid() const { return pid_; }
  const net::Endpoint& attach() const { return attach_; }
  // "127.0.0.1:<port>" of the gRPC API; empty if it serves none.
  const std::string& api_target() const { return api_target_; }

  // Kill sends SIGKILL and reaps the process.
  void Kill();
  // Stop sends SIGTERM and waits up to `limit` for the process to exit; returns its wait status.
  // kDeadlineExceeded if it did not exit (it is then killed).
  absl::StatusOr<int> Stop(absl::Duration limit);

 private:
  BasestationProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  pid_t pid_;
  // Read end of the child's standard output, kept open so that the child never writes to a
  // closed pipe.
  int stdout_fd_;
  bool running_ = true;
  net::Endpoint attach_;
  std::string api_target_;
};

}  // namespace edgelink::loopback

#endif  // EDGELINK_INTEGRATION_LOOPBACK_CHILD_PROCESS_H_
