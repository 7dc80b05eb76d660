#!/usr/bin/env bash
# Runs the footprint benchmark and checks it ends with its BENCH line (no ratio: two sizes). No
# figure is judged here; the targets are for people to read.
set -euo pipefail
out=$(bash "$@")
echo "$out"
tail -n 1 <<<"$out" | grep -Eq '^BENCH footprint text_bytes=[0-9]+ state_bytes=[0-9]+$' || {
  echo "FAIL: last line is not 'BENCH footprint text_bytes=N state_bytes=N'" >&2
  exit 1
}
