#!/bin/bash
# Time `flaky`, `report` and `backlog` over a database (SQLite file or PostgreSQL URL) at
# --window 3650d and 30d, 3 runs each; prints the median wall, every wall, the process's
# user+sys CPU and the load average (docs/scale-out.md, "1M and 10M results").
#   scripts/pg-scale-queries.sh target/release/flakehound 'postgresql:///fh?host=/tmp/x' pg10m
set -euo pipefail
BIN=$1 DB=$2 LABEL=$3
t=$(mktemp)
for w in 3650d 30d; do
  for c in flaky report backlog; do
    walls=() cpus=()
    for _ in 1 2 3; do
      /usr/bin/time -f "%e %U %S" -o "$t" "$BIN" "$c" --db "$DB" --window "$w" >/dev/null
      read -r e u s <"$t"
      walls+=("$e") cpus+=("$(echo "$u+$s" | bc)")
    done
    med=$(printf "%s\n" "${walls[@]}" | sort -n | sed -n 2p)
    echo "$LABEL $c $w median=${med}s walls=${walls[*]} cpu=${cpus[*]} load=$(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
rm -f "$t"
