//! The CI gate: after a run's tests, forgive the failures of tests already known to be
//! flaky (or quarantined) in this job, and fail the job on everything else.
//!
//! This is the run-but-ignore quarantine: the tests keep running, so their evidence keeps
//! flowing into the history, but a known flake no longer fails the job.
//!
//! A failed test (every executed attempt in this run failed; a test that passed on an
//! in-run rerun did not fail the run) is **forgiven** when, in order:
//! 1. it is *not* broken here: on this commit in this job no attempt ever passed (this run
//!    and the stored runs before it) and there were at least two attempts (in-run reruns
//!    or job re-runs) — the scorer's broken-commit rule. A broken test is never forgiven;
//! 2. it is not `broken` in this job by the stored history either;
//! 3. it is actively quarantined in this job (`quarantine --apply`) and the quarantine has
//!    not expired at this run's start; or its status in this job, scored from the history
//!    *before* this run, is `flaky`.
//!
//! "Before this run" is the window ending at the run's start, without the run itself and
//! its later attempts even when they are stored already: asking again for the same run
//! (a step run twice, a retried request) gives the same verdict.
//!
//! Everything else is **not forgiven**: a new failure, a `suspect`, `fixed` or `stable`
//! test, a test never seen before. A report that cannot be read fails the gate too, and so
//! does a run with no reports at all: silence is not evidence.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::escape;
use crate::ingest::Rejection;
use crate::model::{readable_name, RunMeta, RunOutcome, TestCase};
use crate::report::markdown::code;
use crate::score::{self, rfc3339, ScoreOptions, Status};
use crate::store::{RunFilter, RunRow, Store};

/// The gate's knobs; each is a flag of `flakehound gate`.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// History scored to decide whether a test is known flaky (default 30 days).
    pub window_s: i64,
    /// Forgive only tests proven flaky by a pass and a failure on one commit, not those
    /// called flaky on the statistics of their lone failures.
    pub require_same_sha: bool,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            window_s: 30 * 86_400,
            require_same_sha: false,
        }
    }
}

/// Why a failure was or was not forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// Known flaky in this job.
    Flaky,
    /// Quarantined in this job.
    Quarantined,
    /// Broken: failed every attempt on this commit, or broken in the history.
    Broken,
    /// Not known flaky: a new failure.
    New,
    /// Flaky on statistical evidence only, and the gate asked for same-commit proof.
    Unproven,
}

/// One failed test of the run and the gate's decision on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateTest {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub forgiven: bool,
    pub why: Why,
    /// The decision in words, e.g. `known flaky: flake rate 12.0% [5.1–22.3%] per attempt, 4 flaky commits`.
    pub reason: String,
    /// Its status in this job before this run (`flaky`, `suspect`, …), if it had failed before.
    pub status: Option<String>,
    pub flake_rate: Option<f64>,
    pub flake_rate_low: Option<f64>,
    pub flake_rate_high: Option<f64>,
    pub quarantined_since: Option<String>,
    pub quarantined_until: Option<String>,
    /// Attempts and failed attempts in this run.
    pub attempts: u32,
    pub failures: u32,
    /// The first failure's type and message in this run.
    pub message: Option<String>,
}

impl GateTest {
    pub fn readable(&self) -> String {
        readable_name(&self.classname, &self.name)
    }
}

/// A test that failed and passed within the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InRunFlake {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    /// Attempts and failed attempts in this run.
    pub attempts: u32,
    pub failures: u32,
    /// The first failure's type and message in this run.
    pub message: Option<String>,
}

impl InRunFlake {
    pub fn readable(&self) -> String {
        readable_name(&self.classname, &self.name)
    }

    fn reason(&self) -> String {
        format!(
            "failed {} of {} attempts in this run and passed: flaky on this commit",
            self.failures, self.attempts
        )
    }
}

