// MetricsHttpServer: serves a metrics::Registry over HTTP for Prometheus, on its own threads
// (cpp-httplib). This is the I/O side of basestation/metrics; the Registry itself does no I/O.
#ifndef EDGELINK_BASESTATION_METRICS_HTTP_SERVER_H_
#define EDGELINK_BASESTATION_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "basestation/metrics/metrics.h"

namespace edgelink::metrics {

// MetricsHttpServer answers
//   GET /metrics  200, Content-Type "text/plain; version=0.0.4; charset=utf-8", the Registry's
//                 RenderPrometheusText() (gzip/brotli when the client asks for it);
//   GET /healthz  200, "ok";
//   GET <path>    200, text/plain, for each extra TextEndpoint;
//   anything else 404.
// HEAD works wherever GET does. Requests are served by a small pool of worker threads, so the
// Registry and every TextEndpoint::render run concurrently with the caller's threads and with
// each other.
//
// Start, Stop and the destructor belong to the owner's thread and must not be called from a
// handler. The Registry and every render function must outlive the server, or at least its Stop.
class MetricsHttpServer {
 public:
  // TextEndpoint is an extra GET handler, e.g. {"/devices", [&] { return DescribeDevices(); }}.
  struct TextEndpoint {
    // The exact path, starting with '/', of the characters [A-Za-z0-9/_.~-].
    std::string path;
    // render returns the body (text/plain; charset=utf-8). It runs on a worker thread, possibly
    // on several at once, so it must be thread-safe.
    std::function<std::string()> render;
  };

  // Start binds `host` (an address such as "127.0.0.1", "::1", "0.0.0.0") and `port` (0 picks a
  // free ephemeral port; port() tells which) and starts serving before it returns. `registry` is
  // not owned. Fails with kInvalidArgument on a null registry, a port outside [0, 65535], or a bad
  // or repeated endpoint path (including /metrics and /healthz) or a null render function; with
  // kUnavailable if the address cannot be bound (in use, or not local). The socket sets
  // SO_REUSEADDR but not SO_REUSEPORT, so a second server on a busy port fails instead of sharing.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, const Registry* registry,
      std::vector<TextEndpoint> extra_endpoints = {});

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  // The destructor stops the server (see Stop).
  ~MetricsHttpServer();

  // port is the bound port, also when Start was given 0.
  int port() const { return port_; }

  // Stop closes the listening socket, lets requests in progress finish and joins every thread:
  // once it returns, no handler runs and the port is free. It waits for in-flight requests (a
  // stalled client at most the 5 s read/write timeout) and for idle keep-alive connections (at
  // most 1 s). Idempotent.
  void Stop();

 private:
  class Server;

  MetricsHttpServer(std::unique_ptr<Server> server, int port);

  std::unique_ptr<Server> server_;
  const int port_;
  std::thread thread_;  // Runs the accept loop; joinable until Stop.
};

}  // namespace edgelink::metrics

#endif  // EDGELINK_BASESTATION_METRICS_HTTP_SERVER_H_
