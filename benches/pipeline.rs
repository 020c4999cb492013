//! Criterion benches of each pipeline stage: parse, ingest, score and the rendered outputs.
//! Run with `cargo bench`; CI only compiles them (`cargo bench --no-run`).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flakehound::api::{render, Endpoint};
use flakehound::ingest::{ingest, RunInput};
use flakehound::junit::parse_bytes;
use flakehound::model::RunMeta;
use flakehound::score::{score, ScoreOptions};
use flakehound::store::Store;

/// A compact Surefire-style report of `tests` cases (about 150 bytes a case), with a few
/// failures and in-run flakes so every code path runs.
fn report(tests: usize, run: usize) -> String {
    let mut s = String::with_capacity(tests * 150);
    s.push_str("<?xml version=\"1.0\"?>\n<testsuite name=\"com.acme.Suite\" tests=\"0\">\n");
    for t in 0..tests {
        let class = format!("com.acme.svc{}.Service{}Test", t % 20, t / 20);
        let body = match (t * 7919 + run * 104_729) % 997 {
            0 => "<failure message=\"expected 3 but was 4\" type=\"AssertionError\"/>",
            1 | 2 => "<flakyFailure message=\"Timeout after 3012 ms\" type=\"TimeoutException\"/>",
            _ => "",
        };
        s.push_str(&format!(
            "<testcase classname=\"{class}\" name=\"method{t}\" time=\"0.0{}\">{body}</testcase>\n",
            t % 10
        ));
    }
    s.push_str("</testsuite>\n");
    s
}

fn write_runs(dir: &std::path::Path, runs: usize, tests: usize) -> Vec<RunInput> {
    (0..runs)
        .map(|r| {
            let path: PathBuf = dir.join(format!("run{r}.xml"));
            std::fs::write(&path, report(tests, r)).unwrap();
            RunInput {
                meta: RunMeta {
                    commit: format!("{:040x}", r / 2),
                    branch: "main".into(),
                    job: "unit".into(),
                    run_id: format!("{}", r / 2),
                    attempt: 1 + (r % 2) as u32,
                    started_at: 1_763_000_000 + r as i64 * 600,
                    duration_s: Some(900.0),
                    run_url: None,
                },
                started_at_known: true,
                paths: vec![path],
                found: Vec::new(),
            }
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let xml = report(800, 1);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(800));
    g.bench_function("surefire_800_cases", |b| {
        b.iter(|| parse_bytes(xml.as_bytes()).unwrap())
    });
    g.finish();
}

fn ingest_runs(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runs = write_runs(dir.path(), 50, 800);
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(50 * 800));
    g.bench_function("50_runs_x_800_tests_fresh_db", |b| {
        b.iter_batched(
            || {
                let db = dir.path().join("bench.db");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                }
                Store::open(&db).unwrap()
            },
            |mut store| ingest(&mut store, &runs, None).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn scoring_and_outputs(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runs = write_runs(dir.path(), 250, 800);
    let db = dir.path().join("history.db");
    let mut store = Store::open(&db).unwrap();
    ingest(&mut store, &runs, None).unwrap();
    let mut g = c.benchmark_group("score");
    g.sample_size(10);
    g.throughput(Throughput::Elements(250 * 800));
    g.bench_function("score_200k_results", |b| {
        b.iter(|| score(&store, &ScoreOptions::default()).unwrap())
    });
    let params = vec![("format".to_string(), "json".to_string())];
    g.bench_function("flaky_json_200k_results", |b| {
        b.iter(|| render(&db, Endpoint::Flaky, &params).unwrap())
    });
    let csv = vec![("format".to_string(), "csv".to_string())];
    g.bench_function("backlog_csv_200k_results", |b| {
        b.iter(|| render(&db, Endpoint::Backlog, &csv).unwrap())
    });
    g.finish();
}

/// Scoring a 10-million-result history (12,500 runs × 800 tests over 25 days). Building it
/// takes a while, so it runs only with `FLAKEHOUND_BENCH_10M=1 cargo bench -- score_10m`.
fn scoring_10m(c: &mut Criterion) {
    if std::env::var_os("FLAKEHOUND_BENCH_10M").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = write_runs(dir.path(), 1000, 800);
    let runs: Vec<RunInput> = (0..12_500usize)
        .map(|r| {
            let mut input = files[r % 1000].clone();
            input.meta.commit = format!("{:040x}", r / 2);
            input.meta.run_id = format!("{}", r / 2);
            input.meta.attempt = 1 + (r % 2) as u32;
            input.meta.started_at = 1_763_000_000 + r as i64 * 172;
            input
        })
        .collect();
    let db = dir.path().join("history.db");
    let mut store = Store::open(&db).unwrap();
    for chunk in runs.chunks(500) {
        ingest(&mut store, chunk, None).unwrap();
    }
    drop(store);
    let store = Store::open_read_only(&db).unwrap();
    let mut g = c.benchmark_group("score");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000_000));
    g.bench_function("score_10m_results", |b| {
        b.iter(|| score(&store, &ScoreOptions::default()).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    parse,
    ingest_runs,
    scoring_and_outputs,
    scoring_10m
);
criterion_main!(benches);
