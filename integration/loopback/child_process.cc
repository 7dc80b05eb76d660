#include "integration/loopback/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace edgelink::loopback {
namespace {

// The value of `key=` in a READY line, or "".
std::string ReadyField(absl::string_view line, absl::string_view key) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    if (absl::ConsumePrefix(&word, key) && absl::ConsumePrefix(&word, "=")) {
      return std::string(word);
    }
  }
  return "";
}

// Polling interval while waiting for a child to exit: waitpid has no time limit of its own.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

}  // namespace

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("starting ", argv[0]));
  return pid;
}

absl::StatusOr<int> WaitExit(pid_t pid, absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid, " still running after ", absl::FormatDuration(limit)));
    }
    absl::SleepFor(kPollInterval);
  }
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

absl::StatusOr<int64_t> ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&rest, " kB") ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) {
      return absl::InternalError(absl::StrCat("unexpected VmRSS line: ", line));
    }
    return kib * 1024;
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS for process ", pid));
}

absl::StatusOr<std::unique_ptr<BasestationProcess>> BasestationProcess::Start(
    const std::string& binary, const std::vector<std::string>& flags, absl::Duration limit) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  std::vector<std::string> argv = {binary, "serve"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<pid_t> pid = Spawn(argv, fds[1]);
  close(fds[1]);
  if (!pid.ok()) {
    close(fds[0]);
    return pid.status();
  }
  auto process = absl::WrapUnique(new BasestationProcess(*pid, fds[0]));

  const absl::Time give_up = absl::Now() + limit;
  std::string line;
  for (;;) {
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "basestation printed no READY line within ", absl::FormatDuration(limit)));
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (ready <= 0) continue;
    char c;
    const ssize_t n = read(fds[0], &c, 1);
    if (n == 0) return absl::InternalError("basestation exited before its READY line");
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "reading the basestation's output");
    }
    if (c == '\n') break;
    line.push_back(c);
  }
  if (!absl::StartsWith(line, "READY ")) {
    return absl::InternalError(absl::StrCat("basestation printed \"", line, "\", not READY"));
  }
  absl::StatusOr<net::Endpoint> attach = net::Endpoint::Parse(ReadyField(line, "attach"));
  if (!attach.ok()) {
    return absl::InternalError(absl::StrCat("READY line: ", attach.status().message()));
  }
  process->attach_ = *attach;
  int api_port = 0;
  if (absl::SimpleAtoi(ReadyField(line, "api"), &api_port) && api_port != 0) {
    process->api_target_ = absl::StrCat("127.0.0.1:", api_port);
  }
  return process;
}

BasestationProcess::~BasestationProcess() {
  if (running_) Kill();
  close(stdout_fd_);
}

void BasestationProcess::Kill() {
  if (!running_) return;
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  running_ = false;
}

absl::StatusOr<int> BasestationProcess::Stop(absl::Duration limit) {
  if (!running_) return absl::FailedPreconditionError("the basestation is not running");
  kill(pid_, SIGTERM);
  absl::StatusOr<int> status = WaitExit(pid_, limit);
  if (!status.ok()) {
    Kill();
    return status.status();
  }
  running_ = false;
  return status;
}

}  // namespace edgelink::loopback
