// Turning errno values into absl::Status with the call and the system's text, for the POSIX binding.
// Internal to common/io.
#ifndef EDGELINK_COMMON_IO_POSIX_ERROR_H_
#define EDGELINK_COMMON_IO_POSIX_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace edgelink::io {

// ErrnoText returns the system's description of `err` ("Address already in use"). Thread-safe.
std::string ErrnoText(int err);

// ErrnoStatus returns a status with `code` and the message "<context>: <ErrnoText(err)>".
absl::Status ErrnoStatus(absl::StatusCode code, int err, absl::string_view context);

// DieWithErrno reports a broken invariant of the binding itself (for example epoll_wait failing
// with EBADF) on stderr and aborts. Never used for errors the network or the caller can cause.
[[noreturn]] void DieWithErrno(int err, absl::string_view context);

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_POSIX_ERROR_H_
