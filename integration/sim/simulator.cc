#include "integration/sim/simulator.h"

#include <algorithm>
#include <functional>
#include <random>
#include <utility>

#include "common/crypto/nonce_ledger.h"

namespace edgelink::sim {

Simulator::Simulator(uint64_t seed)
    : now_(absl::FromUnixSeconds(kStartUnixSeconds)), random_(seed) {
  // A new world: it may replay another's seed (nat_grid runs one world per cell).
  crypto::NonceLedgerReset();
}

void Simulator::Schedule(absl::Time at, std::function<void()> task) {
  events_.push_back({std::max(at, now_), next_sequence_++, std::move(task)});
  std::push_heap(events_.begin(), events_.end(), std::greater<Event>());
}

bool Simulator::Step(absl::Time end) {
  if (events_.empty() || events_.front().at > end) return false;
  std::pop_heap(events_.begin(), events_.end(), std::greater<Event>());
  Event event = std::move(events_.back());
  events_.pop_back();
  now_ = event.at;
  ++events_run_;
  event.task();
  return true;
}

void Simulator::RunFor(absl::Duration duration) {
  const absl::Time end = now_ + duration;
  while (Step(end)) {
  }
  now_ = end;
}

bool Simulator::RunUntil(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time end = now_ + limit;
  while (!done()) {
    if (!Step(end)) {
      now_ = end;
      return done();
    }
  }
  return true;
}

double Simulator::Uniform() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(random_.engine());
}

uint64_t Simulator::UniformInt(uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(random_.engine());
}

Alarm::Alarm(Simulator* sim, std::function<void()> on_alarm)
    : sim_(sim), on_alarm_(std::move(on_alarm)), generation_(std::make_shared<uint64_t>(0)) {}

Alarm::~Alarm() { ++*generation_; }

void Alarm::Set(absl::Time at) {
  if (at == deadline_) return;
  deadline_ = at;
  const uint64_t generation = ++*generation_;
  if (at == absl::InfiniteFuture()) return;
  sim_->Schedule(at, [this, generation, alive = generation_] {
    if (*alive != generation) return;  // Moved, cancelled, or destroyed since.
    deadline_ = absl::InfiniteFuture();
    on_alarm_();
  });
}

}  // namespace edgelink::sim
