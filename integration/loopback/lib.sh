# Helpers for real-process tests: start binaries, wait on conditions (never fixed sleeps), clean up.

TMP=${TEST_TMPDIR:-$(mktemp -d)}
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

# metric PORT NAME: the value of an unlabelled Prometheus metric.
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v name="$2" '$1 == name { print $2 }'
}
