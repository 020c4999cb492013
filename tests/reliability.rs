//! Nothing lost, nothing corrupted: reports run against the binary as a CI post-step
//! runs it. See docs/reliability.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{flakehound, BIN};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `flakehound ingest --json` of one run (distinct per `run_id`) on a fixed commit.
fn ingest_cmd(db: &Path, run_id: &str, paths: &[&Path]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--db")
        .arg(db)
        .args([
            "ingest",
            "--commit",
            "c0ffee",
            "--branch",
            "main",
            "--job",
            "unit",
            "--run-id",
            run_id,
            "--started-at",
            "2026-11-20T10:00:00Z",
            "--json",
        ])
        .args(paths)
        .env_remove("FLAKEHOUND_DB")
        .env_remove("RUST_LOG")
        .env("CI", "true");
    cmd
}

fn ingest(db: &Path, run_id: &str, paths: &[&Path]) -> Output {
    ingest_cmd(db, run_id, paths).output().unwrap()
}

fn summary(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}\n{}", stdout(o), stderr(o)))
}

fn json(db: &Path, args: &[&str]) -> serde_json::Value {
    let out = flakehound(db, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn open(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Every stored run holds whole files: its results are exactly the `<testcase>`s of its
/// recorded files (the generated reports never repeat a test within a run), and no run
/// exists without a file. Returns (runs, files, results).
fn assert_whole_files(conn: &rusqlite::Connection) -> (i64, i64, i64) {
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok", "integrity_check");
    let mut stmt = conn
        .prepare(
            "SELECT r.run_key,
                    (SELECT COUNT(*) FROM report_file f WHERE f.run_key = r.run_key),
                    (SELECT COALESCE(SUM(testcases), 0) FROM report_file f WHERE f.run_key = r.run_key),
                    (SELECT COUNT(*) FROM result x WHERE x.run_key = r.run_key)
             FROM run r",
        )
        .unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for &(run, files, testcases, results) in &rows {
        assert!(files > 0, "run {run} has no report file");
        assert_eq!(testcases, results, "run {run}: half-ingested report");
    }
    (
        rows.len() as i64,
        rows.iter().map(|r| r.1).sum(),
        rows.iter().map(|r| r.3).sum(),
    )
}

/// A Surefire-style report: `n` tests named `{prefix}{i}`; test i fails when
/// `i % fail_every == 0` (never when 0), and carries `sysout` bytes of system-out.
fn report(prefix: &str, n: usize, fail_every: usize, sysout: usize) -> String {
    let mut s = String::with_capacity(n * (160 + sysout));
    s.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"big\">\n",
    );
    let pad = "x".repeat(sysout);
    for i in 0..n {
        s.push_str(&format!(
            "<testcase classname=\"com.acme.{prefix}\" name=\"t{i}\" time=\"0.01\">"
        ));
        if fail_every > 0 && i % fail_every == 0 {
            s.push_str("<failure message=\"expected &lt;1&gt; but was &lt;2&gt;\" type=\"AssertionError\">at X.java:1</failure>");
        }
        if sysout > 0 {
            s.push_str("<system-out>");
            s.push_str(&pad);
            s.push_str("</system-out>");
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite>\n</testsuites>\n");
    s
}

/// Peak RSS in KiB of a command, when GNU time is there to measure it.
fn with_peak_rss(mut cmd: Command) -> (Output, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return (cmd.output().unwrap(), None);
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new(time);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let out = timed.output().unwrap();
    let kib = std::fs::read_to_string(report.path())
        .ok()
        .and_then(|t| t.lines().last()?.trim().parse().ok());
    (out, kib)
}

#[test]
fn report_over_the_streaming_threshold_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let n = 33_000;
    let text = report("Huge", n, 7, 2_000);
    let threshold = flakehound::ingest::STREAM_THRESHOLD as usize;
    assert!(text.len() > threshold + (2 << 20), "{} bytes", text.len());
    let whole = dir.path().join("huge.xml");
    std::fs::write(&whole, &text).unwrap();
    // Cut inside a testcase, still above the threshold so that it is streamed.
    let truncated = dir.path().join("huge-truncated.xml");
    std::fs::write(&truncated, &text.as_bytes()[..threshold + (1 << 20)]).unwrap();
    drop(text);

    let (out, rss) = with_peak_rss(ingest_cmd(&db, "huge-1", &[&whole]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let failed = n.div_ceil(7) as u64;
    assert_eq!(s["tests"], n as u64);
    assert_eq!(s["failed"], failed);
    assert_eq!(s["passed"], n as u64 - failed);
    if let Some(kib) = rss {
        eprintln!(
            "peak RSS for a {} MB report: {} MiB",
            whole.metadata().unwrap().len() >> 20,
            kib >> 10
        );
        assert!(kib < 200 * 1024, "peak RSS {kib} KiB");
    }
    let before = json(&db, &["tests", "--format", "json"]);

    // A truncated huge report, for a new run: rejected, and neither it nor its run stored.
    let out = ingest(&db, "huge-2", &[&truncated]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unexpected end of file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(summary(&out)["rejected"], 1);
    let conn = open(&db);
    let (runs, files, results) = assert_whole_files(&conn);
    assert_eq!((runs, files, results), (1, 1, n as i64));
    assert_eq!(json(&db, &["tests", "--format", "json"]), before);
    assert_eq!(
        json(&db, &["runs", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // And for the run already stored: still rejected, the stored run untouched.
    let out = ingest(&db, "huge-1", &[&truncated]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (runs, files, results) = assert_whole_files(&conn);
    assert_eq!((runs, files, results), (1, 1, n as i64));
    assert_eq!(json(&db, &["tests", "--format", "json"]), before);
}

// ---------------------------------------------------------------------------------------
// Read-only database: needs a mount (root); skipped otherwise.

/// A mount point, unmounted on drop (also when the test fails).
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) -> bool {
        Command::new("mount")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn read_only_bind(from: &Path, at: &Path) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        if !Self::run(&["--bind", from.to_str()?, at.to_str()?]) {
            return None;
        }
        let m = Mount(at.into());
        Self::run(&["-o", "remount,bind,ro", at.to_str()?]).then_some(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn read_only_database_is_exit_2_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let rw = dir.path().join("rw");
    std::fs::create_dir(&rw).unwrap();
    let db = rw.join("f.db");
    let first = dir.path().join("first.xml");
    std::fs::write(&first, report("Ro", 20, 4, 0)).unwrap();
    let out = ingest(&db, "1", &[&first]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = json(&db, &["tests", "--format", "json"]);
    let second = dir.path().join("second.xml");
    std::fs::write(&second, report("Ro2", 20, 4, 0)).unwrap();
    // A reader leaves the -wal and -shm files behind; a writer's clean close removes
    // them. A read-only mount can freeze the folder in either state: try both.
    for state in ["with -wal and -shm", "clean"] {
        if state == "clean" {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(rw.join(format!("f.db{suffix}")));
            }
        }
        let bytes_before = std::fs::read(&db).unwrap();
        let Some(mount) = Mount::read_only_bind(&rw, &dir.path().join("ro")) else {
            eprintln!("SKIPPED: cannot bind-mount read-only here (needs root)");
            return;
        };
        let ro_db = mount.0.join("f.db");
        let out = ingest(&ro_db, "2", &[&second]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{state}: {err}");
        assert!(err.contains("the database is read-only"), "{state}: {err}");
        assert!(stdout(&out).is_empty());
        drop(mount);
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes_before,
            "{state}: file changed"
        );
    }
    assert_eq!(json(&db, &["tests", "--format", "json"]), before);
}
