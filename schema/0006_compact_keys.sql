-- flakehound schema v6: a small test key inside the database.
-- The public test id (the first 8 bytes of blake3 of the identity) is a random 8-byte
-- integer; result, failure and result_day repeated it in every row. They now hold
-- test.test_key, a small integer (1, 2, ... in the order tests were first stored: 1-3
-- bytes in a row), and test keeps the id as a unique column. Readers map key -> id in
-- the store, so every id outside the database is unchanged. Quarantine rows keep the id.
-- Every table is rebuilt (a primary key cannot change in place), keeping every row; a
-- result whose test row is missing makes the migration fail (NOT NULL) rather than be
-- dropped.
CREATE TABLE test_v6 (
    test_key  INTEGER PRIMARY KEY,
    test_id   INTEGER NOT NULL UNIQUE,  -- the public id: first 8 bytes of blake3(classname, name, file)
    classname TEXT NOT NULL,
    name      TEXT NOT NULL,
    file      TEXT,
    suite     TEXT
);
INSERT INTO test_v6 (test_id, classname, name, file, suite)
SELECT test_id, classname, name, file, suite FROM test ORDER BY test_id;
DROP TABLE test;
ALTER TABLE test_v6 RENAME TO test;

CREATE TABLE result_v6 (
    run_key     INTEGER NOT NULL,
    test_key    INTEGER NOT NULL,   -- test.test_key
    outcome     INTEGER NOT NULL,   -- 0 passed, 1 flaky (passed after failed attempts), 2 failed, 3 skipped
    attempts    INTEGER NOT NULL,   -- executed attempts (skips excluded)
    failures    INTEGER NOT NULL,   -- failed attempts
    duration_ms INTEGER NOT NULL,   -- all attempts
    PRIMARY KEY (run_key, test_key)
) WITHOUT ROWID;
INSERT INTO result_v6 (run_key, test_key, outcome, attempts, failures, duration_ms)
SELECT r.run_key, (SELECT t.test_key FROM test t WHERE t.test_id = r.test_id),
       r.outcome, r.attempts, r.failures, r.duration_ms
FROM result r ORDER BY 1, 2;
DROP TABLE result;
ALTER TABLE result_v6 RENAME TO result;

CREATE TABLE failure_v6 (
    run_key     INTEGER NOT NULL,
    test_key    INTEGER NOT NULL,   -- test.test_key
    attempt     INTEGER NOT NULL,   -- 1-based, in the order the attempts ran
    is_error    INTEGER NOT NULL,   -- 1 for <error>/<flakyError>/<rerunError>
    fingerprint INTEGER NOT NULL,   -- see table fingerprint
    type        TEXT,
    message     TEXT,
    PRIMARY KEY (run_key, test_key, attempt)
) WITHOUT ROWID;
INSERT INTO failure_v6 (run_key, test_key, attempt, is_error, fingerprint, type, message)
SELECT f.run_key, (SELECT t.test_key FROM test t WHERE t.test_id = f.test_id),
       f.attempt, f.is_error, f.fingerprint, f.type, f.message
FROM failure f ORDER BY 1, 2, 3;
DROP TABLE failure;
ALTER TABLE failure_v6 RENAME TO failure;

CREATE TABLE result_day_v6 (
    day         INTEGER NOT NULL,
    job_id      INTEGER NOT NULL,
    test_key    INTEGER NOT NULL,   -- test.test_key
    runs        INTEGER NOT NULL,   -- see 0004_daily_aggregate.sql
    attempts    INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    failed_runs INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    last_seen   INTEGER,
    odd         BLOB,
    PRIMARY KEY (day, job_id, test_key)
) WITHOUT ROWID;
INSERT INTO result_day_v6 (day, job_id, test_key, runs, attempts, failures, failed_runs,
                           duration_ms, last_seen, odd)
SELECT d.day, d.job_id, (SELECT t.test_key FROM test t WHERE t.test_id = d.test_id),
       d.runs, d.attempts, d.failures, d.failed_runs, d.duration_ms, d.last_seen, d.odd
FROM result_day d ORDER BY 1, 2, 3;
DROP TABLE result_day;
ALTER TABLE result_day_v6 RENAME TO result_day;

-- A report file's path, in three parts: the folder above the file's own folder and the
-- file name repeat across runs and are interned here (a small integer in each file row);
-- the file's own folder, which usually names the run, stays in the row.
-- path = prefix || folder || name, where name follows the last '/' and folder is the
-- last component (with its '/') of what precedes it.
CREATE TABLE path_part (
    part_id INTEGER PRIMARY KEY,
    part    TEXT NOT NULL UNIQUE
);

CREATE TABLE report_file_v6 (
    run_key      INTEGER NOT NULL,
    content_hash BLOB    NOT NULL,   -- see 0001_init.sql
    prefix       INTEGER NOT NULL,   -- path_part
    folder       TEXT    NOT NULL,
    name         INTEGER NOT NULL,   -- path_part
    testcases    INTEGER NOT NULL,
    PRIMARY KEY (run_key, content_hash)
) WITHOUT ROWID;

-- The split, in SQL: rtrim(p, replace(p, '/', '')) is p up to its last '/'.
CREATE TEMP TABLE report_file_split AS
SELECT run_key, content_hash, testcases, path,
       rtrim(path, replace(path, '/', '')) AS up_to_name
FROM report_file;
CREATE TEMP TABLE report_file_parts AS
SELECT run_key, content_hash, testcases,
       rtrim(substr(up_to_name, 1, max(length(up_to_name) - 1, 0)),
             replace(substr(up_to_name, 1, max(length(up_to_name) - 1, 0)), '/', '')) AS prefix,
       up_to_name,
       substr(path, length(up_to_name) + 1) AS name
FROM report_file_split;
INSERT OR IGNORE INTO path_part (part) SELECT prefix FROM report_file_parts ORDER BY 1;
INSERT OR IGNORE INTO path_part (part) SELECT name FROM report_file_parts ORDER BY 1;
INSERT INTO report_file_v6 (run_key, content_hash, prefix, folder, name, testcases)
SELECT f.run_key, f.content_hash,
       (SELECT part_id FROM path_part WHERE part = f.prefix),
       substr(f.up_to_name, length(f.prefix) + 1),
       (SELECT part_id FROM path_part WHERE part = f.name),
       f.testcases
FROM report_file_parts f ORDER BY 1, 2;
DROP TABLE report_file_split;
DROP TABLE report_file_parts;
DROP TABLE report_file;
ALTER TABLE report_file_v6 RENAME TO report_file;
