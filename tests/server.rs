//! The upload server end to end: the real binary on a loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_flakehound");

struct Server {
    child: Child,
    base: String,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(db: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(db)
            .args(["-v", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let mut addr = None;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            log.lock().unwrap().push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                addr = Some(rest.to_string());
                break;
            }
            line.clear();
        }
        let Some(addr) = addr else {
            let _ = child.wait();
            panic!("server did not start:\n{}", log.lock().unwrap());
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            log,
        }
    }

    /// The server's stderr so far, without colour codes.
    fn log(&self) -> String {
        let raw = self.log.lock().unwrap().clone();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report(classname: &str, tests: usize, failing: &[usize]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<testsuite name=\"{classname}\" tests=\"{tests}\" time=\"1.5\">\n"
    );
    for i in 0..tests {
        if failing.contains(&i) {
            xml.push_str(&format!(
                "  <testcase classname=\"{classname}\" name=\"test_{i}\" time=\"0.01\"><failure message=\"boom\" type=\"AssertionError\">at line {i}</failure></testcase>\n"
            ));
        } else {
            xml.push_str(&format!(
                "  <testcase classname=\"{classname}\" name=\"test_{i}\" time=\"0.01\"/>\n"
            ));
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    gz(&b.into_inner().unwrap())
}

struct Answer {
    status: u16,
    body: String,
    /// `X-Flakehound-Cache`: hit, shared or miss.
    cache: Option<String>,
    retry_after: Option<String>,
    www_authenticate: Option<String>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    Answer {
        status: response.status(),
        retry_after: response.header("Retry-After").map(str::to_string),
        www_authenticate: response.header("WWW-Authenticate").map(str::to_string),
        cache: response.header("X-Flakehound-Cache").map(str::to_string),
        body: response.into_string().unwrap(),
    }
}

fn post(server: &Server, query: &str, token: Option<&str>, body: &[u8]) -> Answer {
    let mut req = ureq::post(&format!("{}/api/v1/uploads?{query}", server.base))
        .set("Content-Type", "application/gzip");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    answer(req.send_bytes(body))
}

fn get(server: &Server, path: &str, token: Option<&str>) -> Answer {
    let mut req = ureq::get(&format!("{}{path}", server.base));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    answer(req.call())
}

fn flakehound(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FLAKEHOUND_TOKEN")
        .env_remove("FLAKEHOUND_SERVER")
        .output()
        .unwrap()
}

fn runs(db: &Path) -> Vec<serde_json::Value> {
    let out = flakehound(&["--db", db.to_str().unwrap(), "runs", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

fn reports_dir(dir: &Path) -> PathBuf {
    let reports = dir.join("surefire-reports");
    std::fs::create_dir_all(reports.join("nested")).unwrap();
    std::fs::write(reports.join("TEST-a.xml"), report("com.acme.A", 20, &[3])).unwrap();
    std::fs::write(
        reports.join("nested/TEST-b.xml.gz"),
        gz(report("com.acme.B", 10, &[]).as_bytes()),
    )
    .unwrap();
    std::fs::write(reports.join("notes.txt"), "not a report").unwrap();
    reports
}

#[test]
fn upload_then_query_and_reupload_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    assert!(server.log().contains("authentication is OFF"));
    let health = get(&server, "/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let reports = reports_dir(dir.path());
    let upload = |extra: &[&str]| {
        let mut args = vec![
            "upload",
            "--server",
            &server.base,
            "--commit",
            "c0ffee",
            "--branch",
            "main",
            "--job",
            "unit",
            "--run-id",
            "41",
            "--started-at",
            "2026-03-01T10:00:00Z",
            "--json",
        ];
        args.extend_from_slice(extra);
        args.push(reports.to_str().unwrap());
        flakehound(&args)
    };
    let out = upload(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["tests"], 30);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["unchanged"], 0);

    let stored = runs(&db);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["run_id"], "41");
    assert_eq!(stored[0]["commit"], "c0ffee");
    assert_eq!(stored[0]["branch"], "main");
    assert_eq!(stored[0]["reports"], 2);
    assert_eq!(stored[0]["started_at"], "2026-03-01T10:00:00Z");

    // The same reports again: nothing new, still a success.
    let out = upload(&[]);
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tests"], 0);
    assert_eq!(summary["unchanged"], 2);
    assert_eq!(runs(&db)[0]["reports"], 2);

    // The same over raw HTTP: a single gzip'd report already stored answers 200.
    let again = post(
        &server,
        "commit=c0ffee&job=unit&run_id=41&name=x.xml.gz",
        None,
        &std::fs::read(reports.join("nested/TEST-b.xml.gz")).unwrap(),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["tests"], 0);
    assert_eq!(again.json()["unchanged"], 1);

    // Queries go through api::render: answered (200) or refused as a bad request (400).
    for path in [
        "/api/v1/flaky?format=json",
        "/api/v1/quarantine?format=pytest",
        "/api/v1/report",
        "/api/v1/backlog?format=json",
    ] {
        let a = get(&server, path, None);
        assert!(a.status == 200 || a.status == 400, "{path}: {}", a.status);
    }
    assert_eq!(get(&server, "/api/v1/nope", None).status, 404);
    // A misspelt parameter is refused, not answered for the defaults.
    for path in [
        "/api/v1/flaky?windw=7d",
        "/api/v1/report?format=md&jobs=unit",
        "/api/v1/backlog?p1=2&p3=1",
        "/api/v1/quarantine?format=pytest&min_retries=1",
    ] {
        let a = get(&server, path, None);
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(a.body.contains("unknown parameter"), "{path}: {}", a.body);
    }
    let a = get(&server, "/api/v1/flaky?windw=7d", None);
    let why = a.json()["error"].as_str().unwrap().to_string();
    assert!(why.contains("\"windw\"") && why.contains("window"), "{why}");
    // Every parameter the CLI's flags stand for is known.
    for path in [
        "/api/v1/flaky?format=json&window=7d&job=unit&branch=main&as_of=2026-03-02T00:00:00Z&min_flaky_commits=1&min_isolated_failures=3&fixed_alpha=0.05&slo=0.9&lone_posterior=0.8&lone_alpha=0.05",
        "/api/v1/report?format=json&window=7d&compare_window=7d&top=5&slo=0.9",
        "/api/v1/backlog?format=json&p1=2&p2=0.5&window=7d",
        "/api/v1/quarantine?format=json&min_retries_per_day=0.1&max=5&expire_after=14d&history=false",
    ] {
        let a = get(&server, path, None);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }

    // Plain (not gzip'd) XML works too.
    let plain = post(
        &server,
        "commit=c0ffee&job=unit&run_id=42",
        None,
        report("com.acme.C", 5, &[]).as_bytes(),
    );
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(plain.json()["tests"], 5);
    assert_eq!(runs(&db).len(), 2);

    // A report in ISO-8859-1 keeps its names, as `ingest` reads them.
    let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
        <testsuite><testcase classname=\"com.acme.Caf\xe9\" name=\"r\xe9sum\xe9\"/></testsuite>";
    let a = post(&server, "commit=c0ffee&job=unit&run_id=43", None, latin);
    assert_eq!(a.status, 200, "{}", a.body);
    let name: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT name FROM test WHERE classname = 'com.acme.Café'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "résumé");
}

#[test]
fn tokens_scopes_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let tokens = dir.path().join("tokens");
    let add = |name: &str, scope: &str| {
        let out = flakehound(&[
            "token",
            "add",
            "--name",
            name,
            "--scope",
            scope,
            "--token-file",
            tokens.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let upload_token = add("ci", "upload");
    let read_token = add("dashboard", "read");
    assert!(upload_token.len() >= 32 && upload_token != read_token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let file = std::fs::read_to_string(&tokens).unwrap();
    assert!(!file.contains(&upload_token) && !file.contains(&read_token));
    // A duplicate name is refused.
    let out = flakehound(&[
        "token",
        "add",
        "--name",
        "ci",
        "--scope",
        "read",
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));

    let server = Server::start(&db, &["--token-file", tokens.to_str().unwrap()]);
    let body = tgz(&[("TEST-a.xml", report("com.acme.A", 3, &[]).as_bytes())]);
    let q = "commit=abc&job=unit&run_id=1";

    let none = post(&server, q, None, &body);
    assert_eq!(none.status, 401);
    assert!(none.www_authenticate.unwrap().starts_with("Bearer"));
    let wrong = post(&server, q, Some("fhk_wrong"), &body);
    assert_eq!(wrong.status, 401);
    let read_only = post(&server, q, Some(&read_token), &body);
    assert_eq!(read_only.status, 403, "{}", read_only.body);
    let ok = post(&server, q, Some(&upload_token), &body);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["tests"], 3);

    assert_eq!(
        get(&server, "/api/v1/quarantine?format=pytest", None).status,
        401
    );
    for t in [&read_token, &upload_token] {
        let a = get(&server, "/api/v1/quarantine?format=pytest", Some(t));
        assert!(a.status == 200 || a.status == 400, "{}", a.status);
    }
    assert_eq!(get(&server, "/healthz", None).status, 200);

    // The CLI: a refused token warns and exits 0, or 2 with --strict.
    let reports = reports_dir(dir.path());
    let cli = |token: &str, strict: bool| {
        let mut args = vec![
            "upload",
            "--server",
            &server.base,
            "--token",
            token,
            "--commit",
            "abc",
            "--job",
            "unit",
            "--run-id",
            "2",
            "--retries",
            "0",
        ];
        if strict {
            args.push("--strict");
        }
        args.push(reports.to_str().unwrap());
        flakehound(&args)
    };
    let out = cli(&read_token, false);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(cli(&read_token, true).status.code(), Some(2));
    let out = cli(&upload_token, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 files"));

    // Requests are logged by method and path, never with tokens or query strings.
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log();
    assert!(log.contains("/api/v1/uploads"), "{log}");
    assert!(
        log.contains("status=401") && log.contains("status=403"),
        "{log}"
    );
    assert!(!log.contains(&upload_token) && !log.contains(&read_token));
    assert!(!log.contains("fhk_wrong") && !log.contains("run_id=1"));
}

#[test]
fn refuses_to_listen_openly_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--db")
        .arg(dir.path().join("db"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));
}

/// A server starting on a database removes what a killed first backfill left beside it
/// (a side file nobody holds, with its `-wal`), and says so in its log.
#[test]
fn serve_removes_a_killed_first_backfills_side_file_as_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let dead = dir.path().join("flakes.db.flakehound-new-4242-0badcafe");
    let wal = dir
        .path()
        .join("flakes.db.flakehound-new-4242-0badcafe-wal");
    std::fs::write(&dead, b"SQLite format 3\0").unwrap();
    std::fs::write(&wal, b"").unwrap();
    let server = Server::start(&db, &[]);
    assert!(!dead.exists() && !wal.exists(), "{}", server.log());
    assert!(server
        .log()
        .contains("left by an ingest that did not finish"));
    assert!(db.exists());
}

#[test]
fn a_body_over_max_body_gets_its_413_not_a_reset() {
    // Refused from its Content-Length before it is read: the server must still let the
    // client finish sending and read why, or a CI job sees "broken pipe" and no reason.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-body", "16KiB"]);
    let big = vec![b'x'; 4 << 20];
    for _ in 0..5 {
        let a = post(&server, "commit=abc&job=unit&run_id=1", None, &big);
        assert_eq!(a.status, 413, "{}", a.body);
        assert!(a.body.contains("--max-body"), "{}", a.body);
    }
    assert!(runs(&db).is_empty());
}

#[test]
fn upload_over_max_body_says_why_at_once_and_fails_only_with_strict() {
    // What a CI job sees when its reports outgrow the server's --max-body: the 413's
    // reason, not "broken pipe" or "server unreachable" after retries that cannot succeed.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-body", "16KiB"]);
    let reports = dir.path().join("r");
    std::fs::create_dir_all(&reports).unwrap();
    // Names that do not compress: the packed body stays far over 16 KiB.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut xml = String::from("<testsuite name=\"Big\">\n");
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        xml.push_str(&format!(
            "<testcase classname=\"com.acme.Big\" name=\"t{x:016x}\" time=\"0.01\"/>\n"
        ));
    }
    xml.push_str("</testsuite>\n");
    std::fs::write(reports.join("TEST-big.xml"), xml).unwrap();
    let upload = |strict: bool| {
        let mut a = vec![
            "upload",
            "--server",
            &server.base,
            "--commit",
            "abc",
            "--job",
            "unit",
            "--run-id",
            "7",
            "--retries",
            "3",
            reports.to_str().unwrap(),
        ];
        if strict {
            a.push("--strict");
        }
        // Warnings (each retry logs one) on stderr, whatever the caller's RUST_LOG.
        Command::new(BIN)
            .args(&a)
            .env("RUST_LOG", "warn")
            .env_remove("FLAKEHOUND_TOKEN")
            .env_remove("FLAKEHOUND_SERVER")
            .output()
            .unwrap()
    };
    let out = upload(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("refused the upload") && err.contains("413"),
        "{err}"
    );
    assert!(err.contains("--max-body"), "{err}");
    // Refused is final: no retry.
    assert!(!err.contains("retrying"), "{err}");
    let out = upload(true);
    assert_eq!(out.status.code(), Some(2));
    assert!(runs(&db).is_empty());
}

#[test]
fn limits_malformed_bodies_and_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-body", "16KiB", "--max-unpacked", "256KiB"]);
    let q = "commit=abc&job=unit&run_id=1";

    // Too big as sent.
    let big = vec![b'x'; 64 * 1024];
    let a = post(&server, q, None, &big);
    assert_eq!(a.status, 413, "{}", a.body);
    // Small as sent, huge unpacked: a gzip bomb, alone or inside a tar.
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; 8 << 20]).unwrap();
        e.finish().unwrap()
    };
    assert!(bomb.len() < 16 * 1024);
    assert_eq!(post(&server, q, None, &bomb).status, 413);
    let nested = tgz(&[("bomb.xml.gz", &bomb)]);
    let a = post(&server, q, None, &nested);
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.json()["error"]
        .as_str()
        .unwrap()
        .contains("--max-unpacked"));

    // Not gzip after all.
    let mut broken = gz(report("A", 3, &[]).as_bytes());
    broken.truncate(broken.len() / 2);
    let a = post(&server, q, None, &broken);
    assert_eq!(a.status, 400, "{}", a.body);
    // Missing metadata.
    let a = post(&server, "commit=abc", None, report("A", 3, &[]).as_bytes());
    assert_eq!(a.status, 400);
    assert!(a.body.contains("job"));
    // An empty body.
    assert_eq!(post(&server, q, None, b"").status, 400);

    // A malformed report: 422 with where, and the good one next to it is stored.
    let body = tgz(&[
        ("good/TEST-ok.xml", report("com.acme.Ok", 4, &[]).as_bytes()),
        (
            "bad/TEST-bad.xml",
            b"<testsuite>\n  <testcase name=\"x\">\n</testsuite>\n",
        ),
    ]);
    let a = post(&server, q, None, &body);
    assert_eq!(a.status, 422, "{}", a.body);
    let j = a.json();
    assert_eq!(j["rejected"][0]["path"], "bad/TEST-bad.xml");
    assert!(j["rejected"][0]["line"].as_u64().unwrap() >= 2, "{j}");
    assert!(j["rejected"][0]["column"].as_u64().unwrap() >= 1);
    assert_eq!(j["summary"]["tests"], 4);
    assert_eq!(j["summary"]["rejected"], 1);

    // Path traversal, absolute paths and links refuse the whole upload.
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..18].copy_from_slice(b"../../etc/evil.xml");
    h.set_size(12);
    h.set_mode(0o644);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(b"<testsuite/>");
    raw.resize(1024 + 1024, 0);
    let a = post(&server, "commit=abc&job=unit&run_id=9", None, &gz(&raw));
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.json()["error"].as_str().unwrap().contains(".."));

    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"/tmp/evil.xml");
    h.set_size(12);
    h.set_mode(0o644);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(b"<testsuite/>");
    raw.resize(2048, 0);
    let a = post(&server, "commit=abc&job=unit&run_id=9", None, &gz(&raw));
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.json()["error"].as_str().unwrap().contains("absolute"));

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "TEST-link.xml", "/etc/passwd")
        .unwrap();
    let a = post(
        &server,
        "commit=abc&job=unit&run_id=9",
        None,
        &gz(&b.into_inner().unwrap()),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.json()["error"].as_str().unwrap().contains("link"));

    // Nothing of the refused uploads was stored.
    let stored = runs(&db);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["run_id"], "1");
    assert_eq!(stored[0]["reports"], 1);
}

