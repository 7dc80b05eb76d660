#include "basestation/server/broker.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edgelink::basestation {

// Where a gRPC thread waits for the loop to finish its request. std::mutex rather than
// absl::Mutex: Debian's Abseil is not built for TSan, which then cannot see absl::Mutex order.
struct Broker::Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // Guarded by mu, as is everything below.
  absl::Status status;
  std::variant<std::monostate, wire::ConnectResponse, wire::DeviceResponse> reply;
  wire::SessionId session_id{};
  crypto::SecretBytes session_key;
  std::optional<net::Endpoint> reflexive;

  void Finish(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  }
};

Broker::Broker(BrokerOptions options, io::EventLoop* loop, AttachServer* attach,
               crypto::RandomSource* random, std::optional<RelayOffer> relay)
    : options_(options),
      loop_(loop),
      attach_(attach),
      random_(random),
      relay_(std::move(relay)),
      resend_timer_(loop, [this] { OnResendTimer(); }) {}

Broker::~Broker() { Close(); }

uint64_t Broker::NewRequestId() {
  uint64_t id = 0;
  while (id == 0 || pending_.contains(id)) {
    random_->Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&id), sizeof(id)));
  }
  return id;
}

absl::Status Broker::Wait(const std::shared_ptr<Waiter>& waiter, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(waiter->mu);
  // The loop completes every request by its deadline; the margin only guards against a loop that
  // stopped.
  const bool done = waiter->cv.wait_until(lock, absl::ToChronoTime(deadline + absl::Seconds(1)),
                                          [&] { return waiter->done; });
  if (!done) return absl::UnavailableError("basestation is shutting down");
  return waiter->status;
}

absl::StatusOr<BrokeredSession> Broker::Connect(absl::string_view device_id,
                                                const ClientIdentity& client,
                                                std::vector<wire::Candidate> client_candidates,
                                                const wire::Nonce& client_nonce,
                                                absl::Time deadline) {
  auto waiter = std::make_shared<Waiter>();
  auto request = std::make_unique<wire::ConnectRequest>();
  random_->Fill(absl::MakeSpan(request->session_id));
  random_->Fill(request->session_key.mutable_span());
  request->client_nonce = client_nonce;
  request->client_fingerprint = client.fingerprint;
  request->client_name = client.name.substr(0, 64);
  request->client_candidates = std::move(client_candidates);
  if (relay_.has_value()) {
    request->relay = relay_->endpoint;
    request->relay_ticket = relay_->make_ticket(request->session_id);
  }
  waiter->session_id = request->session_id;
  waiter->session_key = crypto::SecretBytes::CopyFrom(request->session_key.span());
  const net::Endpoint relay = request->relay;
  const std::vector<uint8_t> ticket = request->relay_ticket;

  Pending pending{std::string(device_id), deadline, waiter, std::move(request), nullptr};
  // The loop owns `pending` from here; the lambda is copyable, hence the shared_ptr.
  auto holder = std::make_shared<Pending>(std::move(pending));
  loop_->Post([this, holder] { Start(std::move(*holder)); });
  if (absl::Status status = Wait(waiter, deadline); !status.ok()) return status;

  std::lock_guard<std::mutex> lock(waiter->mu);
  const auto& response = std::get<wire::ConnectResponse>(waiter->reply);
  switch (response.verdict) {
    case wire::ConnectVerdict::kAccepted:
      break;
    case wire::ConnectVerdict::kDenied:
      return absl::PermissionDeniedError(
          absl::StrCat("device ", device_id, " refused this client (not on its access list)"));
    case wire::ConnectVerdict::kBusy:
      return absl::ResourceExhaustedError(absl::StrCat("device ", device_id, " is busy"));
  }
  BrokeredSession session;
  session.session_id = waiter->session_id;
  session.session_key = std::move(waiter->session_key);
  session.device_nonce = response.device_nonce;
  session.device_candidates = response.device_candidates;
  session.relay = relay;
  session.relay_ticket = ticket;
  session.reflector = options_.reflector;
  if (waiter->reflexive.has_value()) {
    // What the basestation itself sees: the device's public address.
    session.device_candidates.push_back(
        {wire::Candidate::Kind::kServerReflexive, *waiter->reflexive});
  }
  return session;
}

