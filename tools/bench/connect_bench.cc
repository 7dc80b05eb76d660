// connect_bench: how fast a real basestation brokers client Connects. One basestation process
// serves its gRPC API over mutual TLS (a fresh PKI made by tools/pki/pki.sh); D devices, each the
// real device core (AttachClient, one UDP socket each) answering with the real
// AccessRequestHandler after a client paired with it, run on one event loop in this process; M
// client threads (client::Client, one certificate each) loop Connect for a fixed time. Every
// Connect crosses gRPC+TLS, the broker, the attach channel to the device and back.
//
// The baseline, measured in the same run with the same threads, certificates, CA, CRL and SDK: a
// bare gRPC unary call (Basestation.GetDevice answered with a constant, no I/O) on the bench's own
// grpc::Server with the same tls::ServerCredentials, in a process forked from the bench (as the
// basestation has a process of its own). It is what gRPC over this TLS costs by itself.
//
// The basestation rate-limits requests per device (5/s, burst 20), and a throttled run measures the
// limiter, not the broker: load is spread evenly over the devices, and a run that saw any
// RESOURCE_EXHAUSTED fails instead of printing its BENCH line (raise --devices).
//
// Ends with
//   BENCH connect clients=M connects_per_s=… p50_ms=… p99_ms=… ratio=…
// ratio is connects_per_s over the bare call's calls per second.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "basestation/registry/registry.h"
#include "client/sdk/client.h"
#include "common/crypto/random.h"
#include "common/io/event_loop.h"
#include "common/io/udp_socket.h"
#include "common/net/endpoint.h"
#include "common/tls/credentials.h"
#include "common/tls/test_pki.h"
#include "device/access/access_list.h"
#include "device/core/attach_client.h"
#include "tools/bench/bench_util.h"
#include "device/daemon/request_handler.h"
#include "glog/logging.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "proto/basestation.grpc.pb.h"

ABSL_FLAG(int, devices, 1000,
          "Devices to provision and attach. Connects are spread evenly over them, so each stays "
          "under the basestation's per-device rate limit (5/s, burst 20): keep devices above "
          "connects_per_s * seconds / (19 + 5 * seconds).");
ABSL_FLAG(int, clients, 16, "Concurrent client threads, one certificate and channel each.");
ABSL_FLAG(double, seconds, 3, "Length of the Connect phase and of the bare-call phase.");
ABSL_FLAG(std::string, basestation, "", "Path to the basestation binary.");
ABSL_FLAG(std::vector<std::string>, basestation_args, {},
          "Extra comma-separated flags for `basestation serve`.");

namespace edgelink::bench {
namespace {

std::string DeviceId(int i) { return absl::StrCat("bench-", i); }

// The files pki.sh lays out in `dir`, and one client certificate per bench client.
struct Pki {
  std::string dir;
  std::string ServerCa() const { return dir + "/server-ca.pem"; }
  std::string ClientCa() const { return dir + "/client-ca.pem"; }
  std::string ServerCert() const { return dir + "/server.pem"; }
  std::string ServerKey() const { return dir + "/server.key"; }
  std::string Crl() const { return dir + "/crl.pem"; }
  tls::ClientTlsFiles Client(int i) const {
    const std::string base = absl::StrCat(dir, "/clients/client-", i);
    return {ServerCa(), base + ".pem", base + ".key"};
  }
  tls::TlsFiles Server() const { return {ServerCert(), ServerKey(), ClientCa(), Crl()}; }
};

Pki MakePki(const std::string& dir, int clients) {
  Pki pki{dir};
  Check(tls::testing::TestPki::Pki(
            {"init-ca", dir, "--server-names", "DNS:localhost,IP:127.0.0.1"}),
        "pki.sh init-ca");
  for (int i = 0; i < clients; ++i) {
    Check(tls::testing::TestPki::Pki({"issue-client", dir, absl::StrCat("client-", i)}),
          "pki.sh issue-client");
  }
  return pki;
}

// Passes every call to the real handler, counting Connects: proof that each one reached a device.
class CountingHandler final : public device::RequestHandler {
 public:
  CountingHandler(device::RequestHandler* inner, std::atomic<uint64_t>* connects)
      : inner_(inner), connects_(connects) {}
  wire::ConnectResponse OnConnectRequest(const wire::ConnectRequest& request,
                                         const wire::Nonce& device_nonce, absl::Time now) override {
    connects_->fetch_add(1, std::memory_order_relaxed);
    return inner_->OnConnectRequest(request, device_nonce, now);
  }
  wire::DeviceResponse OnDeviceRequest(const wire::DeviceRequest& request,
                                       absl::Time now) override {
    return inner_->OnDeviceRequest(request, now);
  }

