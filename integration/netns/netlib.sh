# netlib.sh: build a throw-away test network of Linux network namespaces behind nftables NAT.
# Source it from bash (set -u safe); needs root, iproute2 (`ip netns`), nftables (`nft`) and, for
# the impairment hop, /dev/net/tun. Read net_require first.
#
# Everything a run makes is named "<NET_RUN>-<role>" (NET_RUN = "eln<pid>x<random>"), so parallel
# runs never collide. Interfaces are created straight inside their namespaces (never in the
# caller's), so deleting the namespaces removes every veth: nothing can leak into the host's
# `ip link`. An EXIT trap (net_cleanup) stops the processes started with net_spawn, kills whatever
# else still runs inside our namespaces, deletes them and their /etc/netns/<ns> directories, even
# after a failure. A run that was SIGKILLed cannot clean up; the next run deletes namespaces
# whose owning pid is gone (net_sweep_stale).
#
# Addresses exist only inside these namespaces: the "internet" is 172.16.<n>.0/24, one link per
# box on the WAN router (.1 on the router side); LANs behind NAT routers are 10.<n>.0.0/24 (the
# router is .1, hosts .2 and up).
#
#   net_require                          0 if we can build networks; else prints why, returns 1
#   net_init                             picks NET_RUN, installs the cleanup trap
#   net_ns ROLE                          creates namespace "$NET_RUN-ROLE", lo up; returns its name
#                                        in NET_NS (also: net_name ROLE)
#   net_link NS_A IF_A ADDR_A/LEN NS_B IF_B ADDR_B/LEN
#                                        a veth pair between two namespaces, addressed and up
#   net_route NS VIA                     default route of NS
#   net_forwarding NS                    lets NS route (ip_forward=1, rp_filter off)
#   net_nat NS OUT_IF easy|hard [open]   masquerade on OUT_IF: easy = `masquerade` (endpoint-
#                                        independent mapping, address-and-port-dependent
#                                        filtering), hard = `masquerade random,fully-random`
#                                        (a new random port per 5-tuple). Like a home router's
#                                        firewall, it drops unsolicited packets from OUT_IF
#                                        (counted in "unsolicited"), unless `open` is given.
#   net_count_from NS NAME ADDR          nftables counters NAME_fwd (forward chain) and NAME_in
#                                        (input chain) of packets with source ADDR
#   net_counter NS NAME                  the packet count of a counter
#   net_resolver NS NAMESERVER           /etc/netns/NS/resolv.conf: NS's system resolver asks
#                                        NAMESERVER (applies to processes run with net_exec)
#   net_exec NS CMD...                   runs CMD in NS (ip netns exec)
#   net_spawn NS LOG CMD...              starts CMD in NS in the background, stderr to LOG; its
#                                        pid in NET_PID, stopped by net_cleanup
#   net_impair_router NS TUN IMPAIR LOG [--delay=20ms --loss=P --seed=N] IFACE...
#                                        makes NS (a router) pass every packet arriving on one of
#                                        IFACE... through the `impair` binary IMPAIR on a new TUN
#                                        device TUN (see below); its pid in NET_PID
#   net_wait WHAT SECONDS CMD...         polls CMD (every 50 ms) until it succeeds; on timeout
#                                        calls net_fail
#   net_fail MESSAGE                     prints MESSAGE, the tails of logs in NET_LOG_DIR, exits 1

# Bazel's strict action environment leaves the sbin directories (ip, nft, sysctl) off PATH.
PATH=$PATH:/usr/sbin:/sbin

NET_RUN=""
NET_NAMESPACES=()
NET_PIDS=()
NET_LOG_DIR=${NET_LOG_DIR:-${TEST_TMPDIR:-/tmp}}
NET_NS=""
NET_PID=""

net_require() {
  local why=""
  if [[ $(id -u) != 0 ]]; then
    why="not root"
  elif ! command -v ip >/dev/null 2>&1; then
    why="no ip command (iproute2)"
  elif ! command -v nft >/dev/null 2>&1; then
    why="no nft command (nftables)"
  elif [[ ! -c /dev/net/tun ]]; then
    why="no /dev/net/tun"
  else
    # Root is not enough in some containers: try what the tests do, in a probe namespace.
    local probe="elnprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then
      why="ip netns add failed (no CAP_SYS_ADMIN?)"
    else
      if ! ip netns exec "$probe" nft add table ip probe 2>/dev/null; then
        why="nft cannot create a table (no nf_tables in this kernel?)"
      fi
      ip netns del "$probe" 2>/dev/null
    fi
  fi
  [[ -z $why ]] && return 0
  echo "$why"
  return 1
}

# net_sweep_stale removes namespaces of earlier runs (names "eln<pid>x...") whose pid is gone.
net_sweep_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
    [[ $ns =~ ^eln([0-9]+)x[0-9a-f]+- ]] || continue
    pid=${BASH_REMATCH[1]}
    kill -0 "$pid" 2>/dev/null && continue
    net_delete_ns "$ns"
  done
}

net_init() {
  NET_RUN=$(printf 'eln%dx%04x' "$$" "$((RANDOM * 2 + RANDOM % 2))")
  net_sweep_stale
  trap net_cleanup EXIT
  trap 'exit 130' INT TERM
}

net_name() { NET_NS="$NET_RUN-$1"; }

