//! `flakehound upload`: send a run's reports to a `flakehound serve` server.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use flakehound::error::{exit, Error, Result};
use flakehound::ingest::Summary;
use flakehound::server::client::{self, Options, Outcome};

use super::ingest::{print_summary, run_meta, RunMetaArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status:
  0  the server stored the reports (a re-upload of the same reports is a no-op), or,
     without --strict, the upload failed for a reason that is not the reports' fault
     (server unreachable or failing after the retries, token refused (401/403), body
     refused (400/413), a reply that is not the server's summary: a redirect, which is
     never followed, or an HTML page): a loud warning is printed on stderr and the CI
     job is not failed
  1  a report was rejected (malformed or not JUnit; printed as path:line:column: reason)
     or a path could not be read; the other reports were stored, like `ingest`
  2  with --strict, any of the failures that otherwise only warn; also bad usage
     (e.g. no commit or job: pass --commit/--job outside a supported CI)

With --gate: 0 when every failed test is known flaky or quarantined in the job (the
server's verdict); 1 when a failure is not forgiven, a report is unreadable or none was
found; when the server cannot be asked, 0 only if no test failed, else 1 (2 with
--strict).

Retries: on connection errors, 408, 429 and 5xx, with exponential backoff and jitter,
at least the server's Retry-After, --retries times.")]
pub struct UploadArgs {
    /// The server's base URL, e.g. https://flakes.internal:8080
    #[arg(long, env = "FLAKEHOUND_SERVER")]
    pub server: String,
    /// API token with the `upload` scope
    #[arg(long, env = "FLAKEHOUND_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub meta: RunMetaArgs,
    /// Print the summary as a JSON object
    #[arg(long)]
    pub json: bool,
    /// Fail (exit 2) when the upload fails for any reason, not only for rejected reports
    #[arg(long)]
    pub strict: bool,
    /// Retries after the first attempt
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Seconds each attempt may take
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Gate the job like `flakehound gate`, with the server's history (POST /api/v1/gate):
    /// exit 0 only when every failure is a known flaky or quarantined test of the job
    #[arg(long)]
    pub gate: bool,
    /// With --gate: only judge, do not store the run
    #[arg(long, requires = "gate")]
    pub no_ingest: bool,
    /// With --gate: history that decides whether a test is known flaky (e.g. 30d)
    #[arg(long, requires = "gate", default_value = "30d")]
    pub window: String,
    /// With --gate: forgive only tests proven flaky by a pass and a failure on one commit
    #[arg(long, requires = "gate")]
    pub require_same_sha: bool,
    /// With --gate: write the Markdown summary here ($GITHUB_STEP_SUMMARY is appended to when set)
    #[arg(long, requires = "gate")]
    pub summary: Option<PathBuf>,
    /// Report files or folders (searched for *.xml, *.junit-xml, *.xml.gz)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

fn warn_or_fail(strict: bool, what: &str) -> u8 {
    if strict {
        eprintln!("error: {what}");
        exit::FAILURE
    } else {
        // Loud on purpose: the job stays green, but the reports are lost unless someone
        // reads this.
        eprintln!("warning: {what}; not failing the job (pass --strict to fail)");
        eprintln!("warning: ********************************************************************");
        eprintln!("warning: *  THE TEST REPORTS OF THIS RUN WERE NOT STORED BY flakehound      *");
        eprintln!("warning: ********************************************************************");
        exit::OK
    }
}

pub fn run(args: UploadArgs, out: &mut dyn Write) -> Result<u8> {
    let (meta, known) = run_meta(&args.meta)?;
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(Error::Usage(format!(
            "--server {:?}: expected an http:// or https:// URL",
            args.server
        )));
    }
    if args.gate {
        return super::gate::upload_gate(&args, meta, known, out);
    }
    let packed = client::pack(&args.paths)
        .map_err(|e| Error::Other(format!("cannot pack the reports: {e}")))?;
    for r in &packed.rejected {
        eprintln!("{r}");
    }
    let local_code = if packed.rejected.is_empty() {
        exit::OK
    } else {
        exit::REJECTED
    };
    if packed.names.is_empty() {
        eprintln!(
            "warning: no report files found (*.xml, *.junit-xml, *.xml.gz); nothing uploaded"
        );
        let mut summary = Summary::default();
        packed.add_local(&mut summary);
        print_summary(&summary, args.json, out)?;
        return Ok(local_code);
    }
    let mut query = vec![
        ("commit".to_string(), meta.commit),
        ("branch".to_string(), meta.branch),
        ("job".to_string(), meta.job),
        ("run_id".to_string(), meta.run_id),
        ("attempt".to_string(), meta.attempt.to_string()),
    ];
    if known {
        query.push(("started_at".into(), meta.started_at.to_string()));
    }
    if let Some(d) = meta.duration_s {
        query.push(("duration_s".into(), d.to_string()));
    }
    if let Some(u) = meta.run_url {
        query.push(("run_url".into(), u));
    }
    let options = Options {
        server: args.server.clone(),
        token: args.token.clone().filter(|t| !t.is_empty()),
        retries: args.retries,
        timeout: Duration::from_secs(args.timeout.max(1)),
        backoff: Duration::from_millis(500),
    };
    tracing::info!(
        files = packed.names.len(),
        bytes = packed.body.len(),
        "uploading"
    );
    let code = match client::upload(&options, &query, &packed.body) {
        Outcome::Stored(mut summary) => {
            packed.add_local(&mut summary);
            print_summary(&summary, args.json, out)?;
            exit::OK
        }
        Outcome::Rejected {
            summary, rejected, ..
        } => {
            for r in &rejected {
                eprintln!("{r}");
            }
            if let Some(mut s) = summary {
                packed.add_local(&mut s);
                print_summary(&s, args.json, out)?;
            }
            exit::REJECTED
        }
        Outcome::Denied { message, .. } => warn_or_fail(
            args.strict,
            &format!("the server refused the token ({message}); reports not uploaded"),
        ),
        Outcome::Refused { message, .. } => warn_or_fail(
            args.strict,
            &format!("the server refused the upload ({message}); reports not uploaded"),
        ),
        Outcome::Unexpected(message) => warn_or_fail(
            args.strict,
            &format!(
                "unexpected reply from {} ({message}); the reports may not be stored",
                args.server
            ),
        ),
        Outcome::Unavailable(message) => warn_or_fail(
            args.strict,
            &format!(
                "cannot upload to {} ({message}); reports not uploaded",
                args.server
            ),
        ),
    };
    Ok(code.max(local_code))
}
