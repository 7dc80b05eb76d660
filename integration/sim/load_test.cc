// Load on virtual time: 10,000 attached devices behind mixed NATs (homes of every kind, and homes
// behind one carrier-grade NAT), clients making 100 connects per second for 150 s, and 1% of the
// devices flapping all the while (powered off, NAT rebound, or silent, then back).
//
// What must hold:
// * Nothing is lost: every connect ends, within a bound, in a peer channel that carries an RPC echo
//   or in one of the statuses Basestation::Connect documents.
// * No connect to a steady device fails, at any step.
// * The basestation's tables (attach sessions, pending connects, relay sessions) and the devices'
//   peer sessions stay at a level set by the connect rate and the idle timeouts, not by how many
//   connects were made, and fall back to the attached devices alone once the load stops.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/sim/scenario.h"

namespace edgelink::sim {
namespace {

using ::testing::Le;

constexpr int kDevices = 10000;
constexpr int kBehindCgn = 2000;  // The rest each have a home NAT of their own.
constexpr int kFlapping = kDevices / 100;
constexpr int kConnectsPerSecond = 100;
// Longer than the reap horizon below, so the tables reach their plateau and stay on it for 50 s.
constexpr absl::Duration kLoad = absl::Seconds(150);
constexpr absl::Duration kPlateau = absl::Seconds(100);
// A connect that has not ended by kLost is lost: the broker's deadline (10 s) plus control
// delays, a peer channel (at most 10 s here) and an RPC (5 s).
constexpr absl::Duration kPeeringLimit = absl::Seconds(10);
constexpr absl::Duration kLost = absl::Seconds(26);
constexpr absl::Duration kRpcDeadline = absl::Seconds(5);
constexpr absl::Duration kPoll = absl::Milliseconds(50);
// Reaping: a device's peer session closes 45 s after the client went silent; a relay session 60 s
// after its last packet, and its peers re-bind every 20 s while alive: 105 s after a client that
// vanished, plus the time the connect took.
constexpr absl::Duration kReapAll = absl::Seconds(150);

struct Device {
  std::string id;
  crypto::SecretBytes secret;
  Host* host = nullptr;
  Nat* nat = nullptr;  // The NAT nearest the device (its home NAT).
  std::unique_ptr<DeviceApp> app;
  bool flapping = false;
};

// One connect, from Connect to the client going away.
struct Flow {
  enum class Phase { kBrokering, kPeering, kCalling, kHolding };
  int device = 0;
  int client_host = 0;
  std::unique_ptr<ClientApp> client;
  Phase phase = Phase::kBrokering;
  absl::Time started;
  absl::Time phase_deadline = absl::InfiniteFuture();
  std::shared_ptr<std::optional<bool>> rpc_ok = std::make_shared<std::optional<bool>>();
  bool vanish = false;  // Leaves without CLOSE: the device and relay must reap by idle timeout.
};

// How a connect ended.
struct Outcome {
  int device = 0;
  absl::StatusCode broker = absl::StatusCode::kOk;
  bool connected = false;
  bool rpc_ok = false;
  std::string path = "none";
  absl::Duration took;
};

struct Sample {
  absl::Time at;
  size_t attached = 0;
  size_t pending = 0;
  size_t relay_sessions = 0;
  size_t device_peers = 0;
  size_t flows = 0;
};

class LoadTest : public ::testing::Test {
 protected:
  LoadTest() : sim_(20270115), internet_(&sim_, "internet") {}

