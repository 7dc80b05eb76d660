// RpcEndpoint: request/response calls over the peer channel's datagrams (DataKind::kRpc), sans-I/O.
// Each call is one datagram each way: a caller retransmits an unanswered request (doubling from
// 200 ms) until its deadline; the answering side keeps recent answers, so a retransmitted request
// is answered again without running the handler twice.
//
//   request:  u8 1 || u32 id || str8 method || u16 length || payload
//   response: u8 2 || u32 id || u8 code (absl::StatusCode) || str8 message || u16 length || payload
#ifndef EDGELINK_COMMON_RPC_RPC_H_
#define EDGELINK_COMMON_RPC_RPC_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace edgelink::rpc {

// Payloads fit one datagram with the framing.
inline constexpr size_t kMaxRpcPayload = 1024;

using Reply = absl::StatusOr<std::vector<uint8_t>>;
// A handler answers synchronously. The status message goes back to the caller: no secrets.
using Handler = std::function<Reply(absl::Span<const uint8_t> payload)>;
using Done = std::function<void(Reply reply)>;

struct RpcCounters {
  uint64_t calls = 0;
  uint64_t retransmissions = 0;
  uint64_t served = 0;
  uint64_t answered_from_cache = 0;
  uint64_t dropped_malformed = 0;
  uint64_t unknown_method = 0;
};

// Not thread-safe: owned by one event loop, beside its PeerConnection.
class RpcEndpoint {
 public:
  RpcEndpoint() = default;

  // Handle registers the handler for `method` (replacing one). A request for a method nobody
  // registered is answered UNIMPLEMENTED.
  void Handle(std::string method, Handler handler);

  // Call sends a request and calls `done` exactly once: with the answer, with the remote status,
  // or with DEADLINE_EXCEEDED at `deadline`. kInvalidArgument (via done) for a method over 255
  // bytes or a payload over kMaxRpcPayload.
  void Call(absl::string_view method, absl::Span<const uint8_t> payload, absl::Time deadline,
            Done done, absl::Time now);

  // OnDatagram takes one RPC datagram from the peer.
  void OnDatagram(absl::Span<const uint8_t> datagram, absl::Time now);
  void OnTimeout(absl::Time now);
  absl::Time next_timeout() const;
  // Datagrams to send to the peer (as DataKind::kRpc).
  std::vector<std::vector<uint8_t>> TakeOutgoing();

  // CancelAll fails every pending call with `status` (the connection closed).
  void CancelAll(const absl::Status& status);

  size_t pending() const { return pending_.size(); }
  const RpcCounters& counters() const { return counters_; }

 private:
  struct Pending {
    std::vector<uint8_t> request;
    absl::Time deadline;
    absl::Time next_send;
    absl::Duration rto;
    Done done;
  };

  void Answer(uint32_t id, const Reply& reply);

  uint32_t next_id_ = 1;
  absl::flat_hash_map<std::string, Handler> handlers_;
  absl::flat_hash_map<uint32_t, Pending> pending_;
  // Recent answers by request id, oldest first, for retransmitted requests.
  static constexpr size_t kAnswerCache = 64;
  absl::flat_hash_map<uint32_t, std::vector<uint8_t>> answers_;
  std::deque<uint32_t> answer_order_;
  std::vector<std::vector<uint8_t>> outgoing_;
  RpcCounters counters_;
};

}  // namespace edgelink::rpc

#endif  // EDGELINK_COMMON_RPC_RPC_H_
