//! The CI post-step: one `flakehound ingest` process storing one 10,000-test report into a
//! large database, timed from outside the process (start, open, parse, store, commit, the
//! WAL checkpoint at close, exit), as a CI job sees it.
//!
//! * `cargo bench --bench post_step`: into a 200k-result bench history built first
//!   (`simulate --preset bench --runs 250 --tests 800 --seed 1`).
//! * `POST_STEP_DB=/path/m10.db cargo bench --bench post_step`: into a copy of that database
//!   (issue 15's figure uses the 10M-result history: `simulate --preset bench --runs 12500
//!   --tests 800 --seed 1`, ingested once). The copy is made once per run of the bench;
//!   every iteration is a new run (no `--run-id`: a fresh one each time), so nothing is
//!   deduplicated, and the database grows by 10,000 results per iteration.
//!
//! The report is the bench simulator's 10,000-test run (`--runs 1 --tests 10000 --seed 2`),
//! whose first 800 tests are the history's: the first iteration stores the 9,200 new tests,
//! every later one finds all 10,000 stored, as a CI job's post-step does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const BIN: &str = env!("CARGO_BIN_EXE_flakehound");

fn flakehound(args: &[&str]) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run flakehound");
    assert!(
        out.status.success(),
        "flakehound {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn simulate(dir: &Path, runs: usize, tests: usize, seed: u64) -> PathBuf {
    let out = dir.to_str().expect("UTF-8 temp path");
    let (runs, tests, seed) = (runs.to_string(), tests.to_string(), seed.to_string());
    flakehound(&[
        "simulate", "--preset", "bench", "--runs", &runs, "--tests", &tests, "--seed", &seed,
        "--out", out,
    ]);
    dir.join("runs.csv")
}

/// The single report file of a one-run simulation.
fn only_report(dir: &Path) -> PathBuf {
    let mut stack = vec![dir.join("reports")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read reports") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "xml") {
                return p;
            }
        }
    }
    panic!("no report under {}", dir.display());
}

fn post_step(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("history.db");
    match std::env::var_os("POST_STEP_DB") {
        Some(src) => {
            std::fs::copy(&src, &db).expect("copy POST_STEP_DB");
        }
        None => {
            let manifest = simulate(&tmp.path().join("history"), 250, 800, 1);
            flakehound(&[
                "--db",
                db.to_str().unwrap(),
                "ingest",
                "--manifest",
                manifest.to_str().unwrap(),
            ]);
        }
    }
    let report_dir = tmp.path().join("report");
    simulate(&report_dir, 1, 10_000, 2);
    let report = only_report(&report_dir);
    let db_arg = db.to_str().unwrap().to_string();
    let report_arg = report.to_str().unwrap().to_string();
    let args = [
        "--db",
        &db_arg,
        "ingest",
        "--commit",
        "1111111111111111111111111111111111111111",
        "--branch",
        "main",
        "--job",
        "bench",
        &report_arg,
    ];
    // The first post-step of this report stores its new tests; time the ones after.
    flakehound(&args);

    let mut g = c.benchmark_group("post_step");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("ingest_10k_test_report_process", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                flakehound(&args);
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, post_step);
criterion_main!(benches);