 private:
  device::RequestHandler* inner_;
  std::atomic<uint64_t>* connects_;
};

struct SimDevice {
  std::unique_ptr<io::UdpSocket> socket;
  std::unique_ptr<device::AccessList> access;
  std::unique_ptr<device::AccessRequestHandler> access_handler;
  std::unique_ptr<CountingHandler> handler;
  std::unique_ptr<device::AttachClient> client;
  std::unique_ptr<io::Timer> timer;
};

// The simulated devices: each the real device core with its own socket, access list file and
// handler, all on one event loop running on its own thread. After Start, the devices are touched
// only on that thread.
class DeviceFleet {
 public:
  explicit DeviceFleet(io::EventLoop* loop) : loop_(loop) {}
  ~DeviceFleet() { Stop(); }

  void Start(const std::string& dir, const net::Endpoint& server,
             std::vector<basestation::ProvisionedDevice> provisioned) {
    for (basestation::ProvisionedDevice& p : provisioned) {
      auto sim = std::make_unique<SimDevice>();
      SimDevice& s = *sim;
      s.socket = Check(io::UdpSocket::Bind(*net::Endpoint::Parse("127.0.0.1:0")), "bind");
      s.access = Check(device::AccessList::Open(absl::StrCat(dir, "/", p.device_id, ".access"),
                                                p.pairing_secret),
                       "access list");
      s.access_handler = std::make_unique<device::AccessRequestHandler>(
          s.access.get(), [&s]() -> std::vector<wire::Candidate> {
            return {{wire::Candidate::Kind::kHost, s.socket->local_endpoint()}};
          });
      s.handler = std::make_unique<CountingHandler>(s.access_handler.get(), &connects_handled_);
      device::AttachClientOptions options;
      options.device_id = p.device_id;
      options.secret = std::move(p.secret);
      options.server = server;
      options.handler = s.handler.get();
      s.client = Check(device::AttachClient::New(std::move(options), &random_), "attach client");
      s.timer = std::make_unique<io::Timer>(loop_, [this, &s] {
        s.client->OnTimeout(loop_->Now());
        Flush(s);
      });
      CheckOk(loop_->Watch(s.socket->fd(), [this, &s] { Receive(s); }), "watch");
      s.client->Start(loop_->Now());
      Flush(s);
      sims_.push_back(std::move(sim));
    }
    thread_ = std::thread([this] { loop_->Run(); });
  }

  // Waits until every device is attached; dies after `limit`.
  void WaitAttached(absl::Duration limit) {
    const absl::Time give_up = absl::Now() + limit;
    for (;;) {
      const int attached = AttachedCount();
      if (attached == static_cast<int>(sims_.size())) return;
      if (absl::Now() > give_up) {
        Die(absl::StrCat("only ", attached, " of ", sims_.size(), " devices attached"));
      }
      absl::SleepFor(absl::Milliseconds(10));  // Polling interval, not a wait for an event.
    }
  }

  void Stop() {
    if (!thread_.joinable()) return;
    loop_->Stop();
    thread_.join();
    for (const auto& s : sims_) loop_->Unwatch(s->socket->fd());
    sims_.clear();  // Timers go before the loop does.
  }

  uint64_t connects_handled() const { return connects_handled_.load(); }

 private:
  // Counted on the loop thread, which owns the devices.
  int AttachedCount() {
    std::promise<int> result;
    loop_->Post([&] {
      int n = 0;
      for (const auto& s : sims_) n += s->client->state() == device::AttachClient::State::kAttached;
      result.set_value(n);
    });
    return result.get_future().get();
  }

  void Receive(SimDevice& s) {
    absl::StatusOr<size_t> n = s.socket->ReceiveBatch(buffer_);
    if (!n.ok()) return;
    const absl::Time now = loop_->Now();
    for (const io::ReceivedDatagram& d : buffer_.datagrams()) s.client->OnPacket(d.source, d.bytes, now);
    Flush(s);
  }

  void Flush(SimDevice& s) {
    for (const net::Datagram& d : s.client->TakeOutgoing()) (void)s.socket->SendTo(d.to, d.bytes);
    s.timer->Schedule(s.client->next_timeout());
  }

