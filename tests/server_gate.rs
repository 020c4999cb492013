//! `flakehound upload --gate` against a real server (`POST /api/v1/gate`), and what it
//! does when the server cannot be asked.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{flakehound, surefire_xml, History, BIN, O};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut base = None;
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().strip_prefix("listening on ") {
                base = Some(rest.to_string());
                break;
            }
            line.clear();
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Server {
            child,
            base: base.expect("the server did not start"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn history() -> History {
    let mut h = History::new();
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        1,
        0.0,
        &[("C", "flaky", O::Pass)],
    )
    .run(
        "unit",
        "main",
        "c1",
        "2",
        1,
        1.0,
        &[("C", "flaky", O::Fail)],
    );
    h.ingest();
    h
}

fn reports(h: &History, name: &str, cases: &[(&str, &str, O)]) -> PathBuf {
    let dir = h.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TEST-C.xml"), surefire_xml(cases)).unwrap();
    dir
}

fn upload_gate(server: &str, run_id: &str, extra: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(["upload", "--gate", "--server", server, "--retries", "0"])
        .args(["--commit", "c2", "--job", "unit", "--run-id", run_id])
        .args(["--started-at", "2025-11-21T00:00:00Z"])
        .args(extra)
        .arg(dir)
        .env_remove("FLAKEHOUND_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .output()
        .unwrap()
}

fn runs(db: &Path) -> usize {
    let out = flakehound(db, &["runs", "--format", "json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap()
        .len()
}

#[test]
fn the_server_forgives_known_flakes_and_fails_new_failures() {
    let h = history();
    let server = Server::start(&h.db());
    let before = runs(&h.db());

    let dir = reports(
        &h,
        "flaky",
        &[("C", "flaky", O::Fail), ("C", "new", O::Pass)],
    );
    let summary = h.dir.path().join("gate.md");
    let out = upload_gate(
        &server.base,
        "10",
        &["--summary", summary.to_str().unwrap()],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{out:?}");
    assert!(
        stdout.contains("FORGIVEN    C.flaky  known flaky"),
        "{stdout}"
    );
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("### flakehound gate: passed"));
    assert_eq!(runs(&h.db()), before + 1, "the run is stored by default");

    let dir = reports(&h, "new", &[("C", "flaky", O::Pass), ("C", "new", O::Fail)]);
    let out = upload_gate(&server.base, "11", &["--no-ingest", "--json"], &dir);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pass"], false);
    assert_eq!(v["unforgiven"][0]["name"], "new");
    assert_eq!(v["unforgiven"][0]["why"], "new");
    assert_eq!(runs(&h.db()), before + 1, "--no-ingest stored a run");
}

#[test]
fn without_a_server_only_a_run_without_failures_passes() {
    let h = history();
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = reports(&h, "flaky", &[("C", "flaky", O::Fail)]);
    let out = upload_gate(&closed, "10", &[], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot be forgiven"), "{stderr}");
    let out = upload_gate(&closed, "10", &["--strict"], &dir);
    assert_eq!(out.status.code(), Some(2));

    let dir = reports(&h, "green", &[("C", "flaky", O::Pass)]);
    let out = upload_gate(&closed, "11", &[], &dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn asking_the_server_twice_for_the_same_run_gives_the_same_verdict() {
    // `C.t` passed in run 9 on c2; run 10 on c2 fails it: a new failure. The first answer
    // stores run 10; asked again (a retried request), its own failure beside run 9's
    // pass must not make `C.t` known flaky.
    let mut h = History::new();
    h.run("unit", "main", "c2", "9", 1, 20.0, &[("C", "t", O::Pass)]);
    h.ingest();
    let server = Server::start(&h.db());
    let dir = reports(&h, "r10", &[("C", "t", O::Fail)]);
    let ask = || {
        let out = upload_gate(&server.base, "10", &["--json"], &dir);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let first = ask();
    assert_eq!(first.0, Some(1), "{}", first.1);
    let v: serde_json::Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!(v["unforgiven"][0]["name"], "t", "{v}");
    assert_eq!(v["unforgiven"][0]["why"], "new", "{v}");
    assert_eq!(runs(&h.db()), 2, "the first request stores the run");
    assert_eq!(ask(), first, "the second answer differs");
    // Once stored, the run's start is the stored one, also for a request that gives none.
    let out = Command::new(BIN)
        .args([
            "upload",
            "--gate",
            "--server",
            &server.base,
            "--retries",
            "0",
        ])
        .args([
            "--commit", "c2", "--job", "unit", "--run-id", "10", "--json",
        ])
        .arg(&dir)
        .env_remove("FLAKEHOUND_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .output()
        .unwrap();
    let third = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    assert_eq!(third, first, "an answer without the start differs");
    assert_eq!(runs(&h.db()), 2);
}
