// basestation: the Edgelink basestation and its operator CLI.
//
//   basestation serve --registry=FILE [--listen=ADDR:PORT] [--dns-listen=ADDR:PORT] ...
//   basestation provision --registry=FILE --device-id=ID [--product=NAME]
//   basestation revoke --registry=FILE --device-id=ID
//   basestation devices --registry=FILE
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "basestation/registry/registry.h"
#include "basestation/server/server.h"
#include "common/io/event_loop.h"
#include "common/status/status_macros.h"
#include "common/tool/flags.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, registry, "edgelink-registry.db", "The registry's SQLite file.");
ABSL_FLAG(std::string, listen, "0.0.0.0:7000", "UDP address devices attach to.");
ABSL_FLAG(std::string, dns_listen, "",
          "UDP address to serve the devices' DNS zone on (e.g. 0.0.0.0:53); empty: no DNS.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9100",
          "HTTP address for /metrics and /healthz; empty: none.");
ABSL_FLAG(std::string, zone, "devices.edgelink.test",
          "DNS zone of the devices: device X is X.<zone>.");
ABSL_FLAG(std::string, public_address, "127.0.0.1",
          "Comma-separated public IPs of this basestation, answered for <device>.<zone>.");
ABSL_FLAG(absl::Duration, keepalive_interval, absl::Seconds(25),
          "How often devices send keep-alives (told to them at attach).");
ABSL_FLAG(std::string, relay_listen, "0.0.0.0:7001",
          "UDP address of the relay, for peers that cannot reach each other directly; empty: none.");
ABSL_FLAG(std::string, api_listen, "",
          "TCP address of the gRPC API (mutual TLS), e.g. 0.0.0.0:7443; empty: no API.");
ABSL_FLAG(std::string, tls_cert, "", "The API's certificate chain (PEM).");
ABSL_FLAG(std::string, tls_key, "", "The API's private key (PEM).");
ABSL_FLAG(std::string, client_ca, "", "CA certificate(s) client certificates must chain to.");
ABSL_FLAG(std::string, crl, "", "The client CA's CRL (PEM); revoked clients are refused.");
ABSL_FLAG(std::string, admin_fingerprints, "",
          "Comma-separated SHA-256 fingerprints of certificates allowed to use the Admin API.");
ABSL_FLAG(double, connect_rate_per_device, 5,
          "Connects and device calls accepted per second for one device; more are refused "
          "RESOURCE_EXHAUSTED without reaching it.");
ABSL_FLAG(double, connect_burst_per_device, 20, "Burst allowed above --connect-rate-per-device.");
ABSL_FLAG(std::string, device_id, "", "Device id for provision/revoke.");
ABSL_FLAG(std::string, product, "", "Product name recorded at provisioning.");

