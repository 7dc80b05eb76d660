#!/usr/bin/env bash
# mksdk.sh: builds the device SDK tarball, for release/BUILD.
#
#   mksdk.sh OUT.tar.gz VERSION_FILE LIBRARY DAEMON PC_TEMPLATE --headers H... --docs D...
#            --example E...
#
# Layout, under edgelink-device-sdk-<version>/:
#   include/...                    headers, at the paths the code includes them by
#   lib/libedgelink-device.a       device core + crypto wrapper + POSIX binding (BoringSSL build)
#   lib/pkgconfig/edgelink-device.pc
#   bin/edgelink-device            the reference daemon
#   examples/device/               example_device.cc + Makefile (builds against this tree alone)
#   docs/, README.md, VERSION
# Generated headers (bazel-out/<config>/bin/...) go to the same include paths as sources.
set -euo pipefail

out=$1 version_file=$2 library=$3 daemon=$4 pc_template=$5
shift 5
headers=() docs=() example=()
list=""
for arg in "$@"; do
  case "$arg" in
    --headers) list=headers ;;
    --docs) list=docs ;;
    --example) list=example ;;
    *)
      case "$list" in
        headers) headers+=("$arg") ;;
        docs) docs+=("$arg") ;;
        example) example+=("$arg") ;;
        *) echo "mksdk: $arg given before --headers/--docs/--example" >&2; exit 2 ;;
      esac
      ;;
  esac
done

version=$(tr -d '[:space:]' <"$version_file")
name=edgelink-device-sdk-$version
epoch=${SOURCE_DATE_EPOCH:-1700000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/$name
mkdir -p "$root/include" "$root/lib/pkgconfig" "$root/bin" "$root/examples/device" "$root/docs"

for h in "${headers[@]}"; do
  rel=$h
  [[ $rel == bazel-out/* ]] && rel=${rel#bazel-out/*/bin/}
  install -D -m 0644 "$h" "$root/include/$rel"
done
install -m 0644 "$library" "$root/lib/libedgelink-device.a"
# Libraries only some objects need (the daemon's logging, DNS and streams), for pkg-config --static.
undefined=$(nm -u "$library")
private=""
[[ $undefined == *_ZN6google10LogMessage* ]] && private+=" -lglog"
[[ $undefined == *res_nquery* || $undefined == *__res_n* ]] && private+=" -lresolv"
[[ $undefined == *usrsctp_* ]] && private+=" -lusrsctp"
sed -e "s|@VERSION@|$version|g" -e "s|@LIBS_PRIVATE@|$private|" "$pc_template" \
  >"$root/lib/pkgconfig/edgelink-device.pc"
install -m 0755 "$daemon" "$root/bin/edgelink-device"
strip "$root/bin/edgelink-device"
for e in "${example[@]}"; do install -m 0644 "$e" "$root/examples/device/$(basename "$e")"; done
for d in "${docs[@]}"; do
  if [[ $(basename "$d") == device-sdk-README.md ]]; then
    install -m 0644 "$d" "$root/README.md"
  else
    install -m 0644 "$d" "$root/docs/$(basename "$d")"
  fi
done
echo "$version" >"$root/VERSION"

find "$root" -exec touch -h -d "@$epoch" {} +
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$work" -cf - "$name" |
  gzip -9n >"$out"
