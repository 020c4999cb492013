#!/usr/bin/env bash
# Fuzz the JUnit parser with cargo-fuzz (libFuzzer) for SECONDS (default 600), then copy
# any crash into fixtures/fuzz-regressions/, where tests/reliability.rs replays it.
#
#   scripts/fuzz.sh [SECONDS] [JOBS]       defaults 600, 1
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz (installed
# from crates.io when missing). Not part of CI: run it by hand or on a schedule.
set -euo pipefail
secs=${1:-600}
jobs=${2:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/parse
cp seeds/* corpus/parse/
cp "$root"/fixtures/fuzz-regressions/*.xml corpus/parse/ 2> /dev/null || true
parallel=()
if (( jobs > 1 )); then
  parallel=(-jobs="$jobs" -workers="$jobs") # each job logs to fuzz-N.log
fi
status=0
cargo +nightly fuzz run parse corpus/parse -- \
  -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
  -print_final_stats=1 ${parallel[@]+"${parallel[@]}"} || status=$?
shopt -s nullglob
for crash in artifacts/parse/crash-* artifacts/parse/timeout-* artifacts/parse/oom-*; do
  name=$(basename "$crash")
  cp "$crash" "$root/fixtures/fuzz-regressions/$name.xml"
  echo "new regression fixture: fixtures/fuzz-regressions/$name.xml"
done
exit $status
