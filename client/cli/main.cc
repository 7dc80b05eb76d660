// client: the Edgelink client CLI.
//
//   client [--basestation=HOST:PORT --ca=FILE --cert=FILE --key=FILE] COMMAND ...
//     whoami                              this client's certificate fingerprint (its identity)
//     devices                             devices this client may use (all, for an admin)
//     connect DEVICE                      broker a session; print candidates and timing
//     rpc DEVICE METHOD [PAYLOAD]         call a method on the device over the peer channel
//     diagnose DEVICE                     connect, then report every path tried and which won
//     tunnel DEVICE --listen=ADDR:PORT --to=PORT
//                                         forward each TCP connection made to ADDR:PORT to the
//                                         device's (allow-listed) local PORT; until Ctrl-C
//     pair DEVICE --secret=STICKER        become the owner of a new device
//     users list DEVICE
//     users add DEVICE FINGERPRINT [--role=user|guest|owner] [--name=NAME]
//     users remove DEVICE FINGERPRINT
//     pairing reopen DEVICE
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/sdk/client.h"
#include "client/sdk/peer_session.h"
#include "common/tool/flags.h"

ABSL_FLAG(std::string, basestation, "127.0.0.1:7443", "The basestation API's HOST:PORT.");
ABSL_FLAG(std::string, ca, "", "CA certificate the basestation's certificate must chain to.");
ABSL_FLAG(std::string, cert, "", "This client's certificate (PEM): its identity.");
ABSL_FLAG(std::string, key, "", "This client's private key (PEM).");
ABSL_FLAG(std::string, server_name, "",
          "Name the basestation's certificate must carry, if not the host in --basestation.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, secret, "", "The device's pairing secret (for pair).");
ABSL_FLAG(std::string, name, "", "A name for this client or user, shown in access lists.");
ABSL_FLAG(std::string, role, "user", "Role for users add: owner, user or guest.");
ABSL_FLAG(bool, relay_only, false,
          "rpc/diagnose/tunnel: use the basestation relay only (no direct path, addresses not "
          "shared).");
ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "tunnel: local ADDR:PORT to accept connections on (port 0: any).");
ABSL_FLAG(int, to, 0, "tunnel: the device's TCP port to connect each connection to.");

