#include "common/wire/replay_window.h"

namespace edgelink::wire {

bool ReplayWindow::CanAccept(uint64_t pn) const {
  if (seen_ == 0 || pn > highest_) return true;
  const uint64_t age = highest_ - pn;
  if (age >= kSize) return false;
  return (seen_ >> age & 1) == 0;
}

void ReplayWindow::Accept(uint64_t pn) {
  if (seen_ == 0) {
    highest_ = pn;
    seen_ = 1;
    return;
  }
  if (pn > highest_) {
    const uint64_t shift = pn - highest_;
    seen_ = shift >= kSize ? 0 : seen_ << shift;
    seen_ |= 1;
    highest_ = pn;
    return;
  }
  seen_ |= uint64_t{1} << (highest_ - pn);
}

}  // namespace edgelink::wire
