#include "common/tunnel/posix_tcp.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/io/sockaddr.h"

namespace edgelink::tunnel {
namespace {

// One read: as large as one SCTP message, so a read becomes at most one message.
constexpr size_t kReadSize = 64 * 1024;
constexpr int kAcceptsPerRound = 16;
constexpr absl::Duration kAcceptRetry = absl::Milliseconds(100);

std::string ErrnoText(int error) { return std::strerror(error); }

absl::Status SocketError(int error, absl::string_view what) {
  return absl::ErrnoToStatus(error, what);
}

void SetNoDelay(int fd) {
  // Tunnelled protocols are often interactive (a shell, RTSP control): no Nagle delay.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// TcpConnection: one non-blocking TCP socket as a LocalConnection. Each event calls the listener
// last and returns, so a listener that destroys the connection is safe.
class TcpConnection final : public LocalConnection {
 public:
  TcpConnection(TcpIo* io, int fd, bool connecting, net::Endpoint peer)
      : io_(io), fd_(fd), connecting_(connecting), peer_(peer) {}

  ~TcpConnection() override {
    if (watching_) io_->loop_->Unwatch(fd_);
    io_->CancelWritable(fd_);
    close(fd_);
  }

  void Start(Listener* listener) override {
    listener_ = listener;
    if (connecting_) io_->WaitWritable(fd_, [this] { OnWritableEvent(); });
  }

  void SetReading(bool on) override {
    want_read_ = on;
    UpdateWatch();
  }

  absl::StatusOr<size_t> Write(absl::Span<const uint8_t> data) override {
    if (failed_ || write_shut_ || connecting_) {
      return absl::FailedPreconditionError("connection not writable");
    }
    if (data.empty()) return 0;
    for (;;) {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        if (static_cast<size_t>(n) < data.size()) WantWritable();
        return static_cast<size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        WantWritable();
        return 0;
      }
      const int error = errno;
      failed_ = true;
      UpdateWatch();
      return absl::UnavailableError(
          absl::StrCat("send to ", peer_.ToString(), ": ", ErrnoText(error)));
    }
  }

  void ShutdownWrite() override {
    if (write_shut_ || failed_) return;
    write_shut_ = true;
    shutdown(fd_, SHUT_WR);
  }

 private:
  void UpdateWatch() {
    const bool should = want_read_ && !connecting_ && !eof_ && !failed_ && listener_ != nullptr;
    if (should == watching_) return;
    if (should) {
      watching_ = io_->loop_->Watch(fd_, [this] { OnReadable(); }).ok();
    } else {
      io_->loop_->Unwatch(fd_);
      watching_ = false;
    }
  }

  void WantWritable() {
    if (want_writable_) return;
    want_writable_ = true;
    io_->WaitWritable(fd_, [this] { OnWritableEvent(); });
  }

  void OnReadable() {
    std::vector<uint8_t>& buffer = io_->read_buffer_;
    const ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
    if (n > 0) {
      listener_->OnData(absl::MakeConstSpan(buffer.data(), static_cast<size_t>(n)));
      return;
    }
    if (n == 0) {
      eof_ = true;
      UpdateWatch();
      listener_->OnEnd();
      return;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
    const int error = errno;
    failed_ = true;
    UpdateWatch();
    listener_->OnError(
        absl::UnavailableError(absl::StrCat(peer_.ToString(), ": ", ErrnoText(error))));
  }

  void OnWritableEvent() {
    if (connecting_) {
      int error = 0;
      socklen_t length = sizeof(error);
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error != 0) {
        failed_ = true;
        listener_->OnError(absl::UnavailableError(
            absl::StrCat("connect to ", peer_.ToString(), ": ", ErrnoText(error))));
        return;
      }
      connecting_ = false;
      SetNoDelay(fd_);
      UpdateWatch();
      listener_->OnConnected();
      return;
    }
    want_writable_ = false;
    if (failed_) return;
    listener_->OnWritable();
  }

  TcpIo* const io_;
  const int fd_;
  bool connecting_;
  const net::Endpoint peer_;
  Listener* listener_ = nullptr;
  bool want_read_ = false;
  bool watching_ = false;
  bool want_writable_ = false;
  bool eof_ = false;
  bool failed_ = false;
  bool write_shut_ = false;
};

absl::StatusOr<std::unique_ptr<TcpIo>> TcpIo::New(io::EventLoop* loop) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return SocketError(errno, "epoll_create1");
  std::unique_ptr<TcpIo> io(new TcpIo(loop, epoll_fd));
  TcpIo* p = io.get();
  if (absl::Status s = loop->Watch(epoll_fd, [p] { p->OnWaitReady(); }); !s.ok()) return s;
  return io;
}

TcpIo::TcpIo(io::EventLoop* loop, int epoll_fd)
    : loop_(loop), epoll_fd_(epoll_fd), read_buffer_(kReadSize) {}

TcpIo::~TcpIo() {
  loop_->Unwatch(epoll_fd_);
  close(epoll_fd_);
}

void TcpIo::WaitWritable(int fd, std::function<void()> on_writable) {
  const uint32_t generation = next_generation_++;
  epoll_event event = {};
  event.events = EPOLLOUT;
  event.data.u64 = (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
  auto it = waiting_.find(fd);
  const int op = it == waiting_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_fd_, op, fd, &event) != 0) {
    // Only for a descriptor that is not a socket: a broken invariant of this file.
    std::fprintf(stderr, "posix_tcp: epoll_ctl: %s\n", std::strerror(errno));
    std::abort();
  }
  waiting_[fd] = Waiter{generation, std::move(on_writable)};
}