#[test]
fn cli_rejected_report_and_outage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    let reports = dir.path().join("r");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("TEST-ok.xml"), report("Ok", 2, &[])).unwrap();
    std::fs::write(
        reports.join("TEST-bad.xml"),
        "<testsuite><testcase></testsuite>",
    )
    .unwrap();
    let args = |server: &str| -> Vec<String> {
        [
            "upload",
            "--server",
            server,
            "--commit",
            "abc",
            "--job",
            "unit",
            "--run-id",
            "5",
            "--retries",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut a = args(&server.base);
    a.push(reports.to_str().unwrap().into());
    let out = Command::new(BIN).args(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TEST-bad.xml:1:"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 rejected"));

    // Nobody listens: a warning and exit 0, or 2 with --strict.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    std::fs::remove_file(reports.join("TEST-bad.xml")).unwrap();
    let mut a = args(&dead);
    a.push(reports.to_str().unwrap().into());
    let out = Command::new(BIN).args(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: cannot upload"));
    a.push("--strict".into());
    let out = Command::new(BIN).args(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Send the head of an upload and part of its body; the rest is sent later.
fn start_slow_upload(addr: &str, run_id: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /api/v1/uploads?commit=abc&job=unit&run_id={run_id} HTTP/1.1\r\nHost: test\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    s
}

/// Hold the database's write lock, so that the server's writer waits (its busy timeout is
/// a minute) and the upload it is storing keeps its upload slot.
fn lock_db(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c
}

/// Send a whole upload on its own connection while the writer is held by [`lock_db`], and
/// wait until it holds the server's only upload slot: a probe whose body holds no report
/// is answered 503 then, 400 before (and stores nothing either way).
fn start_busy(server: &Server, run_id: &str, body: &[u8]) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = start_slow_upload(&server.addr, run_id, body);
    let mut s2 = s.try_clone().unwrap();
    s2.write_all(&body[body.len() / 2..]).unwrap();
    let probe = tgz(&[("notes.txt", b"not a report")]);
    loop {
        std::thread::sleep(Duration::from_millis(30));
        assert!(!answered(&s), "the held upload was answered");
        let a = post(server, "commit=abc&job=unit&run_id=probe", None, &probe);
        if a.status == 503 {
            return s;
        }
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(
            Instant::now() < deadline,
            "the held upload never took the slot"
        );
    }
}

/// Read the answer to an upload started by [`start_busy`].
fn read_answer(mut s: TcpStream) -> String {
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

/// Whether the server already answered on this connection.
fn answered(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let got = matches!(s.peek(&mut byte), Ok(n) if n > 0);
    s.set_nonblocking(false).unwrap();
    got
}

fn finish_slow_upload(mut s: TcpStream, body: &[u8]) -> String {
    s.write_all(&body[body.len() / 2..]).unwrap();
    s.flush().unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn busy_server_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-concurrent-uploads", "1"]);
    let body = tgz(&[("TEST-a.xml", report("A", 50, &[]).as_bytes())]);
    let lock = lock_db(&db);
    let held = start_busy(&server, "1", &body);
    let a = post(&server, "commit=abc&job=unit&run_id=2", None, &body);
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.retry_after.is_some());
    // The CLI meets the busy server, waits as told (Retry-After) and gets through once
    // the slot is free; the token comes from the environment.
    let reports = dir.path().join("r");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("TEST-c.xml"), report("C", 7, &[])).unwrap();
    let cli = Command::new(BIN)
        .args([
            "upload",
            "--server",
            &server.base,
            "--commit",
            "abc",
            "--job",
            "unit",
        ])
        .args(["--run-id", "3", "--retries", "3", "--strict"])
        .arg(&reports)
        .env("FLAKEHOUND_TOKEN", "ignored-without-a-token-file")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(lock);
    let response = read_answer(held);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let out = cli.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("7 tests"));
    assert_eq!(
        post(&server, "commit=abc&job=unit&run_id=2", None, &body).status,
        200
    );
}

