#include "basestation/api/service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"
#include "common/tls/peer_identity.h"
#include "common/wire/device_id.h"
#include "common/wire/device_methods.h"

namespace edgelink::basestation {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void FillDevice(const DeviceSummary& summary, proto::Device* device) {
  device->set_device_id(summary.device_id);
  device->set_product(summary.product);
  device->set_online(summary.online);
  if (summary.last_seen.has_value()) device->set_since_unix_s(absl::ToUnixSeconds(*summary.last_seen));
}

// Request fields are attacker-controlled: a bad device id is rejected without echoing it whole.
absl::Status CheckDeviceId(absl::string_view id) {
  absl::Status status = wire::ValidateDeviceId(id);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat("bad device id: ", status.message()));
}

std::vector<wire::Candidate> FromProto(
    const google::protobuf::RepeatedPtrField<proto::Candidate>& candidates) {
  std::vector<wire::Candidate> out;
  for (const proto::Candidate& c : candidates) {
    if (out.size() == wire::kMaxCandidates) break;
    absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(c.address());
    if (!endpoint.ok() || c.kind() < proto::Candidate::HOST || c.kind() > proto::Candidate::RELAY) {
      continue;  // Skip what cannot be used; the device can still be reached through the rest.
    }
    out.push_back({static_cast<wire::Candidate::Kind>(c.kind()), *endpoint});
  }
  return out;
}

// Protobuf's bytes setters take char data.
const char* Chars(const uint8_t* bytes) { return reinterpret_cast<const char*>(bytes); }

}  // namespace

void PresenceHub::Publish(absl::string_view device_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    versions_[device_id] = ++next_;
  }
  cv_.notify_all();
}

uint64_t PresenceHub::Version(absl::string_view device_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = versions_.find(device_id);
  return it == versions_.end() ? 0 : it->second;
}

bool PresenceHub::WaitForChange(absl::string_view device_id, uint64_t* version,
                                absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto changed = [&] {
    auto it = versions_.find(device_id);
    return it != versions_.end() && it->second > *version;
  };
  if (!cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), changed)) return false;
  *version = versions_.find(device_id)->second;
  return true;
}

absl::StatusOr<std::unique_ptr<ApiCore>> ApiCore::New(ApiOptions options, Broker* broker,
                                                      PresenceHub* presence) {
  for (const std::string& admin : options.admin_fingerprints) {
    RETURN_IF_ERROR(wire::ParseFingerprintHex(admin).status());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, Registry::Open(options.registry_path));
  return std::unique_ptr<ApiCore>(
      new ApiCore(std::move(options), broker, presence, std::move(registry)));
}

ApiCore::ApiCore(ApiOptions options, Broker* broker, PresenceHub* presence,
                 std::unique_ptr<Registry> registry)
    : options_(std::move(options)),
      broker_(broker),
      presence_(presence),
      admins_(options_.admin_fingerprints.begin(), options_.admin_fingerprints.end()),
      registry_(std::move(registry)) {}

absl::StatusOr<ClientIdentity> ApiCore::Authenticate(const grpc::ServerContext& context) const {
  // The TLS handshake verified the chain and validity; revocation ran before the handler.
  ASSIGN_OR_RETURN(tls::PeerIdentity peer, tls::PeerIdentityOf(context));
  ClientIdentity client;
  ASSIGN_OR_RETURN(client.fingerprint, wire::ParseFingerprintHex(peer.fingerprint));
  client.name = peer.common_name;
  return client;
}

bool ApiCore::IsAdmin(const ClientIdentity& client) const {
  return admins_.contains(wire::FingerprintHex(client.fingerprint));
}

absl::Time ApiCore::Deadline(const grpc::ServerContext& context) const {
  const absl::Time mine = absl::Now() + options_.device_timeout;
  return std::min(mine, absl::FromChrono(context.deadline()));
}

absl::StatusOr<DeviceSummary> ApiCore::KnownDevice(absl::string_view device_id) {
  RETURN_IF_ERROR(CheckDeviceId(device_id));
  absl::StatusOr<DeviceRecord> record =
      WithRegistry([&](Registry& r) { return r.Find(device_id); });
  if (!record.ok() || record->revoked) {
    if (record.ok() || absl::IsNotFound(record.status())) {
      return absl::NotFoundError(absl::StrCat("no device ", device_id));
    }
    return record.status();
  }
  return static_cast<DeviceSummary>(*record);
}

absl::StatusOr<std::vector<uint8_t>> ApiCore::CallDevice(const grpc::ServerContext& context,
                                                         const ClientIdentity& client,
                                                         absl::string_view device_id,
                                                         absl::string_view method,
                                                         std::vector<uint8_t> payload) {
  RETURN_IF_ERROR(KnownDevice(device_id).status());
  ASSIGN_OR_RETURN(wire::DeviceResponse response,
                   broker_->Call(device_id, client, method, std::move(payload), Deadline(context)));
  if (response.code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(response.code),
                        absl::StrCat("device ", device_id, ": ", response.message));
  }
  return std::move(response.payload);
}

