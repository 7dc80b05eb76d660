#!/usr/bin/env bash
# Installs every Debian package Edgelink needs to build, test and run its demo.
# Idempotent: prints nothing when everything is already installed. Needs root (or sudo) only when
# something is missing. Both README commands call it first.
set -euo pipefail

PACKAGES=(
  # Build: Bazel and the C++ toolchain.
  bazel-bootstrap bazel-platforms bazel-rules-java g++
  # Libraries (DESIGN.md, "Libraries for each job").
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  android-libboringssl-dev libssl-dev openssl
  libsqlite3-dev libusrsctp-dev libldns-dev libcpp-httplib-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # Fuzzing (libFuzzer) and sanitizer runtimes for clang.
  clang-14 libclang-rt-14-dev
  # Real-network tests: namespaces and NAT.
  iproute2 nftables curl
  # Releases: packaging, unit checks, the SDK example build, registry backups.
  dpkg-dev systemd make pkgconf sqlite3
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: missing packages (${missing[*]}); run this script as root to install them" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { "${SUDO[@]}" apt-get update -qq && \
       "${SUDO[@]}" apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "setup: apt-get failed to install: ${missing[*]} (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