#[test]
fn a_slow_body_holds_no_upload_slot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-concurrent-uploads", "1"]);
    let body = tgz(&[("TEST-a.xml", report("A", 50, &[]).as_bytes())]);
    // Slow clients, each half-way through its body: the only slot stays free.
    let slow: Vec<TcpStream> = (0..4)
        .map(|i| start_slow_upload(&server.addr, &format!("slow{i}"), &body))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let a = post(
            &server,
            &format!("commit=abc&job=unit&run_id=fast{i}"),
            None,
            &body,
        );
        assert_eq!(a.status, 200, "{}", a.body);
    }
    for s in slow {
        let response = finish_slow_upload(s, &body);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert_eq!(runs(&db).len(), 7);
}

#[test]
fn sigterm_finishes_the_upload_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let mut server = Server::start(&db, &["--max-concurrent-uploads", "1"]);
    let body = tgz(&[
        ("TEST-a.xml", report("A", 200, &[1]).as_bytes()),
        ("TEST-b.xml", report("B", 200, &[]).as_bytes()),
    ]);
    // Half of the body is sent: the request is in flight when SIGTERM comes.
    let slow = start_slow_upload(&server.addr, "inflight", &body);
    std::thread::sleep(Duration::from_millis(300));
    server.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    // Still running: the upload in flight holds it open.
    assert!(server.child.try_wait().unwrap().is_none());
    let response = finish_slow_upload(slow, &body);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"tests\":400"), "{response}");
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}\n{}", server.log());
    let stored = runs(&db);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["run_id"], "inflight");
    assert_eq!(stored[0]["reports"], 2);
}

