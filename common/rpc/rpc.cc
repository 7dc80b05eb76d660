#include "common/rpc/rpc.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/wire/bytes.h"

namespace edgelink::rpc {
namespace {

constexpr uint8_t kRequest = 1;
constexpr uint8_t kResponse = 2;
constexpr absl::Duration kInitialRto = absl::Milliseconds(200);
constexpr absl::Duration kMaxRto = absl::Seconds(2);

void WriteBytes16(absl::Span<const uint8_t> bytes, wire::ByteWriter& out) {
  out.WriteU16(static_cast<uint16_t>(bytes.size()));
  out.WriteBytes(bytes);
}

bool ReadBytes16(wire::ByteReader& in, absl::Span<const uint8_t>* out) {
  uint16_t n = 0;
  return in.ReadU16(&n) && n <= kMaxRpcPayload && in.ReadSpan(n, out);
}

}  // namespace

void RpcEndpoint::Handle(std::string method, Handler handler) {
  handlers_[std::move(method)] = std::move(handler);
}

void RpcEndpoint::Call(absl::string_view method, absl::Span<const uint8_t> payload,
                       absl::Time deadline, Done done, absl::Time now) {
  if (method.empty() || method.size() > 255 || payload.size() > kMaxRpcPayload) {
    done(absl::InvalidArgumentError(absl::StrCat(
        "RPC method must be 1-255 bytes and payload at most ", kMaxRpcPayload, " bytes")));
    return;
  }
  const uint32_t id = next_id_++;
  wire::ByteWriter out;
  out.WriteU8(kRequest);
  out.WriteU32(id);
  out.WriteString8(method);
  WriteBytes16(payload, out);
  ++counters_.calls;
  outgoing_.push_back(out.bytes());
  pending_[id] = {out.Take(), deadline, now + kInitialRto, kInitialRto, std::move(done)};
}

void RpcEndpoint::Answer(uint32_t id, const Reply& reply) {
  wire::ByteWriter out;
  out.WriteU8(kResponse);
  out.WriteU32(id);
  out.WriteU8(static_cast<uint8_t>(reply.status().code()));
  out.WriteString8(reply.status().message().substr(0, 255));
  static const std::vector<uint8_t> kEmpty;
  const std::vector<uint8_t>& payload = reply.ok() ? *reply : kEmpty;
  WriteBytes16(absl::MakeConstSpan(payload).first(std::min(payload.size(), kMaxRpcPayload)), out);
  outgoing_.push_back(out.bytes());
  answers_[id] = out.Take();
  answer_order_.push_back(id);
  if (answer_order_.size() > kAnswerCache) {
    answers_.erase(answer_order_.front());
    answer_order_.pop_front();
  }
}

void RpcEndpoint::OnDatagram(absl::Span<const uint8_t> datagram, absl::Time now) {
  wire::ByteReader in(datagram);
  uint8_t kind = 0;
  uint32_t id = 0;
  if (!in.ReadU8(&kind) || !in.ReadU32(&id)) {
    ++counters_.dropped_malformed;
    return;
  }
  if (kind == kRequest) {
    std::string method;
    absl::Span<const uint8_t> payload;
    if (!in.ReadString8(&method) || !ReadBytes16(in, &payload) || !in.done()) {
      ++counters_.dropped_malformed;
      return;
    }
    if (auto cached = answers_.find(id); cached != answers_.end()) {
      ++counters_.answered_from_cache;
      outgoing_.push_back(cached->second);
      return;
    }
    auto handler = handlers_.find(method);
    if (handler == handlers_.end()) {
      ++counters_.unknown_method;
      Answer(id, absl::UnimplementedError(
                     absl::StrCat("no RPC method \"", absl::CHexEscape(method.substr(0, 64)),
                                  "\"")));
      return;
    }
    ++counters_.served;
    Answer(id, handler->second(payload));
    return;
  }
  if (kind == kResponse) {
    uint8_t code = 0;
    std::string message;
    absl::Span<const uint8_t> payload;
    if (!in.ReadU8(&code) || code > 16 || !in.ReadString8(&message) ||
        !ReadBytes16(in, &payload) || !in.done()) {
      ++counters_.dropped_malformed;
      return;
    }
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // A late duplicate of an answer already delivered.
    Done done = std::move(it->second.done);
    pending_.erase(it);
    if (code == 0) {
      done(std::vector<uint8_t>(payload.begin(), payload.end()));
    } else {
      done(absl::Status(static_cast<absl::StatusCode>(code), message));
    }
    return;
  }
  ++counters_.dropped_malformed;
}

void RpcEndpoint::OnTimeout(absl::Time now) {
  std::vector<uint32_t> expired;
  for (auto& [id, call] : pending_) {
    if (now >= call.deadline) {
      expired.push_back(id);
    } else if (now >= call.next_send) {
      ++counters_.retransmissions;
      outgoing_.push_back(call.request);
      call.rto = std::min(call.rto * 2, kMaxRto);
      call.next_send = now + call.rto;
    }
  }
  for (uint32_t id : expired) {
    Done done = std::move(pending_[id].done);
    pending_.erase(id);
    done(absl::DeadlineExceededError("the device did not answer the RPC in time"));
  }
}

absl::Time RpcEndpoint::next_timeout() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [id, call] : pending_) next = std::min({next, call.next_send, call.deadline});
  return next;
}

std::vector<std::vector<uint8_t>> RpcEndpoint::TakeOutgoing() {
  return std::exchange(outgoing_, {});
}

void RpcEndpoint::CancelAll(const absl::Status& status) {
  auto pending = std::exchange(pending_, {});
  for (auto& [id, call] : pending) call.done(status);
}

}  // namespace edgelink::rpc
