#!/usr/bin/env bash
# The README's first command. Installs what is missing, builds everything, and runs the crypto
# self-check: the published HMAC/HKDF/AES-GCM vectors on the device's crypto (BoringSSL) and the
# basestation's (OpenSSL), and a byte-for-byte comparison of the two.
# (This becomes the live basestation + device + client demo as those programs land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

echo "== building //..."
bazel build //... 2>&1 | grep -E '^(ERROR|FAILED)' && exit 1

echo "== crypto self-check"
bin=bazel-bin/common/crypto
for backend in boringssl openssl; do
  printf '%-9s  ' "$backend"
  "$bin/crypto_vectors_$backend" | grep -E '^(rfc|gcm)' | awk '{printf "%s ", $1} END {print "ok"}'
done
bash common/crypto/backends_agree_test.sh "$bin/crypto_vectors_boringssl" "$bin/crypto_vectors_openssl" | tail -n 1
