//! Read answers (the read API and the dashboard) cached per database version, and the
//! cap on score computations.
//!
//! Every read answer is a function of the stored data and the request's parameters, so it
//! is kept under (database version, route, parameters sorted by name) and served again
//! until a write changes the version ([`Store::data_version`]: `PRAGMA data_version` on
//! SQLite, read through a connection of the cache's own that never writes; a generation
//! row every write bumps on PostgreSQL, so replicas see each other's uploads).
//!
//! A miss computes on the blocking pool under a semaphore of `--max-concurrent-reads`
//! permits; a request that would need one more gets 503 with `Retry-After`. Identical
//! requests arriving while one computes wait for it and share its answer (single flight).
//! The computation runs to its end even if the request that started it goes away, so the
//! ones waiting still get it. Entries are bounded by count and by body bytes (least
//! recently used go first) and live at most [`MAX_AGE`]: "now" comes from the data, but a
//! run stored ahead of the clock only counts once the clock reaches it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{watch, Semaphore};

use crate::store::Store;

/// How long an entry is served at most, even when the database has not changed.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// Entries kept at most, whatever their size.
pub const MAX_ENTRIES: usize = 1024;
/// The response header that says how an answer was served: `hit` (from the cache),
/// `shared` (computed once for several identical requests), `miss` (computed for this one).
pub const CACHE_HEADER: &str = "x-flakehound-cache";

/// A finished answer: what is cached and shared.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Answer {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn into_response(self, served: &'static str) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response();
        for (k, v) in self.headers {
            r.headers_mut().insert(k, v);
        }
        r.headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(served));
        r
    }
}

enum Step {
    Hit(Answer),
    Wait(watch::Receiver<Option<Answer>>),
    Lead(
        watch::Sender<Option<Answer>>,
        tokio::sync::OwnedSemaphorePermit,
        watch::Receiver<Option<Answer>>,
    ),
    Busy,
}

