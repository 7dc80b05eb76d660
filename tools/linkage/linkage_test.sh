#!/usr/bin/env bash
# BoringSSL and OpenSSL export the same symbols; a process that loads both binds calls to the
# wrong one. This test reads the dynamic dependencies (ldd) of built binaries:
#   --device  BINARY...   must load BoringSSL's libcrypto and no OpenSSL 3 library
#   --service BINARY...   must load OpenSSL 3 and nothing from BoringSSL's directory
set -euo pipefail

side=""
checked=0
fail() { echo "FAIL: $*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --device|--service) side=${arg#--}; continue ;;
  esac
  [[ -n $side ]] || fail "binary $arg given before --device or --service"
  deps=$(ldd "$arg") || fail "ldd $arg failed"
  name=$(basename "$arg")
  if [[ $side == device ]]; then
    grep -q 'android/libcrypto\.so' <<<"$deps" || fail "$name (device) does not load BoringSSL"
    ! grep -Eq 'lib(crypto|ssl)\.so\.3' <<<"$deps" || fail "$name (device) loads OpenSSL 3:
$(grep -E 'lib(crypto|ssl)\.so' <<<"$deps")"
  else
    grep -q 'libcrypto\.so\.3' <<<"$deps" || fail "$name (service) does not load OpenSSL 3"
    ! grep -q '/android/' <<<"$deps" || fail "$name (service) loads BoringSSL:
$(grep '/android/' <<<"$deps")"
  fi
  echo "ok   $side  $name"
  checked=$((checked + 1))
done
(( checked > 0 )) || fail "no binaries given"
echo "PASS: $checked binaries each load exactly one crypto library"
