#!/usr/bin/env bash
# What the release artifacts hold: names, versions, architecture, dependencies, files, the
# conffile, the unit's hardening, and binaries that run and print the repository's version.
#   packages_test.sh VERSION BASESTATION_DEB CLIENT_DEB DEVICE_SDK_TARBALL
set -uo pipefail
version_file=$1 bs_deb=$2 client_deb=$3 sdk=$4
source "$(dirname "$0")/tests/lib.sh" || exit 1  # Bazel runs this as release/<test name>

version=$(tr -d '[:space:]' <"$version_file")
arch=$(dpkg --print-architecture)
multiarch=$(gcc -print-multiarch)

# check_metadata DEB PACKAGE
check_metadata() {
  local deb=$1 package=$2 field want
  for field in Package Version Architecture; do
    case $field in
      Package) want=$package ;;
      Version) want=$version ;;
      Architecture) want=$arch ;;
    esac
    [[ $(control_field "$deb" $field) == "$want" ]] ||
      fail "$package: $field is '$(control_field "$deb" $field)', want '$want'"
  done
  for field in Maintainer Description Installed-Size Depends; do
    [[ -n $(control_field "$deb" $field) ]] || fail "$package: no $field"
  done
  ok "$package: Package, Version $version, Architecture $arch"
}

# check_depends DEB BINARY...: every package owning a library the binaries load is in Depends.
check_depends() {
  local deb=$1 pkg
  shift
  local have needed
  have=$(depends_names "$deb")
  needed=$(needed_packages "$@") || exit 1
  [[ -n $needed ]] || fail "found no library packages for $*"
  for pkg in $needed; do
    grep -qx "$pkg" <<<"$have" || fail "$(basename "$deb"): Depends lacks $pkg (a library of $*)"
  done
  ok "$(control_field "$deb" Package): Depends covers the packages of every library it links:" $needed
}

# has_files DEB PATH...: the package ships these paths.
has_files() {
  local deb=$1 path listing
  shift
  listing=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
  for path in "$@"; do
    grep -qx "$path" <<<"$listing" || fail "$(basename "$deb") lacks $path"
  done
}

# --- edgelink-basestation ----------------------------------------------------------------------
check_metadata "$bs_deb" edgelink-basestation
bs_root=$TMP/basestation
dpkg-deb -x "$bs_deb" "$bs_root" || fail "dpkg-deb -x $bs_deb"
dpkg-deb -e "$bs_deb" "$bs_root/DEBIAN" || fail "dpkg-deb -e $bs_deb"
unit=/lib/systemd/system/edgelink-basestation.service
conf=/etc/edgelink/basestation.conf
has_files "$bs_deb" /usr/bin/edgelink-basestation /usr/bin/edgelink-pki "$unit" "$conf" \
  /usr/share/doc/edgelink-basestation/OPERATOR.md /usr/share/doc/edgelink-basestation/SECURITY.md
ok "edgelink-basestation: binary, edgelink-pki, unit at $unit, $conf, docs"
[[ $(cat "$bs_root/DEBIAN/conffiles") == "$conf" ]] ||
  fail "conffiles is '$(cat "$bs_root/DEBIAN/conffiles")', want $conf"
ok "edgelink-basestation: $conf is its one conffile"
for script in postinst prerm postrm; do
  [[ -x $bs_root/DEBIAN/$script ]] || fail "no executable $script"
  sh -n "$bs_root/DEBIAN/$script" || fail "$script does not parse"
done
check_depends "$bs_deb" "$bs_root/usr/bin/edgelink-basestation"
grep -qx adduser <<<"$(depends_names "$bs_deb")" || fail "Depends lacks adduser (postinst makes the user)"

# The unit: hardened as promised, and running the binary with the packaged config.
u=$bs_root$unit
for directive in "User=edgelink" "StateDirectory=edgelink" "ProtectSystem=strict" \
    "ProtectHome=yes" "PrivateTmp=yes" "NoNewPrivileges=yes" \
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "AmbientCapabilities=CAP_NET_BIND_SERVICE" \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" "WantedBy=multi-user.target"; do
  grep -qx "$directive" "$u" || fail "unit lacks '$directive'"
done
grep -qx "ExecStart=/usr/bin/edgelink-basestation serve --flagfile=$conf" "$u" ||
  fail "ExecStart does not run the binary with $conf: $(grep ExecStart "$u")"
ok "unit: own user, StateDirectory, ProtectSystem=strict, CAP_NET_BIND_SERVICE only, runs with $conf"

bs=$bs_root/usr/bin/edgelink-basestation
[[ $("$bs" --version) == "edgelink $version" ]] || fail "edgelink-basestation --version: $("$bs" --version)"
[[ $(nm "$bs" 2>&1) == *"no symbols"* ]] || fail "edgelink-basestation is not stripped"
# The packaged config parses: every flag in it exists (the registry flag is overridden after it).
"$bs" devices --flagfile="$bs_root$conf" --registry="$TMP/flagfile-check.db" >/dev/null \
  2>"$TMP/flagfile.log" || fail "the packaged $conf does not parse: $(cat "$TMP/flagfile.log")"