  io::EventLoop* loop_;
  crypto::SystemRandom random_;
  io::ReceiveBuffer buffer_{8};
  std::vector<std::unique_ptr<SimDevice>> sims_;
  std::atomic<uint64_t> connects_handled_{0};
  std::thread thread_;
};

// The baseline service: GetDevice answers a constant; everything else is UNIMPLEMENTED.
class ConstantBasestation final : public proto::Basestation::Service {
 public:
  grpc::Status GetDevice(grpc::ServerContext*, const proto::DeviceRef*,
                         proto::Device* response) override {
    response->set_device_id("bench-0");
    response->set_product("bench");
    response->set_online(true);
    return grpc::Status::OK;
  }
};

// Forks a process serving ConstantBasestation with the basestation's TLS on 127.0.0.1:0 and
// returns its pid and port. Like the basestation, the baseline server then has a process of its
// own: in this process its threads would share gRPC's executor and pollers with the clients'.
// Must be called before this process first uses gRPC (gRPC does not survive fork).
std::pair<pid_t, int> ForkBareServer(const Pki& pki) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    ConstantBasestation service;
    int port = 0;
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        tls::ServerCredentials(pki.Server());
    std::unique_ptr<grpc::Server> server;
    if (credentials.ok()) {
      grpc::ServerBuilder builder;
      builder.AddListeningPort("127.0.0.1:0", *credentials, &port);
      builder.RegisterService(&service);
      server = builder.BuildAndStart();
    } else {
      std::fprintf(stderr, "connect_bench: bare server: %s\n",
                   credentials.status().ToString().c_str());
    }
    if (server == nullptr) port = 0;
    (void)!write(fds[1], &port, sizeof(port));
    close(fds[1]);
    if (port == 0) _exit(1);
    server->Wait();  // Until killed.
    _exit(0);
  }
  close(fds[1]);
  int port = 0;
  if (read(fds[0], &port, sizeof(port)) != sizeof(port) || port == 0) {
    Die("cannot start the bare gRPC server");
  }
  close(fds[0]);
  return {pid, port};
}

// What one timed phase saw: successful calls' latencies and failures by code.
struct PhaseResult {
  double seconds = 0;
  double server_cpu_seconds = 0;  // Of the server process, during the phase.
  std::vector<double> latencies_ms;  // Sorted; successful calls only.
  std::map<absl::StatusCode, int64_t> errors;

  double PerSecond() const { return latencies_ms.size() / seconds; }
  double Percentile(double p) const {
    if (latencies_ms.empty()) return 0;
    const size_t rank = static_cast<size_t>(std::ceil(p * latencies_ms.size()));
    return latencies_ms[std::clamp<size_t>(rank, 1, latencies_ms.size()) - 1];
  }
  int64_t Errors(absl::StatusCode code) const {
    auto it = errors.find(code);
    return it == errors.end() ? 0 : it->second;
  }
  std::string ErrorSummary() const {
    if (errors.empty()) return "none";
    std::vector<std::string> parts;
    for (const auto& [code, n] : errors) parts.push_back(absl::StrCat(absl::StatusCodeToString(code), "=", n));
    return absl::StrJoin(parts, " ");
  }
};

// Runs `call(thread, iteration)` on `threads` threads, released together, until `duration` has
// passed; a call under way at the end finishes and counts.
PhaseResult Hammer(int threads, absl::Duration duration, pid_t server,
                   const std::function<absl::Status(int, uint64_t)>& call) {
  struct PerThread {
    std::vector<double> latencies_ms;
    std::map<absl::StatusCode, int64_t> errors;
  };
  std::vector<PerThread> per_thread(threads);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  absl::Time end;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      PerThread& mine = per_thread[t];
      mine.latencies_ms.reserve(1 << 16);
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      for (uint64_t i = 0;; ++i) {
        const absl::Time start = absl::Now();
        if (start >= end) break;
        absl::Status status = call(t, i);
        if (status.ok()) {
          mine.latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
        } else {
          ++mine.errors[status.code()];
        }
      }
    });
  }
  const double cpu_start = CpuSeconds(server);
  const absl::Time start = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu);
    end = start + duration;
    go = true;
  }
  cv.notify_all();
  for (std::thread& w : workers) w.join();
  PhaseResult result;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.server_cpu_seconds = CpuSeconds(server) - cpu_start;
  for (PerThread& p : per_thread) {
    result.latencies_ms.insert(result.latencies_ms.end(), p.latencies_ms.begin(),
                               p.latencies_ms.end());
    for (const auto& [code, n] : p.errors) result.errors[code] += n;
  }
  std::sort(result.latencies_ms.begin(), result.latencies_ms.end());
  return result;
}

// Runs `work(thread)` once on each of `threads` threads and waits for all.
void OnEachThread(int threads, const std::function<void(int)>& work) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(work, t);
  for (std::thread& w : workers) w.join();
}