/// The gate's answer for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// True when every failed test was forgiven and every report was read.
    pub pass: bool,
    pub job: String,
    pub commit: String,
    pub branch: String,
    pub run_id: String,
    pub attempt: u32,
    /// Tests in this run's reports, and how many failed.
    pub tests: u64,
    pub failed: u64,
    /// The failures not forgiven, then the forgiven ones; each sorted by name.
    pub unforgiven: Vec<GateTest>,
    pub forgiven: Vec<GateTest>,
    /// Tests that failed an attempt and passed another within this run (in-run reruns,
    /// `go test -count`): not failures of the run, but flaky on this commit. By name.
    #[serde(default)]
    pub flaky_in_run: Vec<InRunFlake>,
    /// Reports that could not be read (each fails the gate).
    pub rejected: Vec<Rejection>,
    /// The scored history that decided "known flaky": `since` .. `as_of` (RFC 3339).
    /// `None` when nothing was scored: nothing failed, or there was no history (no run
    /// of the job in the window before this run, or no database).
    pub since: Option<String>,
    pub as_of: Option<String>,
}

/// A test's attempts on one commit across the stored runs.
#[derive(Default)]
struct CommitAttempts {
    passed: bool,
    attempts: u32,
    runs: u32,
}

/// Merge the cases of one run (a test may appear in several report files) by identity,
/// in a stable order.
fn merge(cases: &[TestCase]) -> BTreeMap<(String, i64), TestCase> {
    let mut merged: BTreeMap<(String, i64), TestCase> = BTreeMap::new();
    for case in cases {
        let key = (
            readable_name(&case.classname, &case.name),
            case.identity().0,
        );
        match merged.get_mut(&key) {
            Some(m) => m.attempts.extend(case.attempts.iter().cloned()),
            None => {
                merged.insert(key, case.clone());
            }
        }
    }
    merged
}

fn first_message(case: &TestCase) -> Option<String> {
    let f = case
        .attempts
        .iter()
        .find(|a| a.outcome.is_failure())?
        .failure
        .as_ref()?;
    let text = f
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(|| {
            f.body
                .as_deref()
                .and_then(|b| b.lines().find(|l| !l.trim().is_empty()))
                .map(|l| l.trim().to_string())
        });
    match (&f.kind, text) {
        (Some(k), Some(t)) => Some(format!("{k}: {t}")),
        (Some(k), None) => Some(k.clone()),
        (None, t) => t,
    }
    .map(|m| m.chars().take(300).collect())
}

