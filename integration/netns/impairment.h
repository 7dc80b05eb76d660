// Impairment: the sans-I/O heart of the `impair` hop. Packets are offered with their arrival time;
// each is dropped with probability `loss` (from a seeded generator, so a given seed drops the same
// arrivals by index on every run) or released `delay` later, in arrival order. No clock, socket or
// thread inside: the binding (impair_main.cc) feeds it packets from a TUN device and writes back
// what TakeDue returns. Not thread-safe.
#ifndef EDGELINK_INTEGRATION_NETNS_IMPAIRMENT_H_
#define EDGELINK_INTEGRATION_NETNS_IMPAIRMENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace edgelink::netns {

struct ImpairmentOptions {
  absl::Duration delay = absl::ZeroDuration();  // One way, added to every packet that survives.
  double loss = 0;                              // Probability in [0, 1] that a packet is dropped.
  uint64_t seed = 1;                            // Seeds the loss decisions.
  size_t max_queued = 4096;                     // Packets held at once; more are dropped.
};

struct ImpairmentCounters {
  uint64_t offered = 0;
  uint64_t released = 0;
  uint64_t dropped_loss = 0;
  uint64_t dropped_queue_full = 0;
};

class Impairment {
 public:
  // New fails with kInvalidArgument for a negative or infinite delay, a loss outside [0, 1], or a
  // zero max_queued.
  static absl::StatusOr<std::unique_ptr<Impairment>> New(const ImpairmentOptions& options);

  // Offer takes a copy of `packet`, which arrived at `now`. Returns false if it was dropped (by the
  // loss draw, or because max_queued packets are already held).
  bool Offer(absl::Span<const uint8_t> packet, absl::Time now);

  // TakeDue removes and returns, oldest first, every held packet whose release time is <= now.
  std::vector<std::vector<uint8_t>> TakeDue(absl::Time now);

  // The release time of the oldest held packet; absl::InfiniteFuture() when none is held.
  absl::Time next_deadline() const;

  const ImpairmentCounters& counters() const { return counters_; }

 private:
  struct Held {
    absl::Time release;
    std::vector<uint8_t> bytes;
  };

  explicit Impairment(const ImpairmentOptions& options)
      : options_(options), random_(options.seed) {}

  // A uniform draw in [0, 1) built from the generator's bits, so that the drop sequence for a seed
  // does not depend on the standard library's distribution implementation.
  double Uniform();

  const ImpairmentOptions options_;
  std::mt19937_64 random_;
  // Release times grow with arrival (the delay is constant), so a FIFO is already in order.
  std::deque<Held> held_;
  ImpairmentCounters counters_;
};

}  // namespace edgelink::netns

#endif  // EDGELINK_INTEGRATION_NETNS_IMPAIRMENT_H_
