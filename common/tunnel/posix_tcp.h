// The POSIX side of tunnels: non-blocking TCP connections (LocalConnection), a listener (the
// client's `tunnel --listen`) and the device's connector to 127.0.0.1, all on an io::EventLoop.
// Not thread-safe: the loop's thread only.
//
// Write readiness. EventLoop watches readability only. Rather than retry blocked writes from a
// polling timer (added latency, or a busy loop while a slow reader holds a socket full), TcpIo
// keeps a second epoll instance of its own holding just the sockets that wait for room (or for
// connect() to finish), and watches that instance's descriptor on the loop: an epoll descriptor is
// readable while any descriptor in its set is ready. A blocked writer wakes as soon as the kernel
// has room, nothing runs while nothing waits, and the EventLoop needs no change.
#ifndef EDGELINK_COMMON_TUNNEL_POSIX_TCP_H_
#define EDGELINK_COMMON_TUNNEL_POSIX_TCP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/event_loop.h"
#include "common/net/endpoint.h"
#include "common/tunnel/local_connection.h"

namespace edgelink::tunnel {

// TcpIo: what the connections and listeners of one event loop share: the write-readiness set and
// a read buffer (a read is handed to the listener at once, so one buffer serves all).
class TcpIo {
 public:
  // kInternal / kResourceExhausted if the epoll instance cannot be made.
  static absl::StatusOr<std::unique_ptr<TcpIo>> New(io::EventLoop* loop);
  // Every connection and listener made with this TcpIo must be destroyed first.
  ~TcpIo();
  TcpIo(const TcpIo&) = delete;
  TcpIo& operator=(const TcpIo&) = delete;

  // Connect starts a non-blocking connect to `to`; OnConnected or OnError follows once the
  // connection is Started. Fails at once (kResourceExhausted, kUnavailable, ...) if the attempt
  // could not start or failed immediately.
  absl::StatusOr<std::unique_ptr<LocalConnection>> Connect(const net::Endpoint& to);

  io::EventLoop* loop() const { return loop_; }

 private:
  friend class TcpConnection;
  friend class TcpListener;

  TcpIo(io::EventLoop* loop, int epoll_fd);
  // Calls `on_writable` once, on the loop, when `fd` can be written (or has an error). Replaces an
  // earlier wait for the same fd.
  void WaitWritable(int fd, std::function<void()> on_writable);
  void CancelWritable(int fd);
  void OnWaitReady();

  struct Waiter {
    uint32_t generation;
    std::function<void()> on_writable;
  };
  io::EventLoop* const loop_;
  const int epoll_fd_;
  absl::flat_hash_map<int, Waiter> waiting_;
  uint32_t next_generation_ = 1;
  std::vector<uint8_t> read_buffer_;
};

// TcpListener accepts TCP connections and hands each over, connected and not yet reading.
class TcpListener {
 public:
  using OnAccept =
      std::function<void(std::unique_ptr<LocalConnection> connection, const net::Endpoint& from)>;
  // Listen binds `at` (port 0: any; local_endpoint() tells) with SO_REUSEADDR and listens.
  // kAlreadyExists if the address is in use, kPermissionDenied for a privileged port,
  // kInvalidArgument for an address not on this host. `on_accept` must not destroy the listener.
  static absl::StatusOr<std::unique_ptr<TcpListener>> Listen(TcpIo* io, const net::Endpoint& at,
                                                             OnAccept on_accept);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  const net::Endpoint& local_endpoint() const { return local_; }
  uint64_t accepted() const { return accepted_; }

 private:
  TcpListener(TcpIo* io, int fd, net::Endpoint local, OnAccept on_accept);
  void OnReadable();

  TcpIo* const io_;
  const int fd_;
  const net::Endpoint local_;
  const OnAccept on_accept_;
  io::TimerId retry_timer_ = io::kNoTimer;  // While out of descriptors.
  uint64_t accepted_ = 0;
};

// LoopbackConnector: the device's connector: TCP to 127.0.0.1:<port>.
class LoopbackConnector : public LocalConnector {
 public:
  explicit LoopbackConnector(TcpIo* io) : io_(io) {}
  absl::StatusOr<std::unique_ptr<LocalConnection>> Connect(uint16_t port) override;

 private:
  TcpIo* const io_;
};

}  // namespace edgelink::tunnel

#endif  // EDGELINK_COMMON_TUNNEL_POSIX_TCP_H_
