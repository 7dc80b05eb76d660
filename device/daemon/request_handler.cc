#include "device/daemon/request_handler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/wire/device_methods.h"
#include "glog/logging.h"

namespace edgelink::device {
namespace {

wire::DeviceResponse Answer(const absl::Status& status, std::vector<uint8_t> payload = {}) {
  wire::DeviceResponse response;
  response.code = static_cast<uint8_t>(status.code());
  response.message = std::string(status.message().substr(0, 255));
  response.payload = std::move(payload);
  return response;
}

std::string SessionKey(const wire::SessionId& id) { return std::string(id.begin(), id.end()); }

}  // namespace

AccessRequestHandler::AccessRequestHandler(
    AccessList* access, std::function<std::vector<wire::Candidate>()> local_candidates,
    std::function<void(const wire::ConnectRequest&, const wire::Nonce&)> on_accepted,
    std::function<void(const wire::SessionId&)> on_ended)
    : access_(access),
      local_candidates_(std::move(local_candidates)),
      on_accepted_(std::move(on_accepted)),
      on_ended_(std::move(on_ended)) {
  access_->set_on_removed([this](absl::string_view fingerprint) { EndSessionsOf(fingerprint); });
}

wire::ConnectResponse AccessRequestHandler::OnConnectRequest(const wire::ConnectRequest& request,
                                                             const wire::Nonce& device_nonce,
                                                             absl::Time now) {
  wire::ConnectResponse response;
  if (sessions_.contains(SessionKey(request.session_id))) {
    // One session, one channel: never a second one with the same session key.
    LOG(WARNING) << "connect refused: session already accepted";
    response.verdict = wire::ConnectVerdict::kBusy;
    return response;
  }
  const std::string fingerprint = wire::FingerprintHex(request.client_fingerprint);
  if (!access_->IsAllowed(fingerprint)) {
    LOG(INFO) << "connect refused: " << fingerprint.substr(0, 16) << "… is not on the access list";
    response.verdict = wire::ConnectVerdict::kDenied;
    return response;
  }
  if (sessions_.size() >= kMaxSessions) {
    // Forget the oldest: a client that never used its session gives it up first.
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a,
                                                                           const auto& b) {
      return a.second.accepted < b.second.accepted;
    });
    wire::SessionId evicted;
    std::copy(oldest->first.begin(), oldest->first.end(), evicted.begin());
    sessions_.erase(oldest);
    if (on_ended_) on_ended_(evicted);
  }
  AcceptedSession& session = sessions_[SessionKey(request.session_id)];
  session.client_fingerprint = fingerprint;
  session.client_name = request.client_name;
  session.session_key = crypto::SecretBytes::CopyFrom(request.session_key.span());
  session.client_candidates = request.client_candidates;
  session.accepted = now;
  LOG(INFO) << "connect accepted: " << request.client_name << " (" << fingerprint.substr(0, 16)
            << "…)";
  response.verdict = wire::ConnectVerdict::kAccepted;
  response.device_candidates = local_candidates_();
  if (on_accepted_) on_accepted_(request, device_nonce);
  return response;
}

wire::DeviceResponse AccessRequestHandler::OnDeviceRequest(const wire::DeviceRequest& request,
                                                           absl::Time now) {
  if (wall_clock_) now = wall_clock_();
  const std::string caller = wire::FingerprintHex(request.caller);
  if (request.method == wire::kMethodPair) {
    absl::StatusOr<wire::PairArgs> args = wire::ParsePairArgs(request.payload);
    if (!args.ok()) return Answer(args.status());
    absl::StatusOr<Role> role = access_->Pair(caller, args->name, args->proof, now);
    if (!role.ok()) return Answer(role.status());
    LOG(INFO) << "paired: " << args->name << " (" << caller.substr(0, 16) << "…) is the owner";
    return Answer(absl::OkStatus(), {static_cast<uint8_t>(*role)});
  }
  if (request.method == wire::kMethodAddUser) {
    absl::StatusOr<wire::UserEntry> user = wire::ParseUserArgs(request.payload);
    if (!user.ok()) return Answer(user.status());
    return Answer(access_->AddUser(caller, wire::FingerprintHex(user->fingerprint),
                                   user->role, user->name, now));
  }
  if (request.method == wire::kMethodRemoveUser) {
    absl::StatusOr<wire::Fingerprint> user = wire::ParseFingerprintArgs(request.payload);
    if (!user.ok()) return Answer(user.status());
    return Answer(access_->RemoveUser(caller, wire::FingerprintHex(*user)));
  }
  if (request.method == wire::kMethodListUsers) {
    absl::StatusOr<std::vector<AccessList::Entry>> entries = access_->List(caller);
    if (!entries.ok()) return Answer(entries.status());
    std::vector<wire::UserEntry> users;
    for (const AccessList::Entry& e : *entries) {
      wire::UserEntry user;
      user.fingerprint = *wire::ParseFingerprintHex(e.fingerprint);
      user.role = e.role;
      user.name = e.name;
      user.added_unix_s = static_cast<uint64_t>(absl::ToUnixSeconds(e.added));
      users.push_back(std::move(user));
    }
    return Answer(absl::OkStatus(), wire::EncodeUserList(users));
  }
  if (request.method == wire::kMethodReopenPairing) {
    return Answer(access_->ReopenPairing(caller));
  }
  return Answer(absl::UnimplementedError(absl::StrCat("no method \"", request.method.substr(0, 32),
                                                      "\"")));
}

const AcceptedSession* AccessRequestHandler::FindSession(const wire::SessionId& session_id) const {
  auto it = sessions_.find(SessionKey(session_id));
  return it == sessions_.end() ? nullptr : &it->second;
}

void AccessRequestHandler::EndSessionsOf(absl::string_view fingerprint) {
  std::vector<std::string> ended;
  for (const auto& [id, session] : sessions_) {
    if (session.client_fingerprint == fingerprint) ended.push_back(id);
  }
  for (const std::string& id : ended) {
    sessions_.erase(id);
    if (on_ended_) {
      wire::SessionId session_id;
      std::copy(id.begin(), id.end(), session_id.begin());
      on_ended_(session_id);
    }
  }
  LOG(INFO) << "removed " << fingerprint.substr(0, 16) << "…: ended " << ended.size()
            << " session(s)";
}

}  // namespace edgelink::device