net_ns() {
  net_name "$1"
  ip netns add "$NET_NS" || net_fail "cannot create namespace $NET_NS"
  NET_NAMESPACES+=("$NET_NS")
  ip -n "$NET_NS" link set lo up
}

net_link() {
  local ns_a=$1 if_a=$2 addr_a=$3 ns_b=$4 if_b=$5 addr_b=$6
  ip -n "$ns_a" link add "$if_a" type veth peer name "$if_b" netns "$ns_b" ||
    net_fail "cannot create veth $ns_a/$if_a - $ns_b/$if_b"
  ip -n "$ns_a" addr add "$addr_a" dev "$if_a"
  ip -n "$ns_b" addr add "$addr_b" dev "$if_b"
  ip -n "$ns_a" link set "$if_a" up
  ip -n "$ns_b" link set "$if_b" up
}

net_route() { ip -n "$1" route add default via "$2" || net_fail "cannot route $1 via $2"; }

net_forwarding() {
  ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 || net_fail "cannot enable forwarding in $1"
}

# Why the firewall matters: an unsolicited packet that reaches the router itself (a peer's hole-
# punching probe that arrived before our own went out) would otherwise leave a conntrack entry
# behind, and our host's outgoing probe to that peer would then clash with it and be masqueraded
# to another port: hole punching through two plain Linux masquerades never succeeds. Dropping the
# packet in the input chain, as home routers do, happens before conntrack confirms the entry.
net_nat() {
  local ns=$1 out_if=$2 kind=$3 open=${4:-} how verdict=drop
  case $kind in
    easy) how="masquerade" ;;
    hard) how="masquerade random,fully-random" ;;
    *) net_fail "net_nat: unknown NAT kind $kind" ;;
  esac
  [[ $open == open ]] && verdict=""
  ip netns exec "$ns" nft -f - <<EOF || net_fail "cannot set up $kind NAT in $ns"
table ip edgelink {
  counter unsolicited {}
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$out_if" $how
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$out_if" ct state new counter name "unsolicited" $verdict
  }
}
EOF
}

net_count_from() {
  local ns=$1 name=$2 addr=$3
  ip netns exec "$ns" nft -f - <<EOF || net_fail "cannot add counters $name in $ns"
add counter ip edgelink ${name}_fwd
add counter ip edgelink ${name}_in
add rule ip edgelink forward ip saddr $addr counter name "${name}_fwd"
add rule ip edgelink input ip saddr $addr counter name "${name}_in"
EOF
}

net_counter() {
  ip netns exec "$1" nft list counter ip edgelink "$2" |
    awk '$1 == "packets" { print $2; found = 1 } END { exit !found }'
}

net_resolver() {
  mkdir -p "/etc/netns/$1"
  printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$2" >"/etc/netns/$1/resolv.conf"
}

net_exec() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

net_spawn() {
  local ns=$1 log=$2
  shift 2
  # ip netns exec execs the command: NET_PID is the command's own pid.
  ip netns exec "$ns" "$@" 2>>"$log" &
  NET_PID=$!
  NET_PIDS+=("$NET_PID")
}

# The impairment hop. The router's own routing would forward directly between its interfaces;
# policy routing instead sends every packet that arrives on one of IFACE... into TUN, where
# `impair` holds it for the delay (or drops it) and writes it back. A packet coming out of TUN
# matches none of those rules, so the main table forwards it to its real next hop. Each packet
# crosses the hop once per router traversal: --delay is the one-way delay of the WAN.
net_impair_router() {
  local ns=$1 tun=$2 impair=$3 log=$4
  shift 4
  local args=() ifaces=()
  while (($#)); do
    case $1 in
      --*) args+=("$1") ;;
      *) ifaces+=("$1") ;;
    esac
    shift
  done
  ip -n "$ns" tuntap add mode tun name "$tun" || net_fail "cannot create TUN $tun in $ns"
  ip -n "$ns" link set "$tun" up
  ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$tun.rp_filter=0"
  net_spawn "$ns" "$log" "$impair" --tun="$tun" "${args[@]}" >"$log.out"
  net_wait "impair READY" 10 grep -q '^READY' "$log.out"
  ip -n "$ns" route add default dev "$tun" table 100 || net_fail "cannot route into $tun"
  local iface
  for iface in "${ifaces[@]}"; do
    ip -n "$ns" rule add iif "$iface" lookup 100 priority 100 ||
      net_fail "cannot steer $iface into $tun"
  done
}

net_wait() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || net_fail "timed out after ${seconds}s waiting for: $what"
    sleep 0.05
  done
}

net_fail() {
  echo "FAIL: $*" >&2
  local log
  for log in "$NET_LOG_DIR"/*.log; do
    [[ -f $log ]] || continue
    echo "--- $log (last 25 lines)" >&2
    tail -n 25 "$log" >&2
  done
  exit 1
}

net_delete_ns() {
  local ns=$1 pid
  # Only our own processes live in our namespaces (anything started there by this run).
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  rm -rf "/etc/netns/$ns"
}

net_cleanup() {
  local status=$? pid ns deadline
  trap - EXIT
  for pid in "${NET_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  # Bounded: whatever has not stopped in 3 s is killed with its namespace below.
  deadline=$((SECONDS + 3))
  for pid in "${NET_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  done
  for ns in "${NET_NAMESPACES[@]}"; do net_delete_ns "$ns"; done
  rmdir /etc/netns 2>/dev/null # only when no other run still uses it
  wait 2>/dev/null
  exit "$status"
}
