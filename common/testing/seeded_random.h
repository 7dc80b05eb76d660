// SeededRandom: a deterministic RandomSource for tests and the simulator. Not for production:
// its output is predictable from the seed.
#ifndef EDGELINK_COMMON_TESTING_SEEDED_RANDOM_H_
#define EDGELINK_COMMON_TESTING_SEEDED_RANDOM_H_

#include <cstdint>
#include <random>

#include "absl/types/span.h"
#include "common/crypto/random.h"

namespace edgelink::testing {

class SeededRandom final : public crypto::RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  void Fill(absl::Span<uint8_t> out) override {
    for (uint8_t& b : out) b = static_cast<uint8_t>(engine_());
  }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace edgelink::testing

#endif  // EDGELINK_COMMON_TESTING_SEEDED_RANDOM_H_
