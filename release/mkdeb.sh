#!/usr/bin/env bash
# mkdeb.sh: builds one .deb from built files, for the Bazel rules in release/BUILD.
#
#   mkdeb.sh --out=FILE.deb --control=TEMPLATE --version-file=VERSION --manifest=FILE \
#            [--shlibs=BINARY]... [--script=postinst=FILE]...
#
# MANIFEST: one "DEST SRC MODE" line per file (DEST absolute inside the package; "@MULTIARCH@" in
# DEST becomes this machine's multiarch triplet). Files under /etc/ are marked conffiles.
# ELF executables under */bin/ are stripped.
# TEMPLATE: a DEBIAN/control with @VERSION@, @ARCH@, @MULTIARCH@, @SHLIBS_DEPENDS@ (what the
# --shlibs binaries need at run time: dpkg-shlibdeps, or ldd + dpkg -S when dpkg-dev is absent)
# and @INSTALLED_SIZE@.
# File times are SOURCE_DATE_EPOCH (default: a fixed date), owners root: the same inputs give the
# same package.
set -euo pipefail

out="" control="" version_file="" manifest=""
shlibs=()
scripts=()
for arg in "$@"; do
  case "$arg" in
    --out=*) out=${arg#*=} ;;
    --control=*) control=${arg#*=} ;;
    --version-file=*) version_file=${arg#*=} ;;
    --manifest=*) manifest=${arg#*=} ;;
    --shlibs=*) shlibs+=("${arg#*=}") ;;
    --script=*) scripts+=("${arg#*=}") ;;
    *) echo "mkdeb: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[[ -n $out && -n $control && -n $version_file && -n $manifest ]] ||
  { echo "mkdeb: --out, --control, --version-file and --manifest are required" >&2; exit 2; }

version=$(tr -d '[:space:]' <"$version_file")
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "mkdeb: bad version '$version'" >&2; exit 1; }
arch=$(dpkg --print-architecture)
multiarch=$(gcc -print-multiarch 2>/dev/null || true)
[[ -n $multiarch ]] || multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
epoch=${SOURCE_DATE_EPOCH:-1700000000}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN"

conffiles=()
while read -r dest src mode; do
  [[ -z ${dest:-} || $dest == \#* ]] && continue
  dest=${dest//@MULTIARCH@/$multiarch}
  install -D -m "$mode" "$src" "$root$dest"
  if [[ $dest == */bin/* && $(head -c 4 "$src" | od -An -c | tr -d ' ') == 177ELF ]]; then
    strip "$root$dest"
  fi
  if [[ $dest == /etc/* ]]; then conffiles+=("$dest"); fi
done <"$manifest"
if (( ${#conffiles[@]} )); then printf '%s\n' "${conffiles[@]}" >"$root/DEBIAN/conffiles"; fi
for s in "${scripts[@]}"; do
  install -m 0755 "${s#*=}" "$root/DEBIAN/${s%%=*}"
done

# Run-time dependencies of the binaries, as Debian packages.
shlibs_depends() {
  (( ${#shlibs[@]} )) || return 0
  local bins=()
  for b in "${shlibs[@]}"; do bins+=("$(realpath "$b")"); done
  if command -v dpkg-shlibdeps >/dev/null; then
    # dpkg-shlibdeps wants to run in a source tree: give it the smallest one.
    mkdir -p "$work/src/debian"
    printf 'Source: edgelink\n\nPackage: edgelink\nArchitecture: any\n' >"$work/src/debian/control"
    (cd "$work/src" && dpkg-shlibdeps -O -xedgelink "${bins[@]}" 2>"$work/shlibdeps.err") |
      sed -n 's/^shlibs:Depends=//p'
    return
  fi
  # Without dpkg-dev: the package owning each library the binaries link directly (DT_NEEDED, found
  # where ldd resolves it), at its installed version.
  local bin lib pkg soname libs=()
  for bin in "${bins[@]}"; do
    for soname in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
      libs+=("$(ldd "$bin" | awk -v so="$soname" '$1 == so && $2 == "=>" { print $3 }')")
    done
  done
  for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null ||
          dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null || true)
    pkg=${pkg%%:*}
    pkg=${pkg%%,*}
    [[ -n $pkg ]] || { echo "mkdeb: no package owns $lib" >&2; exit 1; }
    echo "$pkg (>= $(dpkg-query -W -f='${Version}' "$pkg" | sed 's/-[^-]*$//'))"
  done | sort -u | paste -sd, | sed 's/,/, /g'
}
depends=$(shlibs_depends)
if (( ${#shlibs[@]} )) && [[ -z $depends ]]; then
  echo "mkdeb: could not compute the run-time dependencies of ${shlibs[*]}" >&2
  cat "$work/shlibdeps.err" >&2 2>/dev/null || true
  exit 1
fi

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|g" -e "s|@ARCH@|$arch|g" -e "s|@MULTIARCH@|$multiarch|g" \
  -e "s|@SHLIBS_DEPENDS@|$depends|g" -e "s|@INSTALLED_SIZE@|$installed_size|g" \
  "$control" >"$root/DEBIAN/control"
grep -q '@[A-Z_]*@' "$root/DEBIAN/control" && { echo "mkdeb: unfilled field in control" >&2; exit 1; }

# md5sums, as dpkg --verify and debsums read them.
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
  xargs -r md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
[[ -f $root/DEBIAN/conffiles ]] && chmod 0644 "$root/DEBIAN/conffiles"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$epoch" {} +
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
