#!/usr/bin/env bash
# Runs crypto_vectors built against BoringSSL and against OpenSSL and requires byte-identical
# output: the device (BoringSSL) and the basestation (OpenSSL) must derive the same keys and
# produce the same records. Each run also checks the published vectors (exit 1 on a mismatch).
set -euo pipefail
boringssl="$1"
openssl="$2"
out=${TEST_TMPDIR:-$(mktemp -d)}
"$boringssl" >"$out/boringssl.txt"
"$openssl" >"$out/openssl.txt"
lines=$(wc -l <"$out/boringssl.txt")
if (( lines < 100 )); then
  echo "FAIL: crypto_vectors printed only $lines lines" >&2
  exit 1
fi
if ! diff -u "$out/boringssl.txt" "$out/openssl.txt"; then
  echo "FAIL: BoringSSL and OpenSSL builds disagree (diff above)" >&2
  exit 1
fi
echo "PASS: $lines outputs byte-identical across BoringSSL and OpenSSL"
