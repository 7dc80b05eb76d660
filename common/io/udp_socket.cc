#include "common/io/udp_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/io/posix_error.h"
#include "common/io/sockaddr.h"
#include "common/status/status_macros.h"

namespace edgelink::io {
namespace {

// Datagrams per sendmmsg call; the headers live on the stack (about 13 KiB).
constexpr size_t kSendChunk = 64;

int SocketFamily(net::Endpoint::Family family) {
  return family == net::Endpoint::Family::kIpv6 ? AF_INET6 : AF_INET;
}

absl::Status BindErrorStatus(int err, const net::Endpoint& local) {
  const std::string context = absl::StrCat("bind ", local.ToString());
  switch (err) {
    case EADDRINUSE:
      return ErrnoStatus(absl::StatusCode::kAlreadyExists, err,
                         absl::StrCat(context, " (another socket holds this address and port)"));
    case EADDRNOTAVAIL:
      return ErrnoStatus(absl::StatusCode::kInvalidArgument, err,
                         absl::StrCat(context, " (address is not on this host)"));
    case EACCES:
    case EPERM:
      return ErrnoStatus(absl::StatusCode::kPermissionDenied, err, context);
    default:
      return ErrnoStatus(absl::StatusCode::kInternal, err, context);
  }
}

}  // namespace

namespace internal {

absl::Status SendErrorStatus(int err, const net::Endpoint& to) {
  const std::string context = absl::StrCat("send to ", to.ToString());
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
      return ErrnoStatus(absl::StatusCode::kUnavailable, err,
                         absl::StrCat(context, " (socket buffer full)"));
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EADDRNOTAVAIL:
      return ErrnoStatus(absl::StatusCode::kUnavailable, err, context);
    case EMSGSIZE:
      return ErrnoStatus(absl::StatusCode::kInvalidArgument, err, context);
    case EACCES:
    case EPERM:
      return ErrnoStatus(absl::StatusCode::kPermissionDenied, err, context);
    default:
      return ErrnoStatus(absl::StatusCode::kInternal, err, context);
  }
}

}  // namespace internal

ReceiveBuffer::ReceiveBuffer(size_t max_datagrams, size_t max_datagram_size)
    : max_datagram_size_(std::max<size_t>(max_datagram_size, 1)) {
  const size_t count = std::max<size_t>(max_datagrams, 1);
  storage_.resize(count * max_datagram_size_);
  iovecs_.resize(count);
  addresses_.resize(count);
  headers_.resize(count);
  datagrams_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    iovecs_[i].iov_base = storage_.data() + i * max_datagram_size_;
    iovecs_[i].iov_len = max_datagram_size_;
    std::memset(&headers_[i], 0, sizeof(headers_[i]));
    headers_[i].msg_hdr.msg_iov = &iovecs_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
    headers_[i].msg_hdr.msg_name = &addresses_[i];
  }
}

absl::StatusOr<std::unique_ptr<UdpSocket>> UdpSocket::Bind(const net::Endpoint& local) {
  sockaddr_storage address;
  ASSIGN_OR_RETURN(const socklen_t length, ToSockaddr(local, &address));
  const int fd = socket(SocketFamily(local.family()), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        IPPROTO_UDP);
  if (fd < 0) {
    const int err = errno;
    absl::StatusCode code = absl::StatusCode::kInternal;
    if (err == EAFNOSUPPORT) code = absl::StatusCode::kFailedPrecondition;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      code = absl::StatusCode::kResourceExhausted;
    }
    return ErrnoStatus(code, err, absl::StrCat("socket for ", local.ToString()));
  }
  // The UdpSocket owns fd from here, so every early return closes it.
  std::unique_ptr<UdpSocket> udp(new UdpSocket(fd, local));
  if (local.family() == net::Endpoint::Family::kIpv6) {
    const int on = 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) {
      const int err = errno;
      return ErrnoStatus(absl::StatusCode::kInternal, err, "setsockopt(IPV6_V6ONLY)");
    }
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    return BindErrorStatus(errno, local);
  }
  sockaddr_storage bound;
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    const int err = errno;
    return ErrnoStatus(absl::StatusCode::kInternal, err, "getsockname");
  }
  ASSIGN_OR_RETURN(udp->local_, FromSockaddr(bound, bound_length));
  return udp;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

absl::Status UdpSocket::CheckDestination(const net::Endpoint& to) const {
  if (!to.is_set()) return absl::InvalidArgumentError("send to an unset endpoint");
  if (to.family() != local_.family()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot send to ", to.ToString(),
                                                   " from a socket bound to ",
                                                   local_.ToString(), " (other family)"));
  }
  return absl::OkStatus();
}

absl::Status UdpSocket::SendTo(const net::Endpoint& to, absl::Span<const uint8_t> bytes) {
  RETURN_IF_ERROR(CheckDestination(to));
  sockaddr_storage address;
  ASSIGN_OR_RETURN(const socklen_t length, ToSockaddr(to, &address));
  for (;;) {
    const ssize_t sent = sendto(fd_, bytes.data(), bytes.size(), 0,
                                reinterpret_cast<const sockaddr*>(&address), length);
    if (sent >= 0) return absl::OkStatus();
    const int err = errno;
    if (err != EINTR) return internal::SendErrorStatus(err, to);
  }
}

