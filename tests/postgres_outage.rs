//! `serve` on PostgreSQL through connection loss: an upload whose connection drops is
//! answered 503 (not acknowledged) and its retry is stored once; after the database
//! restarts the server reconnects by itself, and /healthz says when it cannot.
//! Needs `FLAKEHOUND_TEST_PG` (see scripts/pg-test-server.sh); fails without it under CI.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flakehound::store::pg;

const BIN: &str = env!("CARGO_BIN_EXE_flakehound");

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0", "--pg-read-pool", "2"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut seen = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            seen.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                let base = format!("http://{addr}");
                // Keep draining stderr so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                        sink.clear();
                    }
                });
                return Server { child, base };
            }
            line.clear();
        }
        let _ = child.wait();
        panic!("server did not start:\n{seen}");
    }

    fn upload(&self, run_id: &str, xml: &str) -> (u16, Option<String>, String) {
        upload(&self.base, run_id, xml)
    }

    fn health(&self) -> u16 {
        match ureq::get(&format!("{}/healthz", self.base)).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("transport error: {e}"),
        }
    }

    fn wait_health(&self, want: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.health() != want {
            assert!(Instant::now() < deadline, "/healthz never answered {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One attempt, no retry: (status, Retry-After, body).
fn upload(base: &str, run_id: &str, xml: &str) -> (u16, Option<String>, String) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(xml.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let url = format!(
        "{base}/api/v1/uploads?commit=c0ffee&branch=main&job=unit&run_id={run_id}&started_at=2026-03-01T10:00:00Z"
    );
    let response = match ureq::post(&url)
        .set("Content-Type", "application/gzip")
        .send_bytes(&body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    (
        response.status(),
        response.header("Retry-After").map(str::to_string),
        response.into_string().unwrap(),
    )
}

fn report(tests: usize) -> String {
    let mut xml = String::from("<testsuite name=\"S\">");
    for i in 0..tests {
        xml.push_str(&format!(
            "<testcase classname=\"S\" name=\"t{i}\" time=\"0.01\"/>"
        ));
    }
    xml + "</testsuite>"
}

fn stored_tests(summary: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(summary).unwrap_or_else(|e| panic!("{e}: {summary}"));
    v["tests"].as_u64().unwrap()
}

/// Results stored for a CI run id, straight from the database.
fn results_of(db: &Path, run_id: &str) -> i64 {
    let mut client = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
    client
        .query_one(
            "SELECT count(*) FROM result JOIN run USING (run_key) WHERE ci_run_id = $1",
            &[&run_id],
        )
        .unwrap()
        .get(0)
}

#[test]
fn an_upload_whose_connection_drops_gets_503_and_its_retry_is_stored_once() {
    let Some(url) = pg::test_server("an_upload_whose_connection_drops_gets_503") else {
        return;
    };
    let db = pg::scratch_database(&url).unwrap();
    let server = Server::start(&db);
    let xml = report(5);
    let (status, _, body) = server.upload("1", &xml);
    assert_eq!(status, 200, "{body}");

    // Hold the writer inside its transaction (waiting on a lock), then end its session
    // from the server side, as a failover or an administrator would.
    let mut admin = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
    let mut lock = admin.transaction().unwrap();
    lock.batch_execute("LOCK TABLE run IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let in_flight = {
        let base = server.base.clone();
        let xml = xml.clone();
        std::thread::spawn(move || upload(&base, "2", &xml))
    };
    // End every session of this database waiting on the lock until the upload answers:
    // the server's own roll-up of the closed day may be waiting too (seen once under the
    // load of the whole suite), and ending only the first waiter left the upload blocked.
    let mut watcher = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !in_flight.is_finished() {
        watcher
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks \
                 WHERE relation = 'run'::regclass AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .unwrap();
        assert!(
            Instant::now() < deadline,
            "the upload never reached the database"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, retry_after, body) = in_flight.join().unwrap();
    lock.rollback().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        retry_after.is_some(),
        "a 503 tells the client when to retry"
    );
    assert_eq!(
        results_of(&db, "2"),
        0,
        "nothing of the refused upload is stored"
    );

    // The client's retry: stored, on a new connection; once more: nothing new.
    let (status, _, body) = server.upload("2", &xml);
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_tests(&body), 5);
    let (status, _, body) = server.upload("2", &xml);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored_tests(&body),
        0,
        "a repeated upload stores nothing: {body}"
    );
    assert_eq!(results_of(&db, "2"), 5);
    assert_eq!(server.health(), 200);
}

/// A PostgreSQL of this test's own, since it is stopped and restarted.
struct PrivatePg {
    dir: PathBuf,
    url: String,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/pg-test-server.sh"
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let value = |key: &str| {
            let start = text.find(&format!("{key}='")).unwrap() + key.len() + 2;
            let len = text[start..].find('\'').unwrap();
            text[start..start + len].to_string()
        };
        PrivatePg {
            dir: PathBuf::from(value("PG_TEST_DIR")),
            url: value("FLAKEHOUND_TEST_PG"),
        }
    }

    fn ctl(&self, action: &str) {
        let status = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/pg-test-server.sh"
            ))
            .args(["ctl", self.dir.to_str().unwrap(), action])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {action}");
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/pg-test-server.sh"
            ))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

#[test]
fn serve_reconnects_after_postgresql_restarts() {
    if pg::test_server("serve_reconnects_after_postgresql_restarts").is_none() {
        return;
    }
    let pg = PrivatePg::start();
    let db = PathBuf::from(&pg.url);
    let server = Server::start(&db);
    let xml = report(3);
    assert_eq!(server.upload("1", &xml).0, 200);
    assert_eq!(server.health(), 200);

    // Down: the replica says so, and refuses uploads with 503 rather than losing them.
    pg.ctl("stop");
    server.wait_health(503);
    let (status, retry_after, body) = server.upload("2", &xml);
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some());

    // Back: healthy again without a restart of the replica, and the retry is stored.
    pg.ctl("start");
    server.wait_health(200);
    let (status, _, body) = server.upload("2", &xml);
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_tests(&body), 3);

    // A restart between two uploads is not even seen by the client.
    pg.ctl("restart");
    let (status, _, body) = server.upload("3", &xml);
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_tests(&body), 3);
    for run in ["1", "2", "3"] {
        assert_eq!(results_of(&db, run), 3, "run {run} stored once");
    }
    // Reads too come back on new connections.
    let flaky = ureq::get(&format!("{}/api/v1/flaky?format=json", server.base))
        .call()
        .unwrap();
    assert_eq!(flaky.status(), 200);
}
