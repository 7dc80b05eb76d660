#include "common/io/posix_error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace edgelink::io {

std::string ErrnoText(int err) {
  char buffer[128];
  // The GNU strerror_r returns a pointer to either `buffer` or a static string.
  return strerror_r(err, buffer, sizeof(buffer));
}

absl::Status ErrnoStatus(absl::StatusCode code, int err, absl::string_view context) {
  return absl::Status(code, absl::StrCat(context, ": ", ErrnoText(err)));
}

void DieWithErrno(int err, absl::string_view context) {
  const std::string message = absl::StrCat("edgelink::io fatal: ", context, ": ", ErrnoText(err));
  std::fprintf(stderr, "%s\n", message.c_str());
  std::abort();
}

}  // namespace edgelink::io
