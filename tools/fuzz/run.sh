#!/usr/bin/env bash
# Builds one libFuzzer target (or all of them) with --config=fuzz and runs it for a fixed time on
# its seed corpus plus a working corpus kept between runs; prints libFuzzer's final figures and
# exits non-zero if a fuzzer crashed (the reproducer is saved, and the command to replay it shown).
#
#   tools/fuzz/run.sh <name> <seconds> [libFuzzer flags...]
#   tools/fuzz/run.sh all <seconds> [libFuzzer flags...]     each target in turn, <seconds> each
#   tools/fuzz/run.sh list                                   the target names
#
# Environment:
#   EDGELINK_FUZZ_CACHE        corpora, crashes and logs (default ~/.cache/edgelink-fuzz):
#                              seeds/<name>/ (remade every run), corpus/<name>/ (kept),
#                              crashes/<name>/, logs/<name>-<time>.log
#   EDGELINK_FUZZ_OUTPUT_BASE  a Bazel --output_base to build in (default: the workspace's own;
#                              a separate one keeps the clang configuration from displacing the
#                              gcc one's analysis cache)
#   BAZEL                      the Bazel binary (default bazel)
#   ASAN_OPTIONS               passed on (default quarantine_size_mb=32: the attach targets free
#                              a 160 KiB session chunk every run, and a smaller quarantine keeps
#                              that memory warm)
#   UBSAN_OPTIONS              passed on (default print_stacktrace=1)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

NAMES=(attach_packet attach_client wire_parsers peer_channel rpc_frame relay dns_query
       device_config access_list)

usage() {
  echo "usage: $0 <name>|all <seconds> [libFuzzer flags...]   (names: ${NAMES[*]})" >&2
  exit 2
}

[[ ${1:-} == list ]] && { printf '%s\n' "${NAMES[@]}"; exit 0; }
[[ $# -ge 2 ]] || usage
target=$1
seconds=$2
shift 2
extra=("$@")
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage
if [[ $target == all ]]; then
  targets=("${NAMES[@]}")
else
  [[ " ${NAMES[*]} " == *" $target "* ]] || usage
  targets=("$target")
fi

bazel_cmd=("${BAZEL:-bazel}")
[[ -n ${EDGELINK_FUZZ_OUTPUT_BASE:-} ]] && bazel_cmd+=("--output_base=$EDGELINK_FUZZ_OUTPUT_BASE")
labels=(//tools/fuzz:make_corpus)
for name in "${targets[@]}"; do labels+=("//tools/fuzz:${name}_fuzzer"); done

# No convenience symlinks (bazel-bin would point at the clang outputs) and no warnings from
# successful actions (gold warns about ASan's local symbols on every link); errors still show.
echo "== building ${targets[*]} (--config=fuzz)"
if ! "${bazel_cmd[@]}" build --config=fuzz --symlink_prefix=/ --output_filter='^$' \
    --noshow_progress "${labels[@]}"; then
  echo "run.sh: build failed" >&2
  exit 1
fi
bin=$("${bazel_cmd[@]}" info --config=fuzz bazel-bin 2>/dev/null)/tools/fuzz
[[ -x $bin/make_corpus ]] || { echo "run.sh: no binaries under $bin" >&2; exit 1; }

cache=${EDGELINK_FUZZ_CACHE:-$HOME/.cache/edgelink-fuzz}
mkdir -p "$cache/logs" || exit 1
# The file-reading targets write their input to $TMPDIR on every run: use memory if there is some.
if [[ -d /dev/shm && -w /dev/shm ]]; then
  scratch=$(mktemp -d /dev/shm/edgelink-fuzz.XXXXXX)
else
  scratch=$(mktemp -d)
fi
trap 'rm -rf "$scratch"' EXIT

if ! TMPDIR=$scratch "$bin/make_corpus" "$cache/seeds" "${targets[@]}" >/dev/null; then
  echo "run.sh: make_corpus failed" >&2
  exit 1
fi

summary=()
crashed=0
for name in "${targets[@]}"; do
  corpus=$cache/corpus/$name
  crashes=$cache/crashes/$name
  log=$cache/logs/$name-$(date +%Y%m%d-%H%M%S).log
  mkdir -p "$corpus" "$crashes"
  flags=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096
         -artifact_prefix="$crashes/")
  [[ -f tools/fuzz/dicts/$name.dict ]] && flags+=(-dict="$PWD/tools/fuzz/dicts/$name.dict")
  echo "== $name: ${seconds}s; corpus $corpus (+ seeds $cache/seeds/$name); log $log"
  (cd "$scratch" && TMPDIR=$scratch ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bin/${name}_fuzzer" "${flags[@]}" "${extra[@]}" "$corpus" "$cache/seeds/$name") \
    >"$log" 2>&1
  status=$?

  # The last status line ("#N DONE cov: .. ft: .. corp: n/size ..") and the final stats.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  final_stat() { grep -E "^stat::$1:" "$log" | awk '{print $2}'; }
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[A-Za-z]*).*/\1/p' <<<"$last")
  line=$(printf '%-14s executions %-10s exec/s %-7s corpus %-12s cov %-6s ft %-6s files %s' \
    "$name" "$(final_stat number_of_executed_units)" "$(final_stat average_exec_per_sec)" "${corp:-?}" \
    "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)")
  if (( status != 0 )); then
    crashed=$((crashed + 1))
    line+="  CRASHED (exit $status)"
    echo "-- $name crashed; the report (full log: $log):"
    sed -n '/^==[0-9]*==ERROR\|runtime error\|invariant violated\|^==[0-9]*== ERROR/,$p' "$log" |
      head -n 80
    for artifact in $(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log"); do
      echo "-- reproducer: $artifact"
      echo "   replay:  $bin/${name}_fuzzer $artifact"
      echo "   keep it: cp $artifact tools/fuzz/regressions/$name/"
    done
  fi
  echo "$line"
  summary+=("$line")
done

if (( ${#targets[@]} > 1 )); then
  echo "== summary"
  printf '%s\n' "${summary[@]}"
fi
(( crashed == 0 ))
