// A per-process scratch file under $TMPDIR (or /tmp) for the fuzz targets that read files.
#ifndef EDGELINK_TOOLS_FUZZ_TMP_FILE_H_
#define EDGELINK_TOOLS_FUZZ_TMP_FILE_H_

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace edgelink::fuzz {

// ScratchDirectory is made once per process (mkdtemp) and left behind on exit; it holds only the
// last input written.
inline const std::string& ScratchDirectory() {
  static const std::string* dir = [] {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/edgelink-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return new std::string(pattern);
  }();
  return *dir;
}

// WriteScratchFile replaces `path` with exactly `data`; aborts if it cannot (the harness could not
// test anything). It unlinks and creates rather than truncating: on ext4, truncating a file with
// data forces a flush (auto_da_alloc), which costs milliseconds per fuzz input.
inline void WriteScratchFile(const std::string& path, const uint8_t* data, size_t size) {
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      std::perror(path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace edgelink::fuzz

#endif  // EDGELINK_TOOLS_FUZZ_TMP_FILE_H_
