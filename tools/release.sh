#!/usr/bin/env bash
# Builds Edgelink's per-component releases into dist/ (optimized, -c opt), from a clone:
#
#   dist/edgelink-basestation_<version>_<arch>.deb   basestation, hardened systemd unit, config,
#                                                    edgelink-pki; apt-get install ./<it>
#   dist/edgelink-client_<version>_<arch>.deb        client CLI + C++ SDK (headers, .a, .pc)
#   dist/edgelink-device-sdk-<version>.tar.gz        device SDK: headers, static library (core +
#                                                    POSIX binding, BoringSSL), reference daemon,
#                                                    examples/device with a plain Makefile
#   dist/SHA256SUMS
#
#   tools/release.sh [--no-check] [BAZEL BUILD FLAGS...]
#
# Installs missing Debian packages first (tools/setup.sh), then checks the packages it built with
# //release:packages_test in the same configuration (--no-check skips that). <version> is VERSION.
# $BAZEL overrides the bazel command (e.g. BAZEL="bazel --output_base=/tmp/ob").
set -euo pipefail
cd "$(dirname "$0")/.."

check=1
if [[ ${1:-} == --no-check ]]; then
  check=0
  shift
fi
read -r -a bazel <<<"${BAZEL:-bazel}"

bash tools/setup.sh
version=$(tr -d '[:space:]' <VERSION)
arch=$(dpkg --print-architecture)

echo "release: building edgelink $version ($arch), -c opt" >&2
"${bazel[@]}" build -c opt "$@" //release:release
if (( check )); then
  "${bazel[@]}" test -c opt "$@" //release:packages_test
fi
bin=$("${bazel[@]}" info -c opt "$@" bazel-bin 2>/dev/null)

mkdir -p dist
rm -f dist/edgelink-basestation_*.deb dist/edgelink-client_*.deb dist/edgelink-device-sdk-*.tar.gz \
  dist/SHA256SUMS
install -m 0644 "$bin/release/edgelink-basestation.deb" "dist/edgelink-basestation_${version}_${arch}.deb"
install -m 0644 "$bin/release/edgelink-client.deb" "dist/edgelink-client_${version}_${arch}.deb"
install -m 0644 "$bin/release/edgelink-device-sdk.tar.gz" "dist/edgelink-device-sdk-${version}.tar.gz"
(cd dist && sha256sum "edgelink-basestation_${version}_${arch}.deb" \
  "edgelink-client_${version}_${arch}.deb" "edgelink-device-sdk-${version}.tar.gz" >SHA256SUMS)

echo "release: dist/" >&2
(cd dist && ls -l "edgelink-basestation_${version}_${arch}.deb" "edgelink-client_${version}_${arch}.deb" \
  "edgelink-device-sdk-${version}.tar.gz" SHA256SUMS) >&2
cat >&2 <<EOF
release: install with   sudo apt-get install ./dist/edgelink-basestation_${version}_${arch}.deb
                        sudo apt-get install ./dist/edgelink-client_${version}_${arch}.deb
         device SDK:    tar xzf dist/edgelink-device-sdk-${version}.tar.gz
                        make -C edgelink-device-sdk-${version}/examples/device
EOF
