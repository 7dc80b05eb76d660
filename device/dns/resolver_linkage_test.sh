#!/usr/bin/env bash
# The device resolver must not bring ldns or any OpenSSL/BoringSSL library into a device binary:
# the device links BoringSSL itself, and ldns would add OpenSSL 3 next to it.
set -euo pipefail
probe=$1
deps=$(ldd "$probe") || { echo "FAIL: ldd $probe failed" >&2; exit 1; }
if grep -Eq 'libldns|libssl|libcrypto' <<<"$deps"; then
  echo "FAIL: the resolver pulls in a DNS/crypto library:" >&2
  grep -E 'libldns|libssl|libcrypto' <<<"$deps" >&2
  exit 1
fi
"$probe" || { echo "FAIL: probe could not resolve an IP literal" >&2; exit 1; }
echo "PASS: resolver links no ldns, OpenSSL or BoringSSL"
