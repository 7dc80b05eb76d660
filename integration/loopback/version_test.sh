#!/usr/bin/env bash
# Every binary prints the repository's one version (VERSION) for --version.
set -euo pipefail
version_file=$1
shift
want="edgelink $(tr -d '[:space:]' < "$version_file")"
for bin in "$@"; do
  got=$("$bin" --version)
  [[ $got == "$want" ]] || { echo "FAIL: $(basename "$bin") --version printed '$got', want '$want'" >&2; exit 1; }
  echo "ok   $(basename "$bin"): $got"
done
