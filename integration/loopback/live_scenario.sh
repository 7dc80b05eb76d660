#!/usr/bin/env bash
# The live scenario of the README's first command (tools/demo.sh), also run as a test: real
# processes on this machine: a basestation (UDP attach + DNS zone + gRPC API over mutual TLS +
# metrics), a device daemon that finds it by DNS, and client CLIs with certificates from a fresh
# CA. Everything lives in a temporary directory and stops at the end.
#   live_scenario.sh BASESTATION DEVICE CLIENT CRYPTO_VECTORS_BORINGSSL CRYPTO_VECTORS_OPENSSL \
#       [TCP_ECHO]
# With TCP_ECHO (integration/loopback:tcp_echo), the device also offers a local TCP service
# through its tunnel_ports and alice tunnels to it.
set -euo pipefail
BASESTATION=$1
DEVICE=$2
CLIENT=$3
VECTORS_BORINGSSL=$4
VECTORS_OPENSSL=$5
TCP_ECHO=${6:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '   %s\n' "$*"; }

TMP=$(mktemp -d "${TEST_TMPDIR:-/tmp}/edgelink-demo.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "demo: timed out waiting for: $*" >&2; tail -n 20 "$TMP"/*.log >&2; exit 1; }
    sleep 0.1
  done
}

say "crypto self-check: the device's BoringSSL and the basestation's OpenSSL agree"
bash "$ROOT/common/crypto/backends_agree_test.sh" "$VECTORS_BORINGSSL" "$VECTORS_OPENSSL" |
  sed 's/^/   /' | tail -n 1

say "a vendor sets up its private basestation"
bash "$ROOT/tools/pki/pki.sh" init-ca "$TMP/pki" --server-names "DNS:localhost,IP:127.0.0.1" 2>/dev/null
ALICE=$(bash "$ROOT/tools/pki/pki.sh" issue-client "$TMP/pki" alice 2>/dev/null)
BOB=$(bash "$ROOT/tools/pki/pki.sh" issue-client "$TMP/pki" bob 2>/dev/null)
step "client CA and basestation certificate made; alice is ${ALICE:0:16}…, bob is ${BOB:0:16}…"
"$BASESTATION" provision --registry="$TMP/registry.db" --device-id=front-door-cam \
  --product="doorbell camera" --zone=devices.demo >"$TMP/device.conf"
STICKER=$(awk '/^pairing_secret/ {print $3}' "$TMP/device.conf")
step "provisioned device front-door-cam (pairing sticker: $STICKER)"
"$BASESTATION" serve --registry="$TMP/registry.db" --listen=127.0.0.1:0 --dns-listen=127.0.0.1:0 \
  --metrics-listen=127.0.0.1:0 --api-listen=127.0.0.1:0 --relay-listen=127.0.0.1:0 --zone=devices.demo \
  --public-address=127.0.0.1 --keepalive-interval=2s --tls-cert="$TMP/pki/server.pem" \
  --tls-key="$TMP/pki/server.key" --client-ca="$TMP/pki/client-ca.pem" --crl="$TMP/pki/crl.pem" \
  >"$TMP/basestation.out" 2>"$TMP/basestation.log" &