#[test]
fn a_stalled_upload_times_out_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--request-timeout", "1"]);
    let body = tgz(&[("TEST-a.xml", report("A", 50, &[]).as_bytes())]);
    let mut stalled = start_slow_upload(&server.addr, "stalled", &body);
    let mut response = String::new();
    let _ = stalled.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    // The server is still fine, and stored nothing of the stalled upload.
    assert_eq!(
        post(&server, "commit=abc&job=unit&run_id=ok", None, &body).status,
        200
    );
    let stored = runs(&db);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["run_id"], "ok");
}

/// The server's peak resident memory so far, in MiB (Linux: VmHWM).
fn peak_rss_mib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// A report whose one failure holds `mib` MiB of spaces, gzip'd `layers` times, written
/// as a stream so the test never holds it whole.
fn text_bomb(mib: usize, layers: usize) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use flate2::Compression;
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    // Each encoder wraps the next one out.
    let mut sink: Box<dyn Write> = Box::new(Shared(out.clone()));
    for _ in 0..layers {
        sink = Box::new(GzEncoder::new(sink, Compression::fast()));
    }
    sink.write_all(b"<testsuite name=\"S\"><testcase classname=\"C\" name=\"t\"><failure>")
        .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..mib {
        sink.write_all(&chunk).unwrap();
    }
    sink.write_all(b"x</failure></testcase></testsuite>")
        .unwrap();
    // Dropping the encoders finishes them, innermost first.
    drop(sink);
    let bytes = out.borrow().clone();
    bytes
}

