#!/usr/bin/env bash
# Runs each benchmark binary given as an argument, in order, printing its output; fails if any
# fails or prints no BENCH line. Extra benchmark flags can follow a "--".
set -euo pipefail
bins=()
while (( $# )) && [[ $1 != -- ]]; do bins+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
for bin in "${bins[@]}"; do
  out=$("$bin" "$@")
  printf '%s\n' "$out"
  grep -q '^BENCH ' <<<"$out" || { echo "run_each: $bin printed no BENCH line" >&2; exit 1; }
done
