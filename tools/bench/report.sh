#!/usr/bin/env bash
# Runs every benchmark (optimized build) and writes docs/BENCHMARKS.md: each benchmark's BENCH
# line, with the machine and the date. Usage: bash tools/bench/report.sh [OUTPUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/BENCHMARKS.md}
bash tools/setup.sh

# name | bazel target | extra arguments
benchmarks=(
  "aead|//common/crypto:aead_bench|"
  "attach|//tools/bench:attach_bench|"
  "connect|//tools/bench:connect_bench|"
  "relay|//tools/bench:relay_bench|"
  "stream|//tools/bench:stream_bench|"
  "sctp_memory|//common/stream:sctp_bench|"
  "nat_grid|//integration/sim:nat_grid|"
  "footprint|//tools/bench:footprint_bench|"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "# Benchmarks"
  echo
  echo "Written by \`tools/bench/report.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit"
  echo "$(git rev-parse --short HEAD 2>/dev/null || echo unknown), on $(nproc) cores of"
  echo "\`$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)\`, $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "$(uname -sr). Each benchmark measures its baseline in the same run; see README.md for what"
  echo "each figure means. One run each: expect several percent of noise, more on a busy machine."
  echo
  echo "| benchmark | result |"
  echo "| --- | --- |"
} >"$tmp/report.md"

for entry in "${benchmarks[@]}"; do
  IFS='|' read -r name target args <<<"$entry"
  echo "report: running $target" >&2
  # shellcheck disable=SC2086
  if ! bazel run -c opt "$target" -- $args >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    echo "| $name | FAILED (see \`bazel run -c opt $target\`) |" >>"$tmp/report.md"
    continue
  fi
  grep '^BENCH ' "$tmp/$name.out" | while read -r line; do
    echo "| $name | \`$line\` |" >>"$tmp/report.md"
  done
done
mv "$tmp/report.md" "$out"
echo "report: wrote $out" >&2
