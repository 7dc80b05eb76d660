// Registry durability under SIGKILL, with real processes: the basestation binary, its SQLite file,
// real UDP for attach and real gRPC over mutual TLS for the Admin API.
//
// An operator's changes reach the registry by two paths, each with its own writing process: the
// Admin API (Provision / Revoke over gRPC), which the serving basestation commits, and the CLI
// (`basestation provision|revoke --registry=FILE`), a short-lived process that commits to the file
// itself while the server runs beside it. Each round sends a burst of provisions and revokes from
// several concurrent operators down one path and, after a seeded-random number of
// acknowledgements, SIGKILLs the writers mid-burst: the serving basestation (API rounds), or every
// CLI process still running together with the server (CLI rounds). Then:
//   - the file passes PRAGMA integrity_check, and a new basestation serves from it;
//   - every acknowledged provision (OK reply, exit 0) is listed by the new server, and its device
//     attaches over UDP with the secret it was given;
//   - every acknowledged revoke holds: the device is not among active devices and its attach is
//     refused (DETACH revoked);
//   - nothing that was not asked for happened (no unknown device, no unrequested revocation).
// Changes in flight at the kill were not acknowledged and may land either way.
//
// SIGKILL ends a process, not the machine: the page cache survives it. So this checks that nothing
// is acknowledged before it is committed, and that a half-written WAL is recovered cleanly; that a
// commit survives power loss (synchronous=FULL, fsync) cannot be observed from here.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/crypto/random.h"
#include "common/crypto/secret_bytes.h"
#include "common/io/event_loop.h"
#include "common/io/run_until.h"
#include "common/io/udp_socket.h"
#include "common/tls/credentials.h"
#include "common/tls/test_pki.h"
#include "device/core/attach_client.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "integration/loopback/child_process.h"
#include "proto/basestation.grpc.pb.h"

ABSL_FLAG(std::string, basestation, "", "Path to the basestation binary.");

namespace edgelink::loopback {
namespace {

constexpr uint32_t kSeed = 20261125;
// Rounds alternate between the two paths, so each path is killed at three different points.
constexpr int kRounds = 6;
// Operators sending commands at once: more than one, so that a kill lands while others' commands
// are in flight (and, on the CLI path, while processes wait for each other's write lock).
constexpr int kOperators = 4;
// The kill comes after this many acknowledgements in the round (uniformly chosen, seeded).
constexpr int kMinAcksBeforeKill = 1;
constexpr int kMaxAcksBeforeKill = 30;
// Share of commands that revoke an acknowledged device rather than provision a new one.
constexpr double kRevokeShare = 0.3;
// Safety nets for a broken build, not timing assumptions.
constexpr absl::Duration kBurstLimit = absl::Seconds(120);
constexpr absl::Duration kAttachLimit = absl::Seconds(60);
constexpr absl::Duration kCallTimeout = absl::Seconds(20);

enum class Path { kAdminApi, kCli };

const char* PathName(Path path) { return path == Path::kAdminApi ? "admin-api" : "cli"; }

// What the test knows about one device id it used.
struct Fate {
  bool provision_acked = false;
  std::optional<crypto::SecretBytes> secret;  // Given with the acknowledgement.
  bool revoke_sent = false;
  bool revoke_acked = false;
};

struct Command {
  bool revoke = false;
  std::string device_id;
};

// Admin and client-API stubs on one mutual-TLS channel, as the admin certificate.
struct Stubs {
  std::unique_ptr<proto::Admin::Stub> admin;
  std::unique_ptr<proto::Basestation::Stub> basestation;
};

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The secret in a config printed by `basestation provision`, or nullopt.
std::optional<crypto::SecretBytes> SecretFromConfig(const std::string& config) {
  for (absl::string_view line : absl::StrSplit(config, '\n')) {
    if (!absl::ConsumePrefix(&line, "secret = ")) continue;
    const std::string bytes = absl::HexStringToBytes(line);
    if (bytes.size() * 2 != line.size()) return std::nullopt;
    return crypto::SecretBytes::CopyFrom(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  return std::nullopt;
}

// The rows of PRAGMA integrity_check ("ok" alone when the file is sound), or the error.
std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    result = absl::StrCat("cannot open: ", sqlite3_errmsg(db));
  } else {
    char* error = nullptr;
    const int rc = sqlite3_exec(
        db, "PRAGMA integrity_check",
        [](void* out, int, char** values, char**) {
          auto* rows = static_cast<std::string*>(out);
          if (!rows->empty()) rows->append("; ");
          rows->append(values[0] != nullptr ? values[0] : "NULL");
          return 0;
        },
        &result, &error);
    if (rc != SQLITE_OK) result = absl::StrCat("integrity_check failed: ", error);
    sqlite3_free(error);
  }
  sqlite3_close_v2(db);
  return result;
}

class RegistryDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = absl::GetFlag(FLAGS_basestation);
    ASSERT_FALSE(binary_.empty()) << "--basestation=PATH is required";
    absl::StatusOr<tls::testing::TestPki> pki = tls::testing::TestPki::Create("durability");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<std::string> admin = pki_->IssueClient("admin");
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_fingerprint_ = *admin;
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        tls::ChannelCredentials(
            {pki_->server_ca(), pki_->client_cert("admin"), pki_->client_key("admin")});
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    credentials_ = *std::move(credentials);
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/durability");
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    db_ = dir_ + "/registry.db";
  }

