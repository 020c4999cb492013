#!/usr/bin/env bash
# SIGKILL `flakehound ingest --manifest` at random points of a backfill, N times (default
# 50). After each kill the database must pass PRAGMA integrity_check and hold only whole
# report files; at the end, re-running the backfill must complete it with nothing stored
# twice (compared with a clean ingest). Prints iterations, kills and integrity failures.
#
#   scripts/kill9-loop.sh [ITERATIONS] [BUDGET_SECONDS] [RUNS]     defaults 50, 1500, 130
#
# It drives the same loop as the bounded test in tests/reliability.rs
# (kill_9_during_a_backfill_leaves_whole_files_and_resumes), with more iterations.
# RUNS runs of 6,000 tests each: 130 make ~780,000 results, in the ingest's
# 250,000-result batches (four commits), so that many kills land between commits.
# Env: KILL9_SEED to vary the kill points.
set -euo pipefail
iterations=${1:-50}
budget=${2:-1500}
runs=${3:-130}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
set +e
KILL9_ITERATIONS=$iterations KILL9_BUDGET_S=$budget KILL9_RUNS=$runs \
  timeout $((budget + 600)) \
  cargo test --test reliability kill_9_during_a_backfill -- --nocapture 2>&1 |
  grep -E 'iteration|kill-9 loop|full backfill|integrity|test result|panicked|FAILED'
status=${PIPESTATUS[0]}
exit "$status"