#[test]
fn nested_gzip_bomb_counts_against_one_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-unpacked", "64MiB"]);
    let bomb = text_bomb(512, 2);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let a = post(&server, "commit=abc&job=unit&run_id=1", None, &bomb);
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.body.contains("--max-unpacked"), "{}", a.body);
    // The same bomb as a tar entry `.xml.gz` (itself gzip'd once more).
    let t = tgz(&[("reports/TEST-bomb.xml.gz", &bomb)]);
    let a = post(&server, "commit=abc&job=unit&run_id=2", None, &t);
    assert_eq!(a.status, 413, "{}", a.body);
    let peak = peak_rss_mib(&server);
    assert!(peak < 200, "peak RSS {peak} MiB");
    eprintln!("nested gzip bomb (512 MiB inside, --max-unpacked 64MiB): peak RSS {peak} MiB");
    assert!(runs(&db).is_empty());
}

#[test]
fn concurrent_big_uploads_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-memory", "320MiB", "--max-unpacked", "1GiB"]);
    // 200 MiB of text in one failure: kept as 8 KiB, never copied whole.
    let body = std::sync::Arc::new(text_bomb(200, 1));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let body = body.clone();
                let server = &server;
                s.spawn(move || {
                    post(
                        server,
                        &format!("commit=abc&job=unit&run_id=big{i}"),
                        None,
                        &body,
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Those that found the budget taken were told to come back (503), none failed.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    let peak = peak_rss_mib(&server);
    eprintln!(
        "4 parallel 200 MiB text nodes, --max-memory 320MiB: {statuses:?}, peak RSS {peak} MiB"
    );
    assert!(peak < 320 + 120, "peak RSS {peak} MiB");
    // One alone beyond the whole budget: 413, not a retry that can never succeed.
    let huge = text_bomb(400, 1);
    let a = post(&server, "commit=abc&job=unit&run_id=huge", None, &huge);
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.body.contains("--max-memory"), "{}", a.body);
}

#[test]
fn an_oversized_name_is_rejected_with_its_place_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    let xml = format!(
        "<testsuite name=\"S\">\n  <testcase classname=\"C\" name=\"{}\"/>\n</testsuite>\n",
        "n".repeat(200 << 10)
    );
    let a = post(
        &server,
        "commit=abc&job=unit&run_id=1",
        None,
        &gz(xml.as_bytes()),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    let r = &a.json()["rejected"][0];
    assert_eq!(
        (r["line"].as_u64(), r["column"].as_u64()),
        (Some(2), Some(3)),
        "{r}"
    );
    assert!(r["reason"].as_str().unwrap().contains("64 KiB"), "{r}");
    let flaky = get(&server, "/api/v1/flaky?format=json", None);
    assert!(!flaky.body.contains("nnnnnnnn"));
}

#[test]
fn expect_continue_and_huge_lengths_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--max-body", "1MiB"]);
    for length in ["2000000", "100000000000"] {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /api/v1/uploads?commit=abc&job=unit&run_id=1 HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        assert!(!response.contains("100 Continue"), "{response}");
    }
}

