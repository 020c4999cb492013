//! The one writer: a thread that owns the [`Store`] and stores uploads in order.
//!
//! Uploads arrive parsed, their rows prepared ([`crate::store::prepare_with_ids`], on the
//! request's blocking thread, in parallel), over a bounded channel, so that the writer only
//! binds and steps statements. When several are queued the writer takes them all (up to a
//! limit) into one transaction, so that a burst of uploads costs one commit instead of one
//! each; each upload's answer goes back over its own oneshot channel once the transaction
//! has committed, with the upload itself, which its request frees (not the writer). When every sender is gone the writer drains what
//! is queued, commits it and returns, so no accepted upload is lost on shutdown.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::error::Result;
use crate::ingest::{report_timestamp, Rejection, Summary};
use crate::junit::Report;
use crate::model::RunMeta;
use crate::score::FastHasher;
use crate::store::{Prepared, Store};

/// Results per transaction, beyond which queued uploads wait for the next one.
const RESULTS_PER_COMMIT: u64 = 250_000;

/// One report of an upload, parsed, and its rows prepared.
pub struct Parsed {
    pub name: String,
    pub hash: String,
    pub report: Report,
    /// `prepare_with_ids(&report.cases, &report.ids)`.
    pub prepared: Prepared,
}

impl Parsed {
    /// A parsed report with its rows computed (identities as the parser hashed them).
    pub fn new(name: String, hash: String, report: Report) -> Parsed {
        let prepared = crate::store::prepare_with_ids(&report.cases, &report.ids);
        Parsed {
            name,
            hash,
            report,
            prepared,
        }
    }
}

/// One upload, ready to store.
pub struct Upload {
    pub meta: RunMeta,
    /// False when the request gave no `started_at`: the reports' timestamp is used.
    pub started_at_known: bool,
    pub files: Vec<Parsed>,
    /// Files that did not parse: they are answered, not stored.
    pub rejected: Vec<Rejection>,
    /// Packed files that are another tool's XML, and TestNG's copies of results another
    /// report holds: skipped, as `ingest` skips them in a folder.
    pub not_junit: u64,
    pub duplicates: u64,
    /// The upload's share of the server's memory budget, returned once it is stored.
    pub hold: Option<crate::server::limits::Charge>,
}

impl Upload {
    /// The start the run is stored with: the one given, else the first report's
    /// timestamp (the first file creates the run), else the time of the request.
    pub fn started_at(&self) -> i64 {
        if self.started_at_known {
            return self.meta.started_at;
        }
        self.files
            .first()
            .and_then(|f| report_timestamp(&f.report.info))
            .unwrap_or(self.meta.started_at)
    }
}

/// What storing an upload did.
#[derive(Debug, Clone)]
pub struct Stored {
    pub summary: Summary,
    pub rejected: Vec<Rejection>,
}

/// Why an upload was not stored.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The cause, for the server's log (it may name the database).
    pub message: String,
    /// The database could not be reached or dropped the connection: nothing was
    /// acknowledged, and the client should retry (503), not give up (500).
    pub unavailable: bool,
}

impl Failed {
    fn from(e: &crate::error::Error) -> Failed {
        Failed {
            message: e.to_string(),
            unavailable: e.is_unavailable(),
        }
    }
}

pub type Reply = std::result::Result<Stored, Failed>;

/// The answer to a [`Job`], sent once its transaction committed (or failed), with the
/// upload handed back so that its request, not the single writer, frees it.
pub struct Answer {
    pub reply: Reply,
    pub upload: Upload,
}

pub struct Job {
    pub upload: Upload,
    pub reply: oneshot::Sender<Answer>,
}

