-- flakehound schema v4: the daily aggregate. Whole-history queries read one row per
-- (day, job, test) instead of one per result; see docs/performance.md ("The daily aggregate").
-- A day is the Unix day (UTC) of the runs' start. Closed days are rolled up in batches
-- (at the end of `ingest`, by the server after a write, or `flakehound compact`); a write
-- to a day marks it pending again, and the scorer reads raw results for pending days.

-- Jobs by a small integer, so aggregate rows stay a few integers.
CREATE TABLE job_name (
    job_id INTEGER PRIMARY KEY,
    job    TEXT NOT NULL UNIQUE
);

-- A test's results in the runs of one job that started on one day.
CREATE TABLE result_day (
    day         INTEGER NOT NULL,
    job_id      INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    runs        INTEGER NOT NULL,   -- results with at least one executed attempt
    attempts    INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    failed_runs INTEGER NOT NULL,   -- results with outcome failed
    duration_ms INTEGER NOT NULL,
    last_seen   INTEGER,            -- start of the newest run with an executed attempt
    -- The job's runs of the day where the result was not one clean passing attempt
    -- (absent, skipped, failed, re-run), packed: what a per-run history of a test that
    -- failed somewhere in a window needs. NULL when every run was clean.
    odd         BLOB,
    PRIMARY KEY (day, job_id, test_id)
) WITHOUT ROWID;

-- Days whose results changed since they were rolled up (or never were): read raw.
CREATE TABLE day_pending (
    day INTEGER PRIMARY KEY
) WITHOUT ROWID;

INSERT INTO day_pending (day)
SELECT DISTINCT (started_at - ((started_at % 86400) + 86400) % 86400) / 86400 FROM run;
