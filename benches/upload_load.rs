//! Load test of the upload server: N uploads of realistic reports from C concurrent
//! clients against the release binary, then a check that every upload is stored once.
//!
//!     cargo bench --bench upload_load
//!     FLAKEHOUND_LOAD_UPLOADS=2000 FLAKEHOUND_LOAD_CLIENTS=32 FLAKEHOUND_LOAD_TESTS=500 cargo bench --bench upload_load
//!
//! Prints throughput (uploads/s) and latency percentiles (each upload through the real
//! client: `flakehound::server::client::upload_with`, retries included), and the CPU the
//! server(s) and this load generator used while uploading, with the load average. The
//! generator is cheap: bodies are built and compressed before the clock starts, and each
//! client keeps one keep-alive connection (`FLAKEHOUND_LOAD_NEW_CONN=1`: a new connection
//! per upload, as `flakehound upload` does).
//!
//! Profile the (first) server while it is loaded: the command gets `-p PID` appended, runs
//! for the upload phase and is stopped with SIGINT:
//!
//!     FLAKEHOUND_LOAD_PROFILE="perf record -g -o /tmp/serve.perf" cargo bench --bench upload_load
//!     FLAKEHOUND_LOAD_PROFILE="perf stat" cargo bench --bench upload_load
//!
//! Several replicas on one PostgreSQL database, one of them killed (SIGKILL) halfway:
//!
//!     FLAKEHOUND_LOAD_DB=postgresql:///flakehound?host=/tmp/x FLAKEHOUND_LOAD_REPLICAS=2 \
//!       FLAKEHOUND_LOAD_KILL=1 cargo bench --bench upload_load
//!
//! Clients spread over the replicas and, like a load balancer, fail over to the next one
//! when theirs is unreachable. Every acknowledged upload must be stored exactly once.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flakehound::server::client::{self, Options, Outcome};
use flakehound::store::{RunFilter, Store};
use rand::{Rng, SeedableRng};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Surefire-like run: `tests` tests over files of 50, ~1% failures, ~1% flaky reruns,
/// stack traces and skipped tests, as one gzip'd tar.
fn run_body(rng: &mut rand::rngs::StdRng, tests: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::new(5),
    ));
    let per_file = 50;
    for f in 0..tests.div_ceil(per_file) {
        let class = format!("com.acme.service{}.Module{f}Test", f % 7);
        let n = per_file.min(tests - f * per_file);
        let mut xml = String::with_capacity(n * 200);
        xml.push_str(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" name=\"{class}\" time=\"{:.3}\" tests=\"{n}\" errors=\"0\" skipped=\"0\" failures=\"0\">\n  <properties><property name=\"java.version\" value=\"21.0.2\"/></properties>\n",
            rng.gen_range(1.0..30.0)
        ));
        for i in 0..n {
            let name = format!(
                "should_handle_case_{i}_with_{}",
                ["valid_input", "timeout", "retry", "empty_payload"][i % 4]
            );
            let time = rng.gen_range(0.001..0.9);
            let roll: f64 = rng.gen();
            let trace = format!("java.lang.AssertionError: expected:&lt;200&gt; but was:&lt;503&gt;\n\tat org.junit.Assert.fail(Assert.java:89)\n\tat {class}.{name}({}.java:{})\n\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)\n", class.rsplit('.').next().unwrap(), 40 + i);
            if roll < 0.01 {
                xml.push_str(&format!("  <testcase name=\"{name}\" classname=\"{class}\" time=\"{time:.3}\">\n    <failure message=\"expected:&lt;200&gt; but was:&lt;503&gt;\" type=\"java.lang.AssertionError\">{trace}</failure>\n    <system-out>GET /api/orders -&gt; 503</system-out>\n  </testcase>\n"));
            } else if roll < 0.02 {
                xml.push_str(&format!("  <testcase name=\"{name}\" classname=\"{class}\" time=\"{time:.3}\">\n    <flakyFailure message=\"Connection reset\" type=\"java.net.SocketException\">\n      <stackTrace>{trace}</stackTrace>\n    </flakyFailure>\n  </testcase>\n"));
            } else if roll < 0.03 {
                xml.push_str(&format!("  <testcase name=\"{name}\" classname=\"{class}\" time=\"0\">\n    <skipped message=\"@Disabled\"/>\n  </testcase>\n"));
            } else {
                xml.push_str(&format!(
                    "  <testcase name=\"{name}\" classname=\"{class}\" time=\"{time:.3}\"/>\n"
                ));
            }
        }
        xml.push_str("</testsuite>\n");
        let mut h = tar::Header::new_gnu();
        h.set_size(xml.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(
            &mut h,
            format!("target/surefire-reports/TEST-{class}.xml"),
            xml.as_bytes(),
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo test --benches` runs benches with no `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let uploads = env_usize("FLAKEHOUND_LOAD_UPLOADS", if quick { 50 } else { 2000 });
    let clients = env_usize("FLAKEHOUND_LOAD_CLIENTS", 32);
    let tests = env_usize("FLAKEHOUND_LOAD_TESTS", 500);

    let replicas = env_usize("FLAKEHOUND_LOAD_REPLICAS", 1).max(1);
    let kill = std::env::var("FLAKEHOUND_LOAD_KILL").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap();
    let db = match std::env::var("FLAKEHOUND_LOAD_DB") {
        Ok(url) if url.starts_with("postgres") => {
            flakehound::store::pg::scratch_database(&url).unwrap()
        }
        _ => dir.path().join("load.db"),
    };
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for r in 0..replicas {
        let (server, base) = start_server(&db, r);
        servers.push(server);
        bases.push(base);
    }
    eprintln!("generating {uploads} uploads of {tests} tests…");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Vec<Vec<u8>> = (0..uploads).map(|_| run_body(&mut rng, tests)).collect();
    let mean_kib = bodies.iter().map(Vec::len).sum::<usize>() as f64 / uploads as f64 / 1024.0;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(uploads)));
    let failures = Arc::new(AtomicUsize::new(0));
    let options: Vec<Options> = bases
        .iter()
        .map(|base| Options {
            server: base.clone(),
            token: None,
            // With replicas to fail over to, give up on one sooner.
            retries: if replicas > 1 { 2 } else { 8 },
            timeout: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
        })
        .collect();
    let acknowledged = Arc::new(Mutex::new(Vec::with_capacity(uploads)));
    let done = Arc::new(AtomicUsize::new(0));
    let killed_at = Arc::new(Mutex::new(None::<usize>));
    eprintln!("uploading from {clients} clients (mean body {mean_kib:.1} KiB)…");
    let new_conn = std::env::var("FLAKEHOUND_LOAD_NEW_CONN").is_ok_and(|v| v == "1");
    let profiler = std::env::var("FLAKEHOUND_LOAD_PROFILE")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|cmd| {
            let mut words = cmd.split_whitespace();
            let child = Command::new(words.next().unwrap())
                .args(words)
                .arg("-p")
                .arg(servers[0].id().to_string())
                .spawn()
                .expect("cannot start FLAKEHOUND_LOAD_PROFILE");
            // Let it attach before the load starts.
            std::thread::sleep(Duration::from_millis(500));
            child
        });
    let load_before = loadavg();
    let server_cpu_before: Vec<Duration> = servers.iter().map(|s| cpu_of(s.id())).collect();
    let own_cpu_before = cpu_of(std::process::id());
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (bodies, next, latencies, failures, options, acknowledged, done) = (
                bodies.clone(),
                next.clone(),
                latencies.clone(),
                failures.clone(),
                options.clone(),
                acknowledged.clone(),
                done.clone(),
            );
            let agents: Vec<ureq::Agent> = options.iter().map(client::agent).collect();
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let query = vec![
                    ("commit".to_string(), format!("{:040x}", i / 4)),
                    ("branch".to_string(), "main".to_string()),
                    ("job".to_string(), format!("unit-{}", i % 4)),
                    ("run_id".to_string(), format!("load-{i}")),
                    ("attempt".to_string(), "1".to_string()),
                    (
                        "started_at".to_string(),
                        (1_770_000_000 + i as i64 * 60).to_string(),
                    ),
                ];
                let t = Instant::now();
                // The client's replica first, then the others (a load balancer's failover).
                let mut outcome = None;
                let tries = if options.len() > 1 {
                    options.len() * 4
                } else {
                    1
                };
                for k in 0..tries {
                    let r = (c + k) % options.len();
                    let o = if new_conn {
                        client::upload(&options[r], &query, &bodies[i])
                    } else {
                        client::upload_with(&agents[r], &options[r], &query, &bodies[i])
                    };
                    match o {
                        Outcome::Unavailable(_) if k + 1 < tries => continue,
                        o => {
                            outcome = Some(o);
                            break;
                        }
                    }
                }
                match outcome {
                    // Stored now, or already stored by a replica killed before it answered.
                    Some(Outcome::Stored(s))
                        if s.tests == tests as u64
                            || (s.tests == 0 && s.unchanged == tests.div_ceil(50) as u64) =>
                    {
                        latencies.lock().unwrap().push(t.elapsed());
                        acknowledged.lock().unwrap().push(i);
                    }
                    other => {
                        eprintln!("upload {i}: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    if kill && servers.len() > 1 {
        // SIGKILL the first replica halfway, mid-write: no chance to drain its queue.
        while done.load(Ordering::Relaxed) < uploads / 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        servers[0].kill().unwrap();
        *killed_at.lock().unwrap() = Some(done.load(Ordering::Relaxed));
        eprintln!("killed replica 0 (SIGKILL) after {} uploads", uploads / 2);
    }
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    let own_cpu = cpu_of(std::process::id()).saturating_sub(own_cpu_before);
    let server_cpu: Vec<Duration> = servers
        .iter()
        .zip(&server_cpu_before)
        .map(|(s, before)| cpu_of(s.id()).saturating_sub(*before))
        .collect();
    let load_after = loadavg();
    if let Some(mut p) = profiler {
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }

    // Every upload stored exactly once: one run each, with all its files and tests.
    let store = Store::open_read_only(&db).unwrap();
    let runs = store.runs(&RunFilter::default()).unwrap();
    let files = store.report_counts().unwrap();
    let mut ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let per_run = tests.div_ceil(50) as u64;
    let complete = runs
        .iter()
        .filter(|r| files.get(&r.run_key).copied() == Some(per_run))
        .count();
    let (results, bytes) = store.storage_stats().unwrap();
    drop(store);
    let acked = acknowledged.lock().unwrap().clone();
    let stored_ids: std::collections::HashSet<&str> =
        runs.iter().map(|r| r.run_id.as_str()).collect();
    let lost = acked
        .iter()
        .filter(|i| !stored_ids.contains(format!("load-{i}").as_str()))
        .count();

    let mut stopped = Vec::new();
    for (r, mut server) in servers.into_iter().enumerate() {
        if kill && r == 0 && replicas > 1 {
            let _ = server.wait();
            continue;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        stopped.push(server.wait().unwrap());
    }

    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let failed = failures.load(Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "uploads: {uploads} × {tests} tests from {clients} clients to {replicas} replica(s) on {}, mean body {mean_kib:.1} KiB{}",
        if flakehound::store::is_postgres_url(&db) { "PostgreSQL" } else { "SQLite" },
        match *killed_at.lock().unwrap() {
            Some(n) => format!("; replica 0 killed (SIGKILL) after {n} uploads"),
            None => String::new(),
        }
    )
    .unwrap();
    writeln!(
        out,
        "stored: {} runs ({} distinct run ids, {complete} with all {per_run} files); acknowledged: {}, acknowledged but lost: {lost}; failed uploads: {failed}; server exits: {stopped:?}",
        runs.len(),
        ids.len(),
        acked.len()
    )
    .unwrap();
    writeln!(
        out,
        "database: {results} results in {bytes} bytes ({:.1} B/result)",
        bytes as f64 / results.max(1) as f64
    )
    .unwrap();
    if !l.is_empty() {
        writeln!(
            out,
            "throughput: {:.0} uploads/s ({:.0} test results/s) in {:.2} s",
            l.len() as f64 / elapsed.as_secs_f64(),
            (l.len() * tests) as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        )
        .unwrap();
        let wall = elapsed.as_secs_f64();
        let servers_s: f64 = server_cpu.iter().map(Duration::as_secs_f64).sum();
        writeln!(
            out,
            "cpu while uploading: server {servers_s:.2} s ({:.0}% of a core, {:.2} ms/upload), load generator {:.2} s ({:.0}% of a core), connections: {}; loadavg before {load_before}, after {load_after}",
            servers_s / wall * 100.0,
            servers_s * 1000.0 / l.len() as f64,
            own_cpu.as_secs_f64(),
            own_cpu.as_secs_f64() / wall * 100.0,
            if new_conn { "a new one per upload" } else { "keep-alive, one per client" },
        )
        .unwrap();
        writeln!(
            out,
            "latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&l, 0.50).as_secs_f64() * 1000.0,
            percentile(&l, 0.90).as_secs_f64() * 1000.0,
            percentile(&l, 0.99).as_secs_f64() * 1000.0,
            l[l.len() - 1].as_secs_f64() * 1000.0
        )
        .unwrap();
    }
    assert_eq!(failed, 0, "some uploads failed");
    assert_eq!(runs.len(), uploads, "every upload is one run");
    assert_eq!(ids.len(), uploads, "no run stored twice");
    assert_eq!(complete, uploads, "every run has all its files");
    assert_eq!(lost, 0, "an acknowledged upload was lost");
    assert!(stopped.iter().all(|s| s.success()));
}

/// User + system CPU of a process so far (`/proc/PID/stat`, in USER_HZ = 1/100 s); zero
/// for one that is gone.
fn cpu_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The first three fields of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Start a `serve` replica on `db`; returns it and its base URL.
fn start_server(db: &std::path::Path, replica: usize) -> (std::process::Child, String) {
    // FLAKEHOUND_LOAD_BIN=PATH runs another build of the server (before/after comparisons).
    let bin = std::env::var_os("FLAKEHOUND_LOAD_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_flakehound").into());
    let mut server = Command::new(bin)
        .arg("--db")
        .arg(db)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-concurrent-uploads",
            "64",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_string();
        }
    };
    // FLAKEHOUND_LOAD_LOG=FILE keeps the server's log (e.g. with RUST_LOG=debug).
    let mut keep = std::env::var_os("FLAKEHOUND_LOAD_LOG")
        .map(|p| std::fs::File::create(format!("{}.{replica}", p.to_string_lossy())).unwrap());
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(f) = keep.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    });
    (server, base)
}