absl::StatusOr<size_t> UdpSocket::SendBatch(absl::Span<const OutgoingDatagram> datagrams) {
  for (const OutgoingDatagram& datagram : datagrams) RETURN_IF_ERROR(CheckDestination(datagram.to));
  mmsghdr headers[kSendChunk];
  iovec iovecs[kSendChunk];
  sockaddr_storage addresses[kSendChunk];
  size_t done = 0;
  while (done < datagrams.size()) {
    const size_t chunk = std::min(kSendChunk, datagrams.size() - done);
    for (size_t i = 0; i < chunk; ++i) {
      const OutgoingDatagram& datagram = datagrams[done + i];
      ASSIGN_OR_RETURN(const socklen_t length, ToSockaddr(datagram.to, &addresses[i]));
      // sendmmsg does not write through iov_base; the cast only satisfies the C struct.
      iovecs[i].iov_base = const_cast<uint8_t*>(datagram.bytes.data());
      iovecs[i].iov_len = datagram.bytes.size();
      std::memset(&headers[i], 0, sizeof(headers[i]));
      headers[i].msg_hdr.msg_name = &addresses[i];
      headers[i].msg_hdr.msg_namelen = length;
      headers[i].msg_hdr.msg_iov = &iovecs[i];
      headers[i].msg_hdr.msg_iovlen = 1;
    }
    const int sent = sendmmsg(fd_, headers, static_cast<unsigned int>(chunk), 0);
    if (sent < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (done == 0) return internal::SendErrorStatus(err, datagrams[0].to);
      return done;  // The caller learns the error by sending datagrams[done] again.
    }
    done += static_cast<size_t>(sent);
    // sendmmsg stops early only on an error it does not report (it is lost once something went
    // out); the caller sees it by sending the rest.
    if (static_cast<size_t>(sent) < chunk) return done;
  }
  return done;
}

absl::StatusOr<size_t> UdpSocket::ReceiveBatch(ReceiveBuffer& batch) {
  batch.size_ = 0;
  const size_t capacity = batch.headers_.size();
  for (size_t i = 0; i < capacity; ++i) {
    // Both are written by the kernel, so they are reset each time.
    batch.headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    batch.headers_[i].msg_hdr.msg_flags = 0;
  }
  int received;
  for (;;) {
    // MSG_TRUNC makes msg_len the datagram's real length even when it did not fit.
    received = recvmmsg(fd_, batch.headers_.data(), static_cast<unsigned int>(capacity),
                        MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (received >= 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    return ErrnoStatus(absl::StatusCode::kInternal, err,
                       absl::StrCat("recvmmsg on ", local_.ToString()));
  }
  for (int i = 0; i < received; ++i) {
    const mmsghdr& header = batch.headers_[i];
    ReceivedDatagram& datagram = batch.datagrams_[i];
    absl::StatusOr<net::Endpoint> source =
        FromSockaddr(batch.addresses_[i], header.msg_hdr.msg_namelen);
    datagram.source = source.ok() ? *source : net::Endpoint();
    datagram.length = header.msg_len;
    datagram.truncated =
        (header.msg_hdr.msg_flags & MSG_TRUNC) != 0 || header.msg_len > batch.max_datagram_size_;
    datagram.bytes = absl::MakeConstSpan(
        static_cast<const uint8_t*>(batch.iovecs_[i].iov_base),
        std::min<size_t>(header.msg_len, batch.max_datagram_size_));
  }
  batch.size_ = static_cast<size_t>(received);
  return batch.size_;
}

absl::StatusOr<int> UdpSocket::SetBufferSize(int option, const char* name, int bytes) {
  if (bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " size must not be negative: ", bytes));
  }
  if (setsockopt(fd_, SOL_SOCKET, option, &bytes, sizeof(bytes)) != 0) {
    const int err = errno;
    return ErrnoStatus(absl::StatusCode::kInternal, err, absl::StrCat("setsockopt(", name, ")"));
  }
  int effective = 0;
  socklen_t length = sizeof(effective);
  if (getsockopt(fd_, SOL_SOCKET, option, &effective, &length) != 0) {
    const int err = errno;
    return ErrnoStatus(absl::StatusCode::kInternal, err, absl::StrCat("getsockopt(", name, ")"));
  }
  return effective;
}

absl::StatusOr<int> UdpSocket::SetReceiveBufferSize(int bytes) {
  return SetBufferSize(SO_RCVBUF, "SO_RCVBUF", bytes);
}

absl::StatusOr<int> UdpSocket::SetSendBufferSize(int bytes) {
  return SetBufferSize(SO_SNDBUF, "SO_SNDBUF", bytes);
}

}  // namespace edgelink::io
