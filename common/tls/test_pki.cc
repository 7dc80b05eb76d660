#include "common/tls/test_pki.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"

extern char** environ;

namespace edgelink::tls::testing {
namespace {

// Where Bazel puts tools/pki/pki.sh (a data dependency) relative to a test's working directory.
constexpr char kPkiScript[] = "tools/pki/pki.sh";

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

}  // namespace

absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  static int counter = 0;
  const std::string stderr_path = absl::StrCat(TempDir(), "/cmd-", getpid(), "-", ++counter, ".err");

  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_error =
      posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  if (spawn_error != 0) {
    close(out_pipe[0]);
    return absl::ErrnoToStatus(spawn_error, absl::StrCat("cannot run ", argv[0]));
  }
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(out_pipe[0], buffer, sizeof(buffer))) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  close(out_pipe[0]);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  std::ifstream err_file(stderr_path);
  std::stringstream err;
  err << err_file.rdbuf();
  std::remove(stderr_path.c_str());
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " exited with status ",
                                            WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1,
                                            ": ", err.str()));
  }
  return out;
}

absl::StatusOr<std::string> OpensslCliFingerprint(const std::string& cert_path) {
  ASSIGN_OR_RETURN(std::string out, RunCommand({"openssl", "x509", "-in", cert_path, "-noout",
                                                "-fingerprint", "-sha256"}));
  // "sha256 Fingerprint=AB:CD:...\n"
  const size_t equals = out.find('=');
  if (equals == std::string::npos) return absl::InternalError("unexpected openssl output: " + out);
  std::string hex = absl::StrReplaceAll(
      absl::StripAsciiWhitespace(absl::string_view(out).substr(equals + 1)), {{":", ""}});
  absl::AsciiStrToLower(&hex);
  return hex;
}

absl::StatusOr<TestPki> TestPki::Create(absl::string_view name, absl::string_view server_names) {
  std::string dir = absl::StrCat(TempDir(), "/pki-", name);
  RETURN_IF_ERROR(Pki({"init-ca", dir, "--server-names", std::string(server_names)}).status());
  return TestPki(std::move(dir));
}

absl::StatusOr<std::string> TestPki::Pki(std::vector<std::string> args) {
  args.insert(args.begin(), {"bash", kPkiScript});
  return RunCommand(args);
}

absl::StatusOr<std::string> TestPki::IssueClient(absl::string_view client,
                                                 std::vector<std::string> extra_args) const {
  std::vector<std::string> args = {"issue-client", dir_, std::string(client)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  ASSIGN_OR_RETURN(std::string out, Pki(std::move(args)));
  return std::string(absl::StripAsciiWhitespace(out));
}

absl::Status TestPki::Revoke(absl::string_view client) const {
  return Pki({"revoke", dir_, client_cert(client)}).status();
}

std::string TestPki::client_cert(absl::string_view client) const {
  return absl::StrCat(dir_, "/clients/", client, ".pem");
}

std::string TestPki::client_key(absl::string_view client) const {
  return absl::StrCat(dir_, "/clients/", client, ".key");
}

}  // namespace edgelink::tls::testing