void TcpIo::CancelWritable(int fd) {
  auto it = waiting_.find(fd);
  if (it == waiting_.end()) return;
  waiting_.erase(it);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void TcpIo::OnWaitReady() {
  epoll_event events[64];
  const int n = epoll_wait(epoll_fd_, events, 64, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
    const uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    auto it = waiting_.find(fd);
    // A waiter cancelled (or replaced) by an earlier callback of this round is not called.
    if (it == waiting_.end() || it->second.generation != generation) continue;
    std::function<void()> callback = std::move(it->second.on_writable);
    waiting_.erase(it);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    callback();
  }
}

absl::StatusOr<std::unique_ptr<LocalConnection>> TcpIo::Connect(const net::Endpoint& to) {
  sockaddr_storage address;
  absl::StatusOr<socklen_t> length = io::ToSockaddr(to, &address);
  if (!length.ok()) return length.status();
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError(errno, "socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), *length) != 0 &&
      errno != EINPROGRESS) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to ", to.ToString(), ": ", ErrnoText(error)));
  }
  // Even a connect that finished at once reports OnConnected from the loop, as events must.
  return std::unique_ptr<LocalConnection>(new TcpConnection(this, fd, true, to));
}

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Listen(TcpIo* io, const net::Endpoint& at,
                                                                 OnAccept on_accept) {
  sockaddr_storage address;
  absl::StatusOr<socklen_t> length = io::ToSockaddr(at, &address);
  if (!length.ok()) return length.status();
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError(errno, "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), *length) != 0) {
    const int error = errno;
    close(fd);
    const std::string what = absl::StrCat("listen on ", at.ToString(), ": ", ErrnoText(error));
    switch (error) {
      case EADDRINUSE:
        return absl::AlreadyExistsError(what);
      case EACCES:
        return absl::PermissionDeniedError(what);
      default:
        return absl::InvalidArgumentError(what);
    }
  }
  if (listen(fd, 128) != 0) {
    const int error = errno;
    close(fd);
    return SocketError(error, "listen");
  }
  sockaddr_storage bound;
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    const int error = errno;
    close(fd);
    return SocketError(error, "getsockname");
  }
  absl::StatusOr<net::Endpoint> local = io::FromSockaddr(bound, bound_length);
  if (!local.ok()) {
    close(fd);
    return local.status();
  }
  std::unique_ptr<TcpListener> listener(new TcpListener(io, fd, *local, std::move(on_accept)));
  TcpListener* p = listener.get();
  if (absl::Status s = io->loop_->Watch(fd, [p] { p->OnReadable(); }); !s.ok()) return s;
  return listener;
}

TcpListener::TcpListener(TcpIo* io, int fd, net::Endpoint local, OnAccept on_accept)
    : io_(io), fd_(fd), local_(local), on_accept_(std::move(on_accept)) {}

TcpListener::~TcpListener() {
  io_->loop_->CancelTimer(retry_timer_);
  io_->loop_->Unwatch(fd_);
  close(fd_);
}

void TcpListener::OnReadable() {
  for (int i = 0; i < kAcceptsPerRound; ++i) {
    sockaddr_storage address;
    socklen_t length = sizeof(address);
    const int fd =
        accept4(fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: the pending connection stays queued and the socket stays
      // readable, so stop watching for a while instead of spinning.
      io_->loop_->Unwatch(fd_);
      retry_timer_ = io_->loop_->AddTimer(io_->loop_->Now() + kAcceptRetry, [this] {
        retry_timer_ = io::kNoTimer;
        (void)io_->loop_->Watch(fd_, [this] { OnReadable(); });
      });
      return;
    }
    SetNoDelay(fd);
    absl::StatusOr<net::Endpoint> from = io::FromSockaddr(address, length);
    ++accepted_;
    on_accept_(std::unique_ptr<LocalConnection>(
                   new TcpConnection(io_, fd, false, from.ok() ? *from : net::Endpoint())),
               from.ok() ? *from : net::Endpoint());
  }
}

absl::StatusOr<std::unique_ptr<LocalConnection>> LoopbackConnector::Connect(uint16_t port) {
  return io_->Connect(net::Endpoint::Ipv4({127, 0, 0, 1}, port));
}

}  // namespace edgelink::tunnel