PIDS+=($!)
wait_for 10 grep -q '^READY' "$TMP/basestation.out"
read -r _ attach dns metrics api relay <"$TMP/basestation.out"
ATTACH=${attach#attach=}; DNS=${dns#dns=}; API=127.0.0.1:${api#api=}; METRICS=${metrics#metrics=}
RELAY=${relay#relay=}
step "basestation up: attach $ATTACH (UDP), DNS $DNS, API $API (gRPC, mutual TLS),"
step "relay $RELAY (UDP), metrics :$METRICS"

say "the device comes up and finds its basestation by DNS"
printf 'dns_server = %s\nbasestation_port = %s\n' "$DNS" "${ATTACH##*:}" >>"$TMP/device.conf"
if [[ -n $TCP_ECHO ]]; then
  # The camera's local service (here an echo server on 127.0.0.1), which clients may reach
  # through TCP tunnels: the device connects to 127.0.0.1:<port> only for tunnel_ports.
  "$TCP_ECHO" serve >"$TMP/service.out" 2>"$TMP/service.log" &
  PIDS+=($!)
  wait_for 5 grep -q '^READY' "$TMP/service.out"
  SERVICE_PORT=$(awk '/^READY/ {print $2}' "$TMP/service.out")
  printf 'tunnel_ports = %s\n' "$SERVICE_PORT" >>"$TMP/device.conf"
  step "the device's local service listens on 127.0.0.1:$SERVICE_PORT (tunnel_ports = $SERVICE_PORT)"
fi
"$DEVICE" --config="$TMP/device.conf" 2>"$TMP/device.log" &
DEVICE_PID=$!
PIDS+=($DEVICE_PID)
online() { "$BASESTATION" devices --registry="$TMP/registry.db" | grep -q "front-door-cam *online"; }
wait_for 10 online
grep -o 'state=attached.*' "$TMP/device.log" | head -n 1 | sed 's/^/   device: /'
"$BASESTATION" devices --registry="$TMP/registry.db" | sed 's/^/   /'

client() {  # client NAME ARGS...
  local name=$1; shift
  "$CLIENT" --basestation="$API" --ca="$TMP/pki/server-ca.pem" --cert="$TMP/pki/clients/$name.pem" \
    --key="$TMP/pki/clients/$name.key" "$@"
}

say "alice pairs with the device using its sticker, becoming its owner"
client alice pair front-door-cam --secret="$STICKER" --name=alice | sed 's/^/   /'
say "alice connects: the basestation brokers a session key, then a direct path is raced"
client alice diagnose front-door-cam | sed 's/^/   /'
say "alice calls the device over the encrypted peer channel"
client alice rpc front-door-cam status | sed 's/^/   /'
say "the same through the basestation relay only (it forwards ciphertext it cannot read)"
client alice --relay-only diagnose front-door-cam | grep -E '^(chosen|  path relay)' | sed 's/^/   /'
client alice --relay-only rpc front-door-cam echo "relayed hello" | sed 's/^/   /'

if [[ -n $TCP_ECHO ]]; then
  say "alice tunnels TCP to the device's local service (client tunnel), over the peer channel"
  "$CLIENT" --basestation="$API" --ca="$TMP/pki/server-ca.pem" --cert="$TMP/pki/clients/alice.pem" \
    --key="$TMP/pki/clients/alice.key" tunnel front-door-cam --listen=127.0.0.1:0 \
    --to="$SERVICE_PORT" >"$TMP/tunnel.out" 2>"$TMP/tunnel.log" &
  TUNNEL_PID=$!
  PIDS+=($TUNNEL_PID)
  wait_for 15 grep -q '^listening on' "$TMP/tunnel.out"
  sed -n 's/^/   /; /listening on/p' "$TMP/tunnel.out"
  LOCAL_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\):.*/\1/p' "$TMP/tunnel.out")
  head -c 20000000 /dev/urandom >"$TMP/payload"
  SENT=$(sha256sum <"$TMP/payload" | cut -c1-64)
  ECHOED=$("$TCP_ECHO" send "$LOCAL_PORT" <"$TMP/payload" | sha256sum | cut -c1-64)
  [[ $SENT == "$ECHOED" ]] || { echo "demo: the tunnel changed the bytes" >&2; exit 1; }
  wait_for 10 grep -q 'closed: ' "$TMP/tunnel.out"
  step "20 MB sent through the tunnel and echoed back by the device's service: sha256 ${SENT:0:16}… both ways"
  grep -E '^\[1\] (open|closed)' "$TMP/tunnel.out" | sed 's/^/   client: /'
  kill -TERM "$TUNNEL_PID"
  wait_for 10 grep -q '^stopped' "$TMP/tunnel.out"
  step "a port not in tunnel_ports is refused by the device, and the connection closed:"
  "$CLIENT" --basestation="$API" --ca="$TMP/pki/server-ca.pem" --cert="$TMP/pki/clients/alice.pem" \
    --key="$TMP/pki/clients/alice.key" tunnel front-door-cam --listen=127.0.0.1:0 --to=22 \
    >"$TMP/tunnel22.out" 2>"$TMP/tunnel22.log" &
  TUNNEL_PID=$!
  PIDS+=($TUNNEL_PID)
  wait_for 15 grep -q '^listening on' "$TMP/tunnel22.out"
  LOCAL_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\):.*/\1/p' "$TMP/tunnel22.out")
  # Closed unread, the connection may end in a reset rather than end of file: either will do.
  GOT=$( (echo "SSH-2.0-hello" | "$TCP_ECHO" send "$LOCAL_PORT" 2>/dev/null || true) | wc -c)
  [[ $GOT == 0 ]] || { echo "demo: a refused tunnel carried $GOT bytes" >&2; exit 1; }
  wait_for 10 grep -q 'not tunnelled' "$TMP/tunnel22.out"
  grep 'not tunnelled' "$TMP/tunnel22.out" | sed 's/^/   client: /'
  kill -INT "$TUNNEL_PID"
  wait_for 10 grep -q '^stopped' "$TMP/tunnel22.out"
  grep -o 'tunnel [0-9]* port .*' "$TMP/device.log" | sed 's/^/   device: /'
fi

say "bob is not on the device's access list: the device itself refuses him"
client bob connect front-door-cam 2>&1 | sed 's/^/   /' || true
client alice users add front-door-cam "$BOB" --role=user --name=bob
step "alice added bob; bob now gets through:"
client bob rpc front-door-cam echo "hello from bob" | sed 's/^/   /'
client alice users list front-door-cam | sed 's/^/   /'

say "master switch: remote access off, the device goes silent"
sed -i 's/^remote_access = on/remote_access = off/' "$TMP/device.conf"
kill -HUP "$DEVICE_PID"
wait_for 10 grep -q 'state=stopped' "$TMP/device.log"
offline() { "$BASESTATION" devices --registry="$TMP/registry.db" | grep -q "front-door-cam *offline"; }
wait_for 20 offline
kill -USR1 "$DEVICE_PID"
wait_for 5 grep -q 'counters ' "$TMP/device.log"
step "basestation: $("$BASESTATION" devices --registry="$TMP/registry.db" | grep front-door-cam | awk '{print $1, $2}')"
client bob connect front-door-cam 2>&1 | sed 's/^/   /' || true
sed -i 's/^remote_access = off/remote_access = on/' "$TMP/device.conf"
kill -HUP "$DEVICE_PID"
wait_for 10 online
step "remote access on again: front-door-cam is online"

say "basestation metrics (Prometheus text, excerpt)"
curl -sf "http://127.0.0.1:$METRICS/metrics" | grep -E '^edgelink_(attached_devices|handshakes_total|keepalives_total|packets_dropped_total)' | sed 's/^/   /'
say "done: every process stops now"
