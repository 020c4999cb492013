//! CI history simulator: a [`SimConfig`] → `runs.csv` + JUnit reports + `truth.json`.
//!
//! It feeds `flakehound demo`, measures the scorer against ground truth (which tests are
//! really flaky), measures the impact estimate against true counterfactuals (job
//! retries/day saved by fixing one test, all other random draws identical), and makes
//! benchmark data.
//!
//! The world (tests, commits, breakages, the schedule of runs) is built from the config
//! alone. Outcomes come from keyed draws (a hash of seed, purpose, run, attempt, test and
//! rerun), never from a sequential stream, so [`replay`] with some tests fixed changes
//! only those tests' own failures and what follows from them: a job attempt passing, a
//! retry not happening.
//!
//! Output layout (`simulate(config, out)`):
//! - `out/runs.csv`: the ingest manifest, `path,commit,branch,job,run_id,attempt,started_at,duration_s`,
//!   one row per job attempt, sorted by `started_at` then job;
//! - `out/reports/<job>/<run_id>-<attempt>/*.xml`: that attempt's reports, in the job's
//!   dialect (an attempt that failed for infra reasons may leave its folder empty);
//! - `out/truth.json`: [`Truth`].

mod config;
mod engine;
mod names;
mod rng;
mod truth;
mod world;
mod write;

#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

use serde::Serialize;

pub use config::{CoFailureGroup, Dialect, JobConfig, PlatformBreak, SimConfig};
pub use truth::{JobTruth, Kind, TestKey, TestTruth, Truth};

use world::World;

/// What [`simulate`] wrote.
#[derive(Debug, Clone)]
pub struct SimOutput {
    /// Rows of `runs.csv` (job attempts).
    pub runs: usize,
    /// Test results in the reports: one per test per attempt, reruns merged.
    pub results: u64,
    pub truth: Truth,
    /// Report files written.
    pub files: u64,
    /// Bytes of report files written.
    pub bytes: u64,
}

/// Run the simulation and write `out/runs.csv`, `out/reports/...` and `out/truth.json`.
/// Deterministic for a given config. A previous simulation's `reports/` folder in `out`
/// is replaced; any other existing `reports/` folder is refused.
pub fn simulate(config: &SimConfig, out: &Path) -> io::Result<SimOutput> {
    let world = World::build(config)?;
    let recs = engine::simulate(&world, &[], None);
    let truth = truth::compute(&world, &config.start, &recs);

    std::fs::create_dir_all(out)?;
    let reports = out.join("reports");
    if reports.exists() {
        let ours = out.join("runs.csv").is_file() && out.join("truth.json").is_file();
        if !ours {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a previous simulation's output; choose an empty folder",
                    reports.display()
                ),
            ));
        }
        std::fs::remove_dir_all(&reports)?;
    }
    let written = write::write_reports(&world, &recs, out)?;
    let rows = write::write_manifest(&world, &recs, out)?;
    let file = std::fs::File::create(out.join("truth.json"))?;
    let mut writer = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, &truth)?;
    io::Write::write_all(&mut writer, b"\n")?;
    io::Write::flush(&mut writer)?;

    debug_assert_eq!(written.results, truth.results);
    Ok(SimOutput {
        runs: rows as usize,
        results: written.results,
        truth,
        files: written.files,
        bytes: written.bytes,
    })
}

/// The ground truth of a simulation, without writing anything.
pub fn truth(config: &SimConfig) -> io::Result<Truth> {
    let world = World::build(config)?;
    let recs = engine::simulate(&world, &[], None);
    Ok(truth::compute(&world, &config.start, &recs))
}

/// One job's attempts in a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReplay {
    pub job: String,
    /// Job attempts, retries included.
    pub attempts: u64,
    /// Attempts with attempt number ≥ 2.
    pub retries: u64,
    pub failed_attempts: u64,
    pub retries_per_day: f64,
}

