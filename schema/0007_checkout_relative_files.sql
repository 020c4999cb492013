-- flakehound schema v7: test files without the CI checkout folder.
-- A test's `file` (part of its identity) no longer includes a recognised CI checkout
-- folder: a file under a GitHub runner's checkout is relative to it (`tests/CartTest.php`), and
-- Jenkins' `workspace/shop@2/...` is the same folder as `workspace/shop/...` (the rules are
-- in src/junit/checkout.rs). The data step runs in Rust after this file, in the same
-- transaction, because the new test id is a blake3 hash:
-- - a stored test whose file has such a folder gets the stripped file and its new id, in
--   `test` and in the quarantine tables;
-- - tests that were one test under several checkout folders become one: their results and
--   failures move to the surviving test key, and the days of their daily rows are marked
--   pending so that the next roll-up rebuilds them from the results. A run that held the
--   test under two folders at once keeps the survivor's result (it cannot hold two).
-- An active quarantine of a merged test that collides with the survivor's is closed with
-- release_reason 'merged'.
CREATE TEMP TABLE checkout_merge (
    old_key INTEGER PRIMARY KEY,
    new_key INTEGER NOT NULL
);