type Key = (&'static str, Vec<(String, String)>);
/// The epoch of the watcher's connection and the version read through it.
type Version = (u64, i64);
type Flight = watch::Receiver<Option<Answer>>;

struct Entry {
    answer: Answer,
    at: Instant,
    used: u64,
}

#[derive(Default)]
struct Entries {
    /// The version the entries were computed at; entries of any other are gone.
    version: Option<Version>,
    map: HashMap<Key, Entry>,
    bytes: u64,
    tick: u64,
    /// Computations in progress, by version and key.
    flights: HashMap<(Version, Key), Flight>,
}

/// The version watcher: a read-only connection of the cache's own. `epoch` counts
/// reopenings (a reopened SQLite connection's `data_version` starts afresh).
struct Watcher {
    store: Option<Store>,
    epoch: u64,
}

pub struct ReadCache {
    db: PathBuf,
    max_bytes: u64,
    entries: Mutex<Entries>,
    watcher: Mutex<Watcher>,
    compute: Arc<Semaphore>,
    retry_after_s: u64,
}

impl ReadCache {
    /// `max_bytes` of answer bodies (0: no caching, computations still capped and
    /// shared); `max_computations` score computations at once.
    pub fn new(
        db: PathBuf,
        max_bytes: u64,
        max_computations: usize,
        retry_after_s: u64,
    ) -> ReadCache {
        ReadCache {
            db,
            max_bytes,
            entries: Mutex::new(Entries::default()),
            watcher: Mutex::new(Watcher {
                store: None,
                epoch: 0,
            }),
            compute: Arc::new(Semaphore::new(max_computations.max(1))),
            retry_after_s,
        }
    }

    /// The database's version now, or `None` when it cannot be read (then nothing is
    /// cached or shared). Blocking: a query on PostgreSQL.
    fn version(&self) -> Option<Version> {
        let mut w = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if w.store.is_none() {
            match Store::open_read_only(&self.db) {
                Ok(s) => {
                    w.store = Some(s);
                    w.epoch += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the database to watch its version; answers are not cached");
                    return None;
                }
            }
        }
        let read = w.store.as_ref().map(Store::data_version);
        match read {
            Some(Ok(v)) => Some((w.epoch, v)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the database's version; answers are not cached");
                w.store = None; // reopened next time
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer for `route` with `params`: from the cache, from an identical request's
    /// computation in progress, or from `compute` (run on the blocking pool under the
    /// computation cap).
    pub async fn serve(
        self: &Arc<Self>,
        route: &'static str,
        params: &[(String, String)],
        compute: impl FnOnce() -> Answer + Send + 'static,
    ) -> Response {
        let key: Key = (route, normalise(params));
        let me = self.clone();
        let version = tokio::task::spawn_blocking(move || me.version())
            .await
            .ok()
            .flatten();
        let Some(version) = version else {
            return match self.compute.clone().try_acquire_owned() {
                Ok(permit) => {
                    let answer = tokio::task::spawn_blocking(move || {
                        let a = compute();
                        drop(permit);
                        a
                    })
                    .await
                    .unwrap_or_else(|e| failed(&e));
                    answer.into_response("miss")
                }
                Err(_) => self.busy().into_response("miss"),
            };
        };
        let flight_key = (version, key.clone());
        let (tx, permit, mut receiver) = match self.look_up(version, &key, &flight_key) {
            Step::Hit(a) => return a.into_response("hit"),
            Step::Busy => return self.busy().into_response("miss"),
            Step::Wait(mut rx) => {
                let answer = match rx.wait_for(Option::is_some).await {
                    Ok(a) => a.clone().unwrap_or_else(|| self.busy()),
                    // The computation panicked.
                    Err(_) => failed(&"the computation stopped"),
                };
                return answer.into_response("shared");
            }
            Step::Lead(tx, permit, rx) => (tx, permit, rx),
        };
        let me = self.clone();
        // Detached: the answer is finished and shared even if this request goes away.
        tokio::spawn(async move {
            let answer = tokio::task::spawn_blocking(move || {
                let a = compute();
                drop(permit);
                a
            })
            .await
            .unwrap_or_else(|e| failed(&e));
            me.finish(flight_key, &answer);
            let _ = tx.send(Some(answer));
        });
        let answer = match receiver.wait_for(Option::is_some).await {
            Ok(a) => a.clone().unwrap_or_else(|| self.busy()),
            Err(_) => failed(&"the computation stopped"),
        };
        answer.into_response("miss")
    }

    /// What a request does: take the cached answer, wait for an identical request's, or
    /// compute (holding a permit).
    fn look_up(&self, version: Version, key: &Key, flight_key: &(Version, Key)) -> Step {
        let mut e = self.lock();
        if e.version != Some(version) {
            e.version = Some(version);
            e.map.clear();
            e.bytes = 0;
        }
        e.tick += 1;
        let tick = e.tick;
        if let Some(entry) = e.map.get_mut(key) {
            if entry.at.elapsed() < MAX_AGE {
                entry.used = tick;
                return Step::Hit(entry.answer.clone());
            }
        }
        if let Some(rx) = e.flights.get(flight_key) {
            return Step::Wait(rx.clone());
        }
        let Ok(permit) = self.compute.clone().try_acquire_owned() else {
            return Step::Busy;
        };
        let (tx, rx) = watch::channel(None);
        e.flights.insert(flight_key.clone(), rx.clone());
        Step::Lead(tx, permit, rx)
    }

    /// Keep a computed answer (a 200 that fits) and end its flight.
    fn finish(&self, flight_key: (Version, Key), answer: &Answer) {
        let mut e = self.lock();
        e.flights.remove(&flight_key);
        let (version, key) = flight_key;
        let size = answer.body.len() as u64 + key_bytes(&key);
        if answer.status != StatusCode::OK || e.version != Some(version) || size > self.max_bytes {
            return;
        }
        if let Some(old) = e.map.remove(&key) {
            e.bytes -= old.answer.body.len() as u64 + key_bytes(&key);
        }
        while !e.map.is_empty() && (e.bytes + size > self.max_bytes || e.map.len() >= MAX_ENTRIES) {
            let oldest = e
                .map
                .iter()
                .min_by_key(|(_, v)| v.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                if let Some(gone) = e.map.remove(&k) {
                    e.bytes -= gone.answer.body.len() as u64 + key_bytes(&k);
                }
            }
        }
        e.tick += 1;
        let tick = e.tick;
        e.bytes += size;
        e.map.insert(
            key,
            Entry {
                answer: answer.clone(),
                at: Instant::now(),
                used: tick,
            },
        );
    }

    fn busy(&self) -> Answer {
        let mut a = Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            serde_json::json!({
                "error": "too many reports are being computed (the server's --max-concurrent-reads); retry later"
            })
            .to_string(),
        );
        a.headers
            .push((header::RETRY_AFTER, HeaderValue::from(self.retry_after_s)));
        a
    }

    /// Entries and body bytes held (for tests).
    #[cfg(test)]
    fn held(&self) -> (usize, u64) {
        let e = self.lock();
        (e.map.len(), e.bytes)
    }
}

fn key_bytes(key: &Key) -> u64 {
    key.1.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

/// Parameters sorted by name. Stable: a repeated name keeps its values' order (which one
/// counts is the endpoint's business).
fn normalise(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut p = params.to_vec();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p
}

fn failed(e: &dyn std::fmt::Display) -> Answer {
    tracing::error!(error = %e, "read task failed");
    Answer::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/json",
        serde_json::json!({ "error": "the query failed; see the server's log" }).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        Store::open(&path).unwrap();
        (dir, path)
    }

    fn served(r: &Response) -> &str {
        r.headers()[CACHE_HEADER].to_str().unwrap()
    }

    fn ok(body: &str) -> Answer {
        Answer::new(StatusCode::OK, "text/plain", body.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repeat_is_served_from_the_cache_until_a_write() {
        let (_dir, path) = db();
        let cache = Arc::new(ReadCache::new(path.clone(), 1 << 20, 2, 2));
        let computed = Arc::new(AtomicUsize::new(0));
        let get = |params: Vec<(String, String)>| {
            let c = computed.clone();
            let cache = cache.clone();
            async move {
                cache
                    .serve("/r", &params, move || {
                        c.fetch_add(1, Ordering::SeqCst);
                        ok("answer")
                    })
                    .await
            }
        };
        assert_eq!(served(&get(p(&[("a", "1"), ("b", "2")])).await), "miss");
        // The same parameters in another order are the same question.
        assert_eq!(served(&get(p(&[("b", "2"), ("a", "1")])).await), "hit");
        assert_eq!(served(&get(p(&[("a", "2")])).await), "miss");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // A write through another connection changes the version: recomputed.
        let mut writer = Store::open(&path).unwrap();
        let mut b = writer.batch().unwrap();
        b.run(&crate::model::RunMeta {
            commit: "a".repeat(40),
            branch: "main".into(),
            job: "unit".into(),
            run_id: "1".into(),
            attempt: 1,
            started_at: 1_700_000_000,
            duration_s: None,
            run_url: None,
        })
        .unwrap();
        b.commit().unwrap();
        let r = get(p(&[("a", "1"), ("b", "2")])).await;
        assert_eq!(served(&r), "miss");
        assert_eq!(computed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_requests_share_one_computation_and_the_cap_answers_503() {
        let (_dir, path) = db();
        let cache = Arc::new(ReadCache::new(path, 0, 1, 7));
        let computed = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let c = computed.clone();
            let go = go_rx.clone();
            waiting.push(tokio::spawn(async move {
                cache
                    .serve("/r", &p(&[("x", "1")]), move || {
                        c.fetch_add(1, Ordering::SeqCst);
                        go.lock().unwrap().recv().unwrap();
                        ok("slow")
                    })
                    .await
            }));
        }
        // Let all eight arrive while the one computation is held.
        while computed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Another question needs a second computation: over the cap of one.
        let other = cache.serve("/r", &p(&[("x", "2")]), || ok("other")).await;
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(other.headers()[header::RETRY_AFTER], "7");
        go_tx.send(()).unwrap();
        let mut kinds = Vec::new();
        for w in waiting {
            let r = w.await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            kinds.push(served(&r).to_string());
        }
        assert_eq!(
            computed.load(Ordering::SeqCst),
            1,
            "computed once for eight"
        );
        kinds.sort();
        assert_eq!(
            kinds.iter().filter(|k| *k == "miss").count(),
            1,
            "{kinds:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| *k == "shared").count(),
            7,
            "{kinds:?}"
        );
        // The slot is free again; with no cache bytes nothing was kept.
        let again = cache.serve("/r", &p(&[("x", "2")]), || ok("other")).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(cache.held(), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_bounded_and_errors_are_not_kept() {
        let (_dir, path) = db();
        let cache = Arc::new(ReadCache::new(path, 10_000, 2, 2));
        for i in 0..50 {
            let r = cache
                .serve("/r", &p(&[("i", &i.to_string())]), || ok(&"x".repeat(1000)))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let (n, bytes) = cache.held();
            assert!(bytes <= 10_000 && n <= 10, "{n} entries, {bytes} bytes");
        }
        // The newest are kept, the oldest went.
        let r = cache.serve("/r", &p(&[("i", "49")]), || ok("new")).await;
        assert_eq!(served(&r), "hit");
        let r = cache.serve("/r", &p(&[("i", "0")]), || ok("new")).await;
        assert_eq!(served(&r), "miss");
        // An answer larger than the whole budget is served, not kept.
        let big = cache
            .serve("/r", &p(&[("big", "1")]), || ok(&"y".repeat(20_000)))
            .await;
        assert_eq!(big.status(), StatusCode::OK);
        assert!(cache.held().1 <= 10_000);
        let bad = || Answer::new(StatusCode::BAD_REQUEST, "application/json", "{}");
        cache.serve("/r", &p(&[("bad", "1")]), bad).await;
        let r = cache.serve("/r", &p(&[("bad", "1")]), bad).await;
        assert_eq!(served(&r), "miss");
    }
}
