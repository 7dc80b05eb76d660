#include "integration/netns/impairment.h"

#include <utility>

#include "absl/status/status.h"

namespace edgelink::netns {

absl::StatusOr<std::unique_ptr<Impairment>> Impairment::New(const ImpairmentOptions& options) {
  if (options.delay < absl::ZeroDuration() || options.delay == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("delay must be finite and not negative");
  }
  // Written so that NaN fails too.
  if (!(options.loss >= 0 && options.loss <= 1)) {
    return absl::InvalidArgumentError("loss must be a probability in [0, 1]");
  }
  if (options.max_queued == 0) return absl::InvalidArgumentError("max_queued must be positive");
  return std::unique_ptr<Impairment>(new Impairment(options));
}

double Impairment::Uniform() {
  return static_cast<double>(random_() >> 11) * 0x1.0p-53;
}

bool Impairment::Offer(absl::Span<const uint8_t> packet, absl::Time now) {
  ++counters_.offered;
  // Draw for every packet, even with loss 0 or 1, so that the n-th arrival always gets the n-th
  // draw of the seed.
  if (Uniform() < options_.loss) {
    ++counters_.dropped_loss;
    return false;
  }
  if (held_.size() >= options_.max_queued) {
    ++counters_.dropped_queue_full;
    return false;
  }
  held_.push_back({now + options_.delay, std::vector<uint8_t>(packet.begin(), packet.end())});
  return true;
}

std::vector<std::vector<uint8_t>> Impairment::TakeDue(absl::Time now) {
  std::vector<std::vector<uint8_t>> due;
  while (!held_.empty() && held_.front().release <= now) {
    due.push_back(std::move(held_.front().bytes));
    held_.pop_front();
    ++counters_.released;
  }
  return due;
}

absl::Time Impairment::next_deadline() const {
  return held_.empty() ? absl::InfiniteFuture() : held_.front().release;
}

}  // namespace edgelink::netns
