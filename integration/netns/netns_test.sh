#!/usr/bin/env bash
# Real processes in network namespaces behind real nftables NAT (DESIGN.md, test tier 3):
#
#            cli 10.2.0.2 ── natc (easy) 172.16.2.2 ─┐
#            dev 10.1.0.2 ── natd (easy) 172.16.1.2 ─┼── wan router ── bs 172.16.0.2
#           clih 10.3.0.2 ── nath (hard) 172.16.3.2 ─┘   (impair hop:    attach :7000/udp,
#                                                         delay, loss)   relay :7001/udp,
#                                                                        DNS :53, API :7443/tcp
#
# The device finds its basestation through the system resolver (/etc/netns/<ns>/resolv.conf names
# the basestation's DNS zone listener). Asserts: the device attaches and is seen at its NAT's
# public address; a client pairs, calls and diagnoses the path (easy NAT both sides); the master
# switch sends zero packets, counted by nftables in the device's NAT router; the device survives a
# basestation kill -9 on its own; a client behind a hard NAT gets the expected path.
#   netns_test.sh BASESTATION DEVICE CLIENT PKI_SH IMPAIR TCP_ECHO
# Needs root, ip netns, nft and /dev/net/tun; prints SKIP and passes without them (set
# EDGELINK_NETNS_REQUIRED=1 to fail instead, as CI should).
set -uo pipefail

# ---- Expected path per NAT pairing: "direct", "relay", "local", or "none" (the client finds no
# working path and fails with DEADLINE_EXCEEDED).
EASY_NAT_EXPECT=direct # easy NAT (device) x easy NAT (client): hole punching
HARD_NAT_EXPECT=direct # easy NAT (device) x hard NAT (client): "none" until the relay was wired
                       # into the basestation (0a7aa08), "relay" until birthday probing.
WAN_DELAY=${NETNS_WAN_DELAY:-20ms} # one way, through the impair hop
WAN_LOSS=${NETNS_WAN_LOSS:-0}      # e.g. 0.01 for 1 % (seeded: NETNS_WAN_SEED)
WAN_SEED=${NETNS_WAN_SEED:-1}
NAT_FIREWALL=${NETNS_NAT_FIREWALL:-1} # 0: NAT routers without the home-router input firewall
                                   # (see net_nat in netlib.sh)
KEEPALIVE_S=1                      # --keepalive-interval of the basestation

source "$(dirname "$0")/netlib.sh"

if ! why=$(net_require); then
  if [[ ${EDGELINK_NETNS_REQUIRED:-0} == 1 ]]; then
    echo "FAIL: netns test required but cannot run: $why" >&2
    exit 1
  fi
  echo "SKIP: netns_test needs root, ip netns, nft and /dev/net/tun: $why"
  exit 0
fi

# Absolute: processes run from `ip netns exec`, and the script changes nothing else.
BASESTATION=$(realpath "$1")
DEVICE=$(realpath "$2")
CLIENT=$(realpath "$3")
PKI=$(realpath "$4")
IMPAIR=$(realpath "$5")
TCP_ECHO=$(realpath "$6")  # The device's local TCP service, and an application using a tunnel.
DIR=$(mktemp -d "${TEST_TMPDIR:-/tmp}/netns.XXXXXX")
NET_LOG_DIR=$DIR
net_init
T0=$EPOCHREALTIME
say() { printf '[%5.1fs] %s\n' "$(awk -v a="$EPOCHREALTIME" -v b="$T0" 'BEGIN { print a - b }')" "$*"; }
indent() { sed 's/^/          | /'; }
MISMATCHES=()

# ---- The network -----------------------------------------------------------------------------
BS_IP=172.16.0.2
net_ns wan; NS_WAN=$NET_NS
net_ns bs; NS_BS=$NET_NS
net_forwarding "$NS_WAN"
net_link "$NS_WAN" w-bs 172.16.0.1/24 "$NS_BS" eth0 "$BS_IP/24"
net_route "$NS_BS" 172.16.0.1

