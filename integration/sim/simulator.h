// Simulator: a deterministic discrete-event loop on a virtual clock, for running the sans-I/O cores
// (attach, relay, peer channel, RPC) on a virtual network (network.h). Time moves only from one
// scheduled event to the next, so hours of keep-alives take milliseconds, and one seed fixes every
// random choice of a run: the cores' nonces, link loss and jitter, NAT port picks.
// Modelled on quiche's quic/test_tools/simulator (one clock, actors with alarms, no threads).
#ifndef EDGELINK_INTEGRATION_SIM_SIMULATOR_H_
#define EDGELINK_INTEGRATION_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/crypto/random.h"
#include "common/testing/seeded_random.h"

namespace edgelink::sim {

// Not thread-safe: everything in a simulation runs on the caller's thread.
class Simulator {
 public:
  // The clock starts at a fixed, arbitrary Unix time (2027-01-15), so runs are reproducible and
  // ticket expiries and cookie timestamps look like real ones.
  static constexpr int64_t kStartUnixSeconds = 1'800'000'000;

  explicit Simulator(uint64_t seed);
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  absl::Time now() const { return now_; }

  // Schedule runs `task` at `at` (or now, if `at` has passed). Tasks due at the same time run in
  // the order they were scheduled. A task may schedule more tasks.
  void Schedule(absl::Time at, std::function<void()> task);

  // RunFor runs every event due within `duration` and leaves the clock at its end.
  void RunFor(absl::Duration duration);
  // RunUntil runs events until `done()` holds (checked before each event) or `limit` of virtual
  // time passed; returns whether `done()` held. The clock stays at the last event run.
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit);

  // The run's one source of randomness: the cores draw nonces and keys from it, the network
  // draws loss, jitter and port choices.
  crypto::RandomSource& random() { return random_; }
  // A uniform double in [0, 1) and a uniform integer in [lo, hi].
  double Uniform();
  uint64_t UniformInt(uint64_t lo, uint64_t hi);

  uint64_t events_run() const { return events_run_; }

  // An optional packet trace (what the network sends, delivers and drops), for debugging a
  // scenario. Callers format a line only when tracing() holds, so it costs nothing otherwise.
  void set_tracer(std::function<void(absl::Time, const std::string&)> tracer) {
    tracer_ = std::move(tracer);
  }
  bool tracing() const { return tracer_ != nullptr; }
  void Trace(const std::string& line) {
    if (tracer_) tracer_(now_, line);
  }

 private:
  struct Event {
    absl::Time at;
    uint64_t sequence;  // Ties broken by scheduling order.
    std::function<void()> task;
    bool operator>(const Event& other) const {
      return at != other.at ? at > other.at : sequence > other.sequence;
    }
  };

  // Runs the next event if it is due no later than `end`; false if there is none.
  bool Step(absl::Time end);

  absl::Time now_;
  testing::SeededRandom random_;
  std::vector<Event> events_;  // A min-heap (std::push_heap with std::greater).
  uint64_t next_sequence_ = 0;
  uint64_t events_run_ = 0;
  std::function<void(absl::Time, const std::string&)> tracer_;
};

// Alarm calls its callback once at the time it was last Set to: the way an actor (an app driving
// a core) is woken at the core's next_timeout(). Setting it again moves it; an Alarm destroyed
// before it fires never fires. Not thread-safe.
class Alarm {
 public:
  Alarm(Simulator* sim, std::function<void()> on_alarm);
  ~Alarm();
  Alarm(const Alarm&) = delete;
  Alarm& operator=(const Alarm&) = delete;

  // Set arms the alarm for `at`; InfiniteFuture disarms it.
  void Set(absl::Time at);
  void Cancel() { Set(absl::InfiniteFuture()); }
  absl::Time deadline() const { return deadline_; }

 private:
  Simulator* sim_;
  std::function<void()> on_alarm_;
  absl::Time deadline_ = absl::InfiniteFuture();
  // Bumped on every Set and on destruction; an event fires only if its generation is current.
  // Shared with the scheduled events so they can tell the alarm is gone.
  std::shared_ptr<uint64_t> generation_;
};

}  // namespace edgelink::sim

#endif  // EDGELINK_INTEGRATION_SIM_SIMULATOR_H_
