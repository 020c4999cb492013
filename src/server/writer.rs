//! The one writer: a thread that owns the [`Store`] and stores uploads in order.
//!
//! Uploads arrive parsed over a bounded channel. When several are queued the writer takes
//! them all (up to a limit) into one transaction, so that a burst of uploads costs one
//! commit instead of one each; each upload's answer goes back over its own oneshot channel
//! once the transaction has committed. When every sender is gone the writer drains what
//! is queued, commits it and returns, so no accepted upload is lost on shutdown.

use std::collections::HashSet;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::error::Result;
use crate::ingest::{report_timestamp, Rejection, Summary};
use crate::junit::Report;
use crate::model::RunMeta;
use crate::store::Store;

/// Results per transaction, beyond which queued uploads wait for the next one.
const RESULTS_PER_COMMIT: u64 = 250_000;

/// One report of an upload, parsed.
pub struct Parsed {
    pub name: String,
    pub hash: String,
    pub report: Report,
}

/// One upload, ready to store.
pub struct Upload {
    pub meta: RunMeta,
    /// False when the request gave no `started_at`: the reports' timestamp is used.
    pub started_at_known: bool,
    pub files: Vec<Parsed>,
    /// Files that did not parse: they are answered, not stored.
    pub rejected: Vec<Rejection>,
}

/// What storing an upload did.
#[derive(Debug, Clone)]
pub struct Stored {
    pub summary: Summary,
    pub rejected: Vec<Rejection>,
}

pub type Reply = std::result::Result<Stored, String>;

pub struct Job {
    pub upload: Upload,
    pub reply: oneshot::Sender<Reply>,
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
                let (uploads, replies): (Vec<Upload>, Vec<oneshot::Sender<Reply>>) =
                    jobs.into_iter().map(|j| (j.upload, j.reply)).unzip();
                match write(&mut store, &uploads) {
                    Ok(stored) => {
                        tracing::debug!(
                            uploads = uploads.len(),
                            ms = started.elapsed().as_millis() as u64,
                            "committed"
                        );
                        for (reply, s) in replies.into_iter().zip(stored) {
                            // The requester may have given up (timeout, disconnect): the
                            // upload is stored all the same.
                            let _ = reply.send(Ok(s));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, uploads = uploads.len(), "cannot store uploads");
                        let text = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(text.clone()));
                        }
                    }
                }
            }
            tracing::debug!("writer stopped: queue drained");
        })?;
    Ok((tx, handle))
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
        files: (upload.files.len() + upload.rejected.len()) as u64,
        rejected: upload.rejected.len() as u64,
        ..Summary::default()
    };
    let mut run_key = None;
    let mut distinct: HashSet<i64> = HashSet::new();
    for file in &upload.files {
        let key = match run_key {
            Some(k) => k,
            None => {
                let mut meta = upload.meta.clone();
                if !upload.started_at_known {
                    meta.started_at = file
                        .report
                        .info
                        .timestamp
                        .as_deref()
                        .and_then(report_timestamp)
                        .unwrap_or(meta.started_at);
                }
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
        distinct.extend(file.report.cases.iter().map(|c| c.identity().0));
        let t = batch.add_file(
            key,
            &file.hash,
            &file.name,
            &file.report.cases,
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
