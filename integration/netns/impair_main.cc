// impair: a userspace impairment hop for the netns tests (this kernel has no netem).
//
//   impair --tun=imp0 [--delay=20ms] [--loss=0.01] [--seed=1]
//
// It attaches to an existing TUN device (`ip tuntap add mode tun name imp0`, made by the test
// script in the router namespace) and writes every IP packet it reads back into that device after
// `delay`, dropping a seeded `loss` share. The router's policy routing sends the traffic to be
// impaired into the TUN device and routes what comes back out of it normally (see lib.sh), so the
// hop is transparent: addresses, ports and protocols are untouched and NAT behaves as without it.
// Packets read from a TUN device have complete checksums and no GSO, so they go back as they are.
//
// Prints "READY tun=NAME" on stdout once attached. SIGUSR1 logs the counters; SIGINT/SIGTERM log
// them and exit.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/io/event_loop.h"
#include "common/status/status_macros.h"
#include "common/tool/flags.h"
#include "glog/logging.h"
#include "integration/netns/impairment.h"

ABSL_FLAG(std::string, tun, "", "Name of the existing TUN device to attach to.");
ABSL_FLAG(absl::Duration, delay, absl::ZeroDuration(), "One-way delay added to every packet.");
ABSL_FLAG(double, loss, 0, "Probability in [0, 1] that a packet is dropped.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the loss decisions.");

namespace edgelink::netns {
namespace {

// The largest packet a TUN device hands over without offloads (its MTU is at most this).
constexpr size_t kMaxPacket = 65535;

// TunDevice owns a descriptor attached to a TUN device (IFF_TUN | IFF_NO_PI: bare IP packets).
class TunDevice {
 public:
  // Open fails with kFailedPrecondition if /dev/net/tun cannot be opened or the device cannot be
  // attached (no such persistent device and no right to create one, or it is busy).
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) {
      return absl::InvalidArgumentError("--tun must name a device (at most 15 characters)");
    }
    const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("open /dev/net/tun: ", std::strerror(errno)));
    }
    ifreq request{};
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(request.ifr_name, name.data(), name.size());
    if (ioctl(fd, TUNSETIFF, &request) != 0) {
      const int err = errno;
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("attach to TUN device ", name, ": ", std::strerror(err)));
    }
    return std::unique_ptr<TunDevice>(new TunDevice(fd));
  }

  ~TunDevice() { close(fd_); }
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const { return fd_; }

 private:
  explicit TunDevice(int fd) : fd_(fd) {}
  const int fd_;
};

// Hop ties an Impairment to a TUN device on an event loop. Not thread-safe (loop thread only).
class Hop {
 public:
  Hop(io::EventLoop* loop, TunDevice* tun, std::unique_ptr<Impairment> impairment)
      : loop_(loop),
        tun_(tun),
        impairment_(std::move(impairment)),
        buffer_(kMaxPacket),
        release_timer_(loop, [this] { Release(); }) {}

  void OnReadable() {
    for (;;) {
      const ssize_t n = read(tun_->fd(), buffer_.data(), buffer_.size());
      if (n <= 0) break;  // EAGAIN: drained. Other errors: the loop calls again if they persist.
      impairment_->Offer(absl::MakeConstSpan(buffer_.data(), static_cast<size_t>(n)),
                         loop_->Now());
    }
    Release();
  }

  void LogCounters() const {
    const ImpairmentCounters& c = impairment_->counters();
    LOG(INFO) << "impair counters offered=" << c.offered << " released=" << c.released
              << " dropped_loss=" << c.dropped_loss
              << " dropped_queue_full=" << c.dropped_queue_full
              << " write_errors=" << write_errors_;
  }

 private:
  void Release() {
    for (const std::vector<uint8_t>& packet : impairment_->TakeDue(loop_->Now())) {
      // A TUN write is delivered to the stack at once or fails (device down): never partial.
      if (write(tun_->fd(), packet.data(), packet.size()) < 0) ++write_errors_;
    }
    release_timer_.Schedule(impairment_->next_deadline());
  }

  io::EventLoop* const loop_;
  TunDevice* const tun_;
  const std::unique_ptr<Impairment> impairment_;
  std::vector<uint8_t> buffer_;
  io::Timer release_timer_;
  uint64_t write_errors_ = 0;
};

absl::Status Run() {
  ImpairmentOptions options;
  options.delay = absl::GetFlag(FLAGS_delay);
  options.loss = absl::GetFlag(FLAGS_loss);
  options.seed = absl::GetFlag(FLAGS_seed);
  ASSIGN_OR_RETURN(std::unique_ptr<Impairment> impairment, Impairment::New(options));
  ASSIGN_OR_RETURN(std::unique_ptr<TunDevice> tun, TunDevice::Open(absl::GetFlag(FLAGS_tun)));
  ASSIGN_OR_RETURN(std::unique_ptr<io::EventLoop> loop, io::EventLoop::New());
  Hop hop(loop.get(), tun.get(), std::move(impairment));
  RETURN_IF_ERROR(loop->Watch(tun->fd(), [&hop] { hop.OnReadable(); }));
  RETURN_IF_ERROR(loop->OnSignal(SIGUSR1, [&hop] { hop.LogCounters(); }));
  for (int signo : {SIGINT, SIGTERM}) {
    RETURN_IF_ERROR(loop->OnSignal(signo, [&loop] { loop->Stop(); }));
  }
  std::printf("READY tun=%s delay=%s loss=%g seed=%llu\n", absl::GetFlag(FLAGS_tun).c_str(),
              absl::FormatDuration(options.delay).c_str(), options.loss,
              static_cast<unsigned long long>(options.seed));
  std::fflush(stdout);
  loop->Run();
  hop.LogCounters();
  loop->Unwatch(tun->fd());
  return absl::OkStatus();
}

}  // namespace
}  // namespace edgelink::netns

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Userspace delay/loss hop on a TUN device: impair --tun=NAME [--delay=20ms] [--loss=P] "
      "[--seed=N]");
  if (edgelink::tool::ParseFlags(argc, argv).size() != 1) {
    std::fprintf(stderr, "impair: unexpected arguments (only flags are taken)\n");
    return 2;
  }
  edgelink::tool::InitLogging(argv[0]);
  if (absl::Status status = edgelink::netns::Run(); !status.ok()) {
    std::fprintf(stderr, "impair: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