/// Open connections the server process holds (its sockets).
fn open_sockets(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn idle_and_partial_connections_are_closed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &["--header-timeout", "1", "--max-connections", "20"]);
    // 60 sockets that never send a byte, and one that stops half-way through its head.
    let mut partial = TcpStream::connect(&server.addr).unwrap();
    partial
        .write_all(b"GET /api/v1/flaky HTTP/1.1\r\nHost:")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let idle: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The cap holds: the listener and at most 20 connections (a few more may be
    // closing at the instant of looking), not 61.
    let open = open_sockets(&server);
    assert!(open <= 26, "{open}");
    // Within the header timeout the idle ones are closed, and a real request gets in.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ok = loop {
        let got = ureq::get(&format!("{}/healthz", server.base))
            .timeout(Duration::from_secs(2))
            .call();
        if let Ok(r) = got {
            break r.status();
        }
        assert!(Instant::now() < deadline, "never got in");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ok, 200);
    partial
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let start = Instant::now();
    let r = partial.read_to_end(&mut rest);
    // Closed by the server (a clean end, or a reset for the bytes it never read), not left
    // hanging until the read timeout.
    assert!(start.elapsed() < Duration::from_secs(4), "{r:?}");
    drop(idle);
}

#[test]
fn a_partial_head_never_blocks_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let mut server = Server::start(&db, &["--header-timeout", "600", "--request-timeout", "2"]);
    let mut partial = TcpStream::connect(&server.addr).unwrap();
    partial
        .write_all(b"POST /api/v1/uploads?commit=a&job=j&run_id=1 HTTP/1.1\r\nHost:")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    server.sigterm();
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// A one-reply-per-connection HTTP server answering every request with `reply`.
fn fake_server(reply: &'static str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(20) {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Read the head and the body (small uploads), then answer and close.
            let mut buf = vec![0u8; 1 << 16];
            let mut got = Vec::new();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn upload_treats_redirects_and_foreign_replies_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("r");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("TEST-a.xml"), report("A", 2, &[])).unwrap();
    let replies = [
        ("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://198.51.100.7/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "redirect"),
        ("HTTP/1.1 308 Permanent Redirect\r\nLocation: https://elsewhere.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "redirect"),
        ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 33\r\nConnection: close\r\n\r\n<html><body>Sign in</body></html>", "login page"),
        ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}", "not an ingest summary"),
    ];
    for (reply, why) in replies {
        let base = fake_server(reply);
        let run = |strict: bool| {
            let mut c = Command::new(BIN);
            c.args([
                "upload", "--server", &base, "--commit", "abc", "--job", "unit",
            ])
            .args(["--run-id", "1", "--retries", "0", "--token", "secret"])
            .arg(&reports)
            .env_remove("FLAKEHOUND_TOKEN");
            if strict {
                c.arg("--strict");
            }
            c.output().unwrap()
        };
        let out = run(false);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{why}: {err}");
        assert!(err.contains(why), "{why}: {err}");
        assert!(err.contains("WERE NOT STORED"), "{why}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("2 tests"));
        let out = run(true);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{why}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn odd_times_are_refused_and_odd_stored_data_never_fails_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    let body = gz(report("A", 5, &[1]).as_bytes());
    for bad in [
        "1767323045000",
        "4102444800",
        "2999-01-01T00:00:00Z",
        "yesterday",
    ] {
        let a = post(
            &server,
            &format!("commit=abc&job=unit&run_id=1&started_at={bad}"),
            None,
            &body,
        );
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert!(a.body.contains("started_at"), "{}", a.body);
    }
    assert_eq!(
        get(&server, "/api/v1/flaky?fixed_alpha=inf", None).status,
        400
    );
    for q in ["window=999999999999999999999999w", "slo=NaN", "window=NaNd"] {
        for path in [
            "/api/v1/flaky",
            "/api/v1/report",
            "/api/v1/quarantine",
            "/api/v1/backlog",
        ] {
            let a = get(&server, &format!("{path}?{q}"), None);
            assert_eq!(a.status, 400, "{path}?{q}: {}", a.body);
        }
    }
    // Odd data stored by an older version (a start in milliseconds): every read still
    // answers.
    for (run, at) in [("1", "2026-01-02T03:04:05Z"), ("2", "2026-01-03T03:04:05Z")] {
        let a = post(
            &server,
            &format!("commit=abc&job=unit&run_id={run}&started_at={at}"),
            None,
            &body,
        );
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE run SET started_at = 1767323045000 WHERE ci_run_id = '1'",
        [],
    )
    .unwrap();
    drop(c);
    for path in [
        "/api/v1/flaky?format=json",
        "/api/v1/quarantine",
        "/api/v1/quarantine?format=gradle",
        "/api/v1/report",
        "/api/v1/report?format=json",
        "/api/v1/report?format=html",
        "/api/v1/backlog",
    ] {
        let a = get(&server, path, None);
        assert!(
            a.status == 200,
            "{path}: {} {}\n{}",
            a.status,
            a.body,
            server.log()
        );
    }
    // Every run at the end of time: "now" is i64::MAX, and the report's day steps used to
    // wrap around and spin until the request timed out.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("UPDATE run SET started_at = 9223372036854775807", [])
        .unwrap();
    drop(c);
    for path in [
        "/api/v1/report",
        "/api/v1/report?format=json&window=3650d",
        "/api/v1/flaky",
        "/api/v1/quarantine",
        "/",
    ] {
        let a = get(&server, path, None);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    let out = flakehound(&["--db", db.to_str().unwrap(), "report"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn repeat_reads_come_from_the_cache_until_an_upload_changes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    let upload = |run: &str, failing: &[usize]| {
        let a = post(
            &server,
            &format!("commit=abc&job=unit&run_id={run}&started_at=2026-01-0{run}T03:04:05Z"),
            None,
            &gz(report("A", 5, failing).as_bytes()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
    };
    upload("1", &[]);
    let paths = [
        "/api/v1/report?format=json&window=30d",
        "/api/v1/flaky?format=json",
        "/api/v1/backlog?format=csv",
        "/api/v1/quarantine?format=json",
        "/",
    ];
    let mut first = Vec::new();
    for path in paths {
        let a = get(&server, path, None);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert_eq!(a.cache.as_deref(), Some("miss"), "{path}");
        let b = get(&server, path, None);
        assert_eq!(b.cache.as_deref(), Some("hit"), "{path}");
        assert_eq!(a.body, b.body, "{path}");
        first.push(a.body);
    }
    // The same question with its parameters in another order.
    let c = get(&server, "/api/v1/report?window=30d&format=json", None);
    assert_eq!(c.cache.as_deref(), Some("hit"));
    // A bad request is answered, never kept.
    for _ in 0..2 {
        let bad = get(&server, "/api/v1/report?window=soon", None);
        assert_eq!(bad.status, 400);
        assert_eq!(bad.cache.as_deref(), Some("miss"));
    }
    // An upload changes the database: every answer is computed afresh and shows it.
    upload("2", &[2]);
    let a = get(&server, paths[0], None);
    assert_eq!(a.cache.as_deref(), Some("miss"));
    assert_ne!(a.body, first[0], "the new run is in the report");
    assert_eq!(get(&server, paths[0], None).cache.as_deref(), Some("hit"));
    // A write by another process (here `ingest`) is seen too.
    let xml = dir.path().join("TEST-c.xml");
    std::fs::write(&xml, report("C", 3, &[])).unwrap();
    let out = flakehound(&[
        "--db",
        db.to_str().unwrap(),
        "ingest",
        "--commit",
        "abd",
        "--job",
        "unit",
        "--run-id",
        "3",
        "--started-at",
        "2026-01-04T00:00:00Z",
        xml.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = get(&server, paths[0], None);
    assert_eq!(b.cache.as_deref(), Some("miss"));
    assert_ne!(b.body, a.body, "the third run is in the report");
}

#[test]
fn token_list_and_revoke_and_concurrent_adds_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let tokens = dir.path().join("tokens");
    let file = tokens.to_str().unwrap().to_string();
    // Two `token add` at once, different names: both lines are kept.
    let adders: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|name| {
            Command::new(BIN)
                .args(["token", "add", "--name", name, "--scope", "upload"])
                .args(["--token-file", &file])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let made: Vec<String> = adders
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect();
    let out = flakehound(&["token", "list", "--token-file", &file, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(listed.iter().all(|t| t["created"].is_string()), "{text}");
    assert!(!made.iter().any(|t| text.contains(t.as_str())));
    let table = flakehound(&["token", "list", "--token-file", &file]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("NAME") && table.contains("alpha  upload"),
        "{table}"
    );

    let server = Server::start(&db, &["--token-file", &file]);
    let body = gz(report("A", 3, &[]).as_bytes());
    let q = "commit=abc&job=unit&run_id=1";
    assert_eq!(post(&server, q, Some(&made[0]), &body).status, 200);
    // Revoked, then SIGHUP: the server refuses it; the other token still works.
    let out = flakehound(&["token", "revoke", "alpha", "--token-file", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unknown = flakehound(&["token", "revoke", "alpha", "--token-file", &file]);
    assert_eq!(unknown.status.code(), Some(2));
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&server, "/api/v1/flaky", Some(&made[0])).status != 401 {
        assert!(Instant::now() < deadline, "the revoked token still works");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&server, "/api/v1/flaky", Some(&made[1])).status, 200);
}

/// A tar of a whole TestNG `surefire-reports/` folder (as any client might pack it) is
/// stored like `ingest` stores the folder: one copy of each result, other tools' XML
/// skipped and counted, not rejected. The same XML sent alone is rejected.
#[test]
fn a_packed_testng_folder_is_stored_once_and_other_xml_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flakes.db");
    let server = Server::start(&db, &[]);
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/junit/testng/surefire/two-classes-forkCount-2/surefire-reports");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for f in flakehound::ingest::report_files(&folder).unwrap() {
        let name = format!(
            "surefire-reports/{}",
            f.strip_prefix(&folder).unwrap().to_string_lossy()
        );
        files.push((name, std::fs::read(&f).unwrap()));
    }
    assert_eq!(files.len(), 8);
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let query = "commit=abc1234&branch=main&job=unit&run_id=7&attempt=1";
    let a = post(&server, query, None, &tgz(&entries));
    assert_eq!(a.status, 200, "{}", a.body);
    let s = a.json();
    assert_eq!(s["tests"], 9, "{s}");
    assert_eq!(s["not_junit"], 3, "{s}");
    assert_eq!(s["duplicates"], 3, "{s}");
    assert_eq!(s["files"], 8, "{s}");

    let results = std::fs::read(folder.join("testng-results.xml")).unwrap();
    let a = post(
        &server,
        "commit=abc1234&branch=main&job=unit&run_id=8&attempt=1",
        None,
        &gz(&results),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(
        a.body.contains("root element is <testng-results>"),
        "{}",
        a.body
    );
}
