// Helpers the benchmarks share: failing loudly, starting the basestation binary, and reading a
// process's CPU time and memory from /proc.
#ifndef EDGELINK_TOOLS_BENCH_BENCH_UTIL_H_
#define EDGELINK_TOOLS_BENCH_BENCH_UTIL_H_

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace edgelink::bench {

// Die prints "<program>: message" (argv[0]'s basename, from /proc/self/comm) and exits 1: a
// benchmark that cannot measure what it says must not print a figure.
[[noreturn]] inline void Die(const std::string& message) {
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  std::fprintf(stderr, "%s: %s\n", name.c_str(), message.c_str());
  std::exit(1);
}

inline void CheckOk(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Die(absl::StrCat(what, ": ", status.ToString()));
}

template <typename T>
T Check(absl::StatusOr<T> value, const std::string& what) {
  CheckOk(value.status(), what);
  return *std::move(value);
}

// Spawn starts `argv` with its stdout on a pipe and returns its pid and the first line it prints
// (the basestation's READY line). The child gets SIGTERM if this process dies first, so a failed
// run leaves nothing behind.
inline std::pair<pid_t, std::string> Spawn(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(fds[0]);
  return {pid, line};
}

// ReadyField returns the value of `key=` in a READY line, or "".
inline std::string ReadyField(const std::string& line, absl::string_view key) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    if (absl::ConsumePrefix(&word, absl::StrCat(key, "="))) return std::string(word);
  }
  return "";
}

// CpuSeconds is the CPU time (user + system) `pid` has used so far.
inline double CpuSeconds(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may contain spaces.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(text.substr(paren + 2), ' ');
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) / sysconf(_SC_CLK_TCK);
}

// ResidentBytes is `pid`'s resident memory.
inline int64_t ResidentBytes(pid_t pid) {
  std::ifstream statm(absl::StrCat("/proc/", pid, "/statm"));
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// RaiseFileLimit lifts the soft limit on open files to the hard one; Die if below `needed`.
inline void RaiseFileLimit(int needed) {
  rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < static_cast<rlim_t>(needed)) {
    Die(absl::StrCat("needs ", needed, " open files; the limit is ", limit.rlim_cur));
  }
}

}  // namespace edgelink::bench

#endif  // EDGELINK_TOOLS_BENCH_BENCH_UTIL_H_