# nat_site N ROLE KIND HOST: a NAT router "nat$ROLE" (KIND easy|hard) with outside 172.16.N.2 on
# the WAN router and LAN 10.N.0.0/24, and a host namespace HOST at 10.N.0.2 behind it.
nat_site() {
  local n=$1 role=$2 kind=$3 host=$4 router
  net_ns "nat$role"; router=$NET_NS
  net_forwarding "$router"
  net_link "$NS_WAN" "w-$role" "172.16.$n.1/24" "$router" out "172.16.$n.2/24"
  net_route "$router" "172.16.$n.1"
  net_nat "$router" out "$kind" "$( ((NAT_FIREWALL)) || echo open)"
  net_ns "$host"
  net_link "$router" in "10.$n.0.1/24" "$NET_NS" eth0 "10.$n.0.2/24"
  net_route "$NET_NS" "10.$n.0.1"
  net_resolver "$NET_NS" "$BS_IP"
}
nat_site 1 d easy dev; NS_DEV=$NET_NS; net_name natd; NS_NATD=$NET_NS
nat_site 2 c easy cli; NS_CLI=$NET_NS; net_name natc; NS_NATC=$NET_NS
nat_site 3 h hard clih; NS_CLIH=$NET_NS; net_name nath; NS_NATH=$NET_NS
DEV_IP=10.1.0.2 NATD_OUT=172.16.1.2
net_count_from "$NS_NATD" dev "$DEV_IP"
net_impair_router "$NS_WAN" imp0 "$IMPAIR" "$DIR/impair.log" --delay="$WAN_DELAY" \
  --loss="$WAN_LOSS" --seed="$WAN_SEED" w-bs w-d w-c w-h
IMPAIR_PID=$NET_PID
say "network $NET_RUN: bs $BS_IP | dev $DEV_IP behind easy NAT $NATD_OUT | cli 10.2.0.2 behind" \
  "easy NAT 172.16.2.2 | clih 10.3.0.2 behind hard NAT 172.16.3.2 | WAN: impair" \
  "delay $WAN_DELAY loss $WAN_LOSS seed $WAN_SEED"

# ---- The basestation -------------------------------------------------------------------------
ZONE=devices.netns.test
REG=$DIR/registry.db
bash "$PKI" init-ca "$DIR/pki" --server-names "IP:$BS_IP" 2>"$DIR/pki.log" ||
  net_fail "pki init-ca"
bash "$PKI" issue-client "$DIR/pki" alice >/dev/null 2>>"$DIR/pki.log" || net_fail "pki alice"
"$BASESTATION" provision --registry="$REG" --device-id=cam-1 --product=camera --zone="$ZONE" \
  >"$DIR/cam-1.conf" 2>"$DIR/provision.log" || net_fail "provision cam-1"
STICKER=$(awk '$1 == "pairing_secret" { print $3 }' "$DIR/cam-1.conf")

start_basestation() {
  : >"$DIR/basestation.out"
  net_spawn "$NS_BS" "$DIR/basestation.log" "$BASESTATION" serve --registry="$REG" \
    --listen="$BS_IP:7000" --relay-listen="$BS_IP:7001" --dns-listen="$BS_IP:53" \
    --api-listen="$BS_IP:7443" \
    --metrics-listen=0.0.0.0:9100 --zone="$ZONE" --public-address="$BS_IP" \
    --keepalive-interval="${KEEPALIVE_S}s" --tls-cert="$DIR/pki/server.pem" \
    --tls-key="$DIR/pki/server.key" --client-ca="$DIR/pki/client-ca.pem" \
    --crl="$DIR/pki/crl.pem" >"$DIR/basestation.out"
  BS_PID=$NET_PID
  net_wait "basestation READY" 10 grep -q '^READY' "$DIR/basestation.out"
}
metric() {
  net_exec "$NS_BS" curl -sf http://127.0.0.1:9100/metrics | awk -v n="$1" '$1 == n { print $2 }'
}
devices() { "$BASESTATION" devices --registry="$REG"; }
state_is() { devices | awk -v s="$1" '$1 == "cam-1" && $2 == s { f = 1 } END { exit !f }'; }
address_of() { devices | awk '$1 == "cam-1" { print $3 }'; }

