#!/usr/bin/env bash
# flakehound performance harness: build (release), install the peers into a scratch venv,
# generate the data, measure, print one markdown table. See docs/performance.md.
#
#   scripts/perf/run.sh                      # demo, 5k Surefire files, 1M and 10M results, peers
#   PERF_SCALES=1,10,50 scripts/perf/run.sh  # also 50M results (~7.5 GB of XML referenced, ~2 GB DB)
#   PERF_ONLY=peers scripts/perf/run.sh      # one step: small, scale, ci, peers
#   scripts/perf/run.sh table                # print the table again from $PERF_WORK/results.jsonl
#
# Environment: CARGO_TARGET_DIR (default ./target), PERF_WORK (default /tmp/flakehound-perf),
# PERF_REPEAT (3), PERF_PEERS_BIG (1). Needs python3 (with venv), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PERF_WORK="${PERF_WORK:-/tmp/flakehound-perf}"
mkdir -p "$PERF_WORK"
if [[ "${1:-}" == "table" ]]; then exec python3 scripts/perf/harness.py table; fi

target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet
FLOORS_BIN=$(cargo bench --bench floors --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="floors" and m.get("executable"): print(m["executable"])' | tail -1)
export FH="$target/release/flakehound" FLOORS_BIN

export PEERS_VENV="$PERF_WORK/venv-peers"
if [[ ! -x "$PEERS_VENV/bin/flakemap" ]]; then
  python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install --quiet flakeguard==0.9.0 flakemap==0.3.7
fi

python3 scripts/perf/harness.py | tee "$PERF_WORK/table.md"
