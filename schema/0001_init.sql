-- flakehound schema v1: runs, tests, per-run results, failures and their fingerprints.
-- Sized for a year of 20,000 tests x 500 runs a day: a result row is a few small integers
-- keyed by (run_key, test_id), and failure details live apart because they are rare.

-- One execution (attempt) of a job on a commit.
CREATE TABLE run (
    run_key     INTEGER PRIMARY KEY,
    commit_sha  TEXT    NOT NULL,
    branch      TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    ci_run_id   TEXT    NOT NULL,   -- the CI provider's run/pipeline id
    attempt     INTEGER NOT NULL,   -- 1 for the first attempt, 2.. for job re-runs
    started_at  INTEGER NOT NULL,   -- seconds since the Unix epoch, UTC
    duration_s  REAL,               -- job wall time when the caller gave it
    tests_time_s REAL NOT NULL DEFAULT 0, -- sum of the reports' own times
    UNIQUE (job, ci_run_id, attempt, commit_sha)
);
CREATE INDEX run_by_time ON run (started_at);
CREATE INDEX run_by_commit ON run (job, commit_sha);

-- A test identity: test_id is the first 8 bytes of blake3(classname, name, file).
CREATE TABLE test (
    test_id   INTEGER PRIMARY KEY,
    classname TEXT NOT NULL,
    name      TEXT NOT NULL,
    file      TEXT,
    suite     TEXT
);

-- A test's result in one run, reruns merged.
CREATE TABLE result (
    run_key     INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    outcome     INTEGER NOT NULL,   -- 0 passed, 1 flaky (passed after failed attempts), 2 failed, 3 skipped
    attempts    INTEGER NOT NULL,   -- executed attempts (skips excluded)
    failures    INTEGER NOT NULL,   -- failed attempts
    duration_ms INTEGER NOT NULL,   -- all attempts
    PRIMARY KEY (run_key, test_id)
) WITHOUT ROWID;

-- One failed attempt.
CREATE TABLE failure (
    run_key     INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,   -- 1-based, in the order the attempts ran
    is_error    INTEGER NOT NULL,   -- 1 for <error>/<flakyError>/<rerunError>
    fingerprint INTEGER NOT NULL,   -- see table fingerprint
    type        TEXT,
    message     TEXT,
    PRIMARY KEY (run_key, test_id, attempt)
) WITHOUT ROWID;

-- A failure cause: the failure type and message with numbers, addresses and paths masked.
CREATE TABLE fingerprint (
    fingerprint INTEGER PRIMARY KEY,
    normalized  TEXT NOT NULL,
    sample      TEXT NOT NULL       -- the first message seen with this fingerprint
);

-- A report file stored for a run, recognised by the blake3 hash of its bytes (the first
-- 16 bytes: collisions are out of reach, and many small files stay cheap to record).
CREATE TABLE report_file (
    run_key      INTEGER NOT NULL,
    content_hash BLOB    NOT NULL,
    path         TEXT    NOT NULL,
    testcases    INTEGER NOT NULL,
    PRIMARY KEY (run_key, content_hash)
) WITHOUT ROWID;
