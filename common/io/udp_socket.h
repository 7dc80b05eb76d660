// UdpSocket: a non-blocking, close-on-exec UDP socket with batched receive (recvmmsg) and send
// (sendmmsg). It does no waiting of its own: watch fd() on an EventLoop and call ReceiveBatch from
// the callback until it returns 0.
#ifndef EDGELINK_COMMON_IO_UDP_SOCKET_H_
#define EDGELINK_COMMON_IO_UDP_SOCKET_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/net/endpoint.h"

namespace edgelink::io {

// ReceivedDatagram is one datagram in a ReceiveBuffer. `bytes` points into the buffer and is valid
// until the next ReceiveBatch into it.
struct ReceivedDatagram {
  net::Endpoint source;  // Unset only if the kernel reported a family Endpoint cannot hold.
  absl::Span<const uint8_t> bytes;  // At most the buffer's max_datagram_size() bytes.
  size_t length = 0;                // The datagram's full length as sent.
  // truncated: the datagram was longer than a slot (length > bytes.size()) and `bytes` holds only
  // its beginning. Callers drop and count these; they are never valid protocol messages.
  bool truncated = false;
};

// ReceiveBuffer is reusable storage for one ReceiveBatch: up to max_datagrams() datagrams of up to
// max_datagram_size() bytes each, allocated once. Movable, not copyable, not thread-safe.
class ReceiveBuffer {
 public:
  static constexpr size_t kDefaultMaxDatagrams = 64;
  static constexpr size_t kDefaultMaxDatagramSize = 2048;

  // Both sizes are raised to at least 1.
  explicit ReceiveBuffer(size_t max_datagrams = kDefaultMaxDatagrams,
                         size_t max_datagram_size = kDefaultMaxDatagramSize);
  ReceiveBuffer(ReceiveBuffer&&) = default;
  ReceiveBuffer& operator=(ReceiveBuffer&&) = default;
  ReceiveBuffer(const ReceiveBuffer&) = delete;
  ReceiveBuffer& operator=(const ReceiveBuffer&) = delete;

  size_t max_datagrams() const { return datagrams_.size(); }
  size_t max_datagram_size() const { return max_datagram_size_; }

  // The datagrams the last ReceiveBatch returned, in arrival order.
  size_t size() const { return size_; }
  const ReceivedDatagram& operator[](size_t i) const { return datagrams_[i]; }
  absl::Span<const ReceivedDatagram> datagrams() const {
    return absl::MakeConstSpan(datagrams_.data(), size_);
  }

 private:
  friend class UdpSocket;

  size_t max_datagram_size_;
  size_t size_ = 0;
  std::vector<uint8_t> storage_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> addresses_;
  std::vector<mmsghdr> headers_;
  std::vector<ReceivedDatagram> datagrams_;
};

// OutgoingDatagram is one datagram for SendBatch. `bytes` is borrowed for the call only.
struct OutgoingDatagram {
  net::Endpoint to;
  absl::Span<const uint8_t> bytes;
};

// UdpSocket owns one bound UDP socket and closes it on destruction (Unwatch it first).
// Thread-compatible: const methods may run concurrently; anything else needs one caller at a time.
//
// Send errors map to codes as follows (the message names the destination and strerror):
//   kUnavailable      the send buffer is full (EAGAIN, ENOBUFS) or the network is unreachable
//                     right now (ENETUNREACH, EHOSTUNREACH, ENETDOWN, EADDRNOTAVAIL): UDP, so the
//                     caller drops the datagram and counts it.
//   kInvalidArgument  the datagram is too large (EMSGSIZE), the destination is unset, or its family
//                     differs from the socket's.
//   kPermissionDenied EACCES/EPERM (broadcast without SO_BROADCAST, a firewall rejecting it).
//   kInternal         anything else.
class UdpSocket {
 public:
  // Bind opens a socket of `local`'s family and binds it. Port 0 picks an ephemeral port;
  // local_endpoint() tells which. An IPv6 socket is always IPV6_V6ONLY (it never sees IPv4-mapped
  // peers, and [::]:p does not take 0.0.0.0:p): to serve both families, bind one socket of each.
  // SO_REUSEADDR/SO_REUSEPORT are not set. Fails with:
  //   kInvalidArgument   unset endpoint, or an address not on this host (EADDRNOTAVAIL),
  //   kAlreadyExists     the address and port are in use by another socket,
  //   kPermissionDenied  a privileged port (EACCES),
  //   kFailedPrecondition the host does not support the family (EAFNOSUPPORT: IPv6 disabled),
  //   kResourceExhausted out of file descriptors, kInternal otherwise.
  static absl::StatusOr<std::unique_ptr<UdpSocket>> Bind(const net::Endpoint& local);

  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // The bound address with the actual port.
  const net::Endpoint& local_endpoint() const { return local_; }
  // The descriptor, for EventLoop::Watch. Still owned by the UdpSocket.
  int fd() const { return fd_; }

  // SendTo sends one datagram. Errors: see the class comment.
  absl::Status SendTo(const net::Endpoint& to, absl::Span<const uint8_t> bytes);

  // SendBatch sends `datagrams` in order with as few sendmmsg calls as it can, and returns how many
  // from the front went out. A count below datagrams.size() means datagram [count] could not be
  // sent: call again with the rest to learn why (kUnavailable: drop or retry later; any other code:
  // that datagram is bad, skip it). If the very first datagram fails, returns that error as SendTo
  // would. Every destination is checked first: an unset one or one of the wrong family fails the
  // call with kInvalidArgument before anything is sent. An empty span returns 0.
  absl::StatusOr<size_t> SendBatch(absl::Span<const OutgoingDatagram> datagrams);

  // ReceiveBatch reads up to batch.max_datagrams() waiting datagrams into `batch` without blocking
  // and returns how many (also batch.size()); 0 when nothing is waiting. Oversized datagrams are
  // returned with `truncated` set. Fails with kInternal (batch.size() is then 0) only for a
  // socket-level error, which is consumed: the next call proceeds normally.
  absl::StatusOr<size_t> ReceiveBatch(ReceiveBuffer& batch);

  // SetReceiveBufferSize / SetSendBufferSize request SO_RCVBUF / SO_SNDBUF of `bytes` and return
  // the effective size as the kernel reports it: Linux doubles the request for bookkeeping and caps
  // it at net.core.rmem_max / wmem_max, so the result may be smaller than asked. Fails with
  // kInvalidArgument for a negative size.
  absl::StatusOr<int> SetReceiveBufferSize(int bytes);
  absl::StatusOr<int> SetSendBufferSize(int bytes);

 private:
  UdpSocket(int fd, const net::Endpoint& local) : fd_(fd), local_(local) {}

  absl::Status CheckDestination(const net::Endpoint& to) const;
  absl::StatusOr<int> SetBufferSize(int option, const char* name, int bytes);

  const int fd_;
  net::Endpoint local_;  // As requested until Bind reads back the actual port.
};

namespace internal {
// SendErrorStatus maps a sendto/sendmmsg errno to a status as the UdpSocket comment describes.
// Exposed for tests: most of these errors cannot be provoked on loopback.
absl::Status SendErrorStatus(int err, const net::Endpoint& to);
}  // namespace internal

}  // namespace edgelink::io

#endif  // EDGELINK_COMMON_IO_UDP_SOCKET_H_