std::vector<std::unique_ptr<client::Client>> MakeClients(const Pki& pki, const std::string& target,
                                                         int n) {
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i < n; ++i) {
    client::ClientOptions options;
    options.basestation = target;
    options.tls = pki.Client(i);
    options.timeout = absl::Seconds(10);
    clients.push_back(Check(client::Client::Create(std::move(options)), "client"));
  }
  return clients;
}

void PrintPhase(const char* name, const PhaseResult& r) {
  std::printf("%s: %zu in %.2f s = %.0f/s, p50 %.3f ms, p99 %.3f ms, server CPU %.0f us/call; "
              "errors: %s\n",
              name, r.latencies_ms.size(), r.seconds, r.PerSecond(), r.Percentile(0.50),
              r.Percentile(0.99),
              r.latencies_ms.empty() ? 0 : 1e6 * r.server_cpu_seconds / r.latencies_ms.size(),
              r.ErrorSummary().c_str());
}

class Bench {
 public:
  Bench(int devices, int clients, absl::Duration phase)
      : devices_(devices), clients_(clients), phase_(phase) {}

  int Run() {
    RaiseFileLimit(devices_ + 4 * clients_ + 200);
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/connect_bench.", getpid());
    if (mkdir(dir.c_str(), 0700) != 0) Die("cannot create " + dir);
    const int status = RunIn(dir);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return status;
  }

 private:
  // Device i is paired by client i % M. Thread t connects to the devices it owns, round robin;
  // with fewer devices than clients, client t is added as a user of device t % D instead.
  std::vector<std::string> DevicesOf(int t) const {
    std::vector<std::string> ids;
    if (devices_ < clients_) {
      ids.push_back(DeviceId(t % devices_));
    } else {
      for (int i = t; i < devices_; i += clients_) ids.push_back(DeviceId(i));
    }
    return ids;
  }

