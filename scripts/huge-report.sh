#!/usr/bin/env bash
# Generate a ~2 GB JUnit report on the fly, ingest it with the release binary under
# /usr/bin/time -v, and print peak RSS and wall time. Streaming must keep peak RSS
# under 200 MB however big the report is.
#
#   scripts/huge-report.sh [SIZE_MB]        default 2048
#
# Env: FLAKEHOUND_BIN (default: build with `cargo build --release`), WORK_DIR (default: a
# temporary folder under ${TMPDIR:-/tmp}; needs ~2x SIZE_MB free), SYSOUT (bytes of
# <system-out> per testcase, default 1900), BIG_TEXT_MB (if set, also measure one report
# whose single <system-out> is this many MB).
# Bounded: generation and ingest are linear; ~1-3 minutes for 2 GB on 2 cores.
set -euo pipefail

SIZE_MB=${1:-2048}
SYSOUT=${SYSOUT:-1900}
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ -z "${FLAKEHOUND_BIN:-}" ]]; then
  (cd "$root" && cargo build --release --quiet)
  FLAKEHOUND_BIN="${CARGO_TARGET_DIR:-$root/target}/release/flakehound"
fi
[[ -x /usr/bin/time ]] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=${WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/flakehound-huge.XXXXXX")}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

report="$work/huge.xml"
db="$work/huge.db"

# One testcase: ~SYSOUT bytes of system-out plus ~150 bytes of markup; every 50th fails.
per_case=$((SYSOUT + 150))
cases=$(( SIZE_MB * 1024 * 1024 / per_case ))
echo "generating $report: $cases testcases, ~${SIZE_MB} MB"
gen_start=$(date +%s.%N)
perl -e '
  my ($n, $pad) = @ARGV;
  my $out = "x" x $pad;
  $| = 0;
  print qq{<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n<testsuite name="huge" tests="$n">\n};
  for my $i (0 .. $n - 1) {
    my $f = ($i % 50 == 0) ? qq{<failure message="expected 1 but was 2" type="AssertionError">at Huge.java:$i</failure>} : "";
    print qq{<testcase classname="com.acme.Huge} . int($i / 1000) . qq{" name="test$i" time="0.001">$f<system-out>$out</system-out></testcase>\n};
  }
  print qq{</testsuite>\n</testsuites>\n};
' "$cases" "$SYSOUT" > "$report"
gen_end=$(date +%s.%N)
size=$(stat -c %s "$report")
awk -v s="$size" -v a="$gen_start" -v b="$gen_end" 'BEGIN { printf "generated %d bytes (%.0f MB) in %.1f s\n", s, s / 1048576, b - a }'

measure() {
  local what=$1; shift
  local log="$work/time.log"
  set +e
  /usr/bin/time -v -o "$log" "$FLAKEHOUND_BIN" --db "$db" ingest --commit huge --job huge \
    --run-id "$what" --started-at 2026-11-20T10:00:00Z --json "$@" > "$work/summary.json" 2> "$work/stderr.txt"
  local code=$?
  set -e
  local rss_kb wall
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\) time/ {print $2}' "$log")
  echo "[$what] exit=$code peak_rss=$((rss_kb / 1024)) MB wall=$wall summary=$(cat "$work/summary.json")"
  if [[ -s "$work/stderr.txt" ]]; then head -c 600 "$work/stderr.txt"; echo; fi
  echo "$rss_kb" > "$work/rss.$what"
  return $code
}

measure huge "$report"
tests=$(sed -n 's/.*"tests":\([0-9]*\).*/\1/p' "$work/summary.json")
failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$work/summary.json")
expect_failed=$(( (cases + 49) / 50 ))
status=0
if [[ "$tests" != "$cases" || "$failed" != "$expect_failed" ]]; then
  echo "FAIL: stored $tests tests ($failed failed), generated $cases ($expect_failed failed)"
  status=1
fi
if (( $(cat "$work/rss.huge") >= 200 * 1024 )); then
  echo "FAIL: peak RSS over 200 MB"
  status=1
fi
rm -f "$report"

if [[ -n "${BIG_TEXT_MB:-}" ]]; then
  # One testcase whose system-out is a single text node of BIG_TEXT_MB MB: the XML
  # reader buffers a whole text node, so this one is bounded by the node, not the file.
  big="$work/big-text.xml"
  perl -e '
    my ($mb) = @ARGV;
    print qq{<testsuite name="big"><testcase classname="Big" name="text"><system-out>};
    my $chunk = "y" x (1024 * 1024);
    print $chunk for 1 .. $mb;
    print qq{</system-out></testcase></testsuite>\n};
  ' "$BIG_TEXT_MB" > "$big"
  measure big-text "$big" || status=1
  rm -f "$big"
fi
echo "huge-report: $( ((status == 0)) && echo PASS || echo FAIL )"
exit $status
