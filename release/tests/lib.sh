# Helpers for the release tests: temp space, failing with context, bounded waiting (no fixed sleeps).

TMP=$(mktemp -d "${TEST_TMPDIR:-/tmp}/release.XXXXXX")
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for log in "$TMP"/*.log; do
    [[ -f $log ]] || continue
    echo "--- $log (last 30 lines)" >&2
    tail -n 30 "$log" >&2
  done
  exit 1
}

ok() { echo "ok   $*"; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or time runs out.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "timed out after ${seconds}s waiting for: $what"
    sleep 0.05
  done
}

# control_field DEB FIELD: one field of a package's control file.
control_field() { dpkg-deb -f "$1" "$2"; }

# needed_packages BINARY...: the Debian packages that own the shared libraries the binaries link
# directly (their DT_NEEDED entries, found where ldd resolves them), one per line: what Depends
# must cover. Libraries those load in turn come with their own packages' Depends.
needed_packages() {
  local bin soname lib libs=() candidates=() owners
  for bin in "$@"; do
    for soname in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
      lib=$(ldd "$bin" | awk -v so="$soname" '$1 == so && $2 == "=>" { print $3 }')
      [[ -n $lib ]] || fail "$(basename "$bin"): ldd does not resolve $soname"
      libs+=("$lib")
      # dpkg knows each file by the path its package ships: /lib or /usr/lib (merged /usr).
      candidates+=("$lib" "$(realpath "$lib")" "/usr$lib" "${lib#/usr}")
    done
  done
  (( ${#libs[@]} )) || return 0
  owners=$(dpkg -S "${candidates[@]}" 2>/dev/null)  # One call: dpkg -S reads its whole database.
  for lib in "${libs[@]}"; do
    awk -v a="$lib" -v b="$(realpath "$lib")" -v c="/usr$lib" -v d="${lib#/usr}" '
      { path = $NF; sub(/:$/, "", $1) }
      path == a || path == b || path == c || path == d { split($1, p, /[:,]/); print p[1]; found = 1; exit }
      END { exit !found }' <<<"$owners" || fail "no package owns $lib"
  done | sort -u
}

# depends_names DEB: the package names in Depends (versions and alternatives dropped).
depends_names() {
  control_field "$1" Depends | tr ',|' '\n\n' | sed 's/(.*)//; s/^ *//; s/ *$//; s/:any$//' |
    grep -v '^$' | sort -u
}

# sanitizer_flags ARCHIVE: the -fsanitize flags a program linking ARCHIVE needs, if Bazel built it
# under --config=asan/ubsan/tsan (tools/test.sh runs the suite that way too); empty otherwise.
sanitizer_flags() {
  local undefined flags=()
  undefined=$(nm -u "$1" 2>/dev/null)
  [[ $undefined == *__asan_* ]] && flags+=(address)
  [[ $undefined == *__ubsan_* ]] && flags+=(undefined)
  [[ $undefined == *__tsan_* ]] && flags+=(thread)
  (( ${#flags[@]} )) && echo "-fsanitize=$(IFS=,; echo "${flags[*]}")"
  return 0
}