  int RunIn(const std::string& dir) {
    absl::Time t0 = absl::Now();
    const Pki pki = MakePki(dir + "/pki", clients_);
    std::printf("pki: CAs and %d client certificates in %.2f s\n", clients_,
                absl::ToDoubleSeconds(absl::Now() - t0));
    const auto [bare_pid, bare_port] = ForkBareServer(pki);

    t0 = absl::Now();
    const std::string db = dir + "/registry.db";
    std::vector<basestation::ProvisionedDevice> provisioned;
    std::vector<crypto::SecretBytes> pairing;
    {
      auto registry = Check(basestation::Registry::Open(db), "registry");
      for (int i = 0; i < devices_; ++i) {
        provisioned.push_back(Check(registry->Provision(DeviceId(i), "bench"), "provision"));
        pairing.push_back(provisioned.back().pairing_secret.Clone());
      }
    }
    std::printf("registry: %d devices provisioned in %.2f s\n", devices_,
                absl::ToDoubleSeconds(absl::Now() - t0));

    std::vector<std::string> argv = {absl::GetFlag(FLAGS_basestation),
                                     "serve",
                                     "--registry=" + db,
                                     "--listen=127.0.0.1:0",
                                     "--metrics-listen=",
                                     "--relay-listen=",
                                     "--api-listen=127.0.0.1:0",
                                     "--tls-cert=" + pki.ServerCert(),
                                     "--tls-key=" + pki.ServerKey(),
                                     "--client-ca=" + pki.ClientCa(),
                                     "--crl=" + pki.Crl()};
    for (const std::string& a : absl::GetFlag(FLAGS_basestation_args)) argv.push_back(a);
    auto [pid, ready] = Spawn(argv);
    basestation_ = pid;
    int api_port = 0;
    if (!absl::StartsWith(ready, "READY ") ||
        !absl::SimpleAtoi(ReadyField(ready, "api"), &api_port) || api_port == 0) {
      Die("basestation did not start: " + ready);
    }
    const net::Endpoint attach = Check(net::Endpoint::Parse(ReadyField(ready, "attach")),
                                       "READY attach=");
    const std::string api = absl::StrCat("127.0.0.1:", api_port);

    t0 = absl::Now();
    auto loop = Check(io::EventLoop::New(), "event loop");
    DeviceFleet fleet(loop.get());
    fleet.Start(dir, attach, std::move(provisioned));
    fleet.WaitAttached(absl::Seconds(120));
    std::printf("attach: %d devices in %.2f s\n", devices_, absl::ToDoubleSeconds(absl::Now() - t0));

    // Pairing goes the real way (client -> basestation -> device's access list); so does adding
    // users. Each takes one of the device's rate-limit tokens.
    t0 = absl::Now();
    std::vector<std::unique_ptr<client::Client>> clients = MakeClients(pki, api, clients_);
    OnEachThread(clients_, [&](int t) {
      for (int i = t; i < devices_; i += clients_) {
        CheckOk(clients[t]->Pair(DeviceId(i), pairing[i], absl::StrCat("client-", t)),
                "pair " + DeviceId(i));
      }
    });
    OnEachThread(clients_, [&](int t) {
      if (devices_ >= clients_ || t < devices_) return;
      const int device = t % devices_;
      CheckOk(clients[device]->AddUser(DeviceId(device), clients[t]->fingerprint(), "user",
                                       absl::StrCat("client-", t)),
              "add user to " + DeviceId(device));
    });
    // Every channel's TLS handshake happens here, not in the timed phase; GetDevice never reaches
    // a device, so it takes no rate-limit token.
    OnEachThread(clients_, [&](int t) {
      CheckOk(clients[t]->GetDevice(DevicesOf(t)[0]).status(), "warm-up GetDevice");
    });
    std::printf("pairing: %d devices paired by %d clients in %.2f s\n", devices_, clients_,
                absl::ToDoubleSeconds(absl::Now() - t0));

    std::vector<std::vector<std::string>> targets;
    for (int t = 0; t < clients_; ++t) targets.push_back(DevicesOf(t));
    const uint64_t handled_before = fleet.connects_handled();
    const PhaseResult connects = Hammer(clients_, phase_, basestation_, [&](int t, uint64_t i) {
      const std::vector<std::string>& mine = targets[t];
      return clients[t]->Connect(mine[i % mine.size()]).status();
    });
    const uint64_t handled = fleet.connects_handled() - handled_before;
    clients.clear();
    kill(basestation_, SIGTERM);
    waitpid(basestation_, nullptr, 0);
    fleet.Stop();
    PrintPhase("connect", connects);
    std::printf("devices: handler answered %llu connect requests\n",
                static_cast<unsigned long long>(handled));

    const PhaseResult bare = MeasureBareCall(pki, bare_pid, bare_port);
    kill(bare_pid, SIGKILL);
    waitpid(bare_pid, nullptr, 0);
    PrintPhase("bare GetDevice", bare);

    if (connects.latencies_ms.empty() || bare.latencies_ms.empty()) Die("no call succeeded");
    if (handled < connects.latencies_ms.size()) {
      Die(absl::StrCat("devices handled ", handled, " connects, clients saw ",
                       connects.latencies_ms.size(), " succeed"));
    }
    if (const int64_t throttled = connects.Errors(absl::StatusCode::kResourceExhausted);
        throttled > 0) {
      std::fprintf(stderr,
                   "connect_bench: %lld Connects were rate-limited (RESOURCE_EXHAUSTED): the "
                   "figure would measure the limiter. Raise --devices (now %d).\n",
                   static_cast<long long>(throttled), devices_);
      return 1;
    }
    std::printf("BENCH connect clients=%d connects_per_s=%.0f p50_ms=%.3f p99_ms=%.3f ratio=%.3f\n",
                clients_, connects.PerSecond(), connects.Percentile(0.50),
                connects.Percentile(0.99), connects.PerSecond() / bare.PerSecond());
    return 0;
  }

  // The same threads, certificates and SDK against the bare server.
  PhaseResult MeasureBareCall(const Pki& pki, pid_t server, int port) {
    std::vector<std::unique_ptr<client::Client>> clients =
        MakeClients(pki, absl::StrCat("127.0.0.1:", port), clients_);
    OnEachThread(clients_, [&](int t) {
      CheckOk(clients[t]->GetDevice("bench-0").status(), "warm-up bare GetDevice");
    });
    return Hammer(clients_, phase_, server, [&](int t, uint64_t) {
      return clients[t]->GetDevice("bench-0").status();
    });
  }

  const int devices_;
  const int clients_;
  const absl::Duration phase_;
  pid_t basestation_ = 0;
};

}  // namespace
}  // namespace edgelink::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // The device handler logs every accepted connect at INFO; that is not what is measured.
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = google::GLOG_WARNING;
  google::InitGoogleLogging(argv[0]);
  if (absl::GetFlag(FLAGS_basestation).empty()) {
    std::fprintf(stderr, "connect_bench: --basestation=PATH is required\n");
    return 2;
  }
  const int devices = absl::GetFlag(FLAGS_devices);
  const int clients = absl::GetFlag(FLAGS_clients);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (devices < 1 || clients < 1 || !(seconds > 0)) {
    std::fprintf(stderr, "connect_bench: --devices, --clients and --seconds must be positive\n");
    return 2;
  }
  return edgelink::bench::Bench(devices, clients, absl::Seconds(seconds)).Run();
}
