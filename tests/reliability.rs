//! Nothing lost, nothing corrupted: hostile reports, huge reports, concurrent writers,
//! kill -9 during a backfill, a full disk and a read-only database, run against the
//! binary as a CI post-step runs it. See docs/reliability.md for the figures.
//!
//! Long loops live in scripts/ (kill9-loop.sh, huge-report.sh, disk-full.sh); the
//! variants here are bounded so that the whole file stays within seconds.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------------------
// Hostile XML

#[derive(Debug)]
enum Expect {
    /// Rejected (exit 1) with this in the message, nothing stored.
    Rejected(&'static str),
    /// Stored (exit 0) with this many tests.
    Stored(u64),
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn utf16(text: &str, little: bool) -> Vec<u8> {
    let mut out = if little {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        out.extend(if little {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuite name="laughs"><testcase classname="Laughs" name="&lol9;"><failure message="&lol9;" type="&lol9;">&lol9;</failure></testcase></testsuite>
"#;

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/evil.dtd" [
 <!ENTITY xxe SYSTEM "file:///etc/passwd">
 <!ENTITY % pe SYSTEM "file:///etc/hostname">
 %pe;
]>
<testsuite name="xxe"><testcase classname="Xxe" name="&xxe;"><failure message="&xxe;">&xxe;</failure></testcase></testsuite>
"#;

fn hostile_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let plain = common::surefire_xml(&[
        ("A", "x", common::O::Pass),
        ("A", "y", common::O::FlakyInRun),
        ("A", "z", common::O::Fail),
    ]);
    let deep = format!(
        "<testsuite name=\"deep\">{}{}</testsuite>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let mut deep_case = String::from("<testsuite><testcase classname=\"D\" name=\"d\">");
    deep_case.push_str(&"<system-out>".repeat(300));
    let gz = gzip(plain.as_bytes());
    let mut junk = vec![0u8; 64 * 1024];
    let mut x: u32 = 0x1234_5678;
    for b in junk.iter_mut() {
        // xorshift: deterministic binary junk that is neither gzip nor UTF-16 nor XML
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = (x >> 24) as u8;
    }
    junk[0] = 0x7F;
    let mut bad_utf8 = b"<testsuite name=\"s\"><testcase classname=\"C\" name=\"bad-".to_vec();
    bad_utf8.extend([0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80]);
    bad_utf8
        .extend(b"\"><failure message=\"m\xFF\">trace \xFE\xFF</failure></testcase></testsuite>");
    let nul_name =
        b"<testsuite name=\"s\"><testcase classname=\"C\" name=\"a\0b\"/></testsuite>".to_vec();
    let nul_text =
        b"<testsuite name=\"s\">\0\0\0<testcase classname=\"C\" name=\"n\"/></testsuite>".to_vec();
    let nul_lead = b"\0\0\0\0<testsuite/>".to_vec();
    let truncated_gz = gz[..gz.len() / 2].to_vec();
    vec![
        (
            "deeply nested",
            deep.into_bytes(),
            Expect::Rejected("elements nested deeper than 256 levels"),
        ),
        (
            "deeply nested in a testcase",
            deep_case.into_bytes(),
            Expect::Rejected("elements nested deeper than 256 levels"),
        ),
        (
            "billion laughs",
            LAUGHS.as_bytes().to_vec(),
            Expect::Stored(1),
        ),
        (
            "external entity",
            XXE.as_bytes().to_vec(),
            Expect::Stored(1),
        ),
        ("invalid UTF-8", bad_utf8, Expect::Stored(1)),
        // Lenient on values, like invalid UTF-8: quick-xml does not reject NUL characters.
        ("NUL in an attribute", nul_name, Expect::Stored(1)),
        ("NUL between elements", nul_text, Expect::Stored(1)),
        (
            "NUL before the root",
            nul_lead,
            Expect::Rejected("not a JUnit report: text before the root element"),
        ),
        ("UTF-16LE with BOM", utf16(&plain, true), Expect::Stored(3)),
        ("UTF-16BE with BOM", utf16(&plain, false), Expect::Stored(3)),
        ("gzip'd as .xml", gz, Expect::Stored(3)),
        (
            "UTF-8 with BOM",
            [&b"\xEF\xBB\xBF"[..], plain.as_bytes()].concat(),
            Expect::Stored(3),
        ),
        // The byte-order mark is looked for after decompression.
        (
            "gzip'd UTF-16",
            gzip(&utf16(&plain, true)),
            Expect::Stored(3),
        ),
        (
            "truncated gzip",
            truncated_gz,
            Expect::Rejected("incomplete deflate stream"),
        ),
        ("binary junk", junk, Expect::Rejected("")),
        (
            "empty file",
            Vec::new(),
            Expect::Rejected("empty report: no root element"),
        ),
        (
            "whitespace only",
            b" \n\t\n".to_vec(),
            Expect::Rejected("empty report: no root element"),
        ),
        (
            "only <testsuite/>",
            b"<testsuite/>".to_vec(),
            Expect::Stored(0),
        ),
        (
            "truncated inside a tag",
            plain.as_bytes()[..plain.len() - 30].to_vec(),
            Expect::Rejected("malformed XML: syntax error: tag not closed"),
        ),
        (
            "truncated between tags",
            plain.as_bytes()[..plain.rfind("</testsuite>").unwrap()].to_vec(),
            Expect::Rejected("unexpected end of file: <testsuite> (1 element(s)) still open"),
        ),
        (
            "HTML error page",
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>".to_vec(),
            Expect::Rejected("not a JUnit report: root element is <html>"),
        ),
    ]
}

#[test]
fn hostile_reports_get_a_clear_error_or_a_correct_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let mut stored_runs = 0;
    let mut failures = Vec::new();
    for (i, (what, bytes, expect)) in hostile_cases().into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.xml"));
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        let out = ingest(&db, &format!("hostile-{i}"), &[&path]);
        let took = started.elapsed();
        let err = stderr(&out);
        assert!(
            !err.contains("panicked"),
            "{what}: the ingest panicked: {err}"
        );
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
        let ok = match &expect {
            Expect::Rejected(reason) => {
                let s = summary(&out);
                out.status.code() == Some(1)
                    && err.contains(&format!("case{i}.xml:"))
                    && err.contains(reason)
                    && s["rejected"] == 1
                    && s["tests"] == 0
            }
            Expect::Stored(n) => {
                stored_runs += 1;
                let s = summary(&out);
                out.status.code() == Some(0) && s["tests"] == *n && s["rejected"] == 0
            }
        };
        if !ok {
            failures.push(format!(
                "{what}: expected {expect:?}, got exit {:?}\n  stdout: {}\n  stderr: {}",
                out.status.code(),
                stdout(&out).trim(),
                err.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Rejected reports left nothing behind: one run per stored report, all whole.
    let conn = open(&db);
    let (runs, files, _) = assert_whole_files(&conn);
    assert_eq!(runs, stored_runs);
    assert_eq!(files, stored_runs);

    // No entity was expanded, internal or external: the text is kept as written.
    let texts: Vec<String> = conn
        .prepare(
            "SELECT name FROM test UNION ALL SELECT classname FROM test
             UNION ALL SELECT COALESCE(message, '') FROM failure
             UNION ALL SELECT COALESCE(type, '') FROM failure
             UNION ALL SELECT normalized FROM fingerprint UNION ALL SELECT sample FROM fingerprint",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let first_line = passwd.lines().next().unwrap_or("root:x:0:0");
    for t in &texts {
        assert!(t.len() < 1000, "expanded text stored: {} bytes", t.len());
        assert!(!t.contains("lollol"), "entity expanded: {t}");
        assert!(!t.contains(first_line), "external entity read: {t}");
        assert!(!t.contains("root:x:0"), "external entity read: {t}");
    }
    let names: Vec<String> = conn
        .prepare("SELECT name FROM test WHERE classname IN ('Laughs', 'Xxe') ORDER BY classname")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["&lol9;", "&xxe;"]);
    let messages: Vec<String> = conn
        .prepare("SELECT message FROM failure ORDER BY message")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(messages.contains(&"&lol9;".to_string()), "{messages:?}");
    assert!(messages.contains(&"&xxe;".to_string()), "{messages:?}");
    // Invalid UTF-8 is never stored as invalid TEXT: a name is read as Windows-1252 (each
    // byte its own character, so names stay apart), a message with replacement characters.
    let bad: String = conn
        .query_row("SELECT name FROM test WHERE name LIKE 'bad-%'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(bad, "bad-ÿÃ(í\u{a0}€");
    assert!(messages.contains(&"m\u{FFFD}".to_string()), "{messages:?}");
    // The database stayed small: nothing blew up.
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(size < 2 << 20, "database grew to {size} bytes");
}

// ---------------------------------------------------------------------------------------
// Huge reports: above the streaming threshold, stored whole or not at all

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

/// A huge report is stored in chunks; a repeat far from its first occurrence reads as it
/// does in a small report: a rerun in the suite of the first attempt's name, another test
/// in a suite of another name (once merged in the database as one flaky test).
#[test]
fn a_streamed_report_reads_its_repeats_as_a_small_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let n = 33_000;
    let mut text = report("Huge", n, 7, 2_000);
    text.truncate(text.len() - "</testsuites>\n".len());
    // t0 failed (every 7th fails) and passes on its rerun; t1 passed and a namesake in
    // another suite fails.
    text.push_str(
        "<testsuite name=\"big\"><testcase classname=\"com.acme.Huge\" name=\"t0\"/></testsuite>\n\
         <testsuite name=\"other\"><testcase classname=\"com.acme.Huge\" name=\"t1\">\
         <failure message=\"boom\"/></testcase></testsuite>\n</testsuites>\n",
    );
    assert!(text.len() as u64 > flakehound::ingest::STREAM_THRESHOLD);
    let path = dir.path().join("huge.xml");
    std::fs::write(&path, &text).unwrap();
    drop(text);
    let out = ingest(&db, "huge-1", &[&path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tests = json(&db, &["tests", "--format", "json"]);
    let row = |name: &str| {
        tests
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no test {name}"))
            .clone()
    };
    assert_eq!(tests.as_array().unwrap().len(), n + 1);
    let t0 = row("t0");
    assert_eq!(
        (t0["attempts"].as_u64(), t0["flaky"].as_u64()),
        (Some(2), Some(1))
    );
    let t1 = row("t1");
    assert_eq!(
        (t1["attempts"].as_u64(), t1["passed"].as_u64()),
        (Some(1), Some(1))
    );
    let namesake = row("t1 [#2]");
    assert_eq!(namesake["failed"].as_u64(), Some(1));
}

// ---------------------------------------------------------------------------------------
// Concurrent writers

#[test]
fn sixteen_concurrent_writers_store_every_run_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let runs = 12;
    let tests = 400;
    // Run r fails test i when (i + r) % 10 == 0: each test fails in a known number of runs.
    let mut files = Vec::new();
    for r in 0..runs {
        let mut cases = Vec::new();
        for i in 0..tests {
            let o = if (i + r) % 10 == 0 {
                common::O::Fail
            } else {
                common::O::Pass
            };
            cases.push(("com.acme.Shared".to_string(), format!("t{i}"), o));
        }
        let borrowed: Vec<(&str, &str, common::O)> = cases
            .iter()
            .map(|(c, n, o)| (c.as_str(), n.as_str(), *o))
            .collect();
        let path = dir.path().join(format!("run{r}.xml"));
        std::fs::write(&path, common::surefire_xml(&borrowed)).unwrap();
        files.push(path);
    }
    // 16 processes on a database that does not exist yet: 12 runs, 4 of them twice.
    let jobs: Vec<usize> = (0..runs).chain(0..4).collect();
    let children: Vec<_> = jobs
        .iter()
        .map(|&r| {
            let mut cmd = ingest_cmd(&db, &format!("run-{r}"), &[&files[r]]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            (r, cmd.spawn().unwrap())
        })
        .collect();
    let mut stored_tests = 0u64;
    let mut unchanged = 0u64;
    for (r, child) in children {
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "run {r}: {err}");
        assert!(!err.to_lowercase().contains("locked"), "run {r}: {err}");
        assert!(!err.to_lowercase().contains("busy"), "run {r}: {err}");
        let s = summary(&out);
        stored_tests += s["tests"].as_u64().unwrap();
        unchanged += s["unchanged"].as_u64().unwrap();
    }
    // Every run exactly once; the duplicates found their report already stored.
    assert_eq!(stored_tests, (runs * tests) as u64);
    assert_eq!(unchanged, 4);
    let listed = json(&db, &["runs", "--format", "json"]);
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["reports"], 1);
            r["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..runs).map(|r| format!("run-{r}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let counts = json(&db, &["tests", "--format", "json"]);
    let counts = counts.as_array().unwrap();
    assert_eq!(counts.len(), tests);
    for t in counts {
        let i: usize = t["name"].as_str().unwrap()[1..].parse().unwrap();
        let fails = (0..runs).filter(|r| (i + r) % 10 == 0).count() as u64;
        assert_eq!(t["runs"], runs as u64, "{t}");
        assert_eq!(t["failed"], fails, "{t}");
        assert_eq!(t["passed"], runs as u64 - fails, "{t}");
    }
    let conn = open(&db);
    let (r, f, results) = assert_whole_files(&conn);
    assert_eq!(
        (r, f, results),
        (runs as i64, runs as i64, (runs * tests) as i64)
    );
}

#[test]
fn writers_racing_to_create_a_database_all_succeed() {
    // The riskiest moment is the first: every process finds no database and converts it to
    // WAL. Many short rounds of 16 processes on a fresh file each.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.xml");
    std::fs::write(&path, common::surefire_xml(&[("A", "t", common::O::Pass)])).unwrap();
    let rounds = 30;
    let mut failures = Vec::new();
    for round in 0..rounds {
        let db = dir.path().join(format!("fresh{round}.db"));
        let failed_before = failures.len();
        let children: Vec<_> = (0..16)
            .map(|p| {
                let mut cmd = ingest_cmd(&db, &format!("run-{p}"), &[&path]);
                cmd.stdout(Stdio::null()).stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            if out.status.code() != Some(0) {
                failures.push(format!("round {round}: {}", stderr(&out).trim()));
            }
        }
        if failures.len() == failed_before {
            let runs = json(&db, &["runs", "--format", "json"]);
            assert_eq!(runs.as_array().unwrap().len(), 16, "round {round}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A first backfill killed while it built the database aside leaves its side file; when
/// the database is then created another way (here an ingest of one report, which builds no
/// side file of its own beside a database that exists), `compact` removes what nobody
/// holds, and leaves the database, a file a builder still holds, and look-alikes alone.
#[test]
fn compact_removes_what_a_killed_first_backfill_left_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let path = dir.path().join("r.xml");
    std::fs::write(&path, common::surefire_xml(&[("A", "t", common::O::Pass)])).unwrap();
    let dead = "h.db.flakehound-new-4242-0badcafe";
    let held = "h.db.flakehound-new-1-12345678";
    let other = "h.db.flakehound-newer";
    std::fs::write(dir.path().join(dead), b"SQLite format 3\0").unwrap();
    std::fs::write(dir.path().join(format!("{dead}-wal")), b"").unwrap();
    std::fs::write(dir.path().join(held), b"").unwrap();
    std::fs::write(dir.path().join(other), b"").unwrap();
    let holder = std::fs::File::open(dir.path().join(held)).unwrap();
    rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // The database exists before anything sweeps (as after a `serve` created it).
    drop(flakehound::store::Store::open(&db).unwrap());
    let out = ingest(&db, "1", &[&path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("h.db."))
            .collect();
        n.sort();
        n
    };
    assert!(names(dir.path()).contains(&dead.to_string()));
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .arg("compact")
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(dir.path()), [held, other]);
    assert_eq!(
        json(&db, &["runs", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------
// kill -9 during a backfill

/// A backfill manifest of `runs` runs, each one report of `tests` tests, in `dir`.
fn backfill(dir: &Path, runs: usize, tests: usize) -> PathBuf {
    let mut manifest = String::from("path,commit,branch,job,run_id,attempt,started_at\n");
    for r in 0..runs {
        let folder = dir.join(format!("runs/{r:03}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("TEST-a.xml"),
            report(&format!("Backfill{}", r % 3), tests, 13 + r % 5, 0),
        )
        .unwrap();
        // A second, small file per run: whole runs need every file.
        std::fs::write(
            folder.join("TEST-b.xml"),
            report(&format!("Small{r}"), 5, 2, 0),
        )
        .unwrap();
        manifest.push_str(&format!(
            "runs/{r:03},c{},main,unit,{r},1,2026-11-{:02}T10:00:00Z\n",
            r / 2,
            1 + r % 28
        ));
    }
    let path = dir.join("backfill.csv");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// Iterations of kill -9 and their figures.
struct KillLoop {
    iterations: usize,
    killed: usize,
    completed: usize,
    /// Kills that left some runs but not all stored: a resumable half-done backfill.
    partial: usize,
    integrity_failures: usize,
}

/// Start the backfill, SIGKILL it after a random delay, check the database; repeat.
/// Each iteration resumes the database the previous kill left, as a CI retry would; a
/// backfill that completed before its kill starts over from an empty database.
///
/// `existing`: the database file exists (empty) before each backfill starts over, so the
/// ingest writes in place and a kill keeps what was committed. Otherwise the backfill
/// builds a new database aside: a kill leaves no database at all (or a complete one, if
/// it landed after the rename), and its side file is swept by the next ingest.
fn kill_loop(iterations: usize, budget: Duration, existing: bool) -> KillLoop {
    let dir = tempfile::tempdir().unwrap();
    // 48 runs of 6,000 tests cross the ingest's 250,000-results commit once; the script
    // sets KILL9_RUNS higher for more commits, so more kills land between two of them.
    let run_count: usize = std::env::var("KILL9_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let manifest = backfill(dir.path(), run_count, 6_000);
    let m = manifest.to_str().unwrap();
    let db = dir.path().join("backfill.db");

    // A clean ingest, for the reference counts and the time a full backfill takes.
    let reference = dir.path().join("reference.db");
    let started = Instant::now();
    let out = flakehound(&reference, &["ingest", "--manifest", m, "--json"]);
    let full = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = json(&reference, &["tests", "--format", "json"]);
    let expected_runs = json(&reference, &["runs", "--format", "json"]);
    eprintln!("full backfill takes {full:?}");

    let mut stats = KillLoop {
        iterations: 0,
        killed: 0,
        completed: 0,
        partial: 0,
        integrity_failures: 0,
    };
    let deadline = Instant::now() + budget;
    let start_over = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        if existing {
            std::fs::File::create(&db).unwrap();
        }
    };
    start_over();
    let mut seed: u64 = std::env::var("KILL9_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    while stats.iterations < iterations && Instant::now() < deadline {
        stats.iterations += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Anywhere from start-up to a little past the time a whole backfill takes.
        let delay = full.mul_f64((seed % 1000) as f64 / 1000.0 * 1.1);
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(["ingest", "--manifest", m])
            .env("CI", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let child_killed = match child.try_wait().unwrap() {
            Some(status) => {
                assert_eq!(status.code(), Some(0));
                stats.completed += 1;
                false
            }
            None => {
                // SIGKILL on unix.
                child.kill().unwrap();
                child.wait().unwrap();
                stats.killed += 1;
                true
            }
        };
        if db.exists() {
            let check = |conn: &rusqlite::Connection| {
                conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            };
            let mut conn = open(&db);
            let mut verdict = check(&conn);
            if let Err(e) = &verdict {
                // A read-only connection cannot recover the WAL a killed writer left (the
                // next writer does, as the next ingest would): read it as that writer.
                eprintln!("iteration {}: read-only check: {e}", stats.iterations);
                conn = rusqlite::Connection::open(&db).unwrap();
                verdict = check(&conn);
            }
            if verdict.as_deref() != Ok("ok") {
                stats.integrity_failures += 1;
                eprintln!(
                    "iteration {}: integrity_check failed: {verdict:?}",
                    stats.iterations
                );
                continue;
            }
            // Killed before the schema's first commit: the file exists and holds nothing,
            // which the next ingest migrates (seen once as "no such table: run").
            let has_schema: bool = conn
                .query_row(
                    "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'run'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if !has_schema {
                let objects: i64 = conn
                    .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
                    .unwrap();
                let version: i64 = conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .unwrap();
                assert_eq!((objects, version), (0, 0), "a partial schema");
                eprintln!(
                    "iteration {}: killed after {delay:.1?}, before the schema was committed",
                    stats.iterations
                );
                continue;
            }
            let (runs, files, results) = assert_whole_files(&conn);
            if runs > 0 && runs < run_count as i64 {
                stats.partial += 1;
                assert!(existing, "a database built aside appeared with {runs} runs");
            }
            eprintln!(
                "iteration {}: {} after {delay:.1?}; stored {runs} runs, {files} files, {results} results; integrity ok",
                stats.iterations,
                if child_killed { "killed" } else { "completed" },
            );
        }
        if !child_killed {
            // Finished before the kill: start over, so that the next kill lands on a
            // backfill in progress again.
            start_over();
        }
    }
    // The same backfill again completes it, storing nothing twice.
    let out = flakehound(&db, &["ingest", "--manifest", m, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let conn = open(&db);
    let (runs, files, results) = assert_whole_files(&conn);
    let (rr, rf, rres) = assert_whole_files(&open(&reference));
    assert_eq!((runs, files, results), (rr, rf, rres));
    assert_eq!(json(&db, &["tests", "--format", "json"]), expected);
    assert_eq!(json(&db, &["runs", "--format", "json"]), expected_runs);
    // Side files of killed builders do not pile up.
    let side_files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("flakehound-new"))
        .collect();
    assert!(side_files.is_empty(), "{side_files:?}");
    stats
}

#[test]
fn kill_9_during_a_backfill_leaves_whole_files_and_resumes() {
    let iterations = std::env::var("KILL9_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let budget = Duration::from_secs(
        std::env::var("KILL9_BUDGET_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    for existing in [true, false] {
        let stats = kill_loop(iterations, budget / 2, existing);
        eprintln!(
            "kill-9 loop (database {}): iterations={} killed={} completed={} partial={} integrity_failures={}",
            if existing { "existing" } else { "new" },
            stats.iterations, stats.killed, stats.completed, stats.partial, stats.integrity_failures
        );
        assert_eq!(stats.integrity_failures, 0);
        assert!(stats.iterations >= 3, "too few iterations in the budget");
    }
}

// ---------------------------------------------------------------------------------------
// Disk full and read-only database: these need mounts (root); skipped otherwise.

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

    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let opt = format!("size={size}");
        Self::run(&["-t", "tmpfs", "-o", &opt, "tmpfs", at.to_str()?]).then(|| Mount(at.into()))
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
fn full_disk_is_exit_2_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("small"), "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let db = mount.0.join("f.db");
    let small = dir.path().join("small.xml");
    std::fs::write(&small, report("Before", 50, 5, 0)).unwrap();
    let out = ingest(&db, "1", &[&small]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = json(&db, &["tests", "--format", "json"]);

    // Distinct failure messages that do not fingerprint alike: far more than 1 MB.
    let mut big = String::from("<testsuite name=\"full\">\n");
    for i in 0..6_000 {
        let word: String = format!("{i:x}")
            .chars()
            .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
            .collect();
        big.push_str(&format!(
            "<testcase classname=\"Full\" name=\"t{i}\"><failure message=\"cause {word} {}\" type=\"E\"/></testcase>\n",
            "z".repeat(200)
        ));
    }
    big.push_str("</testsuite>\n");
    let big_path = dir.path().join("big.xml");
    std::fs::write(&big_path, big).unwrap();
    let out = ingest(&db, "2", &[&big_path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the disk is full"), "{err}");
    assert!(stdout(&out).is_empty(), "no summary after a failure");

    // What was stored before is still there, whole, and the database is sound.
    assert_eq!(json(&db, &["tests", "--format", "json"]), before);
    let (runs, _, results) = assert_whole_files(&open(&db));
    assert_eq!((runs, results), (1, 50));
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
        // Reading still works: the history can be scored straight off the mount.
        assert_eq!(
            json(&ro_db, &["tests", "--format", "json"]),
            before,
            "{state}"
        );
        drop(mount);
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes_before,
            "{state}: file changed"
        );
    }
    assert_eq!(json(&db, &["tests", "--format", "json"]), before);
}

// ---------------------------------------------------------------------------------------
// Fuzz regressions: every input the fuzzer ever crashed on stays fixed.

#[test]
fn fuzz_regressions_parse_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz-regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_file() || path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        match flakehound::junit::parse_bytes(&bytes) {
            Ok(r) => assert!(
                r.cases.len() as u64 <= r.info.testcases,
                "{}",
                path.display()
            ),
            Err(e) => {
                let _ = flakehound::junit::located_in(&bytes, &e);
            }
        }
    }
}

/// A FIFO named like a report would block ingest forever, and a link to /dev/zero would be
/// read until memory runs out: both are refused at once, and the real report beside them
/// is stored.
#[test]
fn fifos_and_devices_named_like_reports_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(reports.join("good.xml"), report("ok", 3, 0, 0)).unwrap();
    let fifo = reports.join("fifo.xml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", reports.join("zero.xml")).unwrap();
    let db = dir.path().join("f.db");
    let mut child = ingest_cmd(&db, "r1", &[&reports])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("ingest hung on a FIFO or device");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("fifo.xml") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(err.contains("zero.xml"), "{err}");
    assert_eq!(summary(&out)["tests"], 3);
}
