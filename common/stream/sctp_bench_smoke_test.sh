#!/usr/bin/env bash
# Runs the benchmark at a tiny size and checks it still ends with its BENCH line. No timing is
# judged: timings never pass or fail a test.
set -euo pipefail
bench=$1
shift
out=$("$bench" "$@")
echo "$out"
tail -n 1 <<<"$out" | grep -q '^BENCH sctp_memory mbit_s=[0-9.]\+ ratio=[0-9.]\+$' || {
  echo "FAIL: last line is not a BENCH line" >&2
  exit 1
}
