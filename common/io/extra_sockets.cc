#include "common/io/extra_sockets.h"

#include <utility>

namespace edgelink::io {

ExtraSockets::ExtraSockets(EventLoop* loop, net::Endpoint bind_to, Receiver receiver)
    : loop_(loop), bind_to_(bind_to.WithPort(0)), receiver_(std::move(receiver)) {}

ExtraSockets::~ExtraSockets() {
  while (!sockets_.empty()) Close(sockets_.begin());
}

absl::Status ExtraSockets::Send(const net::Datagram& datagram) {
  std::unique_ptr<UdpSocket>& socket = sockets_[datagram.socket];
  if (socket == nullptr) {
    absl::StatusOr<std::unique_ptr<UdpSocket>> bound = UdpSocket::Bind(bind_to_);
    if (bound.ok()) {
      const uint16_t index = datagram.socket;
      absl::Status watched =
          loop_->Watch((*bound)->fd(), [this, index] { OnReadable(index); });
      if (watched.ok()) {
        socket = *std::move(bound);
      } else {
        bound = watched;
      }
    }
    if (!bound.ok()) {
      sockets_.erase(datagram.socket);
      return bound.status();
    }
  }
  return socket->SendTo(datagram.to, datagram.bytes);
}

void ExtraSockets::Retain(const std::function<bool(uint16_t socket)>& wanted) {
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    if (wanted(it->first)) {
      ++it;
    } else {
      Close(it++);
    }
  }
}

void ExtraSockets::Close(std::map<uint16_t, std::unique_ptr<UdpSocket>>::iterator it) {
  loop_->Unwatch(it->second->fd());
  sockets_.erase(it);
}

void ExtraSockets::OnReadable(uint16_t socket) {
  // A few batches at most, then back to the loop; the receiver may close this socket.
  for (int round = 0; round < 4; ++round) {
    auto it = sockets_.find(socket);
    if (it == sockets_.end()) return;
    absl::StatusOr<size_t> n = it->second->ReceiveBatch(buffer_);
    if (!n.ok() || *n == 0) return;
    for (const ReceivedDatagram& d : buffer_.datagrams()) {
      if (!d.truncated && d.source.is_set()) receiver_(socket, d.source, d.bytes);
    }
    if (*n < buffer_.max_datagrams()) return;
  }
}

}  // namespace edgelink::io
