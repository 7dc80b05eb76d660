#include "client/sdk/client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/random.h"
#include "common/status/status_macros.h"
#include "common/tls/peer_identity.h"
#include "device/access/access_list.h"
#include "grpcpp/create_channel.h"

namespace edgelink::client {
namespace {

constexpr const char* kKindNames[] = {"unknown", "host", "server-reflexive", "predicted",
                                      "relay"};

proto::Candidate::Kind KindFromName(absl::string_view name) {
  for (int i = 1; i < 5; ++i) {
    if (name == kKindNames[i]) return static_cast<proto::Candidate::Kind>(i);
  }
  return proto::Candidate::KIND_UNSPECIFIED;
}

DeviceInfo FromProto(const proto::Device& device) {
  return {device.device_id(), device.product(), device.online(),
          device.since_unix_s() > 0 ? absl::FromUnixSeconds(device.since_unix_s())
                                    : absl::InfinitePast()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.basestation.empty()) return absl::InvalidArgumentError("no basestation address");
  ASSIGN_OR_RETURN(std::string fingerprint,
                   tls::FingerprintOfPemFile(options.tls.cert_chain_pem));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   tls::ChannelCredentials(options.tls));
  grpc::ChannelArguments args;
  if (!options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  auto channel = grpc::CreateCustomChannel(options.basestation, credentials, args);
  auto stub = proto::Basestation::NewStub(channel);
  return std::unique_ptr<Client>(
      new Client(std::move(options), std::move(fingerprint), std::move(stub)));
}

Client::Client(ClientOptions options, std::string fingerprint,
               std::unique_ptr<proto::Basestation::Stub> stub)
    : options_(std::move(options)), fingerprint_(std::move(fingerprint)), stub_(std::move(stub)) {}

void Client::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
}

absl::Status Client::FromGrpc(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (code == absl::StatusCode::kUnavailable &&
      status.error_message().find("device") == std::string::npos) {
    // No basestation answer at all: say where we tried, the likely causes, and gRPC's words.
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the basestation at ", options_.basestation,
        " (not running, wrong address, or TLS refused our certificate): ",
        status.error_message()));
  }
  return absl::Status(code, status.error_message());
}

absl::StatusOr<std::vector<DeviceInfo>> Client::ListDevices() {
  grpc::ClientContext context;
  Prepare(&context);
  proto::ListDevicesResponse response;
  RETURN_IF_ERROR(FromGrpc(stub_->ListDevices(&context, {}, &response)));
  std::vector<DeviceInfo> devices;
  for (const proto::Device& d : response.devices()) devices.push_back(FromProto(d));
  return devices;
}

absl::StatusOr<DeviceInfo> Client::GetDevice(absl::string_view device_id) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::DeviceRef request;
  request.set_device_id(std::string(device_id));
  proto::Device response;
  RETURN_IF_ERROR(FromGrpc(stub_->GetDevice(&context, request, &response)));
  return FromProto(response);
}

absl::StatusOr<Session> Client::Connect(absl::string_view device_id,
                                        const std::vector<Candidate>& local_candidates) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::ConnectRequest request;
  request.set_device_id(std::string(device_id));
  std::array<uint8_t, 16> client_nonce;
  RETURN_IF_ERROR(crypto::RandomBytes(absl::MakeSpan(client_nonce)));
  request.set_client_nonce(std::string(client_nonce.begin(), client_nonce.end()));
  for (const Candidate& c : local_candidates) {
    proto::Candidate* out = request.add_client_candidates();
    out->set_kind(KindFromName(c.kind));
    out->set_address(c.endpoint.ToString());
  }
  proto::ConnectResponse response;
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(FromGrpc(stub_->Connect(&context, request, &response)));
  Session session;
  session.took = absl::Now() - start;
  session.device_id = std::string(device_id);
  session.session_id = response.session_id();
  session.session_key = crypto::SecretBytes::CopyFrom(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(response.session_key().data()),
      response.session_key().size()));
  session.client_nonce = client_nonce;
  if (response.device_nonce().size() != session.device_nonce.size()) {
    return absl::InternalError("basestation sent no device nonce");
  }
  std::copy(response.device_nonce().begin(), response.device_nonce().end(),
            session.device_nonce.begin());
  if (absl::StatusOr<net::Endpoint> relay = net::Endpoint::Parse(response.relay().address());
      relay.ok() && !response.relay_ticket().empty()) {
    session.relay = *relay;
    session.relay_ticket.assign(response.relay_ticket().begin(), response.relay_ticket().end());
  }
  if (absl::StatusOr<net::Endpoint> reflector = net::Endpoint::Parse(response.reflector());
      reflector.ok()) {
    session.reflector = *reflector;
  }
  for (const proto::Candidate& c : response.device_candidates()) {
    absl::StatusOr<net::Endpoint> endpoint = net::Endpoint::Parse(c.address());
    if (!endpoint.ok()) continue;
    const int kind = c.kind() >= 1 && c.kind() <= 4 ? c.kind() : 0;
    session.device_candidates.push_back({kKindNames[kind], *endpoint});
  }
  return session;
}

absl::Status Client::Pair(absl::string_view device_id, const crypto::SecretBytes& pairing_secret,
                          absl::string_view name) {
  ASSIGN_OR_RETURN(crypto::Sha256Digest proof, device::PairingProof(pairing_secret, fingerprint_));
  grpc::ClientContext context;
  Prepare(&context);
  proto::PairRequest request;
  request.set_device_id(std::string(device_id));
  request.set_proof(reinterpret_cast<const char*>(proof.data()), proof.size());
  request.set_name(std::string(name));
  proto::PairResponse response;
  return FromGrpc(stub_->Pair(&context, request, &response));
}

absl::Status Client::AddUser(absl::string_view device_id, absl::string_view fingerprint,
                             absl::string_view role, absl::string_view name) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::UserRequest request;
  request.set_device_id(std::string(device_id));
  request.mutable_user()->set_fingerprint(std::string(fingerprint));
  request.mutable_user()->set_role(std::string(role));
  request.mutable_user()->set_name(std::string(name));
  proto::Empty response;
  return FromGrpc(stub_->AddUser(&context, request, &response));
}

absl::Status Client::RemoveUser(absl::string_view device_id, absl::string_view fingerprint) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::UserRequest request;
  request.set_device_id(std::string(device_id));
  request.mutable_user()->set_fingerprint(std::string(fingerprint));
  proto::Empty response;
  return FromGrpc(stub_->RemoveUser(&context, request, &response));
}

absl::StatusOr<std::vector<User>> Client::ListUsers(absl::string_view device_id) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::DeviceRef request;
  request.set_device_id(std::string(device_id));
  proto::ListUsersResponse response;
  RETURN_IF_ERROR(FromGrpc(stub_->ListUsers(&context, request, &response)));
  std::vector<User> users;
  for (const proto::User& u : response.users()) {
    users.push_back({u.fingerprint(), u.role(), u.name(), absl::FromUnixSeconds(u.added_unix_s())});
  }
  return users;
}

absl::Status Client::ReopenPairing(absl::string_view device_id) {
  grpc::ClientContext context;
  Prepare(&context);
  proto::DeviceRef request;
  request.set_device_id(std::string(device_id));
  proto::Empty response;
  return FromGrpc(stub_->ReopenPairing(&context, request, &response));
}

}  // namespace edgelink::client
