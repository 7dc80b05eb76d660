#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole suite three times,
# plain, under ASan+UBSan with the nonce ledger (every AES-GCM seal checked against all earlier
# ones: common/crypto/nonce_ledger.h), and under TSan, and ends with the totals of all three alone
# on a line: "N passed, N failed".
# After them, each fuzzer runs for 15 s (EDGELINK_CI_FUZZ_SECONDS) and counts as one test.
#   tools/test.sh            all three runs and the fuzzers
#   tools/test.sh --quick    the plain run only
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || exit 1

configs=("plain")
[[ ${1:-} == --quick ]] || configs+=("asan+ubsan+nonce_ledger" "tsan")

passed=0
failed=0
# As root (CI), the real-NAT namespace tests must run, not skip.
common=()
[[ $(id -u) -eq 0 ]] && common+=(--test_env=EDGELINK_NETNS_REQUIRED=1)
for config in "${configs[@]}"; do
  flags=()
  # Suppression files by absolute path: Bazel does not expand the workspace in --test_env.
  [[ $config == asan+ubsan+nonce_ledger ]] && flags=(--config=asan --config=ubsan
    --config=nonce_ledger "--test_env=LSAN_OPTIONS=suppressions=$PWD/tools/sanitizers/lsan.supp")
  # TSan: .bazelrc's TSAN_OPTIONS plus the suppressions (tools/sanitizers/tsan.supp says why).
  tsan_options=ignore_noninstrumented_modules=1:halt_on_error=1
  [[ $config == tsan ]] && flags=(--config=tsan
    "--test_env=TSAN_OPTIONS=$tsan_options:suppressions=$PWD/tools/sanitizers/tsan.supp")
  echo "== bazel test //... ($config)"
  log=$(mktemp)
  bazel test "${common[@]}" "${flags[@]}" --test_summary=short //... 2>&1 | tee "$log" | \
    grep -E '(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|ERROR:|Executed)'
  status=${PIPESTATUS[0]}
  # FLAKY: a test marked flaky (its BUILD says why) failed, then passed on a retry: counted as
  # passed, and named.
  p=$(grep -cE '^//\S+ +(\(cached\) )?(PASSED|FLAKY)' "$log")
  f=$(grep -cE '^//\S+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
  grep -E '^//\S+ +(\(cached\) )?FLAKY' "$log" | sed 's/^/flaky (passed on a retry): /'
  if (( status != 0 && f == 0 )); then
    # The build itself failed: show why and count it as a failure.
    grep -E '^ERROR' "$log" | head -n 20
    f=1
  fi
  rm -f "$log"
  passed=$((passed + p))
  failed=$((failed + f))
done

# Then every fuzzer for a short while (clang 14, libFuzzer, ASan+UBSan) on its seeds and the corpus
# kept between runs: one pass or failure each; a crash prints its reproducer (tools/fuzz/README.md).
if [[ ${1:-} != --quick ]]; then
  echo "== fuzzers (${EDGELINK_CI_FUZZ_SECONDS:-15} s each)"
  log=$(mktemp)
  bash tools/fuzz/run.sh all "${EDGELINK_CI_FUZZ_SECONDS:-15}" 2>&1 | tee "$log" | \
    awk '/^== summary/ { done = 1 } !done && !/^(==|INFO|Loading|Analyzing)/'
  status=${PIPESTATUS[0]}
  p=$(sed -n '/^== summary/,$p' "$log" | grep -c 'executions' | tr -d ' ')
  f=$(sed -n '/^== summary/,$p' "$log" | grep -c 'CRASHED' | tr -d ' ')
  (( status != 0 && f == 0 )) && f=1  # The build failed.
  rm -f "$log"
  passed=$((passed + p - f))
  failed=$((failed + f))
fi
echo "$passed passed, $failed failed"
(( failed == 0 ))
