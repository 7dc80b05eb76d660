#!/usr/bin/env bash
# The client SDK in edgelink-client works as installed: a program is compiled and linked with only
# the package's headers, library and pkg-config file (plus the -dev packages it recommends), gets
# its identity from a certificate made with edgelink-pki's tool, and sees UNAVAILABLE from a
# basestation that is not there.
#   client_sdk_test.sh CLIENT_DEB PROBE_SOURCE PKI_SH
set -uo pipefail
deb=$1 probe=$2 pki=$3
source "$(dirname "$0")/tests/lib.sh" || exit 1  # Bazel runs this as release/<test name>

root=$TMP/root
dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x"
pc_dir=$root/usr/lib/$(gcc -print-multiarch)/pkgconfig
# The .pc says prefix=/usr (where dpkg puts it); point it at the unpacked tree instead.
flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --define-variable=prefix="$root/usr" \
  --cflags --libs edgelink-client) || fail "pkg-config edgelink-client failed"
[[ $flags == *"-I$root/usr/include/edgelink"* ]] || fail "pkg-config gives no include path: $flags"
# shellcheck disable=SC2086  # pkg-config's output is a list of flags.
# Under Bazel's sanitizer configs the SDK's objects are instrumented: link the runtime too.
sanitize=$(sanitizer_flags "$root/usr/lib/$(gcc -print-multiarch)/libedgelink-client.a")
# shellcheck disable=SC2086
g++ -std=c++17 -O1 $sanitize -o "$TMP/probe" "$probe" $flags >"$TMP/compile.log" 2>&1 ||
  fail "the SDK's headers and library do not build a program"
ok "a program builds with \$(pkg-config --cflags --libs edgelink-client) alone"

bash "$pki" init-ca "$TMP/pki" --server-names "DNS:localhost" >/dev/null 2>"$TMP/pki.log" ||
  fail "pki.sh init-ca"
want=$(bash "$pki" issue-client "$TMP/pki" probe 2>>"$TMP/pki.log") || fail "pki.sh issue-client"
out=$("$TMP/probe" "$TMP/pki/server-ca.pem" "$TMP/pki/clients/probe.pem" \
  "$TMP/pki/clients/probe.key" 2>"$TMP/probe.log") || fail "the probe failed: $out"
[[ $out == *"fingerprint $want"* ]] || fail "fingerprint: got '$out', want $want"
[[ $out == *"open UNAVAILABLE"* ]] || fail "a missing basestation is not UNAVAILABLE: $out"
ok "Client::Create reads the certificate (fingerprint $want); no basestation: UNAVAILABLE"
echo PASS
