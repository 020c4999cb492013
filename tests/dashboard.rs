//! The browsable server: the dashboard and test pages, rendered by headless Chromium, and
//! the token-for-cookie login.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{History, BIN, O};

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &Path, cwd: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .current_dir(cwd)
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut log = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            log.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                let addr = rest.to_string();
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    let _ = reader.read_to_string(&mut sink);
                });
                return Server { child, addr };
            }
            line.clear();
        }
        let _ = child.wait();
        panic!("server did not start:\n{log}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 exchange: (status, headers lower-cased, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A flaky test whose name needs escaping, with run URLs, and a CODEOWNERS file.
fn history() -> (History, String) {
    let mut h = History::new();
    let evil = "refunds <script>alert(1)</script> & \"twice\"";
    for i in 0..8u32 {
        let c = format!("{i:040x}");
        let pay = if i % 3 == 1 { O::Fail } else { O::Pass };
        h.run(
            "it",
            "main",
            &c,
            &format!("{i}"),
            1,
            f64::from(i),
            &[
                ("com.acme.PaymentServiceIT", evil, pay),
                ("com.acme.CartTest", "total", O::Pass),
            ],
        );
        if pay == O::Fail {
            h.run(
                "it",
                "main",
                &c,
                &format!("{i}"),
                2,
                f64::from(i) + 0.2,
                &[
                    ("com.acme.PaymentServiceIT", evil, O::Pass),
                    ("com.acme.CartTest", "total", O::Pass),
                ],
            );
        }
    }
    drop(h.ingest());
    std::fs::write(h.dir.path().join("CODEOWNERS"), "* @acme/payments-team\n").unwrap();
    let test_id =
        flakehound::model::TestIdentity::new("com.acme.PaymentServiceIT", evil, None).hex();
    (h, test_id)
}

#[test]
fn login_exchanges_a_read_token_for_a_session_cookie() {
    let (h, test_id) = history();
    let tokens = h.dir.path().join("tokens");
    let add = |name: &str, scope: &str| {
        let o = Command::new(BIN)
            .args([
                "token",
                "add",
                "--name",
                name,
                "--scope",
                scope,
                "--token-file",
            ])
            .arg(&tokens)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let read = add("viewer", "read");
    let server = Server::start(
        &h.db(),
        h.dir.path(),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let a = &server.addr;

    // Without a session: to the login form.
    let (status, hdrs, _) = http(a, "GET", "/", &[], "");
    assert_eq!(status, 303);
    assert_eq!(header(&hdrs, "location"), Some("/login"));
    let (status, _, _) = http(a, "GET", &format!("/tests/{test_id}"), &[], "");
    assert_eq!(status, 303);
    let (status, _, body) = http(a, "GET", "/login", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains(r#"<input id="token" name="token" type="password""#));

    // A wrong token: 401, no cookie.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, hdrs, body) = http(a, "POST", "/login", &form, "token=fh_wrong");
    assert_eq!(status, 401);
    assert!(header(&hdrs, "set-cookie").is_none());
    assert!(body.contains("Unknown token"));

    // The right one: a session cookie, HttpOnly and SameSite=Strict, not the token.
    let (status, hdrs, _) = http(a, "POST", "/login", &form, &format!("token={read}"));
    assert_eq!(status, 303);
    let cookie = header(&hdrs, "set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("flakehound_session="), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Strict")
            && cookie.contains("; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(&read));
    let session = cookie.split(';').next().unwrap().to_string();

    let (status, _, body) = http(a, "GET", "/", &[("Cookie", &session)], "");
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(r#"href="/tests/{test_id}""#)),
        "dashboard links the test page"
    );
    assert!(body.contains("Log out"));
    let (status, _, body) = http(
        a,
        "GET",
        &format!("/tests/{test_id}"),
        &[("Cookie", &session)],
        "",
    );
    assert_eq!(status, 200);
    assert!(body.contains("refunds &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;twice&quot;"));
    assert!(!body.contains("<script>"));
    // A bearer token works for the pages too (scripts, curl).
    let (status, _, _) = http(
        a,
        "GET",
        "/",
        &[("Authorization", &format!("Bearer {read}"))],
        "",
    );
    assert_eq!(status, 200);

    // Behind an https proxy the cookie is Secure.
    let mut proxied = form.to_vec();
    proxied.push(("X-Forwarded-Proto", "https"));
    let (_, hdrs, _) = http(a, "POST", "/login", &proxied, &format!("token={read}"));
    assert!(header(&hdrs, "set-cookie").unwrap().contains("; Secure"));

    // Logout ends the session on the server.
    let (status, hdrs, _) = http(a, "POST", "/logout", &[("Cookie", &session)], "");
    assert_eq!(status, 303);
    assert!(header(&hdrs, "set-cookie").unwrap().contains("Max-Age=0"));
    let (status, _, _) = http(a, "GET", "/", &[("Cookie", &session)], "");
    assert_eq!(status, 303);
    // A forged session id is not a session.
    let (status, _, _) = http(a, "GET", "/", &[("Cookie", "flakehound_session=00ff")], "");
    assert_eq!(status, 303);
}

fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if found.is_some() {
            return found;
        }
    }
    None
}

fn dump_dom(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn dashboard_and_test_page_render_in_headless_chromium() {
    let Some(browser) = chromium() else {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "chromium is required under CI=true (apt-get install chromium; .ci/run does)"
        );
        eprintln!("skipped: no chromium on PATH");
        return;
    };
    let (h, test_id) = history();
    // Loopback without a token file: the pages are open.
    let server = Server::start(&h.db(), h.dir.path(), &[]);
    let base = format!("http://{}", server.addr);

    let dom = dump_dom(&browser, &format!("{base}/"));
    assert!(dom.contains("Flaky-test report"), "{dom}");
    assert!(
        dom.contains(&format!(r#"href="/tests/{test_id}""#)),
        "{dom}"
    );
    assert!(dom.contains("owners: @acme/payments-team"), "{dom}");
    // The test's name was escaped: the browser shows it as text, no script element came of it.
    assert!(
        dom.contains("refunds &lt;script&gt;alert(1)&lt;/<wbr>script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert(1)"), "{dom}");

    let dom = dump_dom(&browser, &format!("{base}/tests/{test_id}"));
    assert!(dom.contains("Status per job"), "{dom}");
    assert!(dom.contains(r#"<td class="status">flaky</td>"#), "{dom}");
    assert!(dom.contains("Owners: @acme/payments-team"), "{dom}");
    assert!(
        dom.contains("Quarantine: <span class=\"status\">not quarantined</span>"),
        "{dom}"
    );
    // Flake-rate interval, the history strip with dates, and the failure messages.
    assert!(dom.contains("% ["), "{dom}");
    assert!(
        dom.contains(r#"<div class="strip">"#) && dom.contains(r#"title="2025-11-20T"#),
        "{dom}"
    );
    assert!(
        dom.contains("AssertionError: expected 1 but was 2"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert(1)"), "{dom}");

    let dom = dump_dom(&browser, &format!("{base}/tests/00000000000000aa"));
    assert!(dom.contains("No test with this id"), "{dom}");
}

#[test]
fn upload_stores_the_run_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let server = Server::start(&db, dir.path(), &[]);
    let report = dir.path().join("r.xml");
    std::fs::write(&report, common::surefire_xml(&[("a.B", "c", O::Pass)])).unwrap();
    let o = Command::new(BIN)
        .args(["upload", "--server", &format!("http://{}", server.addr)])
        .args(["--commit", "abc", "--job", "unit", "--run-id", "5"])
        .args(["--run-url", "https://ci.example/run/5", "--strict"])
        .arg(&report)
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A run URL that is not http(s) is refused before anything is stored.
    let (status, _, body) = http(
        &server.addr,
        "POST",
        "/api/v1/uploads?commit=abc&job=unit&run_id=6&run_url=javascript:alert(1)",
        &[],
        "<testsuite><testcase name=\"x\"/></testsuite>",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("run_url"), "{body}");
    drop(server);
    let o = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["runs", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["run_url"], "https://ci.example/run/5");
}
