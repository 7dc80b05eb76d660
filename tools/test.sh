#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole suite twice, plain and
# under ASan+UBSan, and ends with the totals alone on a line: "N passed, N failed".
#   tools/test.sh            both runs
#   tools/test.sh --quick    the plain run only
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || exit 1

configs=("plain")
[[ ${1:-} == --quick ]] || configs+=("asan+ubsan")

passed=0
failed=0
# As root (CI), the real-NAT namespace tests must run, not skip.
common=()
[[ $(id -u) -eq 0 ]] && common+=(--test_env=EDGELINK_NETNS_REQUIRED=1)
for config in "${configs[@]}"; do
  flags=()
  # Suppression files by absolute path: Bazel does not expand the workspace in --test_env.
  [[ $config == asan+ubsan ]] && flags=(--config=asan --config=ubsan
    "--test_env=LSAN_OPTIONS=suppressions=$PWD/tools/sanitizers/lsan.supp")
  echo "== bazel test //... ($config)"
  log=$(mktemp)
  bazel test "${common[@]}" "${flags[@]}" --test_summary=short //... 2>&1 | tee "$log" | \
    grep -E '(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|ERROR:|Executed)'
  status=${PIPESTATUS[0]}
  p=$(grep -cE '^//\S+ +(\(cached\) )?PASSED' "$log")
  f=$(grep -cE '^//\S+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log")
  if (( status != 0 && f == 0 )); then
    # The build itself failed: show why and count it as a failure.
    grep -E '^ERROR' "$log" | head -n 20
    f=1
  fi
  rm -f "$log"
  passed=$((passed + p))
  failed=$((failed + f))
done
echo "$passed passed, $failed failed"
(( failed == 0 ))
