// ReplayWindow: accepts each packet number at most once, within a sliding window (RFC 6479 style).
#ifndef EDGELINK_COMMON_WIRE_REPLAY_WINDOW_H_
#define EDGELINK_COMMON_WIRE_REPLAY_WINDOW_H_

#include <cstdint>

namespace edgelink::wire {

// Tracks the highest packet number accepted and which of the kSize numbers below it were seen.
// Use in two steps, so a forged packet cannot move the window: CanAccept before decrypting, then
// Accept once the record authenticated. 16 bytes of state.
class ReplayWindow {
 public:
  static constexpr uint64_t kSize = 64;

  // False if `pn` was accepted before or is kSize or more below the highest accepted.
  bool CanAccept(uint64_t pn) const;
  // Records `pn` as seen. Call only after CanAccept(pn) and authentication.
  void Accept(uint64_t pn);

  uint64_t highest() const { return highest_; }

 private:
  uint64_t highest_ = 0;
  // Bit i set: highest_ - i was accepted. Bit 0 is highest_ itself once anything was accepted.
  uint64_t seen_ = 0;
};

}  // namespace edgelink::wire

#endif  // EDGELINK_COMMON_WIRE_REPLAY_WINDOW_H_
