#!/usr/bin/env bash
# Device footprint: what the device core costs an MCU-sized device.
#
#   footprint.sh --state=BINARY --libcrypto=SO ARCHIVE...
#
# Code: `size` of the device core's static archives built -c opt -Os (//release:device_core_os):
# device/core, device/access, common/wire, common/channel, common/rpc, common/net. Their Berkeley
# "text" column is code + read-only data + unwind tables. The crypto wrapper (common/crypto) is
# reported apart, and BoringSSL's libcrypto for context (the device links it whole; an MCU port
# would bring its own AES/HMAC). RAM: footprint_state (see its header) measures the heap the core
# holds per attached device, the AttachClient object included.
#
# Ends with: BENCH footprint text_bytes=<core code> state_bytes=<RAM per attached device>
# Targets (DESIGN.md, an MCU-sized core): code <= 64 KiB, state <= 4 KiB; printed, not enforced.
set -euo pipefail

state_bin=""
libcrypto=""
archives=()
for arg in "$@"; do
  case "$arg" in
    --state=*) state_bin=${arg#--state=} ;;
    --libcrypto=*) libcrypto=${arg#--libcrypto=} ;;
    *) archives+=("$arg") ;;
  esac
done
[[ -n $state_bin && ${#archives[@]} -gt 0 ]] ||
  { echo "usage: footprint.sh --state=BINARY [--libcrypto=SO] ARCHIVE..." >&2; exit 2; }

text_of() { size -t "$@" | awk 'END { print $1 }'; }
# Sum of one kind of section across objects (size -A), e.g. '^\.eh_frame'.
section_sum() {
  local pattern=$1
  shift
  size -A "$@" | awk -v p="$pattern" '$1 ~ p { s += $2 } END { print s + 0 }'
}

core=()
crypto=()
echo "device core, -c opt -Os, size(1) text per library:"
for a in "${archives[@]}"; do
  # .../device_core_os/common/wire/libwire_boringssl.pic.a -> common/wire:wire_boringssl
  rel=${a#*device_core_os/}
  name=$(basename "$rel")
  name=${name#lib}
  name=${name%.a}
  name=${name%.pic}
  label="$(dirname "$rel"):$name"
  printf '  %-38s %7d\n' "$label" "$(text_of "$a")"
  if [[ $rel == common/crypto/* ]]; then crypto+=("$a"); else core+=("$a"); fi
done
(( ${#core[@]} > 0 )) || { echo "footprint: no core archives given" >&2; exit 1; }

text=$(text_of "${core[@]}")
eh=$(section_sum '^\.eh_frame' "${core[@]}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One relocatable link folds the inline functions (COMDAT groups) each object carries a copy of.
ld -r -o "$tmp/core.o" --whole-archive "${core[@]}" --no-whole-archive
folded=$(text_of "$tmp/core.o")
crypto_text=0
(( ${#crypto[@]} == 0 )) || crypto_text=$(text_of "${crypto[@]}")
echo "core without crypto: text=$text bytes ($((text / 1024)) KiB; unwind tables .eh_frame=$eh)," \
  "after folding duplicate inline code: $folded"
echo "crypto wrapper (common/crypto): text=$crypto_text; core with it: $((text + crypto_text))"
if [[ -n $libcrypto && -f $libcrypto ]]; then
  echo "BoringSSL $(basename "$libcrypto") (context, linked whole on Linux): text=$(text_of "$libcrypto")"
fi

state_line=$("$state_bin" | grep '^STATE ')
echo "RAM: $state_line"
value() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$state_line"; }
state=$(value cache_full)
[[ -n $state ]] || { echo "footprint: no state figure from $state_bin" >&2; exit 1; }
echo "per attached device: $state bytes (idle: $(value attached); AttachClient object:" \
  "$(value sizeof)); each client session on the peer channel adds $(value peer_session)"
echo "targets: code <= 65536, state <= 4096"
echo "BENCH footprint text_bytes=$text state_bytes=$state"