grpc::Status BasestationService::Connect(grpc::ServerContext* context,
                                         const proto::ConnectRequest* request,
                                         proto::ConnectResponse* response) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  if (absl::Status s = core_.KnownDevice(request->device_id()).status(); !s.ok()) return ToGrpc(s);
  wire::Nonce client_nonce;
  if (request->client_nonce().size() != client_nonce.size()) {
    return ToGrpc(absl::InvalidArgumentError("client_nonce must be 16 random bytes"));
  }
  std::copy(request->client_nonce().begin(), request->client_nonce().end(), client_nonce.begin());
  absl::StatusOr<BrokeredSession> session = core_.broker().Connect(
      request->device_id(), *client, FromProto(request->client_candidates()), client_nonce,
      core_.Deadline(*context));
  if (!session.ok()) return ToGrpc(session.status());
  response->set_session_id(Chars(session->session_id.data()), session->session_id.size());
  response->set_session_key(Chars(session->session_key.span().data()),
                            session->session_key.size());
  response->set_device_nonce(Chars(session->device_nonce.data()), session->device_nonce.size());
  for (const wire::Candidate& c : session->device_candidates) {
    proto::Candidate* out = response->add_device_candidates();
    out->set_kind(static_cast<proto::Candidate::Kind>(c.kind));
    out->set_address(c.endpoint.ToString());
  }
  if (session->relay.is_set()) {
    response->set_relay_ticket(Chars(session->relay_ticket.data()), session->relay_ticket.size());
    response->mutable_relay()->set_kind(proto::Candidate::RELAY);
    response->mutable_relay()->set_address(session->relay.ToString());
  }
  if (session->reflector.is_set()) response->set_reflector(session->reflector.ToString());
  return grpc::Status::OK;
}

grpc::Status BasestationService::GetDevice(grpc::ServerContext* context,
                                           const proto::DeviceRef* request,
                                           proto::Device* response) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  absl::StatusOr<DeviceSummary> device = core_.KnownDevice(request->device_id());
  if (!device.ok()) return ToGrpc(device.status());
  FillDevice(*device, response);
  return grpc::Status::OK;
}

grpc::Status BasestationService::ListDevices(grpc::ServerContext* context,
                                             const proto::ListDevicesRequest*,
                                             proto::ListDevicesResponse* response) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  const bool admin = core_.IsAdmin(*client);
  absl::StatusOr<std::vector<DeviceSummary>> devices = core_.WithRegistry([&](Registry& r) {
    return admin ? r.List() : r.ListGranted(wire::FingerprintHex(client->fingerprint));
  });
  if (!devices.ok()) return ToGrpc(devices.status());
  for (const DeviceSummary& d : *devices) {
    if (!d.revoked) FillDevice(d, response->add_devices());
  }
  return grpc::Status::OK;
}

grpc::Status BasestationService::WatchDevice(grpc::ServerContext* context,
                                             const proto::DeviceRef* request,
                                             grpc::ServerWriter<proto::Device>* writer) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  uint64_t version = core_.presence().Version(request->device_id());
  std::optional<bool> last_online;
  while (!context->IsCancelled()) {
    absl::StatusOr<DeviceSummary> device = core_.KnownDevice(request->device_id());
    if (!device.ok()) return ToGrpc(device.status());
    if (last_online != device->online) {
      proto::Device update;
      FillDevice(*device, &update);
      if (!writer->Write(update)) return grpc::Status::OK;  // The client went away.
      last_online = device->online;
    }
    // Wake on a change, or once a second to notice cancellation.
    core_.presence().WaitForChange(request->device_id(), &version, absl::Seconds(1));
  }
  return grpc::Status::OK;
}

grpc::Status BasestationService::Pair(grpc::ServerContext* context,
                                      const proto::PairRequest* request,
                                      proto::PairResponse* response) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  wire::PairArgs args;
  if (request->proof().size() != args.proof.size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "pairing proof must be 32 bytes");
  }
  std::copy(request->proof().begin(), request->proof().end(), args.proof.begin());
  args.name = request->name().substr(0, 64);
  absl::StatusOr<std::vector<uint8_t>> answer =
      core_.CallDevice(*context, *client, request->device_id(), wire::kMethodPair,
                       wire::EncodePairArgs(args));
  if (!answer.ok()) return ToGrpc(answer.status());
  if (answer->size() != 1 || (*answer)[0] != static_cast<uint8_t>(wire::Role::kOwner)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "device answered pairing oddly");
  }
  (void)core_.WithRegistry([&](Registry& r) {
    return r.SetGrant(request->device_id(), wire::FingerprintHex(client->fingerprint), "owner");
  });
  response->set_role("owner");
  return grpc::Status::OK;
}

