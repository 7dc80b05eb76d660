// A program a client-SDK user would write, built by client_sdk_test.sh against the installed
// layout of edgelink-client (headers, libedgelink-client.a, edgelink-client.pc) and nothing else.
//   client_sdk_probe CA CERT KEY   prints the client's fingerprint, then the code of a call to a
//                                  basestation that is not there (UNAVAILABLE).
#include <cstdio>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/sdk/client.h"
#include "client/sdk/peer_session.h"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  edgelink::client::ClientOptions options;
  options.basestation = "127.0.0.1:1";
  options.tls.root_ca_pem = argv[1];
  options.tls.cert_chain_pem = argv[2];
  options.tls.private_key_pem = argv[3];
  options.timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<edgelink::client::Client>> client =
      edgelink::client::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "Create: %s\n", client.status().ToString().c_str());
    return 1;
  }
  std::printf("fingerprint %s\n", (*client)->fingerprint().c_str());
  absl::StatusOr<std::unique_ptr<edgelink::client::PeerSession>> session =
      edgelink::client::PeerSession::Open(**client, "cam-1");
  std::printf("open %s\n", absl::StatusCodeToString(session.status().code()).c_str());
  return 0;
}
