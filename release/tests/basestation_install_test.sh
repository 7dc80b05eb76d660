#!/usr/bin/env bash
# Installs edgelink-basestation with apt-get as an operator would, then checks what it set up: the
# user, the state directory, the conffile, `systemd-analyze verify` of the unit (any output is a
# failure), its security exposure; runs the unit's ExecStart as systemd would (the edgelink user,
# CAP_NET_BIND_SERVICE only, the packaged config: DNS on port 53) and attaches a device to it;
# then removes and purges the package.
#
# Nothing touches this machine: everything runs in private mount and network namespaces where
# /usr, /etc and /var are overlays on tmpfs (so dpkg's database, the new user and the installed
# files vanish with the namespace) and /run is empty (no systemd to talk to).
#   basestation_install_test.sh VERSION BASESTATION_DEB DEVICE_DAEMON
# Needs root (CI has it); prints SKIP and passes without it.
set -uo pipefail
version_file=$1 deb=$2 device=$3
source "$(dirname "$0")/tests/lib.sh" || exit 1  # Bazel runs this as release/<test name>
export PATH=$PATH:/usr/sbin:/sbin  # runuser, adduser, ldconfig: Bazel's test PATH has no sbin.

if [[ ${1:-} != --inside ]]; then
  if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null; then
    echo "SKIP: basestation_install_test needs root and unshare (it installs into namespaces)"
    exit 0
  fi
  exec unshare --mount --net --propagation private -- \
    bash "$0" --inside "$TMP" "$(realpath "$version_file")" "$(realpath "$deb")" \
    "$(realpath "$device")"
fi
# Inside the namespaces from here on.
TMP=$2 version_file=$3 deb=$4 device=$5
version=$(tr -d '[:space:]' <"$version_file")

mkdir -p "$TMP/overlay"
mount -t tmpfs tmpfs "$TMP/overlay" || fail "cannot mount a tmpfs"
for dir in usr etc var; do
  mkdir -p "$TMP/overlay/$dir/upper" "$TMP/overlay/$dir/work"
  mount -t overlay overlay \
    -o "lowerdir=/$dir,upperdir=$TMP/overlay/$dir/upper,workdir=$TMP/overlay/$dir/work" "/$dir" ||
    fail "cannot overlay /$dir"
done
mount -t tmpfs tmpfs /run || fail "cannot hide /run"
ip link set lo up || fail "no loopback in the network namespace"
# On a machine without the package, the user must come from the package's postinst.
if ! dpkg-query -W edgelink-basestation >/dev/null 2>&1; then
  ! getent passwd edgelink >/dev/null || fail "an edgelink user exists before the install"
fi

# --- Install ----------------------------------------------------------------------------------
# Its dependencies are already here (the binary was built against them): nothing to download.
apt-get install -s --no-install-recommends "$deb" >"$TMP/apt-simulate.log" 2>&1 ||
  fail "apt-get cannot resolve edgelink-basestation's dependencies"
[[ $(grep '^Inst ' "$TMP/apt-simulate.log" | cut -d' ' -f2) == edgelink-basestation ]] ||
  fail "apt-get would install more than edgelink-basestation: $(grep '^Inst ' "$TMP/apt-simulate.log")"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" \
  >"$TMP/apt-install.log" 2>&1 || fail "apt-get install ./edgelink-basestation.deb failed"
[[ $(dpkg-query -W -f='${Status} ${Version}' edgelink-basestation) == "install ok installed $version" ]] ||
  fail "not installed: $(dpkg-query -W -f='${Status} ${Version}' edgelink-basestation)"
[[ $(edgelink-basestation --version) == "edgelink $version" ]] || fail "edgelink-basestation --version"
ok "apt-get install: edgelink-basestation $version installed, on PATH"

IFS=: read -r _ _ uid _ _ home shell < <(getent passwd edgelink) || fail "no edgelink user"
(( uid < 1000 )) || fail "edgelink is not a system user (uid $uid)"
[[ $shell == */nologin || $shell == /bin/false ]] || fail "edgelink has a login shell: $shell"
[[ $(stat -c '%U:%G %a' /var/lib/edgelink) == "edgelink:edgelink 750" ]] ||
  fail "/var/lib/edgelink is $(stat -c '%U:%G %a' /var/lib/edgelink)"
ok "system user edgelink (uid $uid, $shell, home $home); /var/lib/edgelink edgelink:edgelink 750"
dpkg-query -W -f='${Conffiles}\n' edgelink-basestation | grep -q '^ /etc/edgelink/basestation.conf ' ||
  fail "dpkg does not list /etc/edgelink/basestation.conf as a conffile"
ok "/etc/edgelink/basestation.conf is a conffile"