  void StartBasestation() {
    absl::StatusOr<std::unique_ptr<BasestationProcess>> process = BasestationProcess::Start(
        binary_, {"--registry=" + db_, "--listen=127.0.0.1:0", "--metrics-listen=",
                  "--relay-listen=", "--api-listen=127.0.0.1:0",
                  "--tls-cert=" + pki_->server_cert(), "--tls-key=" + pki_->server_key(),
                  "--client-ca=" + pki_->client_ca(), "--crl=" + pki_->crl(),
                  "--admin-fingerprints=" + admin_fingerprint_});
    ASSERT_TRUE(process.ok()) << process.status();
    basestation_ = *std::move(process);
    auto channel = grpc::CreateChannel(basestation_->api_target(), credentials_);
    stubs_ = {proto::Admin::NewStub(channel), proto::Basestation::NewStub(channel)};
  }

  // The next command of the burst, or nullopt once the writers were killed.
  std::optional<Command> NextCommand(int round) {
    std::lock_guard<std::mutex> lock(mu_);
    if (killed_) return std::nullopt;
    Command command;
    if (!revocable_.empty() && std::bernoulli_distribution(kRevokeShare)(rng_)) {
      const size_t i = std::uniform_int_distribution<size_t>(0, revocable_.size() - 1)(rng_);
      command.revoke = true;
      command.device_id = revocable_[i];
      revocable_.erase(revocable_.begin() + i);
      fates_[command.device_id].revoke_sent = true;
    } else {
      command.device_id = absl::StrCat("r", round, "-", next_device_++);
      fates_[command.device_id];
    }
    return command;
  }

  void Acknowledge(const Command& command, std::optional<crypto::SecretBytes> secret) {
    std::lock_guard<std::mutex> lock(mu_);
    Fate& fate = fates_[command.device_id];
    if (command.revoke) {
      fate.revoke_acked = true;
    } else {
      fate.provision_acked = true;
      fate.secret = std::move(secret);
      revocable_.push_back(command.device_id);
    }
    ++acks_;
    acked_.notify_all();
  }

  // A command that failed without having been killed is a bug, whatever the path.
  void Failed(const Command& command, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (killed_) {
      in_flight_.push_back(command);
    } else {
      unexpected_.push_back(absl::StrCat(command.revoke ? "revoke " : "provision ",
                                         command.device_id, ": ", why));
    }
  }