namespace edgelink::client {
namespace {

constexpr char kUsage[] =
    "Edgelink client.\n"
    "  client whoami | devices | connect DEVICE | pair DEVICE --secret=S [--name=N]\n"
    "  client rpc DEVICE METHOD [PAYLOAD] | diagnose DEVICE\n"
    "  client tunnel DEVICE --listen=127.0.0.1:8080 --to=80\n"
    "  client users list DEVICE | users add DEVICE FINGERPRINT [--role=R] [--name=N]\n"
    "  client users remove DEVICE FINGERPRINT | pairing reopen DEVICE\n"
    "Identity: --cert/--key (an X.509 certificate from the vendor's client CA), --ca.";

absl::Status Usage(absl::string_view problem) { return absl::InvalidArgumentError(problem); }

PeerSessionOptions PeerOptions() {
  PeerSessionOptions options;
  options.relay_only = absl::GetFlag(FLAGS_relay_only);
  return options;
}

// Serves a tunnel listener until Ctrl-C (or SIGTERM), printing what happens to each connection.
absl::Status RunTunnel(Client& client, const std::string& device) {
  const int port = absl::GetFlag(FLAGS_to);
  if (port <= 0 || port > 65535) {
    return Usage("tunnel needs --to=PORT (the device's port, 1..65535)");
  }
  absl::StatusOr<net::Endpoint> listen = tool::ParseEndpointFlag("listen", FLAGS_listen);
  if (!listen.ok()) return Usage(listen.status().message());
  absl::StatusOr<std::unique_ptr<PeerSession>> peer =
      PeerSession::Open(client, device, PeerOptions());
  if (!peer.ok()) return peer.status();
  PeerSession& session = **peer;
  uint64_t opened = 0, refused = 0;
  absl::StatusOr<net::Endpoint> bound = session.Tunnel(
      *listen, static_cast<uint16_t>(port), [&](const TunnelEvent& e) {
        switch (e.kind) {
          case TunnelEvent::Kind::kAccepted:
            std::printf("[%llu] %s connected\n", static_cast<unsigned long long>(e.id),
                        e.from.ToString().c_str());
            break;
          case TunnelEvent::Kind::kOpened:
            ++opened;
            std::printf("[%llu] open to %s port %d\n", static_cast<unsigned long long>(e.id),
                        device.c_str(), e.device_port);
            break;
          case TunnelEvent::Kind::kRefused:
            ++refused;
            std::printf("[%llu] closed, not tunnelled: %s\n",
                        static_cast<unsigned long long>(e.id),
                        std::string(e.status.message()).c_str());
            break;
          case TunnelEvent::Kind::kClosed:
            std::printf("[%llu] closed%s%s: %llu bytes sent, %llu received\n",
                        static_cast<unsigned long long>(e.id), e.status.ok() ? "" : " with error: ",
                        std::string(e.status.message()).c_str(),
                        static_cast<unsigned long long>(e.bytes_sent),
                        static_cast<unsigned long long>(e.bytes_received));
            break;
        }
        std::fflush(stdout);
      });
  if (!bound.ok()) return bound.status();
  if (absl::Status s = session.StopOnSignal(SIGINT); !s.ok()) return s;
  if (absl::Status s = session.StopOnSignal(SIGTERM); !s.ok()) return s;
  const channel::PeerConnection::Path* path = session.connection().active_path();
  std::printf("listening on %s: connections go to %s port %d over the %s path (Ctrl-C stops)\n",
              bound->ToString().c_str(), device.c_str(), port,
              path ? std::string(channel::PeerConnection::PathName(*path)).c_str() : "?");
  std::fflush(stdout);
  const bool stopped = session.Run();
  const tunnel::TunnelCounters c = session.tunnel_counters();
  std::printf("stopped: %llu tunnels opened, %llu refused; %llu bytes sent, %llu received\n",
              static_cast<unsigned long long>(opened), static_cast<unsigned long long>(refused),
              static_cast<unsigned long long>(c.bytes_sent),
              static_cast<unsigned long long>(c.bytes_received));
  if (!stopped) return absl::UnavailableError(absl::StrCat("the connection to ", device, " ended"));
  return absl::OkStatus();
}

absl::Status Run(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("no command (try --help)");
  if (args[0] == "tunnel") {
    // Before gRPC starts its threads, which inherit the mask: only the tunnel's event loop takes
    // these (through a signalfd), so Ctrl-C stops it cleanly.
    // A script's background job starts with SIGINT ignored, and an ignored signal never reaches
    // a signalfd: take the default back (harmless while blocked).
    signal(SIGINT, SIG_DFL);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  ClientOptions options;
  options.basestation = absl::GetFlag(FLAGS_basestation);
  options.tls.root_ca_pem = absl::GetFlag(FLAGS_ca);
  options.tls.cert_chain_pem = absl::GetFlag(FLAGS_cert);
  options.tls.private_key_pem = absl::GetFlag(FLAGS_key);
  options.server_name = absl::GetFlag(FLAGS_server_name);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  if (options.tls.root_ca_pem.empty() || options.tls.cert_chain_pem.empty() ||
      options.tls.private_key_pem.empty()) {
    return Usage("--ca, --cert and --key are required");
  }
  absl::StatusOr<std::unique_ptr<Client>> created = Client::Create(options);
  if (!created.ok()) return created.status();
  Client& client = **created;
  const std::string& command = args[0];
  auto need = [&](size_t n, absl::string_view shape) -> absl::Status {
    if (args.size() != n) return Usage(absl::StrCat("usage: client ", shape));
    return absl::OkStatus();
  };

  if (command == "whoami") {
    std::printf("%s\n", client.fingerprint().c_str());
    return absl::OkStatus();
  }
  if (command == "devices") {
    absl::StatusOr<std::vector<DeviceInfo>> devices = client.ListDevices();
    if (!devices.ok()) return devices.status();
    std::printf("%-24s %-8s %s\n", "DEVICE", "STATE", "PRODUCT");
    for (const DeviceInfo& d : *devices) {
      std::printf("%-24s %-8s %s\n", d.device_id.c_str(), d.online ? "online" : "offline",
                  d.product.c_str());
    }
    return absl::OkStatus();
  }
  if (command == "connect") {
    if (absl::Status s = need(2, "connect DEVICE"); !s.ok()) return s;
    absl::StatusOr<Session> session = client.Connect(args[1]);
    if (!session.ok()) return session.status();
    std::printf("connected to %s in %s (session key brokered, %zu bytes)\n", args[1].c_str(),
                absl::FormatDuration(session->took).c_str(), session->session_key.size());
    for (const Candidate& c : session->device_candidates) {
      std::printf("  candidate %-17s %s\n", c.kind.c_str(), c.endpoint.ToString().c_str());
    }
    return absl::OkStatus();
  }
  if (command == "rpc") {
    if (args.size() != 3 && args.size() != 4) return Usage("usage: client rpc DEVICE METHOD [PAYLOAD]");
    absl::StatusOr<std::unique_ptr<PeerSession>> peer =
        PeerSession::Open(client, args[1], PeerOptions());
    if (!peer.ok()) return peer.status();
    const std::string payload = args.size() == 4 ? args[3] : "";
    absl::StatusOr<std::vector<uint8_t>> reply = (*peer)->Call(
        args[2], absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()),
                                     payload.size()));
    if (!reply.ok()) return reply.status();
    std::fwrite(reply->data(), 1, reply->size(), stdout);
    if (reply->empty() || reply->back() != '\n') std::printf("\n");
    return absl::OkStatus();
  }
  if (command == "diagnose") {
    if (absl::Status s = need(2, "diagnose DEVICE"); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<PeerSession>> peer =
        PeerSession::Open(client, args[1], PeerOptions());
    if (!peer.ok()) return peer.status();
    // Let every path finish racing (birthday probing included) before reporting.
    const channel::PeerConnection& c = (*peer)->connection();
    (*peer)->RunUntil(
        [&c] {
          return std::none_of(c.paths().begin(), c.paths().end(), [](const auto& p) {
            return p.state == channel::PeerConnection::PathState::kProbing;
          });
        },
        absl::Seconds(10));
    const Session& s = (*peer)->session();
    std::printf("device %s: session brokered in %s\n", args[1].c_str(),
                absl::FormatDuration(s.took).c_str());
    std::printf("  our socket        %s\n", (*peer)->local_endpoint().ToString().c_str());
    for (const Candidate& c : s.device_candidates) {
      std::printf("  device candidate  %-17s %s\n", c.kind.c_str(), c.endpoint.ToString().c_str());
    }
    if (s.relay.is_set()) std::printf("  relay             %s\n", s.relay.ToString().c_str());
    // Our NAT maps endpoint-independently when the relay and the attach port (the reflector) see
    // the same public address.
    std::printf("  our NAT           %s mapping (relay saw %s, basestation %s)\n",
                std::string(channel::NatMappingName(c.local_mapping())).c_str(),
                c.reflexive().is_set() ? c.reflexive().ToString().c_str() : "-",
                c.reflector_reflexive().is_set() ? c.reflector_reflexive().ToString().c_str()
                                                 : "-");
    std::printf("  device's NAT      %s mapping (as the device told)\n",
                std::string(channel::NatMappingName(c.peer_mapping())).c_str());
    if (c.counters().spray_sockets_used > 0 || c.counters().spray_probes_sent > 0) {
      std::printf("  birthday probing  %llu extra sockets, %llu probes to random ports\n",
                  static_cast<unsigned long long>(c.counters().spray_sockets_used),
                  static_cast<unsigned long long>(c.counters().spray_probes_sent));
    }
    int guesses_failed = 0;
    for (const channel::PeerConnection::Path& p : c.paths()) {
      // The extra sockets' guesses: only the ones that worked are worth a line.
      if (p.socket != 0 && p.state != channel::PeerConnection::PathState::kUsable) {
        ++guesses_failed;
        continue;
      }
      const char* state = p.state == channel::PeerConnection::PathState::kUsable ? "works"
                          : p.state == channel::PeerConnection::PathState::kFailed ? "failed"
                                                                                   : "probing";
      std::printf("  path %-7s %-22s %-8s rtt %s\n",
                  std::string(channel::PeerConnection::PathName(p)).c_str(),
                  p.remote.ToString().c_str(), state,
                  p.rtt == absl::InfiniteDuration() ? "-" : absl::FormatDuration(p.rtt).c_str());
    }
    if (guesses_failed > 0) {
      std::printf("  (%d more paths from extra sockets did not work)\n", guesses_failed);
    }
    const channel::PeerConnection::Path* active = c.active_path();
    std::printf("chosen path: %s %s; first path after %s; setup %s\n",
                active ? std::string(channel::PeerConnection::PathName(*active)).c_str() : "none",
                active ? active->remote.ToString().c_str() : "",
                absl::FormatDuration(c.time_to_first_path()).c_str(),
                absl::FormatDuration((*peer)->setup_time()).c_str());
    return absl::OkStatus();
  }
  if (command == "tunnel") {
    if (absl::Status s = need(2, "tunnel DEVICE --listen=ADDR:PORT --to=PORT"); !s.ok()) return s;
    return RunTunnel(client, args[1]);
  }
  if (command == "pair") {
    if (absl::Status s = need(2, "pair DEVICE --secret=STICKER"); !s.ok()) return s;
    const std::string secret = absl::GetFlag(FLAGS_secret);
    if (secret.empty()) return Usage("pair needs --secret (the device's pairing secret)");
    absl::Status status = client.Pair(
        args[1],
        crypto::SecretBytes::CopyFrom(absl::MakeConstSpan(
            reinterpret_cast<const uint8_t*>(secret.data()), secret.size())),
        absl::GetFlag(FLAGS_name));
    if (!status.ok()) return status;
    std::printf("paired: you own %s\n", args[1].c_str());
    return absl::OkStatus();
  }
  if (command == "users" && args.size() >= 2) {
    const std::string& sub = args[1];
    if (sub == "list") {
      if (absl::Status s = need(3, "users list DEVICE"); !s.ok()) return s;
      absl::StatusOr<std::vector<User>> users = client.ListUsers(args[2]);
      if (!users.ok()) return users.status();
      for (const User& u : *users) {
        std::printf("%-6s %s %s\n", u.role.c_str(), u.fingerprint.c_str(), u.name.c_str());
      }
      return absl::OkStatus();
    }
    if (sub == "add") {
      if (absl::Status s = need(4, "users add DEVICE FINGERPRINT"); !s.ok()) return s;
      return client.AddUser(args[2], args[3], absl::GetFlag(FLAGS_role), absl::GetFlag(FLAGS_name));
    }
    if (sub == "remove") {
      if (absl::Status s = need(4, "users remove DEVICE FINGERPRINT"); !s.ok()) return s;
      return client.RemoveUser(args[2], args[3]);
    }
  }
  if (command == "pairing" && args.size() == 3 && args[1] == "reopen") {
    return client.ReopenPairing(args[2]);
  }
  return Usage(absl::StrCat("unknown command \"", command, "\" (try --help)"));
}

}  // namespace
}  // namespace edgelink::client

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(edgelink::client::kUsage);
  std::vector<char*> positional = edgelink::tool::ParseFlags(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  absl::Status status = edgelink::client::Run(args);
  if (!status.ok()) {
    std::fprintf(stderr, "client: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
                 std::string(status.message()).c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
