-- flakehound PostgreSQL schema v5: compact results.
--
-- `result` loses 12 of its 60 bytes a row and its primary key 8 of 32 bytes an entry:
-- - `run_key` is int4 in `result` and `failure` (the run table's identity stops at 2^31-1
--   runs: a hundred thousand job attempts a day for 58 years), so that the key
--   (day int4, run_key int4, test_id int8) packs into a 24-byte index tuple instead of 32
--   (an int4 day before an int8 run key was padded to 8);
-- - `outcome` is not stored: it is a function of attempts and failures (0 attempts:
--   skipped; 0 failures: passed; fewer failures than attempts: flaky; else failed), which
--   readers compute; with the columns ordered int8 first the row is 24 bytes of data and a
--   48-byte tuple (was 54, padded to 56);
-- - the primary keys are built with fillfactor 100: rows arrive in key order (one run's
--   results after another's), so leaf pages are filled once and never split in the middle.
-- Existing rows are copied partition by partition in key order and the keys built after.
-- `result_day` stays one table: partitioned by day, a whole-history read of it on the 10M
-- bench history (261 days) took 95-181 ms instead of 36-50 ms, growing with the days kept.

ALTER TABLE run ALTER COLUMN run_key SET MAXVALUE 2147483647;

CREATE TABLE result_v5 (
    test_id     int8 NOT NULL,
    run_key     int4 NOT NULL,
    day         int4 NOT NULL,
    duration_ms int4 NOT NULL,           -- all attempts, saturating at ~24 days
    attempts    int2 NOT NULL,           -- executed attempts (skips excluded)
    failures    int2 NOT NULL            -- failed attempts
) PARTITION BY RANGE (day);

CREATE TABLE failure_v5 (
    test_id     int8 NOT NULL,
    fingerprint int8 NOT NULL,
    run_key     int4 NOT NULL,
    day         int4 NOT NULL,
    attempt     int2 NOT NULL,           -- 1-based, in the order the attempts ran
    is_error    bool NOT NULL,
    type        text,
    message     text
) PARTITION BY RANGE (day);

DO $$
DECLARE
    p   record;
    suf text;
BEGIN
    -- Every day that has a result partition gets its two new partitions.
    FOR p IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((-?\d+)\) TO \((-?\d+)\)'))[1]::int4 AS lo,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((-?\d+)\) TO \((-?\d+)\)'))[2]::int4 AS hi
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'result'::regclass
        ORDER BY 2
    LOOP
        suf := substr(p.relname, length('result_') + 1);
        EXECUTE format('CREATE TABLE %I PARTITION OF result_v5 FOR VALUES FROM (%s) TO (%s)',
                       'result_v5_' || suf, p.lo, p.hi);
        EXECUTE format('INSERT INTO %I SELECT test_id, run_key, day, duration_ms, attempts, failures
                        FROM %I ORDER BY day, run_key, test_id',
                       'result_v5_' || suf, p.relname);
        EXECUTE format('CREATE TABLE %I PARTITION OF failure_v5 FOR VALUES FROM (%s) TO (%s)',
                       'failure_v5_' || suf, p.lo, p.hi);
        EXECUTE format('INSERT INTO %I SELECT test_id, fingerprint, run_key, day, attempt, is_error,
                               type, message
                        FROM %I ORDER BY day, run_key, test_id, attempt',
                       'failure_v5_' || suf, 'failure_' || suf);
    END LOOP;

    DROP TABLE result;
    DROP TABLE failure;
    ALTER TABLE result_v5 RENAME TO result;
    ALTER TABLE failure_v5 RENAME TO failure;
    FOR p IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('result'::regclass, 'failure'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p.relname, replace(p.relname, '_v5_', '_'));
    END LOOP;
END
$$;

-- Built after the copy (a sorted build per partition); partitions made later by writers
-- (CREATE TABLE … LIKE, ATTACH PARTITION) get the same index with the same fillfactor.
ALTER TABLE result ADD PRIMARY KEY (day, run_key, test_id) WITH (fillfactor = 100);
ALTER TABLE failure ADD PRIMARY KEY (day, run_key, test_id, attempt) WITH (fillfactor = 100);