start_basestation
say "basestation up in $NS_BS: $(cat "$DIR/basestation.out")"

# The impair hop is on the path: one TCP handshake across the WAN takes two one-way delays.
rtt=$(net_exec "$NS_CLI" curl -s -o /dev/null -w '%{time_connect}' "http://$BS_IP:9100/healthz")
min_rtt=$(awk -v d="${WAN_DELAY%ms}" 'BEGIN { print 2 * d / 1000 }')
awk -v r="$rtt" -v m="$min_rtt" 'BEGIN { exit !(r >= m) }' ||
  net_fail "TCP handshake cli -> bs took ${rtt}s, under ${min_rtt}s"
say "cli -> bs TCP handshake ${rtt}s (>= 2 x $WAN_DELAY: the impair hop is on the path)"

# ---- The device attaches through its NAT, finding the basestation by DNS -----------------------
grep -q '^dns_server\|^basestation ' "$DIR/cam-1.conf" && net_fail "config must rely on DNS"
# The device's local service, which clients reach only through a tunnel (tunnel_ports).
ip netns exec "$NS_DEV" "$TCP_ECHO" serve >"$DIR/service.out" 2>>"$DIR/service.log" &
NET_PIDS+=($!)
net_wait "the device's local service" 5 grep -q '^READY' "$DIR/service.out"
SERVICE_PORT=$(awk '/^READY/ { print $2 }' "$DIR/service.out")
printf 'tunnel_ports = %s\n' "$SERVICE_PORT" >>"$DIR/cam-1.conf"
net_spawn "$NS_DEV" "$DIR/device.log" "$DEVICE" --config="$DIR/cam-1.conf"
DEV_PID=$NET_PID
net_wait "cam-1 online" 15 state_is online
grep -q "basestation cam-1.$ZONE is $BS_IP:7000" "$DIR/device.log" ||
  net_fail "the device did not resolve cam-1.$ZONE to $BS_IP through the system resolver"
(($(metric edgelink_dns_responses_total) >= 1)) || net_fail "the basestation answered no DNS query"
addr=$(address_of)
[[ $addr == "$NATD_OUT":* ]] || net_fail "cam-1 seen at $addr, not at its NAT's address $NATD_OUT"
[[ $addr != "$DEV_IP":* ]] || net_fail "cam-1 seen at its inside address $addr"
say "cam-1 attached via DNS ($(grep -o 'state=attached.*' "$DIR/device.log" | head -n 1))"
devices | indent

# ---- A client behind another easy NAT: pair, call, diagnose -----------------------------------
client_in() {  # client_in NS ARGS...
  local ns=$1
  shift
  net_exec "$ns" "$CLIENT" --basestation="$BS_IP:7443" --ca="$DIR/pki/server-ca.pem" \
    --cert="$DIR/pki/clients/alice.pem" --key="$DIR/pki/clients/alice.key" "$@"
}
out=$(client_in "$NS_CLI" pair cam-1 --secret="$STICKER" --name=alice 2>&1) ||
  net_fail "pair: $out"
say "alice (in $NS_CLI) paired: $out"

