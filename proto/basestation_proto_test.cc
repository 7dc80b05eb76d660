// Checks the generated messages and gRPC stubs against the system protobuf and gRPC runtimes: a
// message survives the wire, and a call through the generated stub reaches a service and carries
// its status back.
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/basestation.grpc.pb.h"
#include "proto/basestation.pb.h"

namespace edgelink::proto {
namespace {

TEST(BasestationProtoTest, ConnectResponseRoundTripsThroughWireFormat) {
  ConnectResponse response;
  response.set_session_id("\x01\x02");
  response.set_session_key(std::string(16, '\x07'));
  Candidate* candidate = response.add_device_candidates();
  candidate->set_kind(Candidate::SERVER_REFLEXIVE);
  candidate->set_address("198.51.100.7:40000");

  ConnectResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(response.SerializeAsString()));
  EXPECT_EQ(parsed.session_key(), std::string(16, '\x07'));
  ASSERT_EQ(parsed.device_candidates_size(), 1);
  EXPECT_EQ(parsed.device_candidates(0).kind(), Candidate::SERVER_REFLEXIVE);
  EXPECT_EQ(parsed.device_candidates(0).address(), "198.51.100.7:40000");
  EXPECT_FALSE(parsed.ParseFromString(std::string("\xff\xff\xff", 3)));
}

class OneDeviceBasestation final : public Basestation::Service {
  grpc::Status GetDevice(grpc::ServerContext*, const DeviceRef* request, Device* reply) override {
    if (request->device_id() != "cam-1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no device " + request->device_id());
    }
    reply->set_device_id("cam-1");
    reply->set_online(true);
    return grpc::Status::OK;
  }
};

TEST(BasestationProtoTest, GeneratedStubCallsServiceInProcess) {
  OneDeviceBasestation service;
  std::unique_ptr<grpc::Server> server = grpc::ServerBuilder().RegisterService(&service).BuildAndStart();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<Basestation::Stub> stub =
      Basestation::NewStub(server->InProcessChannel(grpc::ChannelArguments()));

  DeviceRef ref;
  ref.set_device_id("cam-1");
  Device device;
  grpc::ClientContext ok_context;
  ASSERT_TRUE(stub->GetDevice(&ok_context, ref, &device).ok());
  EXPECT_TRUE(device.online());

  ref.set_device_id("cam-2");
  grpc::ClientContext missing_context;
  grpc::Status status = stub->GetDevice(&missing_context, ref, &device);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no device cam-2");
  server->Shutdown();
}

}  // namespace
}  // namespace edgelink::proto
