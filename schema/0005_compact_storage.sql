-- flakehound schema v5: fewer bytes per stored result.
-- The run's identity is unique on (job, commit_sha, ci_run_id, attempt): in that order the
-- unique index also answers "runs of a job on a commit" (and commit-prefix lookups), so the
-- separate run_by_commit index, a third copy of every job name and commit SHA, goes.
-- The table is rebuilt because a table constraint cannot be changed in place; run keys and
-- every column are kept.
CREATE TABLE run_v4 (
    run_key     INTEGER PRIMARY KEY,
    commit_sha  TEXT    NOT NULL,
    branch      TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    ci_run_id   TEXT    NOT NULL,   -- the CI provider's run/pipeline id
    attempt     INTEGER NOT NULL,   -- 1 for the first attempt, 2.. for job re-runs
    started_at  INTEGER NOT NULL,   -- seconds since the Unix epoch, UTC
    duration_s  REAL,               -- job wall time when the caller gave it
    tests_time_s REAL NOT NULL DEFAULT 0, -- sum of the reports' own times
    run_url     TEXT,               -- see 0003_run_url.sql
    UNIQUE (job, commit_sha, ci_run_id, attempt)
);
INSERT INTO run_v4 (run_key, commit_sha, branch, job, ci_run_id, attempt, started_at,
                    duration_s, tests_time_s, run_url)
SELECT run_key, commit_sha, branch, job, ci_run_id, attempt, started_at,
       duration_s, tests_time_s, run_url
FROM run ORDER BY run_key;
DROP TABLE run;
ALTER TABLE run_v4 RENAME TO run;
CREATE INDEX run_by_time ON run (started_at);