# check_path LABEL NS NAT EXPECT: asserts which path a client in NS (behind the router NAT) gets
# to cam-1. A mismatch is recorded (and fails the test at the end) so that one run reports every
# pairing. Also shows how many unsolicited packets (probes that found no NAT mapping) each side's
# NAT dropped meanwhile.
check_path() {
  local label=$1 ns=$2 nat=$3 expect=$4 out rc chosen dev_drops0 cli_drops0
  dev_drops0=$(net_counter "$NS_NATD" unsolicited)
  cli_drops0=$(net_counter "$nat" unsolicited)
  if [[ $expect != none ]]; then
    out=$(client_in "$ns" rpc cam-1 echo "hello from $label" 2>&1)
    rc=$?
    if ((rc == 0)) && [[ $out == "hello from $label" ]]; then
      say "$label: rpc echo answered: $out"
    else
      say "$label: rpc echo failed (exit $rc): $out"
      MISMATCHES+=("$label: rpc echo failed: $out")
    fi
  fi
  out=$(client_in "$ns" diagnose cam-1 2>&1)
  rc=$?
  chosen=$(sed -n 's/^chosen path: \([a-z]*\).*/\1/p' <<<"$out")
  ((rc == 0)) || chosen=none
  say "$label: client diagnose (exit $rc) -> path ${chosen:-?}, expected $expect"
  indent <<<"$out"
  say "$label: unsolicited packets dropped by the device's NAT:" \
    "$(($(net_counter "$NS_NATD" unsolicited) - dev_drops0)), by the client's NAT:" \
    "$(($(net_counter "$nat" unsolicited) - cli_drops0))"
  if [[ $chosen != "$expect" ]]; then
    MISMATCHES+=("$label: chosen path ${chosen:-?}, expected $expect")
  elif [[ $expect == none && $out != *DEADLINE_EXCEEDED*"no path"* ]]; then
    MISMATCHES+=("$label: expected DEADLINE_EXCEEDED (no path), got: $out")
  fi
}
check_path "easy NAT x easy NAT" "$NS_CLI" "$NS_NATC" "$EASY_NAT_EXPECT"

# ---- A file through a TCP tunnel across both NATs: same bytes at both ends ---------------------
ip netns exec "$NS_CLI" "$CLIENT" --basestation="$BS_IP:7443" --ca="$DIR/pki/server-ca.pem" \
  --cert="$DIR/pki/clients/alice.pem" --key="$DIR/pki/clients/alice.key" tunnel cam-1 \
  --listen=127.0.0.1:0 --to="$SERVICE_PORT" >"$DIR/tunnel.out" 2>>"$DIR/tunnel.log" &
TUNNEL_PID=$!
NET_PIDS+=("$TUNNEL_PID")
net_wait "client tunnel listening" 15 grep -q '^listening on' "$DIR/tunnel.out"
LOCAL_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\):.*/\1/p' "$DIR/tunnel.out")
head -c 10000000 /dev/urandom >"$DIR/payload"
sent=$(sha256sum <"$DIR/payload" | cut -c1-64)
echoed=$(ip netns exec "$NS_CLI" "$TCP_ECHO" send "$LOCAL_PORT" <"$DIR/payload" | sha256sum | cut -c1-64)
[[ $sent == "$echoed" ]] || net_fail "the tunnel changed the bytes (sent ${sent:0:16}, got ${echoed:0:16})"
say "10 MB through a TCP tunnel across both NATs to the device's service and back: sha256 ${sent:0:16}… both ends"
kill -TERM "$TUNNEL_PID"

