-- flakehound schema v3: a link to the run on the CI provider (a job or pipeline page).
-- Nullable: runs ingested before v3, or outside a known CI without --run-url, have none.
ALTER TABLE run ADD COLUMN run_url TEXT;