  void SetUp() override {
    LinkConfig bs_link;
    bs_link.latency = absl::Milliseconds(5);
    Host& bs_host = internet_.AddHost("basestation", Ip("198.51.100.1"), bs_link);
    crypto::SecretBytes server_key(32);
    sim_.random().Fill(server_key.mutable_span());
    ASSERT_OK_AND_ASSIGN(bs_, Basestation::New(&bs_host, std::move(server_key), {}));
    control_delay_ = absl::Milliseconds(25);

    NatConfig cgn_config = NatConfig::PortRestricted();
    cgn_config.ports = PortAllocation::kRandom;
    LinkConfig cgn_link;
    cgn_link.latency = absl::Milliseconds(15);
    Nat& cgn = internet_.AddNat("cgn", Ip("203.0.113.1"), cgn_config, cgn_link);
    LinkConfig home_link;
    home_link.latency = absl::Milliseconds(2);

    // Homes of every kind; the order spreads kinds evenly over device indices.
    const NatType kHomeKinds[10] = {NatType::kFullCone,          NatType::kFullCone,
                                    NatType::kAddressRestricted, NatType::kAddressRestricted,
                                    NatType::kPortRestricted,    NatType::kPortRestricted,
                                    NatType::kPortRestricted,    NatType::kSymmetricSequential,
                                    NatType::kSymmetricRandom,   NatType::kDoubleNat};
    devices_.resize(kDevices);
    for (int i = 0; i < kDevices; ++i) {
      Device& d = devices_[i];
      d.id = absl::StrCat("dev-", i);
      if (i < kBehindCgn) {
        d.nat = &cgn.inside().AddNat(absl::StrCat("home-", i),
                                     Ip(absl::StrCat("100.64.", 1 + i / 250, ".", 1 + i % 250)),
                                     NatConfig::PortRestricted(), home_link);
        d.host = &d.nat->inside().AddHost(d.id, Ip("192.168.1.2"), home_link);
      } else {
        const int h = i - kBehindCgn;
        const Site site =
            BuildSite(internet_, kHomeKinds[h % 10], d.id,
                      Ip(absl::StrCat("11.", h / 62500, ".", 1 + h / 250 % 250, ".", 1 + h % 250)),
                      Ip("192.168.1.2"), absl::Milliseconds(5 + h % 31), 0, absl::Seconds(30));
        d.host = site.host;
        d.nat = site.inner != nullptr ? site.inner : site.nat;
      }
      d.secret = crypto::SecretBytes(32);
      sim_.random().Fill(d.secret.mutable_span());
      bs_->AddDevice(d.id, d.secret);
      ASSERT_OK_AND_ASSIGN(d.app,
                           DeviceApp::New(d.host, d.id, d.secret.Clone(), bs_->attach_address()));
      // Power comes back over ten seconds, not at one instant.
      DeviceApp* app = d.app.get();
      sim_.Schedule(sim_.now() + absl::Milliseconds(sim_.UniformInt(0, 9999)),
                    [app] { app->Start(); });
    }
    while (flapping_.size() < kFlapping) {
      const int i = static_cast<int>(sim_.UniformInt(0, kDevices - 1));
      if (devices_[i].flapping) continue;
      devices_[i].flapping = true;
      flapping_.push_back(i);
    }
  }

  bool AllAttached() {
    for (const Device& d : devices_) {
      if (d.app == nullptr || !d.app->attached()) return false;
    }
    return bs_->attach().attached_count() == static_cast<size_t>(kDevices);
  }

  // A client host from the pool, behind no NAT (most), a port-restricted or a sequential
  // symmetric NAT.
  int TakeClientHost() {
    if (!free_client_hosts_.empty()) {
      const int h = free_client_hosts_.back();
      free_client_hosts_.pop_back();
      return h;
    }
    const int h = static_cast<int>(client_hosts_.size());
    const NatType kinds[5] = {NatType::kNone, NatType::kNone, NatType::kNone,
                              NatType::kPortRestricted, NatType::kSymmetricSequential};
    const Site site = BuildSite(internet_, kinds[h % 5], absl::StrCat("client-", h),
                                Ip(absl::StrCat("12.0.", 1 + h / 250, ".", 1 + h % 250)),
                                Ip("10.0.0.2"), absl::Milliseconds(20), 0, absl::Seconds(30));
    client_hosts_.push_back(site.host);
    return h;
  }

  // Flapping: up 10-30 s, then powered off, NAT rebound or silent, mostly for 5-20 s but one time
  // in four for 90-120 s, longer than the basestation's liveness timeout (80 s); until `until`.
  void Flap(int i, absl::Time until) {
    const absl::Time down_at = sim_.now() + absl::Seconds(sim_.UniformInt(10, 30));
    if (down_at >= until) return;
    sim_.Schedule(down_at, [this, i, until] {
      Device& d = devices_[i];
      const absl::Duration down = sim_.UniformInt(0, 3) == 0
                                      ? absl::Seconds(sim_.UniformInt(90, 120))
                                      : absl::Seconds(sim_.UniformInt(5, 20));
      switch (sim_.UniformInt(0, 2)) {
        case 0:
          ++flaps_.power;
          d.app.reset();
          sim_.Schedule(sim_.now() + down, [this, i, until] {
            Device& d = devices_[i];
            absl::StatusOr<std::unique_ptr<DeviceApp>> app =
                DeviceApp::New(d.host, d.id, d.secret.Clone(), bs_->attach_address());
            ASSERT_TRUE(app.ok()) << app.status();
            d.app = *std::move(app);
            d.app->Start();
            Flap(i, until);
          });
          return;
        case 1:
          ++flaps_.rebind;
          d.nat->Rebind();
          Flap(i, until);
          return;
        default:
          ++flaps_.silent;
          d.host->uplink().config().loss = 1;
          d.host->downlink().config().loss = 1;
          sim_.Schedule(sim_.now() + down, [this, i, until] {
            devices_[i].host->uplink().config().loss = 0;
            devices_[i].host->downlink().config().loss = 0;
            Flap(i, until);
          });
          return;
      }
    });
  }