# --- The unit ---------------------------------------------------------------------------------
systemd-analyze verify edgelink-basestation.service >"$TMP/verify.out" 2>"$TMP/verify.err"
status=$?
(( status == 0 )) && [[ ! -s $TMP/verify.err && ! -s $TMP/verify.out ]] ||
  fail "systemd-analyze verify (exit $status): $(cat "$TMP/verify.out" "$TMP/verify.err")"
ok "systemd-analyze verify edgelink-basestation.service: exit 0, no output"
systemd-analyze security --offline=yes edgelink-basestation.service >"$TMP/security.out" 2>&1 ||
  true  # Exits non-zero above its threshold; the figure is judged below.
exposure=$(sed -n 's/.*Overall exposure level for edgelink-basestation.service: \([0-9.]*\).*/\1/p' \
  "$TMP/security.out")
[[ -n $exposure ]] || fail "no exposure level: $(tail -n 3 "$TMP/security.out")"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
  fail "systemd-analyze security: exposure $exposure, want <= 2.0: $(grep '✗' "$TMP/security.out")"
ok "systemd-analyze security: exposure $exposure (of 10; <= 2.0 is 'OK')"

# --- Run it as systemd would ------------------------------------------------------------------
unit=/lib/systemd/system/edgelink-basestation.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[[ -n $exec_start ]] || fail "no ExecStart"
read -r -a command <<<"$exec_start"
cd /var/lib/edgelink || fail "no working directory"
setpriv --reuid=edgelink --regid=edgelink --init-groups --inh-caps=-all,+net_bind_service \
  --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service --no-new-privs -- \
  "${command[@]}" >"$TMP/serve.out" 2>"$TMP/serve.log" &
PIDS+=($!)
wait_for "the packaged basestation's READY line" 10 grep -q '^READY' "$TMP/serve.out"
ready=$(cat "$TMP/serve.out")
for want in attach=0.0.0.0:7000 dns=0.0.0.0:53 metrics=9100 relay=0.0.0.0:7001; do
  [[ " $ready " == *" $want "* ]] || fail "packaged config: READY says '$ready', want $want"
done
[[ $(curl -sf http://127.0.0.1:9100/healthz) == ok ]] || fail "no /healthz on 127.0.0.1:9100"
ok "ExecStart as edgelink with CAP_NET_BIND_SERVICE: $ready"

# The operator's commands, as OPERATOR.md gives them.
runuser -u edgelink -- edgelink-basestation provision --flagfile=/etc/edgelink/basestation.conf \
  --device-id=cam-1 --product=camera >"$TMP/cam-1.conf" 2>"$TMP/provision.log" ||
  fail "provision as the edgelink user"
grep -q '^zone = devices.example.com$' "$TMP/cam-1.conf" || fail "provision ignored the config's zone"
echo "basestation = 127.0.0.1:7000" >>"$TMP/cam-1.conf"
"$device" --config="$TMP/cam-1.conf" 2>"$TMP/device.log" &
PIDS+=($!)
online() {
  runuser -u edgelink -- edgelink-basestation devices --flagfile=/etc/edgelink/basestation.conf |
    awk '$1 == "cam-1" && $2 == "online" { found = 1 } END { exit !found }'
}
wait_for "cam-1 online at the packaged basestation" 10 online
ok "a provisioned device attaches to the packaged basestation"

# The backup OPERATOR.md gives, taken while the server runs (WAL mode), restores the device.
backup=/var/lib/edgelink/backup.db
runuser -u edgelink -- sqlite3 /var/lib/edgelink/registry.db ".backup '$backup'" \
  2>"$TMP/backup.log" || fail "sqlite3 .backup of the live registry"
[[ $(sqlite3 "$backup" 'PRAGMA integrity_check') == ok ]] || fail "the backup fails integrity_check"
[[ $(edgelink-basestation devices --registry="$backup") == *$'\ncam-1 '* ]] || fail "cam-1 not in the backup"
ok "sqlite3 .backup of the live registry: integrity ok, holds cam-1"
kill "${PIDS[@]}"
wait "${PIDS[@]}" 2>/dev/null
PIDS=()

# --- Remove, purge ----------------------------------------------------------------------------
apt-get remove -y edgelink-basestation >"$TMP/apt-remove.log" 2>&1 || fail "apt-get remove"
[[ ! -e /usr/bin/edgelink-basestation && ! -e $unit ]] || fail "remove left the binary or unit"
[[ -f /etc/edgelink/basestation.conf ]] || fail "remove deleted the conffile"
apt-get purge -y edgelink-basestation >"$TMP/apt-purge.log" 2>&1 || fail "apt-get purge"
[[ ! -e /etc/edgelink/basestation.conf ]] || fail "purge left the conffile"
[[ -f /var/lib/edgelink/registry.db ]] || fail "purge deleted the registry (device secrets)"
ok "remove keeps the config, purge removes it; the registry stays"
echo PASS