ok "edgelink-basestation --version is 'edgelink $version'; the packaged config parses"
[[ $("$bs_root/usr/bin/edgelink-pki" help 2>&1) == *init-ca* ]] || fail "edgelink-pki prints no usage"

# apt resolves the package's dependencies on this machine (a simulation changes nothing).
apt-get install -s "$(realpath "$bs_deb")" >"$TMP/apt-basestation.log" 2>&1 ||
  fail "apt-get install -s edgelink-basestation failed: $(tail -n 5 "$TMP/apt-basestation.log")"
grep -q '^Inst edgelink-basestation ' "$TMP/apt-basestation.log" ||
  fail "apt-get would not install edgelink-basestation: $(tail -n 5 "$TMP/apt-basestation.log")"
ok "apt-get install -s resolves edgelink-basestation's dependencies"

# --- edgelink-client ---------------------------------------------------------------------------
check_metadata "$client_deb" edgelink-client
client_root=$TMP/client
dpkg-deb -x "$client_deb" "$client_root" || fail "dpkg-deb -x $client_deb"
has_files "$client_deb" /usr/bin/edgelink-client \
  /usr/include/edgelink/client/sdk/client.h /usr/include/edgelink/client/sdk/peer_session.h \
  /usr/include/edgelink/proto/basestation.pb.h /usr/include/edgelink/proto/basestation.grpc.pb.h \
  /usr/include/edgelink/common/tls/credentials.h \
  "/usr/lib/$multiarch/libedgelink-client.a" "/usr/lib/$multiarch/pkgconfig/edgelink-client.pc" \
  /usr/share/doc/edgelink-client/CLIENT-SDK.md
[[ $(dpkg-deb --ctrl-tarfile "$client_deb" | tar t) == *conffiles* ]] && fail "client has conffiles"
ok "edgelink-client: CLI, SDK headers (with generated proto headers), static library, .pc, docs"
check_depends "$client_deb" "$client_root/usr/bin/edgelink-client"
[[ $("$client_root/usr/bin/edgelink-client" --version) == "edgelink $version" ]] ||
  fail "edgelink-client --version"
grep -qx "Version: $version" "$client_root/usr/lib/$multiarch/pkgconfig/edgelink-client.pc" ||
  fail "edgelink-client.pc has the wrong version"
# The SDK library holds the SDK and links OpenSSL's side only (no BoringSSL build inside).
[[ $(nm -C --defined-only "$client_root/usr/lib/$multiarch/libedgelink-client.a" 2>/dev/null) == \
   *"edgelink::client::Client::Connect("* ]] || fail "libedgelink-client.a lacks Client::Connect"
ok "edgelink-client --version is 'edgelink $version'; .pc and library look right"

# --- device SDK tarball ------------------------------------------------------------------------
top=edgelink-device-sdk-$version
listing=$(tar tzf "$sdk") || fail "cannot list $sdk"
[[ -z $(grep -v "^$top/" <<<"$listing") ]] || fail "tarball has files outside $top/"
for path in include/device/core/attach_client.h include/common/io/event_loop.h \
    include/common/io/udp_socket.h include/common/crypto/aead.h include/device/daemon/daemon.h \
    lib/libedgelink-device.a lib/pkgconfig/edgelink-device.pc bin/edgelink-device \
    examples/device/Makefile examples/device/example_device.cc docs/DEVICE-SDK.md \
    docs/SECURITY.md README.md VERSION; do
  grep -qx "$top/$path" <<<"$listing" || fail "tarball lacks $top/$path"
done
grep -q "^$top/include/.*\.cc$" <<<"$listing" && fail "tarball ships sources as headers"
grep -q "/BUILD$" <<<"$listing" && fail "tarball ships a BUILD file"
sdk_root=$TMP/sdk
mkdir -p "$sdk_root" && tar xzf "$sdk" -C "$sdk_root" || fail "cannot unpack $sdk"
[[ $(cat "$sdk_root/$top/VERSION") == "$version" ]] || fail "tarball VERSION"
daemon=$sdk_root/$top/bin/edgelink-device
[[ $("$daemon" --version) == "edgelink $version" ]] || fail "edgelink-device --version"
deps=$(ldd "$daemon")
grep -q 'android/libcrypto\.so' <<<"$deps" || fail "edgelink-device does not load BoringSSL"
grep -Eq 'lib(crypto|ssl)\.so\.3' <<<"$deps" && fail "edgelink-device loads OpenSSL 3"
lib=$sdk_root/$top/lib/libedgelink-device.a
symbols=$(nm -C --defined-only "$lib" 2>/dev/null)
for symbol in 'edgelink::device::AttachClient::OnPacket' 'edgelink::io::EventLoop::Run' \
    'edgelink::io::UdpSocket::Bind' 'edgelink::channel::PeerConnection::OnPacket' \
    'edgelink::device::DeviceDaemon::Start'; do
  grep -q "$symbol" <<<"$symbols" || fail "libedgelink-device.a lacks $symbol"
done
ok "device SDK: $top/ with headers, libedgelink-device.a (core + POSIX binding), daemon (BoringSSL only), example, docs"
echo PASS
