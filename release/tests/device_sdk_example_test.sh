#!/usr/bin/env bash
# The device SDK tarball is enough to build a device: its example is built with its own Makefile
# in a fresh directory (no Bazel, only the tarball and Debian's libabsl-dev and BoringSSL), then
# attached to a real basestation: online in `basestation devices`, state changes logged, and on
# SIGINT a clean exit that takes the device offline at once (DETACH).
#   device_sdk_example_test.sh VERSION DEVICE_SDK_TARBALL BASESTATION
set -uo pipefail
version_file=$1 sdk=$2 basestation=$3
source "$(dirname "$0")/tests/lib.sh" || exit 1  # Bazel runs this as release/<test name>

version=$(tr -d '[:space:]' <"$version_file")
tar xzf "$sdk" -C "$TMP" || fail "cannot unpack $sdk"
example=$TMP/edgelink-device-sdk-$version/examples/device
# Under Bazel's sanitizer configs the SDK's objects are instrumented: link the runtime too.
sanitize=$(sanitizer_flags "$TMP/edgelink-device-sdk-$version/lib/libedgelink-device.a")
make -C "$example" LDFLAGS="$sanitize" >"$TMP/make.log" 2>&1 ||
  fail "make in the SDK's examples/device failed"
program=$example/example_device
[[ -x $program ]] || fail "make built no example_device"
deps=$(ldd "$program")
grep -q 'android/libcrypto\.so' <<<"$deps" || fail "example_device does not load BoringSSL"
grep -Eq 'lib(crypto|ssl)\.so\.3' <<<"$deps" && fail "example_device loads OpenSSL 3"
ok "examples/device built with its Makefile against the tarball; loads BoringSSL only"
# The SDK's pkg-config file gives the same build.
flags=$(PKG_CONFIG_PATH=$TMP/edgelink-device-sdk-$version/lib/pkgconfig \
  pkg-config --cflags --libs edgelink-device) || fail "pkg-config edgelink-device failed"
# shellcheck disable=SC2086  # pkg-config's output is a list of flags.
g++ -std=c++17 $sanitize -o "$TMP/example_pc" "$example/example_device.cc" $flags \
  >"$TMP/pc-build.log" 2>&1 ||
  fail "example_device does not build with \$(pkg-config --cflags --libs edgelink-device)"
ok "and with \$(pkg-config --cflags --libs edgelink-device)"

"$program" >/dev/null 2>&1 && fail "example_device ran without arguments"

db=$TMP/registry.db
"$basestation" provision --registry="$db" --device-id=cam-1 --product=example >"$TMP/cam-1.conf" ||
  fail "provision"
secret=$(awk '$1 == "secret" { print $3 }' "$TMP/cam-1.conf")
[[ -n $secret ]] || fail "provision printed no secret"
"$basestation" serve --registry="$db" --listen=127.0.0.1:0 --metrics-listen= --relay-listen= \
  --keepalive-interval=1s >"$TMP/basestation.out" 2>"$TMP/basestation.log" &
PIDS+=($!)
wait_for "the basestation's READY line" 10 grep -q '^READY' "$TMP/basestation.out"
attach=$(sed -n 's/^READY attach=\([^ ]*\) .*/\1/p' "$TMP/basestation.out")
[[ -n $attach ]] || fail "no attach address in: $(cat "$TMP/basestation.out")"

state_is() {
  "$basestation" devices --registry="$db" |
    awk -v s="$1" '$1 == "cam-1" && $2 == s { found = 1 } END { exit !found }'
}
state_is offline || fail "cam-1 is not offline before the example runs"
"$program" "$attach" cam-1 "$secret" 2>"$TMP/example.log" &
example_pid=$!
PIDS+=("$example_pid")
wait_for "cam-1 online" 10 state_is online
grep -q 'state=attached public address 127\.0\.0\.1:' "$TMP/example.log" ||
  fail "the example did not log its state changes"
grep -q "$secret" "$TMP/example.log" && fail "the example logged its secret"
ok "example_device attached: $(grep -c 'state=' "$TMP/example.log") state changes logged, cam-1 online"

kill -INT "$example_pid"
wait_for "example_device to exit on SIGINT" 10 bash -c "! kill -0 $example_pid"
wait "$example_pid"
status=$?
(( status == 0 )) || fail "example_device exited $status on SIGINT"
wait_for "cam-1 offline after the example left" 5 state_is offline
ok "SIGINT: example_device exited 0 and the basestation shows cam-1 offline at once"
echo PASS
