//! Floors for ingest: what it costs just to tokenize the XML with quick-xml (no parsing into
//! test cases, no hashing, no storage), and just to bulk-insert the same number of result rows
//! into SQLite (one transaction, one prepared statement, the `result` table of
//! `schema/0001_init.sql`, the store's pragmas).
//!
//! Two modes:
//! * `cargo bench --bench floors`: criterion on a small generated report set.
//! * `FLOORS_MANIFEST=runs.csv cargo bench --bench floors`: one-shot measurement over the
//!   files of an ingest manifest (as `scripts/perf/run.sh` does); prints one JSON line with
//!   bytes, files, testcases, read_s, tokenize_s (one thread), tokenize_par_s (all cores),
//!   insert_rows, insert_s. Set `FLOORS_DB` to the scratch database path (default: a temp file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use quick_xml::events::Event;
use quick_xml::Reader;
use rayon::prelude::*;
use rusqlite::{params, Connection};

const RESULT_TABLE: &str = "CREATE TABLE result (
    run_key     INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    outcome     INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (run_key, test_id)
) WITHOUT ROWID;";

/// Events and attributes of one document; returns the number of `<testcase>` elements.
fn tokenize(bytes: &[u8]) -> u64 {
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::with_capacity(4096);
    let mut cases = 0u64;
    let mut attrs = 0u64;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                if e.local_name().as_ref() == b"testcase" {
                    cases += 1;
                }
                for a in e.attributes().flatten() {
                    attrs += a.value.len() as u64;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    std::hint::black_box(attrs);
    cases
}

/// The report files named by an ingest manifest (`path` column, relative to its folder;
/// folders are searched for `*.xml`).
fn manifest_files(manifest: &Path) -> Vec<PathBuf> {
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut rdr = csv::Reader::from_path(manifest).expect("manifest");
    let mut files = Vec::new();
    for rec in rdr.records() {
        let rec = rec.expect("manifest row");
        let p = base.join(&rec[0]);
        if p.is_dir() {
            let mut stack = vec![p];
            while let Some(d) = stack.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&d)
                    .expect("dir")
                    .map(|e| e.unwrap().path())
                    .collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else if e.extension().is_some_and(|x| x == "xml") {
                        files.push(e);
                    }
                }
            }
        } else if !rec[0].is_empty() {
            files.push(p);
        }
    }
    files
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Insert `runs × tests` rows in one transaction; run keys ascending, test ids hashed (as the
/// real ids are), so the B-tree sees the same access pattern as an ingest.
fn bulk_insert(conn: &mut Connection, runs: u64, tests: u64) {
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO result (run_key, test_id, outcome, attempts, failures, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        for r in 1..=runs {
            for t in 0..tests {
                let id = splitmix(t) as i64;
                let fail = (splitmix(r * 1_000_003 + t) % 100 == 0) as i64;
                st.execute(params![r as i64, id, 2 * fail, 1, fail, (t % 97) as i64])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

fn open_db(path: &Path) -> Connection {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -64_000).unwrap();
    conn.execute_batch(RESULT_TABLE).unwrap();
    conn
}

fn one_shot(manifest: &Path) {
    let files = manifest_files(manifest);
    // Read every file into memory once (warm cache): this is also the read floor in-process.
    let t = Instant::now();
    let data: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let read_s = t.elapsed().as_secs_f64();
    let bytes: u64 = data.iter().map(|d| d.len() as u64).sum();

    let t = Instant::now();
    let cases: u64 = data.iter().map(|d| tokenize(d)).sum();
    let tokenize_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let cases_par: u64 = data.par_iter().map(|d| tokenize(d)).sum();
    let tokenize_par_s = t.elapsed().as_secs_f64();
    assert_eq!(cases, cases_par);

    // Same number of rows as test cases, shaped as files × cases-per-file.
    let per_file = (cases / files.len().max(1) as u64).max(1);
    let runs = cases.div_ceil(per_file);
    let db = std::env::var_os("FLOORS_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("flakehound-floors.db"));
    let mut conn = open_db(&db);
    let t = Instant::now();
    bulk_insert(&mut conn, runs, per_file);
    drop(conn);
    let insert_s = t.elapsed().as_secs_f64();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    println!(
        "{{\"files\":{},\"bytes\":{},\"testcases\":{},\"read_s\":{:.4},\"tokenize_s\":{:.4},\"tokenize_par_s\":{:.4},\"insert_rows\":{},\"insert_s\":{:.4}}}",
        files.len(),
        bytes,
        cases,
        read_s,
        tokenize_s,
        tokenize_par_s,
        runs * per_file,
        insert_s
    );
}

fn report(tests: usize) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<testsuite name=\"s\" tests=\"0\">\n");
    for t in 0..tests {
        s.push_str(&format!(
            "<testcase classname=\"com.acme.svc{}.Service{}Test\" name=\"method{t}\" time=\"0.0{}\"/>\n",
            t % 20,
            t / 20,
            t % 10
        ));
    }
    s.push_str("</testsuite>\n");
    s
}

fn floors(c: &mut Criterion) {
    let xml = report(800);
    let mut g = c.benchmark_group("floors");
    g.throughput(Throughput::Elements(800));
    g.bench_function("tokenize_800_cases", |b| {
        b.iter(|| tokenize(xml.as_bytes()))
    });
    g.throughput(Throughput::Elements(80_000));
    g.sample_size(10);
    let dir = std::env::temp_dir().join(format!("flakehound-floors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("f.db");
    g.bench_function("sqlite_insert_80k_rows", |b| {
        b.iter(|| {
            let mut conn = open_db(&db);
            bulk_insert(&mut conn, 100, 800);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, floors);

fn main() {
    if let Some(m) = std::env::var_os("FLOORS_MANIFEST") {
        one_shot(Path::new(&m));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
