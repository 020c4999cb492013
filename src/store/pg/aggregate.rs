//! The daily aggregate on PostgreSQL (see `store/aggregate.rs`): the same rows, rolled up
//! the same way. A writer upserts its days into `day_pending` at commit, which locks
//! the rows; a rollup deletes the day's row before reading the day, so it waits for a
//! writer of that day to commit and then reads its results, and a writer that comes
//! after the rollup's delete marks the day pending again.

use std::collections::HashMap;

use super::PgStore;
use crate::error::Result;
use crate::store::aggregate::{DayBuilder, DayRow};
use crate::store::ResultRow;

impl PgStore {
    pub fn pending_days(&self) -> Result<Option<Vec<i64>>> {
        let rows = self
            .client
            .borrow_mut()
            .query("SELECT day FROM day_pending ORDER BY day", &[])
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        Ok(Some(
            rows.iter().map(|r| i64::from(r.get::<_, i32>(0))).collect(),
        ))
    }

    pub fn job_ids(&self) -> Result<HashMap<i64, String>> {
        let rows = self
            .client
            .borrow_mut()
            .query("SELECT job_id, job FROM job_name", &[])
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        Ok(rows
            .iter()
            .map(|r| (i64::from(r.get::<_, i32>(0)), r.get(1)))
            .collect())
    }

    pub fn for_each_day_row(
        &self,
        first: i64,
        last: i64,
        job_id: Option<i64>,
        mut f: impl FnMut(&DayRow),
    ) -> Result<()> {
        let clamp = |d: i64| d.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let job: Option<i32> = job_id.map(clamp);
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT day, job_id, test_id, runs, attempts, failures, failed_runs, duration_ms,
                        last_seen, odd
                 FROM result_day WHERE day BETWEEN $1 AND $2 AND ($3::int4 IS NULL OR job_id = $3)",
                &[&clamp(first), &clamp(last), &job],
            )
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        let mut row = DayRow::default();
        for r in &rows {
            row.day = i64::from(r.get::<_, i32>(0));
            row.job_id = i64::from(r.get::<_, i32>(1));
            row.test_id = r.get(2);
            row.runs = r.get::<_, i32>(3) as u32;
            row.attempts = r.get::<_, i32>(4) as u32;
            row.failures = r.get::<_, i32>(5) as u32;
            row.failed_runs = r.get::<_, i32>(6) as u32;
            row.duration_ms = r.get(7);
            row.last_seen = r.get(8);
            row.odd.clear();
            if let Some(b) = r.get::<_, Option<&[u8]>>(9) {
                row.odd.extend_from_slice(b);
            }
            f(&row);
        }
        Ok(())
    }

    pub fn rollup(&mut self, through: i64) -> Result<u32> {
        let days: Vec<i64> = self
            .pending_days()?
            .unwrap_or_default()
            .into_iter()
            .filter(|&d| d <= through)
            .collect();
        let mut done = 0;
        for day in days {
            if self.rollup_day(day)? {
                done += 1;
            }
        }
        Ok(done)
    }

    fn rollup_day(&mut self, day: i64) -> Result<bool> {
        let mut client = self.client.borrow_mut();
        let err = |e| self.err("cannot roll up a day", e);
        let mut tx = client.transaction().map_err(err)?;
        let d = day as i32;
        // First, so that a writer of this day finishes before the day is read (see above).
        if tx
            .query_opt(
                "DELETE FROM day_pending WHERE day = $1 RETURNING day",
                &[&d],
            )
            .map_err(err)?
            .is_none()
        {
            return Ok(false); // another process rolled it up
        }
        let lo = day * 86_400;
        let runs: Vec<(i64, String, i64)> = tx
            .query(
                "SELECT run_key, job, started_at FROM run WHERE started_at BETWEEN $1 AND $2",
                &[&lo, &(lo + 86_399)],
            )
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut ids: HashMap<String, i64> = HashMap::new();
        for (_, job, _) in &runs {
            if ids.contains_key(job) {
                continue;
            }
            tx.execute(
                "INSERT INTO job_name (job) VALUES ($1) ON CONFLICT (job) DO NOTHING",
                &[job],
            )
            .map_err(err)?;
            let id: i32 = tx
                .query_one("SELECT job_id FROM job_name WHERE job = $1", &[job])
                .map_err(err)?
                .get(0);
            ids.insert(job.clone(), i64::from(id));
        }
        let mut builder = DayBuilder::new(
            day,
            runs.iter()
                .map(|(k, job, started)| (*k, ids[job], *started))
                .collect(),
        );
        let index: HashMap<i64, usize> = builder
            .run_keys()
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let results = tx
            .query(
                "SELECT run_key::int8, test_id, attempts, failures, duration_ms FROM result
                 WHERE day = $1 ORDER BY run_key, test_id",
                &[&d],
            )
            .map_err(err)?;
        for r in &results {
            let run_key: i64 = r.get(0);
            // A result of a run that started on another day cannot be here; be safe.
            let Some(&i) = index.get(&run_key) else {
                continue;
            };
            let attempts = r.get::<_, i16>(2) as u32;
            let failures = r.get::<_, i16>(3) as u32;
            builder.add(
                i,
                &ResultRow {
                    run_key,
                    test_id: r.get(1),
                    outcome: super::write::outcome(attempts, failures),
                    attempts,
                    failures,
                    duration_ms: i64::from(r.get::<_, i32>(4)),
                },
            );
        }
        drop(results);
        let rows = builder.finish();
        tx.execute("DELETE FROM result_day WHERE day = $1", &[&d])
            .map_err(err)?;
        let mut job_id = Vec::with_capacity(rows.len());
        let mut test_id = Vec::with_capacity(rows.len());
        let mut counts: [Vec<i32>; 4] = Default::default();
        let mut duration = Vec::with_capacity(rows.len());
        let mut last_seen = Vec::with_capacity(rows.len());
        let mut odd: Vec<Option<Vec<u8>>> = Vec::with_capacity(rows.len());
        for r in rows {
            job_id.push(r.job_id as i32);
            test_id.push(r.test_id);
            counts[0].push(r.runs as i32);
            counts[1].push(r.attempts as i32);
            counts[2].push(r.failures as i32);
            counts[3].push(r.failed_runs as i32);
            duration.push(r.duration_ms);
            last_seen.push(r.last_seen);
            odd.push((!r.odd.is_empty()).then_some(r.odd));
        }
        tx.execute(
            "INSERT INTO result_day (day, job_id, test_id, runs, attempts, failures, failed_runs,
                                     duration_ms, last_seen, odd)
             SELECT $1, * FROM unnest($2::int4[], $3::int8[], $4::int4[], $5::int4[], $6::int4[],
                                      $7::int4[], $8::int8[], $9::int8[], $10::bytea[])",
            &[
                &d, &job_id, &test_id, &counts[0], &counts[1], &counts[2], &counts[3], &duration,
                &last_seen, &odd,
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(true)
    }
}
