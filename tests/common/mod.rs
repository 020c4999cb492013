//! Builds small CI histories in a temporary database for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use flakehound::ingest::{ingest, RunInput};
use flakehound::model::RunMeta;
use flakehound::store::Store;

pub const BIN: &str = env!("CARGO_BIN_EXE_flakehound");

/// How one test ends in one run of a simple report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum O {
    Pass,
    Fail,
    /// Surefire: failed, then passed on an in-run rerun.
    FlakyInRun,
    /// Surefire: failed on the first attempt and on the rerun.
    FailRerun,
    Skip,
    /// Failed with this message.
    FailWith(&'static str),
}

pub struct History {
    pub dir: tempfile::TempDir,
    runs: Vec<RunInput>,
    seq: usize,
}

impl History {
    pub fn new() -> Self {
        History {
            dir: tempfile::tempdir().unwrap(),
            runs: Vec::new(),
            seq: 0,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("flakes.db")
    }

    /// Add a run: `t` hours after a fixed epoch, with each (class, name, outcome).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        job: &str,
        branch: &str,
        commit: &str,
        run_id: &str,
        attempt: u32,
        hours: f64,
        cases: &[(&str, &str, O)],
    ) -> &mut Self {
        self.seq += 1;
        let path = self.dir.path().join(format!("r{}.xml", self.seq));
        std::fs::write(&path, surefire_xml(cases)).unwrap();
        self.runs.push(RunInput {
            meta: RunMeta {
                commit: commit.into(),
                branch: branch.into(),
                job: job.into(),
                run_id: run_id.into(),
                attempt,
                started_at: 1_763_600_000 + (hours * 3600.0) as i64,
                duration_s: Some(600.0),
                run_url: None,
            },
            started_at_known: true,
            paths: vec![path],
            found: Vec::new(),
        });
        self
    }

    pub fn ingest(&mut self) -> Store {
        let mut store = Store::open(&self.db()).unwrap();
        self.ingest_into(&mut store);
        store
    }

    /// Ingest the runs added so far into `store` (any backend).
    pub fn ingest_into(&mut self, store: &mut Store) {
        let runs = std::mem::take(&mut self.runs);
        let (_, rejected) = ingest(store, &runs, None).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
    }
}

pub fn surefire_xml(cases: &[(&str, &str, O)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<testsuite name=\"suite\">\n");
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
    };
    for (class, name, o) in cases {
        let body = match o {
            O::Pass => String::new(),
            O::Fail => "<failure message=\"expected 1 but was 2\" type=\"AssertionError\"/>".into(),
            O::FlakyInRun => "<flakyFailure message=\"Timeout after 3000 ms\" type=\"TimeoutException\"/>".into(),
            O::FailRerun => "<failure message=\"expected 1 but was 2\" type=\"AssertionError\"/><rerunFailure message=\"expected 1 but was 2\" type=\"AssertionError\"/>".into(),
            O::Skip => "<skipped/>".into(),
            O::FailWith(message) => format!(
                "<failure message=\"{}\" type=\"AssertionError\"/>",
                esc(message)
            ),
        };
        s.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" time=\"1.5\">{body}</testcase>\n",
            esc(class),
            esc(name)
        ));
    }
    s.push_str("</testsuite>\n");
    s
}

pub fn flakehound(db: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("FLAKEHOUND_DB")
        .env("CI", "true")
        .output()
        .unwrap()
}
