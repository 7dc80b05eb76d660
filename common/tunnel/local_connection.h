// LocalConnection: the local end of one tunnelled connection as the tunnel core (TunnelSession)
// sees it: a TCP connection in production (posix_tcp.h), a fake in tests. The core never touches
// a socket; it asks for bytes, writes bytes, and reacts to the events below.
#ifndef EDGELINK_COMMON_TUNNEL_LOCAL_CONNECTION_H_
#define EDGELINK_COMMON_TUNNEL_LOCAL_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgelink::tunnel {

class LocalConnection {
 public:
  // Events, delivered from the owner's event loop only, never from inside a LocalConnection
  // method. A listener may destroy the connection from inside any of them: an implementation does
  // not touch itself after a listener call unless it knows it still exists.
  class Listener {
   public:
    virtual ~Listener() = default;
    // connect() finished (connections a LocalConnector made; accepted ones start connected).
    virtual void OnConnected() = 0;
    // Bytes the local peer sent; only while reading is on. The span is valid during the call.
    virtual void OnData(absl::Span<const uint8_t> data) = 0;
    // The local peer sends no more (end of file). No OnData follows.
    virtual void OnEnd() = 0;
    // A Write took less than it was given and there is room again.
    virtual void OnWritable() = 0;
    // The connection failed (connect refused, reset, ...). No event follows.
    virtual void OnError(absl::Status status) = 0;
  };

  // The destructor closes the connection (a reset if unread bytes remain) and sends no event.
  virtual ~LocalConnection() = default;

  // Start sends events to `listener` (not owned; it outlives the connection or destroys it first)
  // from now on. Reading starts off.
  virtual void Start(Listener* listener) = 0;
  // SetReading starts or stops OnData. While off, bytes stay in the kernel and TCP's window
  // closes on the local peer: this is how the tunnel pushes back.
  virtual void SetReading(bool on) = 0;
  // Write takes bytes and returns how many: all, or fewer (possibly 0) when the socket buffer is
  // full, and then OnWritable follows. An error (the peer reset, the direction was shut down) is
  // final for writing; the connection reports no OnError for it.
  virtual absl::StatusOr<size_t> Write(absl::Span<const uint8_t> data) = 0;
  // ShutdownWrite sends FIN after the bytes already written (half-close). Reading goes on.
  virtual void ShutdownWrite() = 0;
};

// LocalConnector makes the device's connections to its own services.
class LocalConnector {
 public:
  virtual ~LocalConnector() = default;
  // Connect starts connecting to 127.0.0.1:`port`; OnConnected or OnError follows once the
  // connection is Started. Fails at once only when no attempt could start (out of descriptors).
  virtual absl::StatusOr<std::unique_ptr<LocalConnection>> Connect(uint16_t port) = 0;
};

}  // namespace edgelink::tunnel

#endif  // EDGELINK_COMMON_TUNNEL_LOCAL_CONNECTION_H_