namespace edgelink::basestation {
namespace {

constexpr char kUsage[] =
    "Edgelink basestation.\n"
    "  basestation serve      run the basestation\n"
    "  basestation provision  --device-id=ID [--product=NAME]: create a device, print its config\n"
    "  basestation revoke     --device-id=ID: stop a device from attaching, for good\n"
    "  basestation devices    list devices with their state\n"
    "All take --registry=FILE.";

absl::Status Serve() {
  ServerOptions options;
  options.registry_path = absl::GetFlag(FLAGS_registry);
  ASSIGN_OR_RETURN(options.attach_listen, tool::ParseEndpointFlag("listen", FLAGS_listen));
  if (!absl::GetFlag(FLAGS_dns_listen).empty()) {
    ASSIGN_OR_RETURN(options.dns_listen, tool::ParseEndpointFlag("dns-listen", FLAGS_dns_listen));
  }
  if (!absl::GetFlag(FLAGS_metrics_listen).empty()) {
    ASSIGN_OR_RETURN(options.metrics_listen,
                     tool::ParseEndpointFlag("metrics-listen", FLAGS_metrics_listen));
  }
  if (!absl::GetFlag(FLAGS_relay_listen).empty()) {
    ASSIGN_OR_RETURN(options.relay_listen,
                     tool::ParseEndpointFlag("relay-listen", FLAGS_relay_listen));
  }
  options.zone = absl::GetFlag(FLAGS_zone);
  for (absl::string_view ip : absl::StrSplit(absl::GetFlag(FLAGS_public_address), ',')) {
    absl::StatusOr<net::Endpoint> address = net::Endpoint::ParseIp(ip, 0);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--public-address: ", address.status().message()));
    }
    options.public_addresses.push_back(*address);
  }
  options.attach.keepalive_interval = absl::GetFlag(FLAGS_keepalive_interval);
  if (options.attach.keepalive_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--keepalive-interval must be at least 1s");
  }
  options.attach.liveness_timeout = options.attach.keepalive_interval * 3 + absl::Seconds(5);
  options.broker.requests_per_second = absl::GetFlag(FLAGS_connect_rate_per_device);
  options.broker.request_burst = absl::GetFlag(FLAGS_connect_burst_per_device);
  if (options.broker.requests_per_second <= 0 || options.broker.request_burst < 1) {
    return absl::InvalidArgumentError(
        "--connect-rate-per-device must be positive and --connect-burst-per-device at least 1");
  }
  if (!absl::GetFlag(FLAGS_api_listen).empty()) {
    ASSIGN_OR_RETURN(options.api_listen, tool::ParseEndpointFlag("api-listen", FLAGS_api_listen));
    options.tls.cert_chain_pem = absl::GetFlag(FLAGS_tls_cert);
    options.tls.private_key_pem = absl::GetFlag(FLAGS_tls_key);
    options.tls.client_ca_pem = absl::GetFlag(FLAGS_client_ca);
    if (options.tls.cert_chain_pem.empty() || options.tls.private_key_pem.empty() ||
        options.tls.client_ca_pem.empty()) {
      return absl::InvalidArgumentError(
          "--api-listen needs --tls-cert, --tls-key and --client-ca");
    }
    if (!absl::GetFlag(FLAGS_crl).empty()) options.tls.crl_pem = absl::GetFlag(FLAGS_crl);
    for (absl::string_view f :
         absl::StrSplit(absl::GetFlag(FLAGS_admin_fingerprints), ',', absl::SkipEmpty())) {
      options.admin_fingerprints.emplace_back(f);
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<io::EventLoop> loop, io::EventLoop::New());
  // Before Server::Start, whose gRPC threads inherit the blocked mask: a thread with SIGTERM
  // unblocked would take it and die of it, skipping the orderly stop.
  for (int signo : {SIGINT, SIGTERM}) {
    RETURN_IF_ERROR(loop->OnSignal(signo, [&loop] { loop->Stop(); }));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Server> server, Server::Start(std::move(options), loop.get()));
  // One machine-readable line, for scripts and tests that started us on port 0.
  std::printf("READY attach=%s dns=%s metrics=%d api=%d relay=%s\n",
              server->attach_endpoint().ToString().c_str(),
              server->dns_endpoint() ? server->dns_endpoint()->ToString().c_str() : "none",
              server->metrics_port(), server->api_port(),
              server->relay_endpoint() ? server->relay_endpoint()->ToString().c_str() : "none");
  std::fflush(stdout);
  LOG(INFO) << "basestation serving: attach " << server->attach_endpoint().ToString();
  loop->Run();
  LOG(INFO) << "basestation stopping";
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequiredDeviceId() {
  std::string id = absl::GetFlag(FLAGS_device_id);
  if (id.empty()) return absl::InvalidArgumentError("--device-id is required");
  return id;
}

absl::Status Provision() {
  ASSIGN_OR_RETURN(std::string id, RequiredDeviceId());
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry,
                   Registry::Open(absl::GetFlag(FLAGS_registry)));
  ASSIGN_OR_RETURN(ProvisionedDevice device,
                   registry->Provision(id, absl::GetFlag(FLAGS_product)));
  // The one time the secrets leave the registry: as the device's config file.
  std::string secret_hex;
  for (uint8_t b : device.secret.span()) absl::StrAppendFormat(&secret_hex, "%02x", b);
  const std::string pairing(device.pairing_secret.span().begin(),
                            device.pairing_secret.span().end());
  std::printf(
      "# Edgelink device config for %s. Shown once: store it on the device; print the\n"
      "# pairing secret on its sticker (whoever proves it first becomes the owner).\n"
      "device_id = %s\n"
      "secret = %s\n"
      "pairing_secret = %s\n"
      "zone = %s\n"
      "remote_access = on\n",
      device.device_id.c_str(), device.device_id.c_str(), secret_hex.c_str(), pairing.c_str(),
      absl::GetFlag(FLAGS_zone).c_str());
  return absl::OkStatus();
}

absl::Status Revoke() {
  ASSIGN_OR_RETURN(std::string id, RequiredDeviceId());
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry,
                   Registry::Open(absl::GetFlag(FLAGS_registry)));
  RETURN_IF_ERROR(registry->Revoke(id));
  std::printf("revoked %s\n", id.c_str());
  return absl::OkStatus();
}

absl::Status Devices() {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry,
                   Registry::Open(absl::GetFlag(FLAGS_registry)));
  ASSIGN_OR_RETURN(std::vector<DeviceSummary> devices, registry->List());
  std::printf("%-24s %-8s %-22s %s\n", "DEVICE", "STATE", "ADDRESS", "PRODUCT");
  for (const DeviceSummary& d : devices) {
    const char* state = d.revoked ? "revoked" : d.online ? "online" : "offline";
    std::printf("%-24s %-8s %-22s %s\n", d.device_id.c_str(), state,
                d.last_address.empty() ? "-" : d.last_address.c_str(), d.product.c_str());
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = tool::ParseFlags(argc, argv);
  tool::InitLogging(argv[0]);
  if (args.size() != 2) {
    std::fprintf(stderr, "basestation: expected one command (serve, provision, revoke, devices)\n");
    return 2;
  }
  const std::string command = args[1];
  absl::Status status;
  if (command == "serve") {
    status = Serve();
  } else if (command == "provision") {
    status = Provision();
  } else if (command == "revoke") {
    status = Revoke();
  } else if (command == "devices") {
    status = Devices();
  } else {
    std::fprintf(stderr, "basestation: unknown command \"%s\"\n", command.c_str());
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "basestation %s: %s\n", command.c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace edgelink::basestation

int main(int argc, char** argv) { return edgelink::basestation::Main(argc, argv); }
