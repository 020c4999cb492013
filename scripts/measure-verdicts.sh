#!/usr/bin/env bash
# Scorer against the simulator's truth over seeds and retry policies (flakehound demo).
# Usage: scripts/measure-verdicts.sh [flakehound binary] [seeds...]
# Env: POLICIES (default "dense sparse rare"), DAYS (default: the preset's 30),
#      CHURN=0 to simulate without fixes and late onsets (default: --churn).
set -euo pipefail
bin=${1:-target/release/flakehound}
shift || true
seeds=${*:-1 2 3 4 5}
policies=${POLICIES:-dense sparse rare}
extra=()
[ "${CHURN:-1}" = 1 ] && extra+=(--churn)
[ -n "${DAYS:-}" ] && extra+=(--days "$DAYS")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '| policy | seed | precision | recall | false fixed / scored fixed | fixes found | Spearman | retries/day est. vs true |\n|---|---|---|---|---|---|---|---|\n'
for policy in $policies; do
  for s in $seeds; do
    out=$("$bin" demo --dir "$dir/d" --seed "$s" --retries "$policy" "${extra[@]}" 2>/dev/null)
    echo "$out" | python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"precision ([\d.]+) \((\d+) of (\d+) flagged.*?recall ([\d.]+) of (\d+).*?Spearman ([-\d.]+), total ([\d.]+) vs ([\d.]+) \(([-+\d]+)%\)", t, re.S)
f = re.search(r"fixed: (\d+) scored fixed, (\d+) of them still flaky; found (\d+) of (\d+)", t)
p, s = sys.argv[1], sys.argv[2]
print(f"| {p} | {s} | {m[1]} | {m[4]} ({m[5]}) | {f[2]} / {f[1]} | {f[3]} of {f[4]} | {m[6]} | {m[7]} vs {m[8]} ({m[9]}%) |")
' "$policy" "$s"
  done
done