/// Start the writer thread. `batch_max` caps the uploads per transaction.
pub fn spawn(
    mut store: Store,
    queue: usize,
    batch_max: usize,
) -> std::io::Result<(mpsc::Sender<Job>, JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::channel::<Job>(queue.max(1));
    let batch_max = batch_max.max(1);
    let handle = std::thread::Builder::new()
        .name("flakehound-writer".into())
        .spawn(move || {
            let mut rolled_at: Option<std::time::Instant> = None;
            while let Some(first) = rx.blocking_recv() {
                let mut pending = expected_results(&first.upload);
                let mut jobs = vec![first];
                while jobs.len() < batch_max && pending < RESULTS_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(job) => {
                            pending += expected_results(&job.upload);
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let started = std::time::Instant::now();
                let (uploads, replies): (Vec<Upload>, Vec<oneshot::Sender<Answer>>) =
                    jobs.into_iter().map(|j| (j.upload, j.reply)).unzip();
                // The requester may have given up (timeout, disconnect): the upload is
                // stored all the same, and dropped here.
                let answer = |tx: oneshot::Sender<Answer>, upload: Upload, reply: Reply| {
                    let _ = tx.send(Answer { reply, upload });
                };
                match write(&mut store, &uploads) {
                    Ok(stored) => {
                        tracing::debug!(
                            uploads = uploads.len(),
                            ms = started.elapsed().as_millis() as u64,
                            "committed"
                        );
                        for ((tx, upload), s) in replies.into_iter().zip(uploads).zip(stored) {
                            answer(tx, upload, Ok(s));
                        }
                    }
                    Err(e) if uploads.len() > 1 && !e.is_unavailable() => {
                        // One bad upload must not fail the others queued with it: store
                        // each in its own transaction.
                        tracing::warn!(error = %e, uploads = uploads.len(), "batch failed; storing its uploads one by one");
                        for (upload, tx) in uploads.into_iter().zip(replies) {
                            let reply = write(&mut store, std::slice::from_ref(&upload))
                                .map(|mut s| s.remove(0))
                                .map_err(|e| {
                                    tracing::error!(error = %e, "cannot store an upload");
                                    Failed::from(&e)
                                });
                            answer(tx, upload, reply);
                        }
                    }
                    Err(e) => {
                        if e.is_unavailable() {
                            // Rolled back: the clients are told to retry, and the
                            // next batch reconnects.
                            tracing::warn!(error = %e, uploads = uploads.len(), "database unavailable; uploads refused with 503");
                        } else {
                            tracing::error!(error = %e, "cannot store an upload");
                        }
                        let failed = Failed::from(&e);
                        for (tx, upload) in replies.into_iter().zip(uploads) {
                            answer(tx, upload, Err(failed.clone()));
                        }
                    }
                }
                // Days that closed go into the daily aggregate, after the answers went out
                // and at most every few seconds (the check is two small queries).
                if rolled_at.is_none_or(|t| t.elapsed() >= ROLLUP_EVERY) {
                    rolled_at = Some(std::time::Instant::now());
                    roll_up(&mut store);
                }
            }
            tracing::debug!("writer stopped: queue drained");
        })?;
    Ok((tx, handle))
}

/// How often the writer checks for days to roll up.
const ROLLUP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn roll_up(store: &mut Store) {
    match store.rollup_closed() {
        Ok(0) => {}
        Ok(days) => tracing::info!(days, "rolled up closed days into the daily aggregate"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot roll up the daily aggregate; those days are read raw")
        }
    }
}

fn expected_results(u: &Upload) -> u64 {
    u.files.iter().map(|f| f.report.cases.len() as u64).sum()
}

/// Store uploads in one transaction.
fn write(store: &mut Store, uploads: &[Upload]) -> Result<Vec<Stored>> {
    let mut batch = store.batch()?;
    let mut out = Vec::with_capacity(uploads.len());
    for upload in uploads {
        out.push(write_one(&mut batch, upload)?);
    }
    batch.commit()?;
    Ok(out)
}

/// Store one upload the way `ingest` stores one run's files.
fn write_one(batch: &mut crate::store::Batch<'_>, upload: &Upload) -> Result<Stored> {
    let mut summary = Summary {
        files: (upload.files.len() + upload.rejected.len()) as u64
            + upload.not_junit
            + upload.duplicates,
        rejected: upload.rejected.len() as u64,
        not_junit: upload.not_junit,
        duplicates: upload.duplicates,
        ..Summary::default()
    };
    let mut run_key = None;
    // Test ids are uniform hashes already: no SipHash needed.
    let mut distinct: HashSet<i64, BuildHasherDefault<FastHasher>> = HashSet::default();
    for file in &upload.files {
        let key = match run_key {
            Some(k) => k,
            None => {
                let meta = RunMeta {
                    started_at: upload.started_at(),
                    ..upload.meta.clone()
                };
                let (k, _) = batch.run(&meta)?;
                run_key = Some(k);
                summary.runs += 1;
                k
            }
        };
        if batch.has_file(key, &file.hash)? {
            summary.unchanged += 1;
            continue;
        }
        distinct.extend(file.prepared.rows.iter().map(|r| r.test_id));
        let t = batch.add_file_prepared(
            key,
            &file.hash,
            &file.name,
            &file.report.cases,
            &file.prepared,
            file.report.info.testcases,
            file.report.info.time_s,
        )?;
        summary.tests += t.tests;
        summary.attempts += t.attempts;
        summary.passed += t.passed + t.flaky;
        summary.flaky += t.flaky;
        summary.failed += t.failed;
        summary.skipped += t.skipped;
    }
    summary.distinct_tests = distinct.len() as u64;
    Ok(Stored {
        summary,
        rejected: upload.rejected.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(run_id: &str, xml: &str) -> Upload {
        Upload {
            meta: RunMeta {
                commit: "abc".into(),
                branch: "main".into(),
                job: "unit".into(),
                run_id: run_id.into(),
                attempt: 1,
                started_at: 1_700_000_000,
                duration_s: None,
                run_url: None,
            },
            started_at_known: true,
            files: vec![Parsed::new(
                "TEST-a.xml".into(),
                blake3::hash(xml.as_bytes()).to_hex().to_string(),
                crate::junit::parse_bytes(xml.as_bytes()).unwrap(),
            )],
            rejected: Vec::new(),
            not_junit: 0,
            duplicates: 0,
            hold: None,
        }
    }

    #[test]
    fn stores_queued_uploads_and_drains_on_close() {
        let xml = r#"<testsuite name="s"><testcase classname="A" name="x"/><testcase classname="A" name="y"><failure/></testcase></testsuite>"#;
        let store = Store::open_in_memory().unwrap();
        let (tx, thread) = spawn(store, 16, 8).unwrap();
        let mut answers = Vec::new();
        // Queued back to back, so that the writer takes several per transaction.
        for run in ["1", "2", "1"] {
            let (reply, answer) = oneshot::channel();
            tx.blocking_send(Job {
                upload: upload(run, xml),
                reply,
            })
            .unwrap();
            answers.push(answer);
        }
        drop(tx);
        let summaries: Vec<Summary> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap().reply.unwrap().summary)
            .collect();
        thread.join().unwrap();
        assert_eq!(summaries[0].tests, 2);
        assert_eq!(summaries[0].failed, 1);
        assert_eq!(summaries[1].tests, 2);
        // The same report for the same run again: nothing new.
        assert_eq!(summaries[2].tests, 0);
        assert_eq!(summaries[2].unchanged, 1);
    }
}