grpc::Status BasestationService::AddUser(grpc::ServerContext* context,
                                         const proto::UserRequest* request, proto::Empty*) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  wire::UserEntry user;
  absl::StatusOr<wire::Fingerprint> fingerprint =
      wire::ParseFingerprintHex(request->user().fingerprint());
  if (!fingerprint.ok()) return ToGrpc(fingerprint.status());
  absl::StatusOr<wire::Role> role = wire::ParseRole(request->user().role());
  if (!role.ok()) return ToGrpc(role.status());
  user.fingerprint = *fingerprint;
  user.role = *role;
  user.name = request->user().name().substr(0, 64);
  absl::StatusOr<std::vector<uint8_t>> answer = core_.CallDevice(
      *context, *client, request->device_id(), wire::kMethodAddUser, wire::EncodeUserArgs(user));
  if (!answer.ok()) return ToGrpc(answer.status());
  (void)core_.WithRegistry([&](Registry& r) {
    return r.SetGrant(request->device_id(), request->user().fingerprint(),
                      request->user().role());
  });
  return grpc::Status::OK;
}

grpc::Status BasestationService::RemoveUser(grpc::ServerContext* context,
                                            const proto::UserRequest* request, proto::Empty*) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  absl::StatusOr<wire::Fingerprint> fingerprint =
      wire::ParseFingerprintHex(request->user().fingerprint());
  if (!fingerprint.ok()) return ToGrpc(fingerprint.status());
  absl::StatusOr<std::vector<uint8_t>> answer =
      core_.CallDevice(*context, *client, request->device_id(), wire::kMethodRemoveUser,
                       wire::EncodeFingerprintArgs(*fingerprint));
  if (!answer.ok()) return ToGrpc(answer.status());
  (void)core_.WithRegistry([&](Registry& r) {
    return r.RemoveGrant(request->device_id(), request->user().fingerprint());
  });
  return grpc::Status::OK;
}

grpc::Status BasestationService::ListUsers(grpc::ServerContext* context,
                                           const proto::DeviceRef* request,
                                           proto::ListUsersResponse* response) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  absl::StatusOr<std::vector<uint8_t>> answer =
      core_.CallDevice(*context, *client, request->device_id(), wire::kMethodListUsers, {});
  if (!answer.ok()) return ToGrpc(answer.status());
  absl::StatusOr<std::vector<wire::UserEntry>> users = wire::ParseUserList(*answer);
  if (!users.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "device sent a bad user list");
  for (const wire::UserEntry& u : *users) {
    proto::User* out = response->add_users();
    out->set_fingerprint(wire::FingerprintHex(u.fingerprint));
    out->set_role(std::string(wire::RoleName(u.role)));
    out->set_name(u.name);
    out->set_added_unix_s(static_cast<int64_t>(u.added_unix_s));
  }
  return grpc::Status::OK;
}

grpc::Status BasestationService::ReopenPairing(grpc::ServerContext* context,
                                               const proto::DeviceRef* request, proto::Empty*) {
  absl::StatusOr<ClientIdentity> client = core_.Authenticate(*context);
  if (!client.ok()) return ToGrpc(client.status());
  return ToGrpc(core_.CallDevice(*context, *client, request->device_id(),
                                 wire::kMethodReopenPairing, {})
                    .status());
}

absl::StatusOr<ClientIdentity> AdminService::AuthenticateAdmin(
    const grpc::ServerContext& context) {
  ASSIGN_OR_RETURN(ClientIdentity client, core_.Authenticate(context));
  if (!core_.IsAdmin(client)) {
    return absl::PermissionDeniedError("this certificate is not an administrator's");
  }
  return client;
}

grpc::Status AdminService::Provision(grpc::ServerContext* context,
                                     const proto::ProvisionRequest* request,
                                     proto::ProvisionResponse* response) {
  if (absl::Status s = AuthenticateAdmin(*context).status(); !s.ok()) return ToGrpc(s);
  absl::StatusOr<ProvisionedDevice> device = core_.WithRegistry(
      [&](Registry& r) { return r.Provision(request->device_id(), request->product()); });
  if (!device.ok()) return ToGrpc(device.status());
  response->set_device_id(device->device_id);
  response->set_device_secret(Chars(device->secret.span().data()), device->secret.size());
  response->set_pairing_secret(Chars(device->pairing_secret.span().data()),
                               device->pairing_secret.size());
  response->set_zone(core_.options().zone);
  return grpc::Status::OK;
}

grpc::Status AdminService::Revoke(grpc::ServerContext* context, const proto::DeviceRef* request,
                                  proto::RevokeResponse*) {
  if (absl::Status s = AuthenticateAdmin(*context).status(); !s.ok()) return ToGrpc(s);
  return ToGrpc(core_.WithRegistry([&](Registry& r) { return r.Revoke(request->device_id()); }));
}

grpc::Status AdminService::ListDevices(grpc::ServerContext* context,
                                       const proto::ListDevicesRequest*,
                                       proto::ListDevicesResponse* response) {
  if (absl::Status s = AuthenticateAdmin(*context).status(); !s.ok()) return ToGrpc(s);
  absl::StatusOr<std::vector<DeviceSummary>> devices =
      core_.WithRegistry([](Registry& r) { return r.List(); });
  if (!devices.ok()) return ToGrpc(devices.status());
  for (const DeviceSummary& d : *devices) FillDevice(d, response->add_devices());
  return grpc::Status::OK;
}

}  // namespace edgelink::basestation