  void StartFlow() {
    auto flow = std::make_unique<Flow>();
    flow->device = static_cast<int>(sim_.UniformInt(0, kDevices - 1));
    flow->client_host = TakeClientHost();
    absl::StatusOr<std::unique_ptr<ClientApp>> client =
        ClientApp::New(client_hosts_[flow->client_host], bs_.get(), control_delay_);
    ASSERT_TRUE(client.ok()) << client.status();
    flow->client = *std::move(client);
    flow->started = sim_.now();
    flow->vanish = sim_.Uniform() < 0.2;
    flow->client->Connect(devices_[flow->device].id);
    flows_.push_back(std::move(flow));
  }

  void Finish(Flow& flow, absl::StatusCode broker, bool connected) {
    Outcome outcome;
    outcome.device = flow.device;
    outcome.broker = broker;
    outcome.connected = connected;
    outcome.rpc_ok = flow.rpc_ok->value_or(false);
    outcome.path = flow.client->path();
    outcome.took = sim_.now() - flow.started;
    outcomes_.push_back(outcome);
  }

  // Moves each flow on; returns whether the flow is over (its client may go).
  bool Step(Flow& flow) {
    const absl::Time now = sim_.now();
    ClientApp& client = *flow.client;
    switch (flow.phase) {
      case Flow::Phase::kBrokering:
        // kFailed and kPeering are set only once the broker answered: no callback is left that
        // points at the client.
        if (client.state() == ClientApp::State::kFailed) {
          Finish(flow, client.status().code(), false);
          return true;
        }
        if (client.state() == ClientApp::State::kPeering) {
          flow.phase = Flow::Phase::kPeering;
          flow.phase_deadline = now + kPeeringLimit;
        }
        return false;
      case Flow::Phase::kPeering:
        if (client.connected()) {
          flow.phase = Flow::Phase::kCalling;
          auto result = flow.rpc_ok;
          client.Call("echo", {'l', 'o', 'a', 'd'}, now + kRpcDeadline, [result](rpc::Reply reply) {
            *result = reply.ok() && *reply == std::vector<uint8_t>{'l', 'o', 'a', 'd'};
          });
        } else if (now >= flow.phase_deadline) {
          Finish(flow, absl::StatusCode::kOk, false);
          return true;
        }
        return false;
      case Flow::Phase::kCalling:
        if (flow.rpc_ok->has_value()) {
          Finish(flow, absl::StatusCode::kOk, true);
          flow.phase = Flow::Phase::kHolding;
          flow.phase_deadline = now + absl::Milliseconds(sim_.UniformInt(0, 2000));
        }
        return false;
      case Flow::Phase::kHolding:
        if (now < flow.phase_deadline) return false;
        if (!flow.vanish) client.Close();
        return true;
    }
    return false;
  }

  void Poll() {
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (Step(**it)) {
        free_client_hosts_.push_back((*it)->client_host);
        it = flows_.erase(it);
      } else {
        ++it;
      }
    }
  }

  Sample TakeSample() {
    Sample s;
    s.at = sim_.now();
    s.attached = bs_->attach().attached_count();
    s.pending = bs_->pending_connects();
    s.relay_sessions = bs_->relay().session_count();
    for (const Device& d : devices_) {
      if (d.app != nullptr) s.device_peers += d.app->peer_count();
    }
    s.flows = flows_.size();
    return s;
  }