/// Judge one run. `store` holds the history (`None`: no database yet, so nothing is
/// known flaky); whatever of this run it holds already, from an earlier call or an
/// `ingest`, is left out, so the verdict does not depend on it. `meta.started_at` is the
/// start this run is (or will be) stored with. `cases` are the run's parsed test cases.
pub fn judge(
    store: Option<&Store>,
    meta: &RunMeta,
    cases: &[TestCase],
    rejected: Vec<Rejection>,
    opts: &GateOptions,
) -> Result<Verdict> {
    let merged = merge(cases);
    let failed: Vec<&TestCase> = merged
        .values()
        .filter(|c| c.run_outcome() == RunOutcome::Failed)
        .collect();

    let mut scores = HashMap::new();
    let mut quarantined = HashMap::new();
    let mut on_commit: HashMap<i64, CommitAttempts> = HashMap::new();
    let mut window = (None, None);
    let commit = match store {
        Some(s) => s.full_commit(&meta.job, &meta.commit)?,
        None => meta.commit.clone(),
    };
    if let (Some(store), false) = (store, failed.is_empty()) {
        let runs = store.runs(&RunFilter {
            job: Some(meta.job.clone()),
            ..RunFilter::default()
        })?;
        // This run, and its later attempts, may be stored already (the gate stored it on
        // an earlier call, or an `ingest` did): they are not history before it. Once
        // stored, the run's start is the one in the store, whatever this call was given.
        let own: Vec<&RunRow> = runs
            .iter()
            .filter(|r| r.commit == commit && r.run_id == meta.run_id && r.attempt >= meta.attempt)
            .collect();
        let started_at = own
            .iter()
            .find(|r| r.attempt == meta.attempt)
            .map_or(meta.started_at, |r| r.started_at);
        let exclude_runs: Vec<i64> = own.iter().map(|r| r.run_key).collect();
        let before = |r: &RunRow| r.started_at <= started_at && !exclude_runs.contains(&r.run_key);
        let scored = score::score(
            store,
            &ScoreOptions {
                job: Some(meta.job.clone()),
                window_s: opts.window_s,
                // Runs after this one were not there to judge it by: the verdict for a
                // run stays the same however often and however late it is asked for.
                as_of: Some(started_at),
                exclude_runs: exclude_runs.clone(),
                ..ScoreOptions::default()
            },
        )?;
        // An empty window has bounds but no history: saying it was scored would claim
        // evidence that is not there.
        if !scored.runs().is_empty() {
            window = (Some(scored.since.clone()), Some(scored.as_of.clone()));
        }
        for t in scored.tests {
            scores.insert(t.test_id.clone(), t);
        }
        for q in store.quarantine_rows()? {
            if q.job == meta.job && q.released_at.is_none() && q.until >= started_at {
                quarantined.insert(q.test_id, q);
            }
        }
        // The broken-commit rule reads this commit's runs from the same history, in one
        // batch (a read per run and failed test was a round trip each on PostgreSQL).
        let failed_ids: Vec<i64> = failed.iter().map(|c| c.identity().0).collect();
        let pairs: Vec<(i64, i64)> = runs
            .iter()
            .filter(|r| r.commit == commit && before(r))
            .flat_map(|run| failed_ids.iter().map(|&id| (run.run_key, id)))
            .collect();
        for ((_, id), r) in store.results_of(&pairs)? {
            let e = on_commit.entry(id).or_default();
            e.runs += 1;
            e.attempts += r.attempts;
            if r.failures < r.attempts {
                e.passed = true;
            }
        }
    }

    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let mut forgiven = Vec::new();
    let mut unforgiven = Vec::new();
    for case in failed {
        let id = case.identity();
        let hex = id.hex();
        let attempts = case.executed_attempts() as u32;
        let failures = case
            .attempts
            .iter()
            .filter(|a| a.outcome.is_failure())
            .count() as u32;
        let prior = on_commit.remove(&id.0).unwrap_or_default();
        let score = scores.get(&hex);
        let quarantine = quarantined.get(&id.0);
        let commit_attempts = attempts + prior.attempts;
        let (forgive, why, reason) = if !prior.passed && commit_attempts >= 2 {
            (
                false,
                Why::Broken,
                format!(
                    "broken: failed every attempt on commit {} ({commit_attempts} attempts in {} run(s)); a real failure is never forgiven",
                    short(&commit),
                    prior.runs + 1
                ),
            )
        } else if score.is_some_and(|s| s.status == Status::Broken) {
            (
                false,
                Why::Broken,
                format!(
                    "broken in job {}: {}",
                    meta.job,
                    score.map(|s| s.reason.as_str()).unwrap_or("")
                ),
            )
        } else if let Some(q) = quarantine {
            (
                true,
                Why::Quarantined,
                format!(
                    "quarantined since {} (until {}): {}",
                    rfc3339(q.since),
                    rfc3339(q.until),
                    q.reason
                ),
            )
        } else if let Some(s) = score.filter(|s| {
            s.status == Status::Flaky
                && opts.require_same_sha
                && s.flaky_evidence != Some("same-sha")
        }) {
            (
                false,
                Why::Unproven,
                format!(
                    "flaky in job {} on statistical evidence only (P(flaky) = {:.3}, no pass and failure on one commit); --require-same-sha asks for proof",
                    meta.job,
                    s.flaky_posterior.unwrap_or(0.0)
                ),
            )
        } else if let Some(s) = score.filter(|s| s.status == Status::Flaky) {
            (
                true,
                Why::Flaky,
                format!(
                    "known flaky: flake rate {} [{}–{}] per attempt, {} flaky commit(s){}",
                    pct(s.flake_rate),
                    pct(s.flake_rate_low),
                    pct(s.flake_rate_high),
                    s.flaky_commits,
                    s.last_flake_at
                        .as_deref()
                        .map(|t| format!(", last flake {t}"))
                        .unwrap_or_default()
                ),
            )
        } else {
            let status = match score {
                Some(s) => format!(
                    "its status in job {} is {}: {}",
                    meta.job,
                    s.status.as_str(),
                    s.reason
                ),
                None => format!("it is not known flaky in job {}", meta.job),
            };
            (false, Why::New, format!("new failure: {status}"))
        };
        let t = GateTest {
            test_id: hex.clone(),
            classname: case.classname.clone(),
            name: case.name.clone(),
            file: case.file.clone(),
            forgiven: forgive,
            why,
            reason,
            status: score.map(|s| s.status.as_str().to_string()),
            flake_rate: score.map(|s| s.flake_rate),
            flake_rate_low: score.map(|s| s.flake_rate_low),
            flake_rate_high: score.map(|s| s.flake_rate_high),
            quarantined_since: quarantine.map(|q| rfc3339(q.since)),
            quarantined_until: quarantine.map(|q| rfc3339(q.until)),
            attempts,
            failures,
            message: first_message(case),
        };
        if forgive {
            forgiven.push(t);
        } else {
            unforgiven.push(t);
        }
    }
    let tests = merged.len() as u64;
    let flaky_in_run = merged
        .values()
        .filter(|c| c.run_outcome() == RunOutcome::Flaky)
        .map(|c| InRunFlake {
            test_id: c.identity().hex(),
            classname: c.classname.clone(),
            name: c.name.clone(),
            file: c.file.clone(),
            attempts: c.executed_attempts() as u32,
            failures: c.failed_attempts() as u32,
            message: first_message(c),
        })
        .collect();
    Ok(Verdict {
        pass: unforgiven.is_empty() && rejected.is_empty(),
        job: meta.job.clone(),
        commit,
        branch: meta.branch.clone(),
        run_id: meta.run_id.clone(),
        attempt: meta.attempt,
        tests,
        failed: (forgiven.len() + unforgiven.len()) as u64,
        unforgiven,
        forgiven,
        flaky_in_run,
        rejected,
        since: window.0,
        as_of: window.1,
    })
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

impl Verdict {
    /// One line per decision, for a CI log.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "flakehound gate: {} — job {}, commit {}, run {} attempt {}: {} test(s), {} failed, {} forgiven, {} not forgiven{}\n",
            if self.pass { "PASS" } else { "FAIL" },
            escape::terminal(&self.job),
            escape::terminal(short(&self.commit)),
            escape::terminal(&self.run_id),
            self.attempt,
            self.tests,
            self.failed,
            self.forgiven.len(),
            self.unforgiven.len(),
            if self.rejected.is_empty() {
                String::new()
            } else {
                format!(", {} report(s) unreadable", self.rejected.len())
            }
        );
        if self.tests == 0 && self.rejected.is_empty() {
            out.push_str("  no test results were read: the gate fails\n");
        }
        // Names, reasons and messages come from the reports: escape codes in them would
        // drive the CI log's terminal.
        let t = |s: &str| escape::terminal(s).into_owned();
        for r in &self.rejected {
            out.push_str(&format!("  UNREADABLE  {}\n", t(&r.to_string())));
        }
        for u in &self.unforgiven {
            out.push_str(&format!(
                "  FAILED      {}  {}\n",
                t(&u.readable()),
                t(&u.reason)
            ));
            if let Some(m) = &u.message {
                out.push_str(&format!("              {}\n", t(m)));
            }
        }
        for f in &self.forgiven {
            out.push_str(&format!(
                "  FORGIVEN    {}  {}\n",
                t(&f.readable()),
                t(&f.reason)
            ));
        }
        for f in &self.flaky_in_run {
            out.push_str(&format!(
                "  FLAKY       {}  {}\n",
                t(&f.readable()),
                f.reason()
            ));
        }
        out
    }

    /// The Markdown summary (GitHub's `$GITHUB_STEP_SUMMARY`, a merge-request note).
    /// Names, jobs and failure messages come from the uploaded reports: each is a code
    /// span or escaped text, so that nothing in them renders (a `<!--` in a message would
    /// hide every row after it) or splits a table cell.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "### flakehound gate: {}\n\nJob {} · commit {} · run {} attempt {} — {} test(s), {} failed: **{} forgiven**, **{} not forgiven**.\n",
            if self.pass { "passed" } else { "failed" },
            code(&self.job),
            code(short(&self.commit)),
            code(&self.run_id),
            self.attempt,
            self.tests,
            self.failed,
            self.forgiven.len(),
            self.unforgiven.len(),
        );
        if !self.rejected.is_empty() {
            out.push_str("\n#### Unreadable reports (the gate fails)\n\n");
            for r in &self.rejected {
                // Escaped, not a code span: a code span is cut to fit a table cell, and
                // the reason comes last.
                out.push_str(&format!("- {}\n", escape::markdown(&r.to_string())));
            }
        }
        let table = |out: &mut String, title: &str, tests: &[GateTest]| {
            if tests.is_empty() {
                return;
            }
            out.push_str(&format!(
                "\n#### {title}\n\n| Test | Why | Failure |\n|---|---|---|\n"
            ));
            for t in tests {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    code(&t.readable()),
                    escape::markdown(&t.reason),
                    t.message.as_deref().map(code).unwrap_or_default()
                ));
            }
        };
        table(&mut out, "Not forgiven (new or broken)", &self.unforgiven);
        table(
            &mut out,
            "Forgiven (known flaky or quarantined)",
            &self.forgiven,
        );
        if !self.flaky_in_run.is_empty() {
            out.push_str(
                "\n#### Flaky in this run (failed, then passed: not failures of the run)\n\n| Test | Attempts | Failure |\n|---|---|---|\n",
            );
            for f in &self.flaky_in_run {
                out.push_str(&format!(
                    "| {} | {} of {} failed | {} |\n",
                    code(&f.readable()),
                    f.failures,
                    f.attempts,
                    f.message.as_deref().map(code).unwrap_or_default()
                ));
            }
        }
        match (&self.since, &self.as_of) {
            (Some(since), Some(as_of)) => out.push_str(&format!(
                "\nKnown flaky: scored from the history {since} .. {as_of}.\n"
            )),
            _ if self.failed > 0 => out.push_str(&format!(
                "\nKnown flaky: there was no history of job {} before this run to score, so no failure is known flaky.\n",
                code(&self.job)
            )),
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, AttemptOutcome, Failure};

    fn case(name: &str, outcomes: &[AttemptOutcome]) -> TestCase {
        TestCase {
            classname: "C".into(),
            name: name.into(),
            file: None,
            suite: None,
            attempts: outcomes
                .iter()
                .map(|&outcome| Attempt {
                    outcome,
                    duration_s: Some(0.1),
                    failure: outcome.is_failure().then(|| Failure {
                        kind: Some("E".into()),
                        message: Some("boom | 42".into()),
                        body: None,
                    }),
                })
                .collect(),
        }
    }

    fn meta() -> RunMeta {
        RunMeta {
            commit: "abc".into(),
            branch: "main".into(),
            job: "unit".into(),
            run_id: "1".into(),
            attempt: 1,
            started_at: 1_700_000_000,
            duration_s: None,
            run_url: None,
        }
    }

    #[test]
    fn without_history_every_failure_is_new_and_reruns_that_pass_are_not_failures() {
        use AttemptOutcome::*;
        let cases = [
            case("a", &[Passed]),
            case("b", &[Failed, Passed]),
            case("c", &[Errored]),
        ];
        let v = judge(None, &meta(), &cases, vec![], &GateOptions::default()).unwrap();
        assert!(!v.pass);
        assert_eq!(v.failed, 1);
        assert_eq!(v.unforgiven[0].name, "c");
        assert_eq!(v.unforgiven[0].why, Why::New);
        assert_eq!(v.unforgiven[0].message.as_deref(), Some("E: boom | 42"));
        assert!(v.to_markdown().contains("boom \\| 42"));
        let ok = judge(None, &meta(), &cases[..2], vec![], &GateOptions::default()).unwrap();
        assert!(ok.pass && ok.failed == 0);
    }

    #[test]
    fn the_text_verdict_shows_escape_codes_from_the_reports_instead_of_running_them() {
        let mut m = meta();
        m.job = "unit\u{1b}[2J".into();
        let v = judge(
            None,
            &m,
            &[case("clears\u{1b}[2Jscreen", &[AttemptOutcome::Failed])],
            Vec::new(),
            &GateOptions::default(),
        )
        .unwrap();
        let text = v.to_text();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("clears\\u{1b}[2Jscreen"), "{text}");
        assert!(text.contains("job unit\\u{1b}[2J,"), "{text}");
    }

    #[test]
    fn the_markdown_summary_renders_nothing_from_the_reports() {
        let hostile = TestCase {
            classname: "ui.Page".into(),
            name: "renders `header`".into(),
            file: None,
            suite: None,
            attempts: vec![Attempt {
                outcome: AttemptOutcome::Failed,
                duration_s: None,
                failure: Some(Failure {
                    kind: Some("AssertionError".into()),
                    message: Some("expected <!-- comment --> got <div>".into()),
                    body: None,
                }),
            }],
        };
        let mut m = meta();
        m.job = "ui <b>`tests`</b> | all".into();
        let rejected = vec![Rejection {
            path: "TEST-x.xml".into(),
            line: 3,
            column: 1,
            reason: "expected </testsuite>, found <!--".into(),
        }];
        let v = judge(
            None,
            &m,
            &[hostile, case("other", &[AttemptOutcome::Failed])],
            rejected,
            &GateOptions::default(),
        )
        .unwrap();
        let md = v.to_markdown();
        let name = code("ui.Page.renders `header`");
        let message = code("AssertionError: expected <!-- comment --> got <div>");
        assert_eq!(name, "`` ui.Page.renders `header` ``");
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for the test: {md}"));
        assert!(row.ends_with(&format!(" | {message} |")), "{row}");
        assert!(md.contains("\n| `C.other` | "), "{md}");
        let job = code("ui <b>`tests`</b> | all");
        assert!(md.contains(&format!("Job {job} ·")), "{md}");
        // Outside the code spans nothing is HTML (the reasons name the job too, and the
        // rejection quotes the parser), and every pipe is a cell's or escaped.
        let outside = md.replace(&message, "").replace(&job, "");
        assert!(!outside.contains('<'), "{outside}");
        for line in md.lines().filter(|l| l.starts_with("| ")) {
            assert_eq!(line.matches(" | ").count(), 2, "{line}");
        }
    }

    #[test]
    fn every_attempt_failing_in_run_is_broken_and_a_test_split_over_files_is_merged() {
        use AttemptOutcome::*;
        let v = judge(
            None,
            &meta(),
            &[case("a", &[Failed, Failed])],
            vec![],
            &GateOptions::default(),
        )
        .unwrap();
        assert_eq!(v.unforgiven[0].why, Why::Broken);
        // One failed attempt in one file and a pass in another: it passed in the run.
        let v = judge(
            None,
            &meta(),
            &[case("a", &[Failed]), case("a", &[Passed])],
            vec![],
            &GateOptions::default(),
        )
        .unwrap();
        assert!(v.pass && v.failed == 0);
        // ... and it is shown as flaky in this run, in text, JSON and Markdown.
        assert_eq!(v.flaky_in_run.len(), 1);
        assert_eq!(
            (v.flaky_in_run[0].attempts, v.flaky_in_run[0].failures),
            (2, 1)
        );
        assert!(v
            .to_text()
            .contains("  FLAKY       C.a  failed 1 of 2 attempts"));
        assert!(v.to_markdown().contains("| `C.a` | 1 of 2 failed |"));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["flaky_in_run"][0]["name"], "a");
        // A verdict from a server without the key still reads.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("flaky_in_run");
        let v: Verdict = serde_json::from_value(old).unwrap();
        assert!(v.flaky_in_run.is_empty());
    }
}
