#!/usr/bin/env bash
# Real processes on loopback: the basestation binary (OpenSSL) and the device daemon (BoringSSL).
# A device is provisioned, finds its basestation through the basestation's own DNS zone, attaches,
# survives a basestation kill -9 and restart, is revoked for good; a second device with its master
# switch off sends nothing until switched on at run time (SIGHUP).
set -uo pipefail
BASESTATION=$1
DEVICE=$2
source "$(dirname "$0")/lib.sh"

db=$TMP/registry.db
devices() { "$BASESTATION" devices --registry="$db"; }
state_is() { devices | awk -v id="$1" -v s="$2" '$1 == id && $2 == s { found = 1 } END { exit !found }'; }

start_basestation() {  # start_basestation ATTACH DNS METRICS (ports; 0 picks one)
  # Emptied here, not only by the redirect below: that runs in the background child, so on a
  # restart the wait could see the killed process's READY line and read stale or no ports.
  : >"$TMP/basestation.out"
  "$BASESTATION" serve --registry="$db" --listen="127.0.0.1:$1" --dns-listen="127.0.0.1:$2" \
    --metrics-listen="127.0.0.1:$3" --relay-listen=127.0.0.1:0 --zone=devices.test \
    --public-address=127.0.0.1 \
    --keepalive-interval=1s >"$TMP/basestation.out" 2>>"$TMP/basestation.log" &
  BS_PID=$!
  PIDS+=("$BS_PID")
  wait_for "basestation READY line" 10 grep -q '^READY' "$TMP/basestation.out"
  read -r _ attach dns metrics _ < "$TMP/basestation.out"
  ATTACH_PORT=${attach##*:}
  DNS_PORT=${dns##*:}
  METRICS_PORT=${metrics#metrics=}
}

"$BASESTATION" provision --registry="$db" --device-id=cam-1 --product=camera --zone=devices.test \
  >"$TMP/cam-1.conf" || fail "provision cam-1"
grep -q '^secret = [0-9a-f]\{64\}$' "$TMP/cam-1.conf" || fail "provision printed no secret"
"$BASESTATION" provision --registry="$db" --device-id=cam-1 >/dev/null 2>&1 &&
  fail "provisioning the same id twice succeeded"
start_basestation 0 0 0
echo "basestation up: attach=$ATTACH_PORT dns=$DNS_PORT metrics=$METRICS_PORT"

# The device knows only its zone: it resolves cam-1.devices.test through the basestation's DNS.
printf 'dns_server = 127.0.0.1:%s\nbasestation_port = %s\n' "$DNS_PORT" "$ATTACH_PORT" \
  >>"$TMP/cam-1.conf"
"$DEVICE" --config="$TMP/cam-1.conf" 2>"$TMP/cam-1.log" &
DEV_PID=$!
PIDS+=("$DEV_PID")
wait_for "cam-1 online" 10 state_is cam-1 online
grep -q 'state=attached public address 127.0.0.1:' "$TMP/cam-1.log" || fail "device did not log its public address"
(( $(metric "$METRICS_PORT" edgelink_dns_responses_total) >= 1 )) || fail "device did not use DNS"
echo "cam-1 attached via DNS"

# Secrets never reach a log.
secret=$(awk '/^secret/ { print $3 }' "$TMP/cam-1.conf")
grep -q "$secret" "$TMP"/*.log && fail "a device secret appears in a log"

# kill -9 the basestation; a new process on the same ports gets the device back by itself.
kill -9 "$BS_PID"
wait "$BS_PID" 2>/dev/null
start_basestation "$ATTACH_PORT" "$DNS_PORT" 0
wait_for "cam-1 online after basestation restart" 15 state_is cam-1 online
echo "cam-1 back online after basestation restart"

# Master switch: cam-2 starts with remote access off and must send nothing, DNS included.
"$BASESTATION" provision --registry="$db" --device-id=cam-2 --zone=devices.test >"$TMP/cam-2.conf" ||
  fail "provision cam-2"
sed -i 's/^remote_access = on/remote_access = off/' "$TMP/cam-2.conf"
printf 'dns_server = 127.0.0.1:%s\nbasestation_port = %s\n' "$DNS_PORT" "$ATTACH_PORT" \
  >>"$TMP/cam-2.conf"
dns_before=$(metric "$METRICS_PORT" edgelink_dns_queries_total)
"$DEVICE" --config="$TMP/cam-2.conf" 2>"$TMP/cam-2.log" &
CAM2_PID=$!
PIDS+=("$CAM2_PID")
wait_for "cam-2 reports remote access off" 10 grep -q 'state=off' "$TMP/cam-2.log"
kill -USR1 "$CAM2_PID"
wait_for "cam-2 counters" 10 grep -q 'counters ' "$TMP/cam-2.log"
grep -q 'counters packets_sent=0 dns_lookups=0 ' "$TMP/cam-2.log" ||
  fail "cam-2 sent packets with remote access off: $(grep counters "$TMP/cam-2.log")"
[[ $(metric "$METRICS_PORT" edgelink_dns_queries_total) == "$dns_before" ]] ||
  fail "basestation saw DNS queries while cam-2 was off"
state_is cam-2 offline || fail "cam-2 should be offline"
sed -i 's/^remote_access = off/remote_access = on/' "$TMP/cam-2.conf"
kill -HUP "$CAM2_PID"
wait_for "cam-2 online after switching remote access on" 10 state_is cam-2 online
sed -i 's/^remote_access = on/remote_access = off/' "$TMP/cam-2.conf"
kill -HUP "$CAM2_PID"
wait_for "cam-2 off again" 10 grep -q 'state=stopped' "$TMP/cam-2.log"
echo "cam-2 master switch: silent while off, attaches when switched on"

# Revocation takes cam-1 offline for good, while it keeps running.
"$BASESTATION" revoke --registry="$db" --device-id=cam-1 >/dev/null || fail "revoke"
wait_for "cam-1 revoked" 10 state_is cam-1 revoked
wait_for "cam-1 told it is revoked" 10 grep -q 'device revoked by the basestation' "$TMP/cam-1.log"
kill -0 "$DEV_PID" || fail "device daemon died"
echo "cam-1 revoked and detached"

# Nothing crashed; the basestation counted what it dropped.
kill -0 "$BS_PID" || fail "basestation died"
# Fetched whole first: `curl | grep -q` fails under pipefail when grep stops reading early.
metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics") || fail "cannot scrape metrics"
grep -q '^edgelink_handshakes_total' <<<"$metrics" ||
  fail "no handshake metric"
echo "PASS"
