// edgelink-device: the reference device daemon.
//
//   edgelink-device --config=/etc/edgelink/device.conf
//
// SIGHUP reloads the config (e.g. to flip remote_access); SIGUSR1 logs counters; SIGINT/SIGTERM
// stop it.
#include <csignal>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "common/io/event_loop.h"
#include "common/tool/flags.h"
#include "device/daemon/config.h"
#include "device/daemon/daemon.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, config, "/etc/edgelink/device.conf", "The device's config file.");

int main(int argc, char** argv) {
  using namespace edgelink;  // NOLINT: main only.
  absl::SetProgramUsageMessage("Edgelink reference device daemon: edgelink-device --config=FILE");
  if (edgelink::tool::ParseFlags(argc, argv).size() != 1) {
    std::fprintf(stderr, "edgelink-device: unexpected arguments (only flags are taken)\n");
    return 2;
  }
  tool::InitLogging(argv[0]);
  const std::string path = absl::GetFlag(FLAGS_config);
  absl::StatusOr<device::DeviceConfig> config = device::LoadDeviceConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "edgelink-device: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  // Timers on a clock that never jumps: a wall clock stepped back an hour would otherwise hold
  // every keep-alive for that hour. The one loop of this process, so usrsctp's process-wide
  // clock sees only this one.
  absl::StatusOr<std::unique_ptr<io::EventLoop>> loop = io::EventLoop::New(io::MonotonicClock);
  if (!loop.ok()) {
    std::fprintf(stderr, "edgelink-device: %s\n", std::string(loop.status().message()).c_str());
    return 1;
  }
  LOG(INFO) << "device " << config->device_id << " starting";
  absl::StatusOr<std::unique_ptr<device::DeviceDaemon>> daemon =
      device::DeviceDaemon::Start(path, *std::move(config), loop->get());
  if (!daemon.ok()) {
    std::fprintf(stderr, "edgelink-device: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  io::EventLoop& l = **loop;
  device::DeviceDaemon& d = **daemon;
  bool ok = l.OnSignal(SIGHUP, [&d] { d.Reload(); }).ok() &&
            l.OnSignal(SIGUSR1, [&d] { d.LogCounters(); }).ok() &&
            l.OnSignal(SIGINT, [&l] { l.Stop(); }).ok() &&
            l.OnSignal(SIGTERM, [&l] { l.Stop(); }).ok();
  if (!ok) {
    std::fprintf(stderr, "edgelink-device: cannot install signal handlers\n");
    return 1;
  }
  l.Run();
  LOG(INFO) << "device stopping";
  d.Shutdown();
  return 0;
}