# ---- Master switch: remote access off sends nothing, counted by the device's NAT router --------
fwd=$(net_counter "$NS_NATD" dev_fwd)
((fwd > 0)) || net_fail "the NAT router's counter saw none of the device's packets while on"
sed -i 's/^remote_access = on/remote_access = off/' "$DIR/cam-1.conf"
kill -HUP "$DEV_PID"
net_wait "device state=off" 10 grep -q 'state=off' "$DIR/device.log"
fwd0=$(net_counter "$NS_NATD" dev_fwd)
in0=$(net_counter "$NS_NATD" dev_in)
dns0=$(metric edgelink_dns_queries_total)
kill -USR1 "$DEV_PID"
net_wait "device counters" 5 grep -q 'counters ' "$DIR/device.log"
sent0=$(grep -o 'counters packets_sent=[0-9]* dns_lookups=[0-9]*' "$DIR/device.log" | tail -n 1)
window_start=$SECONDS
min_window=$((2 * KEEPALIVE_S + 1)) # more than one keep-alive interval, with margin
off_long_enough() { state_is offline && ((SECONDS - window_start >= min_window)); }
say "remote_access=off (device logged state=off); NAT counters: forward=$fwd0 input=$in0"
net_wait "the basestation marks cam-1 offline" 20 off_long_enough
window=$((SECONDS - window_start))
fwd1=$(net_counter "$NS_NATD" dev_fwd)
in1=$(net_counter "$NS_NATD" dev_in)
kill -USR1 "$DEV_PID"
counter_lines() { (($(grep -c 'counters ' "$DIR/device.log") >= $1)); }
net_wait "second device counters" 5 counter_lines 2
sent1=$(grep -o 'counters packets_sent=[0-9]* dns_lookups=[0-9]*' "$DIR/device.log" | tail -n 1)
say "after ${window}s (keep-alive ${KEEPALIVE_S}s; cam-1 now offline): forward=$fwd1 input=$in1," \
  "device: ${sent1#counters }"
[[ $fwd1 == "$fwd0" && $in1 == "$in0" ]] ||
  net_fail "remote access off, yet the device sent packets: forward $fwd0 -> $fwd1, input $in0 -> $in1"
[[ $sent1 == "$sent0" ]] || net_fail "device counters moved while off: $sent0 -> $sent1"
[[ $(metric edgelink_dns_queries_total) == "$dns0" ]] || net_fail "DNS queries while off"
sed -i 's/^remote_access = off/remote_access = on/' "$DIR/cam-1.conf"
kill -HUP "$DEV_PID"
net_wait "cam-1 online after remote access on" 15 state_is online
(($(net_counter "$NS_NATD" dev_fwd) > fwd1)) || net_fail "counter did not move after switching on"
say "remote_access=on: cam-1 online again (forward counter $(net_counter "$NS_NATD" dev_fwd))"

# ---- kill -9 the basestation; the device comes back by itself ----------------------------------
attaches=$(grep -c 'state=attached' "$DIR/device.log")
kill -9 "$BS_PID"
wait "$BS_PID" 2>/dev/null
say "basestation killed (-9); restarting on the same address and ports"
start_basestation
reattached() { (($(grep -c 'state=attached' "$DIR/device.log") > attaches)); }
net_wait "cam-1 re-attaches to the new basestation" 20 reattached
attached_metric_is() { [[ $(metric edgelink_attached_devices) == "$1" ]]; }
net_wait "new basestation counts cam-1 attached" 10 attached_metric_is 1
net_wait "cam-1 online after restart" 10 state_is online
say "cam-1 re-attached by itself: $(grep 'state=attached' "$DIR/device.log" | tail -n 1 |
  grep -o 'state=attached.*')"

# ---- A client behind a hard NAT ----------------------------------------------------------------
check_path "easy NAT x hard NAT" "$NS_CLIH" "$NS_NATH" "$HARD_NAT_EXPECT"

# ---- Wrap up -----------------------------------------------------------------------------------
kill -0 "$BS_PID" 2>/dev/null || net_fail "basestation died"
kill -0 "$DEV_PID" 2>/dev/null || net_fail "device daemon died"
secret=$(awk '$1 == "secret" { print $3 }' "$DIR/cam-1.conf")
grep -q "$secret" "$DIR"/*.log && net_fail "the device secret appears in a log"
kill -USR1 "$IMPAIR_PID"
net_wait "impair counters" 5 grep -q 'impair counters' "$DIR/impair.log"
say "WAN hop: $(grep -o 'impair counters.*' "$DIR/impair.log" | tail -n 1)"
if ((${#MISMATCHES[@]})); then
  printf 'FAIL: path expectation not met: %s\n' "${MISMATCHES[@]}" >&2
  exit 1
fi
say "PASS"
[[ -n ${TEST_TMPDIR:-} ]] || rm -rf "$DIR" # outside Bazel, logs stay only after a failure