absl::StatusOr<wire::DeviceResponse> Broker::Call(absl::string_view device_id,
                                                  const ClientIdentity& client,
                                                  absl::string_view method,
                                                  std::vector<uint8_t> payload,
                                                  absl::Time deadline) {
  auto waiter = std::make_shared<Waiter>();
  auto request = std::make_unique<wire::DeviceRequest>();
  request->caller = client.fingerprint;
  request->caller_name = client.name.substr(0, 64);
  request->method = std::string(method);
  request->payload = std::move(payload);
  auto holder = std::make_shared<Pending>(
      Pending{std::string(device_id), deadline, waiter, nullptr, std::move(request)});
  loop_->Post([this, holder] { Start(std::move(*holder)); });
  if (absl::Status status = Wait(waiter, deadline); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(waiter->mu);
  return std::get<wire::DeviceResponse>(waiter->reply);
}

bool Broker::TakeToken(absl::string_view device_id, absl::Time now) {
  if (buckets_.size() > 100000) buckets_.clear();  // Bound memory; forgetting is harmless.
  auto [it, inserted] = buckets_.try_emplace(device_id, Bucket{options_.request_burst, now});
  Bucket& bucket = it->second;
  bucket.tokens = std::min(options_.request_burst,
                           bucket.tokens + absl::ToDoubleSeconds(now - bucket.updated) *
                                               options_.requests_per_second);
  bucket.updated = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

void Broker::Start(Pending pending) {
  auto fail = [&](absl::Status status) { pending.waiter->Finish(std::move(status)); };
  const absl::Time now = loop_->Now();
  if (closed_) return fail(absl::UnavailableError("basestation is shutting down"));
  if (!attach_->IsAttached(pending.device_id)) {
    return fail(absl::UnavailableError(absl::StrCat("device ", pending.device_id, " is offline")));
  }
  if (!TakeToken(pending.device_id, now)) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("too many requests for device ", pending.device_id, "; retry later")));
  }
  const uint64_t id = NewRequestId();
  if (pending.connect) {
    pending.connect->request_id = id;
    std::lock_guard<std::mutex> lock(pending.waiter->mu);
    pending.waiter->reflexive = attach_->AddressOf(pending.device_id);
  } else {
    pending.call->request_id = id;
  }
  Send(pending);
  pending_.emplace(id, std::move(pending));
  if (!resend_timer_.is_scheduled()) resend_timer_.Schedule(now + options_.resend_interval);
}

void Broker::Send(const Pending& pending) {
  // A device that went offline meanwhile is simply not sent to; the deadline ends the request.
  if (pending.connect) {
    // How long the device must treat this session id as taken: until we stop resending.
    pending.connect->valid_ms = static_cast<uint32_t>(std::clamp<int64_t>(
        absl::ToInt64Milliseconds(pending.deadline - loop_->Now()), 0, UINT32_MAX));
    (void)attach_->SendConnectRequest(pending.device_id, *pending.connect);
  } else {
    (void)attach_->SendDeviceRequest(pending.device_id, *pending.call);
  }
  if (after_send_) after_send_();
}

void Broker::OnReplies(std::vector<DeviceReply> replies) {
  for (DeviceReply& reply : replies) {
    const uint64_t id = std::visit([](const auto& r) { return r.request_id; }, reply.reply);
    auto it = pending_.find(id);
    // Answers must come from the device that was asked, and be of the kind asked for.
    if (it == pending_.end() || it->second.device_id != reply.device_id ||
        (it->second.connect != nullptr) !=
            std::holds_alternative<wire::ConnectResponse>(reply.reply)) {
      continue;
    }
    Waiter& waiter = *it->second.waiter;
    {
      std::lock_guard<std::mutex> lock(waiter.mu);
      std::visit([&](auto& r) { waiter.reply = std::move(r); }, reply.reply);
      waiter.done = true;
    }
    waiter.cv.notify_all();
    pending_.erase(it);
  }
}

void Broker::Complete(uint64_t request_id, absl::Status status) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  it->second.waiter->Finish(std::move(status));
  pending_.erase(it);
}

void Broker::OnResendTimer() {
  const absl::Time now = loop_->Now();
  std::vector<uint64_t> expired;
  for (const auto& [id, pending] : pending_) {
    if (now >= pending.deadline) {
      expired.push_back(id);
    } else {
      Send(pending);
    }
  }
  for (uint64_t id : expired) {
    const std::string device_id = pending_.at(id).device_id;
    Complete(id, absl::DeadlineExceededError(
                     absl::StrCat("device ", device_id, " did not answer in time")));
  }
  if (!pending_.empty()) resend_timer_.Schedule(now + options_.resend_interval);
}

void Broker::Close() {
  closed_ = true;
  std::vector<uint64_t> ids;
  for (const auto& [id, pending] : pending_) ids.push_back(id);
  for (uint64_t id : ids) Complete(id, absl::UnavailableError("basestation is shutting down"));
  resend_timer_.Cancel();
}

}  // namespace edgelink::basestation
