#!/usr/bin/env bash
# The README's first command: installs what is missing, builds everything, and runs the live
# scenario (integration/loopback/live_scenario.sh, also a test) with the built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building (bazel build //...)"
bazel build //... 2>&1 | grep -E '^(ERROR|FAILED)' && exit 1
BIN=$(bazel info bazel-bin 2>/dev/null)

exec bash integration/loopback/live_scenario.sh "$BIN/basestation/basestation" \
  "$BIN/device/daemon/edgelink-device" "$BIN/client/client" \
  "$BIN/common/crypto/crypto_vectors_boringssl" "$BIN/common/crypto/crypto_vectors_openssl"
