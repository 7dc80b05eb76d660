// The basestation's gRPC API (proto/basestation.proto), served over mutual TLS: the client-facing
// Basestation service and the Admin service. Handlers run on gRPC's threads; anything that
// reaches a device goes through the Broker to the event loop.
#ifndef EDGELINK_BASESTATION_API_SERVICE_H_
#define EDGELINK_BASESTATION_API_SERVICE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "basestation/registry/registry.h"
#include "basestation/server/broker.h"
#include "proto/basestation.grpc.pb.h"

namespace edgelink::basestation {

// PresenceHub lets WatchDevice streams sleep until a device's state changes. Thread-safe.
class PresenceHub {
 public:
  // Publish records that `device_id` changed; called by the event loop's thread.
  void Publish(absl::string_view device_id);
  // WaitForChange returns true once `device_id` changed after `*version` (updating it), or false
  // after `timeout`.
  bool WaitForChange(absl::string_view device_id, uint64_t* version, absl::Duration timeout);
  uint64_t Version(absl::string_view device_id);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  absl::flat_hash_map<std::string, uint64_t> versions_;  // Guarded by mu_.
  uint64_t next_ = 0;                                    // Guarded by mu_.
};

struct ApiOptions {
  std::string registry_path;
  // Certificate fingerprints (64 hex digits) allowed to call the Admin service.
  std::vector<std::string> admin_fingerprints;
  std::string zone;  // Told to provisioned devices.
  // How long a device gets to answer a Connect or call.
  absl::Duration device_timeout = absl::Seconds(5);
};

// What both services share: who the caller is, the registry, the way to devices. Thread-safe.
class ApiCore {
 public:
  // `broker` and `presence` must outlive the core.
  static absl::StatusOr<std::unique_ptr<ApiCore>> New(ApiOptions options, Broker* broker,
                                                      PresenceHub* presence);

  absl::StatusOr<ClientIdentity> Authenticate(const grpc::ServerContext& context) const;
  bool IsAdmin(const ClientIdentity& client) const;
  absl::Time Deadline(const grpc::ServerContext& context) const;
  // A device that is provisioned and not revoked, or kNotFound.
  absl::StatusOr<DeviceSummary> KnownDevice(absl::string_view device_id);
  // Runs a device method for the caller and maps the device's answer to a status.
  absl::StatusOr<std::vector<uint8_t>> CallDevice(const grpc::ServerContext& context,
                                                  const ClientIdentity& client,
                                                  absl::string_view device_id,
                                                  absl::string_view method,
                                                  std::vector<uint8_t> payload);
  // Runs `f(Registry&)` under the registry's lock.
  template <typename F>
  auto WithRegistry(F&& f) {
    std::lock_guard<std::mutex> lock(registry_mu_);
    return f(*registry_);
  }

  const ApiOptions& options() const { return options_; }
  Broker& broker() { return *broker_; }
  PresenceHub& presence() { return *presence_; }

 private:
  ApiCore(ApiOptions options, Broker* broker, PresenceHub* presence,
          std::unique_ptr<Registry> registry);

  ApiOptions options_;
  Broker* broker_;
  PresenceHub* presence_;
  absl::flat_hash_set<std::string> admins_;
  std::mutex registry_mu_;
  std::unique_ptr<Registry> registry_;  // Guarded by registry_mu_.
};

// The client-facing service.
class BasestationService final : public proto::Basestation::Service {
 public:
  explicit BasestationService(ApiCore* core) : core_(*core) {}

  grpc::Status Connect(grpc::ServerContext* context, const proto::ConnectRequest* request,
                       proto::ConnectResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context, const proto::DeviceRef* request,
                         proto::Device* response) override;
  // Admins see every device; anyone else, the devices that let them in.
  grpc::Status ListDevices(grpc::ServerContext* context, const proto::ListDevicesRequest* request,
                           proto::ListDevicesResponse* response) override;
  grpc::Status WatchDevice(grpc::ServerContext* context, const proto::DeviceRef* request,
                           grpc::ServerWriter<proto::Device>* writer) override;
  grpc::Status Pair(grpc::ServerContext* context, const proto::PairRequest* request,
                    proto::PairResponse* response) override;
  grpc::Status AddUser(grpc::ServerContext* context, const proto::UserRequest* request,
                       proto::Empty* response) override;
  grpc::Status RemoveUser(grpc::ServerContext* context, const proto::UserRequest* request,
                          proto::Empty* response) override;
  grpc::Status ListUsers(grpc::ServerContext* context, const proto::DeviceRef* request,
                         proto::ListUsersResponse* response) override;
  grpc::Status ReopenPairing(grpc::ServerContext* context, const proto::DeviceRef* request,
                             proto::Empty* response) override;

 private:
  ApiCore& core_;
};

// Administration: only fingerprints in ApiOptions::admin_fingerprints; others PERMISSION_DENIED.
class AdminService final : public proto::Admin::Service {
 public:
  explicit AdminService(ApiCore* core) : core_(*core) {}

  grpc::Status Provision(grpc::ServerContext* context, const proto::ProvisionRequest* request,
                         proto::ProvisionResponse* response) override;
  grpc::Status Revoke(grpc::ServerContext* context, const proto::DeviceRef* request,
                      proto::RevokeResponse* response) override;
  grpc::Status ListDevices(grpc::ServerContext* context, const proto::ListDevicesRequest* request,
                           proto::ListDevicesResponse* response) override;

 private:
  absl::StatusOr<ClientIdentity> AuthenticateAdmin(const grpc::ServerContext& context);

  ApiCore& core_;
};

}  // namespace edgelink::basestation

#endif  // EDGELINK_BASESTATION_API_SERVICE_H_
