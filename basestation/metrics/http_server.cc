#include "basestation/metrics/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"
#include "httplib.h"

namespace edgelink::metrics {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";
// A scrape is one short request every few seconds; httplib's default pool (8+ threads) is idle.
constexpr size_t kWorkerThreads = 4;
// Bounds how long Stop waits for a worker parked on an idle keep-alive connection.
constexpr time_t kKeepAliveTimeoutSeconds = 1;
constexpr time_t kReadWriteTimeoutSeconds = 5;

bool IsValidPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  for (char c : path) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' &&
        c != '.' && c != '~' && c != '-') {
      return false;
    }
  }
  return true;
}

// httplib matches handler patterns as std::regex; of the characters IsValidPath allows, only '.'
// means something there.
std::string PathPattern(absl::string_view path) {
  std::string pattern;
  for (char c : path) {
    if (c == '.') pattern += '\\';
    pattern += c;
  }
  return pattern;
}

absl::Status CheckEndpoints(const std::vector<MetricsHttpServer::TextEndpoint>& endpoints) {
  absl::flat_hash_set<absl::string_view> paths = {"/metrics", "/healthz"};
  for (const MetricsHttpServer::TextEndpoint& endpoint : endpoints) {
    if (!IsValidPath(endpoint.path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint path \"", absl::CEscape(endpoint.path), "\" is not / and [A-Za-z0-9/_.~-]"));
    }
    if (!paths.insert(endpoint.path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint path ", endpoint.path, " is served twice"));
    }
    if (endpoint.render == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint ", endpoint.path, " has no render function"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Server adds a reliable shutdown to httplib::Server. httplib's own stop() does nothing until the
// accept loop has set is_running_, so a Stop right after Start could leave the loop blocked in
// accept() forever. Invalidating svr_sock_ and shutting the socket down works at any moment: the
// loop checks svr_sock_ before each accept(), and shutdown() makes a pending or later accept() fail.
// The descriptor is closed only after the loop has exited, so it cannot be reused under it.
class MetricsHttpServer::Server : public httplib::Server {
 public:
  ~Server() override { CloseListener(); }

  // Bind binds and listens; returns the port or -1.
  int Bind(const std::string& host, int port) {
    const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
    // Also on failure: httplib can fail after creating the socket (getsockname) and keep it.
    listen_fd_ = svr_sock_.load();
    return bound;
  }

  // ShutdownListener makes the accept loop (running or about to run) exit.
  void ShutdownListener() {
    svr_sock_.store(INVALID_SOCKET);
    if (listen_fd_ != INVALID_SOCKET) ::shutdown(listen_fd_, SHUT_RDWR);
  }

  // CloseListener frees the port. Only once the accept loop has exited or never started.
  void CloseListener() {
    svr_sock_.store(INVALID_SOCKET);
    if (listen_fd_ != INVALID_SOCKET) ::close(listen_fd_);
    listen_fd_ = INVALID_SOCKET;
  }

 private:
  socket_t listen_fd_ = INVALID_SOCKET;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, const Registry* registry,
    std::vector<TextEndpoint> extra_endpoints) {
  if (registry == nullptr) return absl::InvalidArgumentError("no metrics registry");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is out of range"));
  }
  RETURN_IF_ERROR(CheckEndpoints(extra_endpoints));

  auto server = std::make_unique<Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server->set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server->set_read_timeout(kReadWriteTimeoutSeconds);
  server->set_write_timeout(kReadWriteTimeoutSeconds);
  // httplib's default sets SO_REUSEPORT, which would let a second process share the port.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  server->Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry->RenderPrometheusText(), kMetricsContentType);
  });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok", kTextContentType);
  });
  for (TextEndpoint& endpoint : extra_endpoints) {
    server->Get(PathPattern(endpoint.path),
                [render = std::move(endpoint.render)](const httplib::Request&,
                                                      httplib::Response& response) {
                  response.set_content(render(), kTextContentType);
                });
  }

  const int bound_port = server->Bind(host, port);
  if (bound_port < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", host, " port ", port));
  }
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(server), bound_port));
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Server> server, int port)
    : server_(std::move(server)), port_(port) {
  thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->ShutdownListener();
  // listen_after_bind returns after its worker pool has finished every request.
  thread_.join();
  server_->CloseListener();
}

}  // namespace edgelink::metrics
