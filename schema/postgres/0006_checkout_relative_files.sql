-- flakehound PostgreSQL schema: test files without the CI checkout folder (SQLite's
-- 0007_checkout_relative_files.sql says why and how). The data step runs in Rust after this
-- file, in the same transaction: it fills checkout_rename (old id -> new id and stripped
-- file; `merged` when another stored test or an earlier row already has the new id), then
-- moves every row. Days where two ids became one are marked pending, so the next roll-up
-- rebuilds their daily rows from the results.
CREATE TEMP TABLE checkout_rename (
    old_id int8 PRIMARY KEY,
    new_id int8 NOT NULL,
    file   text COLLATE "C" NOT NULL,
    merged bool NOT NULL
) ON COMMIT DROP;