  void RunApiCommand(const Command& command) {
    grpc::ClientContext context;
    SetDeadline(context);
    if (command.revoke) {
      proto::DeviceRef request;
      request.set_device_id(command.device_id);
      proto::RevokeResponse response;
      const grpc::Status status = stubs_.admin->Revoke(&context, request, &response);
      if (status.ok()) return Acknowledge(command, std::nullopt);
      return Failed(command, status.error_message());
    }
    proto::ProvisionRequest request;
    request.set_device_id(command.device_id);
    request.set_product("durability");
    proto::ProvisionResponse response;
    const grpc::Status status = stubs_.admin->Provision(&context, request, &response);
    if (!status.ok()) return Failed(command, status.error_message());
    const std::string& secret = response.device_secret();
    Acknowledge(command, crypto::SecretBytes::CopyFrom(absl::MakeConstSpan(
                             reinterpret_cast<const uint8_t*>(secret.data()), secret.size())));
  }

  void RunCliCommand(const Command& command) {
    const std::string out_path =
        absl::StrCat(dir_, "/", command.device_id, command.revoke ? ".revoke" : ".conf");
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(out, 0) << out_path;
    pid_t pid;
    {
      // Started under the lock, so the killer sees every CLI process that may be writing.
      std::lock_guard<std::mutex> lock(mu_);
      if (killed_) {
        close(out);
        return;
      }
      absl::StatusOr<pid_t> spawned =
          Spawn({binary_, command.revoke ? "revoke" : "provision", "--registry=" + db_,
                 "--device-id=" + command.device_id, "--product=durability"},
                out);
      close(out);
      ASSERT_TRUE(spawned.ok()) << spawned.status();
      pid = *spawned;
      cli_running_.insert(pid);
    }
    // Wait without reaping, and leave the set before reaping: the killer may signal any pid in the
    // set, and an unreaped pid cannot have been reused by another process.
    siginfo_t info;
    while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      cli_running_.erase(pid);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      // A CLI killed by the test is an unacknowledged command; anything else is a failure.
      std::lock_guard<std::mutex> lock(mu_);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        in_flight_.push_back(command);
      } else {
        unexpected_.push_back(absl::StrCat(command.revoke ? "revoke " : "provision ",
                                           command.device_id, ": ", DescribeWaitStatus(status)));
      }
      return;
    }
    if (command.revoke) return Acknowledge(command, std::nullopt);
    std::optional<crypto::SecretBytes> secret = SecretFromConfig(ReadFile(out_path));
    if (!secret.has_value()) return Failed(command, "exit 0 but no secret in its output");
    Acknowledge(command, std::move(secret));
  }

  // Sends a burst down `path` and SIGKILLs its writers after `kill_after` acknowledgements.
  void BurstAndKill(int round, Path path, int kill_after) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      killed_ = false;
      acks_ = 0;
      in_flight_.clear();
    }
    std::vector<std::thread> operators;
    for (int i = 0; i < kOperators; ++i) {
      operators.emplace_back([this, round, path] {
        while (std::optional<Command> command = NextCommand(round)) {
          if (path == Path::kAdminApi) {
            RunApiCommand(*command);
          } else {
            RunCliCommand(*command);
          }
        }
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool reached = acked_.wait_for(lock, absl::ToChronoNanoseconds(kBurstLimit),
                                           [&] { return acks_ >= kill_after; });
      EXPECT_TRUE(reached) << "round " << round << ": only " << acks_ << " acknowledgements";
      killed_ = true;
      kill(basestation_->pid(), SIGKILL);
      for (pid_t pid : cli_running_) kill(pid, SIGKILL);
      std::printf("round %d (%s): SIGKILL after %d acknowledgements, %zu CLI processes running\n",
                  round, PathName(path), acks_, cli_running_.size());
    }
    for (std::thread& t : operators) t.join();
    basestation_->Kill();  // Reaps it.
    basestation_.reset();
  }

  // The new server's view of the registry against what was acknowledged.
  void CheckListings() {
    std::set<std::string> all, active;
    {
      grpc::ClientContext context;
      SetDeadline(context);
      proto::ListDevicesResponse response;
      const grpc::Status status =
          stubs_.admin->ListDevices(&context, proto::ListDevicesRequest(), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      for (const proto::Device& d : response.devices()) all.insert(d.device_id());
    }
    {
      // The client API lists an admin every device that is not revoked.
      grpc::ClientContext context;
      SetDeadline(context);
      proto::ListDevicesResponse response;
      const grpc::Status status =
          stubs_.basestation->ListDevices(&context, proto::ListDevicesRequest(), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      for (const proto::Device& d : response.devices()) active.insert(d.device_id());
    }
    for (const std::string& id : all) {
      EXPECT_TRUE(fates_.count(id)) << "the registry holds " << id << ", which nobody provisioned";
    }
    for (const auto& [id, fate] : fates_) {
      if (fate.provision_acked) {
        EXPECT_TRUE(all.count(id)) << "acknowledged provision of " << id << " was lost";
      }
      if (fate.revoke_acked) {
        EXPECT_FALSE(active.count(id)) << "acknowledged revoke of " << id << " was lost";
      }
      if (all.count(id) && !fate.revoke_sent) {
        EXPECT_TRUE(active.count(id)) << id << " is revoked, but nobody revoked it";
      }
    }
    // Either way is right for these; the count shows whether kills landed between a commit and
    // its acknowledgement.
    int landed = 0;
    for (const Command& c : in_flight_) {
      landed += c.revoke ? !active.count(c.device_id) : all.count(c.device_id);
    }
    std::printf("  killed in flight: %zu commands, %d of them committed\n", in_flight_.size(),
                landed);
  }

  // Every acknowledged device whose state is certain tries to attach to the new server: the ones
  // not revoked must attach with their secret, the revoked ones must be told they are revoked.
  void CheckAttach() {
    struct Probe {
      bool expect_revoked = false;
      bool told_revoked = false;
      std::unique_ptr<io::UdpSocket> socket;
      std::unique_ptr<device::AttachClient> client;
      std::unique_ptr<io::Timer> timer;
    };
    absl::StatusOr<std::unique_ptr<io::EventLoop>> loop = io::EventLoop::New();
    ASSERT_TRUE(loop.ok()) << loop.status();
    crypto::SystemRandom random;
    io::ReceiveBuffer buffer;
    std::map<std::string, std::unique_ptr<Probe>> probes;
    auto flush = [](Probe& p) {
      for (const net::Datagram& d : p.client->TakeOutgoing()) (void)p.socket->SendTo(d.to, d.bytes);
      p.timer->Schedule(p.client->next_timeout());
    };
    for (const auto& [id, fate] : fates_) {
      if (!fate.provision_acked || (fate.revoke_sent && !fate.revoke_acked)) continue;
      auto probe = std::make_unique<Probe>();
      Probe& p = *probe;
      p.expect_revoked = fate.revoke_acked;
      absl::StatusOr<std::unique_ptr<io::UdpSocket>> socket =
          io::UdpSocket::Bind(*net::Endpoint::Parse("127.0.0.1:0"));
      ASSERT_TRUE(socket.ok()) << socket.status();
      p.socket = *std::move(socket);
      device::AttachClientOptions options;
      options.device_id = id;
      options.secret = fate.secret->Clone();
      options.server = basestation_->attach();
      options.on_state_change = [&p](absl::string_view, absl::string_view reason) {
        if (absl::StrContains(reason, "revoked")) p.told_revoked = true;
      };
      absl::StatusOr<std::unique_ptr<device::AttachClient>> client =
          device::AttachClient::New(std::move(options), &random);
      ASSERT_TRUE(client.ok()) << client.status();
      p.client = *std::move(client);
      p.timer = std::make_unique<io::Timer>(loop->get(), [&p, &loop, &flush] {
        p.client->OnTimeout((*loop)->Now());
        flush(p);
      });
      ASSERT_TRUE((*loop)
                      ->Watch(p.socket->fd(),
                              [&p, &loop, &buffer, &flush] {
                                if (!p.socket->ReceiveBatch(buffer).ok()) return;
                                for (const io::ReceivedDatagram& d : buffer.datagrams()) {
                                  p.client->OnPacket(d.source, d.bytes, (*loop)->Now());
                                }
                                flush(p);
                              })
                      .ok());
      p.client->Start((*loop)->Now());
      flush(p);
      probes.emplace(id, std::move(probe));
    }
    auto settled = [](const Probe& p) {
      return p.expect_revoked ? p.told_revoked
                              : p.client->state() == device::AttachClient::State::kAttached;
    };
    io::RunUntil(**loop, [&] {
      for (const auto& [id, p] : probes) {
        if (!settled(*p)) return false;
      }
      return true;
    }, kAttachLimit);
    int attached = 0, refused = 0;
    for (const auto& [id, p] : probes) {
      if (p->expect_revoked) {
        EXPECT_TRUE(p->told_revoked) << id << " was revoked (acknowledged) but not refused";
        EXPECT_NE(p->client->state(), device::AttachClient::State::kAttached) << id;
        refused += p->told_revoked;
      } else {
        EXPECT_EQ(p->client->state(), device::AttachClient::State::kAttached)
            << id << " (acknowledged provision) cannot attach with its secret";
        attached += p->client->state() == device::AttachClient::State::kAttached;
        // Goes offline at once, as a device shutting down does: the server writes that too.
        p->client->Detach();
        flush(*p);
      }
      (*loop)->Unwatch(p->socket->fd());
    }
    std::printf("  attach check: %d attached with their secrets, %d refused as revoked\n",
                attached, refused);
  }

  std::string binary_;
  std::optional<tls::testing::TestPki> pki_;
  std::string admin_fingerprint_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string dir_;
  std::string db_;
  std::unique_ptr<BasestationProcess> basestation_;
  Stubs stubs_;

  std::mutex mu_;
  std::condition_variable acked_;
  std::mt19937 rng_{kSeed};                       // Guarded by mu_.
  std::map<std::string, Fate> fates_;             // Guarded by mu_ during a burst.
  std::vector<std::string> revocable_;            // Acknowledged, not yet revoked; mu_.
  int next_device_ = 0;                           // Guarded by mu_.
  int acks_ = 0;                                  // In this round; guarded by mu_.
  bool killed_ = false;                           // Guarded by mu_.
  std::set<pid_t> cli_running_;                   // Guarded by mu_.
  std::vector<std::string> unexpected_;           // Guarded by mu_.
  std::vector<Command> in_flight_;                // Killed before acknowledged; mu_.
};

TEST_F(RegistryDurabilityTest, AcknowledgedChangesSurviveSigkillOfTheWriter) {
  StartBasestation();
  ASSERT_NE(basestation_, nullptr);
  ASSERT_FALSE(basestation_->api_target().empty());
  std::mt19937 kill_points(kSeed + 1);
  for (int round = 0; round < kRounds; ++round) {
    const Path path = round % 2 == 0 ? Path::kAdminApi : Path::kCli;
    const int kill_after =
        std::uniform_int_distribution<int>(kMinAcksBeforeKill, kMaxAcksBeforeKill)(kill_points);
    BurstAndKill(round, path, kill_after);
    EXPECT_TRUE(unexpected_.empty()) << "commands failed before the kill:\n"
                                     << absl::StrJoin(unexpected_, "\n");
    unexpected_.clear();

    const std::string integrity = IntegrityCheck(db_);
    EXPECT_EQ(integrity, "ok") << "round " << round;
    StartBasestation();
    ASSERT_NE(basestation_, nullptr);
    CheckListings();
    CheckAttach();
    int provisions = 0, revokes = 0;
    for (const auto& [id, fate] : fates_) {
      provisions += fate.provision_acked;
      revokes += fate.revoke_acked;
    }
    std::printf("  after restart: integrity_check %s; checked %d acknowledged provisions and %d "
                "revokes (all rounds so far)\n",
                integrity.c_str(), provisions, revokes);
    if (HasFailure()) break;
  }
  // The last server ends cleanly (under ASan this is also its leak check).
  absl::StatusOr<int> status = basestation_->Stop(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DescribeWaitStatus(*status), "exit 0");
}

}  // namespace
}  // namespace edgelink::loopback

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  return RUN_ALL_TESTS();
}