  Simulator sim_;
  Network internet_;
  std::unique_ptr<Basestation> bs_;
  absl::Duration control_delay_;
  std::vector<Device> devices_;
  std::vector<int> flapping_;
  std::vector<Host*> client_hosts_;
  std::vector<int> free_client_hosts_;
  std::vector<std::unique_ptr<Flow>> flows_;
  std::vector<Outcome> outcomes_;
  struct {
    int power = 0, rebind = 0, silent = 0;
  } flaps_;
};

TEST_F(LoadTest, ConnectsUnderLoadAllEndAndTablesStayFlat) {
  ASSERT_TRUE(sim_.RunUntil([&] { return AllAttached(); }, absl::Seconds(30)));
  const absl::Time start = sim_.now();
  const absl::Time end = start + kLoad;
  for (int i : flapping_) Flap(i, end);

  // Connects at a steady 100 per second; flows polled every 50 ms; tables sampled every 10 s.
  int issued = 0;
  std::vector<Sample> samples;
  for (absl::Time t = start; t < end; t += absl::Seconds(1) / kConnectsPerSecond) {
    sim_.Schedule(t, [&] {
      StartFlow();
      ++issued;
    });
  }
  std::function<void()> poll = [&] {
    Poll();
    if (sim_.now() < end + kReapAll) sim_.Schedule(sim_.now() + kPoll, poll);
  };
  sim_.Schedule(start, poll);
  for (absl::Time t = start; t <= end + kReapAll; t += absl::Seconds(10)) {
    sim_.Schedule(t, [&] { samples.push_back(TakeSample()); });
  }
  sim_.RunFor(end + kReapAll - start + absl::Seconds(1));

  for (const Sample& s : samples) {
    std::printf("t=%4.0fs attached=%5zu pending=%3zu relay=%5zu device_peers=%5zu flows=%4zu\n",
                absl::ToDoubleSeconds(s.at - start), s.attached, s.pending, s.relay_sessions,
                s.device_peers, s.flows);
  }
  std::map<std::string, int> by_kind;
  int steady_failed = 0, flapping_undocumented = 0, slow = 0;
  for (const Outcome& o : outcomes_) {
    const bool flapping = devices_[o.device].flapping;
    const bool ok = o.broker == absl::StatusCode::kOk && o.connected && o.rpc_ok;
    std::string kind = o.broker != absl::StatusCode::kOk ? absl::StatusCodeToString(o.broker)
                       : !o.connected                    ? "no-peer-channel"
                       : !o.rpc_ok                       ? "rpc-failed"
                                                         : absl::StrCat("ok-", o.path);
    ++by_kind[absl::StrCat(flapping ? "flapping " : "steady ", kind)];
    if (!flapping && !ok) ++steady_failed;
    // A device that went away: offline (kUnavailable), or silent to the CONNECT_REQUEST until the
    // broker's deadline; or gone after it answered, so the channel or the RPC finds nobody.
    if (flapping && o.broker != absl::StatusCode::kOk &&
        o.broker != absl::StatusCode::kUnavailable &&
        o.broker != absl::StatusCode::kDeadlineExceeded) {
      ++flapping_undocumented;
    }
    if (o.took > kLost) ++slow;
  }
  for (const auto& [kind, n] : by_kind) std::printf("%6d %s\n", n, kind.c_str());
  std::printf("flaps: power %d, rebind %d, silent %d; client hosts %zu; events %llu\n",
              flaps_.power, flaps_.rebind, flaps_.silent, client_hosts_.size(),
              static_cast<unsigned long long>(sim_.events_run()));

  // Nothing lost: every connect ended, in time, and as documented.
  EXPECT_EQ(issued, kConnectsPerSecond * absl::ToInt64Seconds(kLoad));
  EXPECT_EQ(static_cast<int>(outcomes_.size()), issued);
  EXPECT_EQ(slow, 0);
  EXPECT_EQ(steady_failed, 0);
  EXPECT_EQ(flapping_undocumented, 0);
  // The flapping was real: each kind happened, and connects met devices that were away.
  EXPECT_GT(flaps_.power, 0);
  EXPECT_GT(flaps_.rebind, 0);
  EXPECT_GT(flaps_.silent, 0);
  EXPECT_GT(by_kind["flapping UNAVAILABLE"], 0);
  EXPECT_GT(by_kind["flapping DEADLINE_EXCEEDED"], 0);

  // Flat: from kPlateau on, while another 5,000 connects are made, the tables stay within 10% of
  // where they were; pending connects are a few seconds' worth at most.
  size_t relay_min = SIZE_MAX, relay_max = 0, peers_min = SIZE_MAX, peers_max = 0;
  for (const Sample& s : samples) {
    EXPECT_THAT(s.attached, Le(static_cast<size_t>(kDevices)));
    EXPECT_THAT(s.pending, Le(static_cast<size_t>(5 * kConnectsPerSecond)));
    if (s.at < start + kPlateau || s.at > end) continue;
    relay_min = std::min(relay_min, s.relay_sessions);
    relay_max = std::max(relay_max, s.relay_sessions);
    peers_min = std::min(peers_min, s.device_peers);
    peers_max = std::max(peers_max, s.device_peers);
  }
  EXPECT_THAT(relay_max, Le(relay_min * 11 / 10));
  EXPECT_THAT(peers_max, Le(peers_min * 11 / 10));
  // And everything a connect left behind is reaped once the load stops.
  const Sample& last = samples.back();
  EXPECT_EQ(last.pending, 0u);
  EXPECT_EQ(last.relay_sessions, 0u);
  EXPECT_EQ(last.device_peers, 0u);
  EXPECT_EQ(last.flows, 0u);
  // Every flapping device is back, on one session each.
  EXPECT_TRUE(sim_.RunUntil([&] { return AllAttached(); }, absl::Minutes(2)));
  EXPECT_EQ(
      bs_->attach().counters().dropped[static_cast<int>(basestation::DropReason::kRateLimited)],
      0u);
}

}  // namespace
}  // namespace edgelink::sim
