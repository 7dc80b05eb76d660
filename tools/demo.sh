#!/usr/bin/env bash
# The README's first command: installs what is missing, builds everything, and runs the live
# scenarios with the built binaries (both are also tests):
#   1. integration/loopback/live_scenario.sh: everything on this host's loopback;
#   2. integration/netns/netns_test.sh: the device and clients behind emulated NATs (network
#      namespaces, nftables masquerade, a 20 ms WAN), when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building (bazel build //...)"
bazel build //... 2>&1 | grep -E '^(ERROR|FAILED)' && exit 1
BIN=$(bazel info bazel-bin 2>/dev/null)

bash integration/loopback/live_scenario.sh "$BIN/basestation/basestation" \
  "$BIN/device/daemon/edgelink-device" "$BIN/client/client" \
  "$BIN/common/crypto/crypto_vectors_boringssl" "$BIN/common/crypto/crypto_vectors_openssl" \
  "$BIN/integration/loopback/tcp_echo"

say "the same behind emulated NATs: network namespaces, nftables NAT, a 20 ms WAN"
bash integration/netns/netns_test.sh "$BIN/basestation/basestation" \
  "$BIN/device/daemon/edgelink-device" "$BIN/client/client" tools/pki/pki.sh \
  "$BIN/integration/netns/impair" "$BIN/integration/loopback/tcp_echo"
