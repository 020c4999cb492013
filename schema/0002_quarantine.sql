-- flakehound schema v2: the quarantine and its history.
-- Times are the scorer's as_of (Unix seconds), never the wall clock, so that applying the
-- same database twice gives the same state.

-- One quarantine period of a test in a job. A test released and quarantined again gets a
-- new row; at most one row per (test_id, job) is active (released_at IS NULL).
CREATE TABLE quarantine (
    quarantine_id   INTEGER PRIMARY KEY,
    test_id         INTEGER NOT NULL,
    job             TEXT    NOT NULL,
    classname       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    file            TEXT,
    since           INTEGER NOT NULL,   -- when it was quarantined
    until           INTEGER NOT NULL,   -- expiry: released when as_of passes it
    reason          TEXT    NOT NULL,
    retries_per_day REAL    NOT NULL,   -- at the last add or renewal
    flake_rate      REAL    NOT NULL,
    last_flake_at   INTEGER,            -- newest flake seen at the last add or renewal
    released_at     INTEGER,
    release_reason  TEXT                -- fixed | expired | no longer flaky
);
CREATE UNIQUE INDEX quarantine_active ON quarantine (test_id, job) WHERE released_at IS NULL;
CREATE INDEX quarantine_by_test ON quarantine (test_id, job, since);

-- What changed and when.
CREATE TABLE quarantine_event (
    event_id  INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    test_id   INTEGER NOT NULL,
    job       TEXT    NOT NULL,
    classname TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    action    TEXT    NOT NULL,         -- added | renewed | released
    reason    TEXT    NOT NULL,
    until     INTEGER
);
CREATE INDEX quarantine_event_by_time ON quarantine_event (at, event_id);