/// One job attempt in a replay (the schedule, and how it ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplayAttempt {
    pub run_id: u64,
    /// Index into [`Replay::jobs`].
    pub job: u16,
    pub attempt: u32,
    /// Unix seconds.
    pub started_at: i64,
    pub failed: bool,
}

/// A test's failures in a replay, over attempts that left a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReplay {
    pub key: TestKey,
    pub failures: u64,
    pub flaky_failures: u64,
}

/// The simulation without files, some tests made non-flaky.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub days: f64,
    pub jobs: Vec<JobReplay>,
    /// Every job attempt, in run order then job order.
    pub attempts: Vec<ReplayAttempt>,
    pub tests: Vec<TestReplay>,
    /// Keys of `fixed` that name no test of the config.
    pub unmatched: Vec<TestKey>,
}

impl Replay {
    pub fn job(&self, name: &str) -> Option<&JobReplay> {
        self.jobs.iter().find(|j| j.job == name)
    }

    pub fn total_retries(&self) -> u64 {
        self.jobs.iter().map(|j| j.retries).sum()
    }

    pub fn total_retries_per_day(&self) -> f64 {
        self.total_retries() as f64 / self.days
    }

    pub fn test(&self, key: &TestKey) -> Option<&TestReplay> {
        self.tests.iter().find(|t| &t.key == key)
    }
}

/// Replay the simulation without writing files, with the `fixed` tests made non-flaky
/// (a Go parent's key fixes its subtests). Every other draw is the same as in
/// [`simulate`], so `replay(c, &[]).job(j).retries - replay(c, &[t]).job(j).retries` is
/// the true number of retries fixing `t` saves.
///
/// # Panics
/// If the config is invalid; [`simulate`] and [`truth()`] return that as an error.
pub fn replay(config: &SimConfig, fixed: &[TestKey]) -> Replay {
    let world = match World::build(config) {
        Ok(w) => w,
        Err(e) => panic!("invalid simulation config: {e}"),
    };
    let mut mask = vec![false; world.tests.len()];
    let mut unmatched = Vec::new();
    for k in fixed {
        let found = world.tests.iter().enumerate().find(|(_, t)| {
            world.jobs[t.job].cfg.name == k.job && t.classname == k.classname && t.name == k.name
        });
        match found {
            Some((i, _)) => {
                for s in truth::flaky_sources(&world, i as u32) {
                    mask[s as usize] = true;
                }
            }
            None => unmatched.push(k.clone()),
        }
    }
    let recs = engine::simulate(&world, &mask, None);
    let days = world.days as f64;
    let mut jobs: Vec<JobReplay> = world
        .jobs
        .iter()
        .map(|j| JobReplay {
            job: j.cfg.name.clone(),
            attempts: 0,
            retries: 0,
            failed_attempts: 0,
            retries_per_day: 0.0,
        })
        .collect();
    for r in &recs {
        let j = &mut jobs[r.job as usize];
        j.attempts += 1;
        j.retries += u64::from(r.attempt >= 2);
        j.failed_attempts += u64::from(r.failed);
    }
    for j in &mut jobs {
        j.retries_per_day = j.retries as f64 / days;
    }
    let counts = truth::count_failures(&world, &recs);
    let tests = world
        .tests
        .iter()
        .zip(counts)
        .map(|(t, c)| TestReplay {
            key: TestKey::new(&world.jobs[t.job].cfg.name, &t.classname, &t.name),
            failures: c.failures,
            flaky_failures: c.flaky_failures,
        })
        .collect();
    let attempts = recs
        .iter()
        .map(|r| ReplayAttempt {
            run_id: world.runs[r.run as usize].run_id,
            job: r.job,
            attempt: r.attempt,
            started_at: r.started_at,
            failed: r.failed,
        })
        .collect();
    Replay {
        days,
        jobs,
        attempts,
        tests,
        unmatched,
    }
}
