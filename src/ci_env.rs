//! Run metadata from the CI provider's environment, for the flags `flakehound ingest` was
//! not given.
//!
//! Precedence is: command-line flag > provider environment > default (attempt 1, start
//! time from the report or the clock). This module only reads the environment; the caller
//! applies the precedence. Which variable feeds which field, and why, is in
//! `docs/ci-providers.md`.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Run metadata read from a CI provider's environment; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CiEnv {
    /// "github-actions", "gitlab-ci", "circleci", "buildkite", "jenkins" or
    /// "azure-pipelines"; `None` when no provider was recognised.
    pub provider: Option<&'static str>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub job: Option<String>,
    pub run_id: Option<String>,
    /// 1-based execution number of the job within `run_id`.
    pub attempt: Option<u32>,
    /// Unix seconds UTC, if the provider exposes a start time.
    pub started_at: Option<i64>,
    /// The run's (job's, where the provider has one) page, an http(s) URL.
    pub run_url: Option<String>,
}

impl CiEnv {
    /// Detect from the process environment.
    pub fn detect() -> CiEnv {
        Self::from_lookup(|name| std::env::var_os(name).and_then(|v| v.into_string().ok()))
    }

    /// Detect from any lookup (for tests): `lookup("GITHUB_SHA")`.
    ///
    /// Values are trimmed; empty ones count as missing. When no provider is recognised,
    /// every field is `None`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> CiEnv {
        let env = Env(&lookup);
        // Most specific markers first; Jenkins last because its markers are the weakest.
        if env.is_true("GITHUB_ACTIONS") {
            github_actions(&env)
        } else if env.is_true("GITLAB_CI") {
            gitlab_ci(&env)
        } else if env.is_true("CIRCLECI") {
            circleci(&env)
        } else if env.is_true("BUILDKITE") {
            buildkite(&env)
        } else if env.is_true("TF_BUILD") {
            azure_pipelines(&env)
        } else if is_jenkins(&env) {
            jenkins(&env)
        } else {
            CiEnv::default()
        }
    }
}

/// Environment access with empty values treated as missing.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let value = (self.0)(name)?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == value.len() {
            Some(value)
        } else {
            Some(trimmed.to_string())
        }
    }

    /// The first of `names` that has a value.
    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.get(name))
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `true` in any case (Azure Pipelines sets `TF_BUILD=True`).
    fn is_true(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A 1-based attempt number; 0 and non-numbers count as missing.
    fn attempt(&self, name: &str) -> Option<u32> {
        self.get(name)?.parse::<u32>().ok().filter(|&n| n >= 1)
    }

    /// A 0-based retry count, as a 1-based attempt number.
    fn retry_count_as_attempt(&self, name: &str) -> Option<u32> {
        self.get(name)?.parse::<u32>().ok()?.checked_add(1)
    }

    /// An http(s) URL; anything else is ignored with a warning.
    fn url(&self, name: &str) -> Option<String> {
        url_or_warn(name, self.get(name)?)
    }

    fn timestamp(&self, name: &str) -> Option<i64> {
        let value = self.get(name)?;
        match parse_timestamp(&value) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(variable = name, error = %e, "ignoring unreadable CI start time");
                None
            }
        }
    }
}

fn url_or_warn(what: &str, url: String) -> Option<String> {
    match crate::links::check_url(&url) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(variable = what, error = %e, "ignoring unusable CI run URL");
            None
        }
    }
}

/// A branch name without the `refs/heads/` (or, for tag builds, `refs/tags/`) prefix.
fn strip_ref(name: String) -> Option<String> {
    let short = name
        .strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"));
    match short {
        Some("") => None,
        Some(s) => Some(s.to_string()),
        None => Some(name),
    }
}

/// `outer/inner`, or `inner` alone when there is no outer part.
fn qualified(outer: Option<String>, inner: Option<String>) -> Option<String> {
    let inner = inner?;
    Some(match outer {
        Some(outer) => format!("{outer}/{inner}"),
        None => inner,
    })
}

// --- GitHub Actions -------------------------------------------------------------------

/// The parts of `$GITHUB_EVENT_PATH` we read.
#[derive(Deserialize)]
struct GithubEvent {
    pull_request: Option<GithubPullRequest>,
}

#[derive(Deserialize)]
struct GithubPullRequest {
    head: Option<GithubHead>,
}

#[derive(Deserialize)]
struct GithubHead {
    sha: Option<String>,
    #[serde(rename = "ref")]
    branch: Option<String>,
}

/// The pull request head (sha, branch) from the event payload, when the event has one.
fn github_pr_head(env: &Env) -> (Option<String>, Option<String>) {
    // Only pull_request* events carry `pull_request.head`; skip reading other payloads
    // (a push payload can be large).
    if env
        .get("GITHUB_EVENT_NAME")
        .is_some_and(|name| !name.starts_with("pull_request"))
    {
        return (None, None);
    }
    let Some(path) = env.get("GITHUB_EVENT_PATH") else {
        return (None, None);
    };
    match read_github_event(Path::new(&path)) {
        Ok(event) => {
            let head = event.pull_request.and_then(|pr| pr.head);
            let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
            match head {
                Some(head) => (non_empty(head.sha), non_empty(head.branch)),
                None => (None, None),
            }
        }
        Err(e) => {
            tracing::warn!(path = %path, error = %e, "cannot read the GitHub event payload; using GITHUB_SHA");
            (None, None)
        }
    }
}

fn read_github_event(path: &Path) -> Result<GithubEvent, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| e.to_string())
}

fn github_actions(env: &Env) -> CiEnv {
    let (head_sha, head_ref) = github_pr_head(env);
    CiEnv {
        provider: Some("github-actions"),
        // For pull_request events GITHUB_SHA is the test merge commit, which changes
        // whenever the base moves; the head commit is what the author pushed.
        commit: head_sha.or_else(|| env.get("GITHUB_SHA")),
        branch: env
            .get("GITHUB_HEAD_REF")
            .or(head_ref)
            .or_else(|| env.first(&["GITHUB_REF_NAME", "GITHUB_REF"]))
            .and_then(strip_ref),
        // GITHUB_JOB is the job's key, unique only within its workflow file.
        job: qualified(env.get("GITHUB_WORKFLOW"), env.get("GITHUB_JOB")),
        run_id: env.get("GITHUB_RUN_ID"),
        attempt: env.attempt("GITHUB_RUN_ATTEMPT"),
        started_at: None,
        run_url: github_run_url(env),
    }
}

/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID/attempts/$GITHUB_RUN_ATTEMPT`:
/// the attempt's page, so a re-run links to its own logs.
fn github_run_url(env: &Env) -> Option<String> {
    let server = env.get("GITHUB_SERVER_URL")?;
    let repo = env.get("GITHUB_REPOSITORY")?;
    let id = env.get("GITHUB_RUN_ID")?;
    let mut url = format!("{}/{repo}/actions/runs/{id}", server.trim_end_matches('/'));
    if let Some(attempt) = env.attempt("GITHUB_RUN_ATTEMPT") {
        url.push_str(&format!("/attempts/{attempt}"));
    }
    url_or_warn("GITHUB_SERVER_URL", url)
}

// --- GitLab CI ------------------------------------------------------------------------

fn gitlab_ci(env: &Env) -> CiEnv {
    // CI_JOB_RETRY_COUNT (GitLab 19.3+) is 0 on the first run. Without it a retry is a
    // new job (new CI_JOB_ID) in the same pipeline, indistinguishable by attempt, so the
    // job id goes into the run id to keep each execution a separate run.
    let attempt = env.retry_count_as_attempt("CI_JOB_RETRY_COUNT");
    let pipeline = env.get("CI_PIPELINE_ID");
    let run_id = if attempt.is_some() {
        pipeline.or_else(|| env.get("CI_JOB_ID"))
    } else {
        match (pipeline, env.get("CI_JOB_ID")) {
            (Some(p), Some(j)) => Some(format!("{p}/{j}")),
            (p, j) => p.or(j),
        }
    };
    // The pipeline's creation time dates a retried job too early; use it only for a
    // first attempt (and only on GitLab versions without CI_JOB_STARTED_AT).
    let started_at = env.timestamp("CI_JOB_STARTED_AT").or_else(|| {
        if attempt.unwrap_or(1) == 1 {
            env.timestamp("CI_PIPELINE_CREATED_AT")
        } else {
            None
        }
    });
    CiEnv {
        provider: Some("gitlab-ci"),
        // Set only in merged-results pipelines, where CI_COMMIT_SHA is the merge commit.
        commit: env.first(&["CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "CI_COMMIT_SHA"]),
        branch: env
            .first(&["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"])
            .and_then(strip_ref),
        job: env.get("CI_JOB_NAME"),
        run_id,
        attempt,
        started_at,
        run_url: env.url("CI_JOB_URL").or_else(|| env.url("CI_PIPELINE_URL")),
    }
}

// --- CircleCI -------------------------------------------------------------------------

fn circleci(env: &Env) -> CiEnv {
    CiEnv {
        provider: Some("circleci"),
        commit: env.get("CIRCLE_SHA1"),
        branch: env
            .first(&["CIRCLE_BRANCH", "CIRCLE_TAG"])
            .and_then(strip_ref),
        job: env.get("CIRCLE_JOB"),
        // A rerun creates a new workflow (new id) in the same pipeline; CircleCI exposes
        // no rerun counter, so every rerun is its own run with attempt 1.
        run_id: env.first(&["CIRCLE_WORKFLOW_ID", "CIRCLE_BUILD_NUM"]),
        attempt: None,
        started_at: None,
        run_url: env.url("CIRCLE_BUILD_URL"),
    }
}

// --- Buildkite ------------------------------------------------------------------------

fn buildkite(env: &Env) -> CiEnv {
    CiEnv {
        provider: Some("buildkite"),
        // BUILDKITE_COMMIT may be the symbolic `HEAD`, which names no commit.
        commit: env
            .get("BUILDKITE_COMMIT")
            .filter(|c| !c.eq_ignore_ascii_case("HEAD")),
        branch: env.get("BUILDKITE_BRANCH").and_then(strip_ref),
        // The label carries matrix values; the step key is shared by a matrix's jobs.
        // Labels are unique only within a pipeline, so the pipeline slug qualifies them.
        job: qualified(
            env.get("BUILDKITE_PIPELINE_SLUG"),
            env.first(&["BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"]),
        ),
        run_id: env.first(&["BUILDKITE_BUILD_ID", "BUILDKITE_BUILD_NUMBER"]),
        attempt: env.retry_count_as_attempt("BUILDKITE_RETRY_COUNT"),
        started_at: None,
        // The build page, scrolled to this job.
        run_url: env
            .url("BUILDKITE_BUILD_URL")
            .map(|u| match env.get("BUILDKITE_JOB_ID") {
                Some(job) if !u.contains('#') => format!("{u}#{job}"),
                _ => u,
            }),
    }
}

// --- Jenkins --------------------------------------------------------------------------

/// Jenkins has no `JENKINS=true` marker. `JENKINS_URL` alone also appears on workstations
/// (the Jenkins CLI reads it), so a build number or job name must come with it.
fn is_jenkins(env: &Env) -> bool {
    let build = env.has("BUILD_ID") || env.has("BUILD_NUMBER");
    build && (env.has("JOB_NAME") || env.has("JENKINS_URL") || env.has("JENKINS_HOME"))
}

fn jenkins(env: &Env) -> CiEnv {
    // GIT_BRANCH is the remote-tracking name (`origin/main`) in freestyle jobs; in
    // multibranch pipelines BRANCH_NAME is the branch, or `PR-12` for a change request,
    // whose source branch is CHANGE_BRANCH.
    let branch = env
        .first(&["CHANGE_BRANCH", "BRANCH_NAME", "GIT_LOCAL_BRANCH"])
        .or_else(|| {
            env.get("GIT_BRANCH").map(|b| {
                let b = b.strip_prefix("refs/remotes/").unwrap_or(&b);
                b.strip_prefix("origin/").unwrap_or(b).to_string()
            })
        })
        .and_then(strip_ref);
    CiEnv {
        provider: Some("jenkins"),
        commit: env.get("GIT_COMMIT"),
        branch,
        job: env.get("JOB_NAME"),
        // Equal since Jenkins 1.597; a rebuild or replay is a new build number.
        run_id: env.first(&["BUILD_NUMBER", "BUILD_ID"]),
        attempt: None,
        started_at: None,
        run_url: env.url("BUILD_URL"),
    }
}

// --- Azure Pipelines ------------------------------------------------------------------

fn azure_pipelines(env: &Env) -> CiEnv {
    let attempt = env.attempt("SYSTEM_JOBATTEMPT");
    // Job names are unique within a stage, stages within a pipeline definition.
    let stage = env
        .first(&["SYSTEM_STAGEDISPLAYNAME", "SYSTEM_STAGENAME"])
        .filter(|s| s != "__default");
    let job = qualified(
        env.get("BUILD_DEFINITIONNAME"),
        qualified(
            stage,
            env.first(&["SYSTEM_JOBDISPLAYNAME", "AGENT_JOBNAME"]),
        ),
    );
    CiEnv {
        provider: Some("azure-pipelines"),
        // For pull requests BUILD_SOURCEVERSION is the merge commit.
        commit: env.first(&["SYSTEM_PULLREQUEST_SOURCECOMMITID", "BUILD_SOURCEVERSION"]),
        // For pull requests BUILD_SOURCEBRANCH is `refs/pull/<id>/merge`.
        branch: env
            .first(&["SYSTEM_PULLREQUEST_SOURCEBRANCH", "BUILD_SOURCEBRANCH"])
            .and_then(strip_ref),
        job,
        run_id: env.get("BUILD_BUILDID"),
        attempt,
        // The pipeline's start, which dates a retried job too early: first attempts only.
        started_at: if attempt.unwrap_or(1) == 1 {
            env.timestamp("SYSTEM_PIPELINESTARTTIME")
        } else {
            None
        },
        run_url: azure_run_url(env),
    }
}

/// `$SYSTEM_COLLECTIONURI$SYSTEM_TEAMPROJECT/_build/results?buildId=$BUILD_BUILDID`.
fn azure_run_url(env: &Env) -> Option<String> {
    let collection = env.get("SYSTEM_COLLECTIONURI")?;
    let project = env.get("SYSTEM_TEAMPROJECT")?;
    let id = env.get("BUILD_BUILDID")?;
    // Project names may contain spaces.
    let project = project.replace(' ', "%20");
    let url = format!(
        "{}/{project}/_build/results?buildId={id}",
        collection.trim_end_matches('/')
    );
    url_or_warn("SYSTEM_COLLECTIONURI", url)
}

// --- Timestamps -----------------------------------------------------------------------

/// Unix seconds at or above this are taken for milliseconds (year 5138 and later).
const MAX_UNIX_SECONDS: i64 = 100_000_000_000;

/// Parse a user-supplied time: RFC 3339 (`2026-11-20T10:04:00Z`, offsets), `2026-11-20 10:04:00` (UTC), a date `2026-11-20` (midnight UTC), unix seconds, or an RFC 2822 date (`Fri, 20 Nov 2026 10:04:00 GMT`). Returns unix seconds.
///
/// Also accepted: a space instead of `T` with an offset (`2026-11-20 10:04:00+02:00`,
/// as Azure Pipelines writes it), fractional seconds (dropped), and a `T` without an offset
/// (UTC).
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty time".to_string());
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t
            .parse()
            .map_err(|_| format!("{t:?} is out of range for unix seconds"))?;
        if secs.unsigned_abs() >= MAX_UNIX_SECONDS as u64 {
            return Err(format!(
                "{t:?} is too large for unix seconds (milliseconds? divide by 1000)"
            ));
        }
        return Ok(secs);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    // mocha's xunit reporter writes an HTTP date (`Mon, 07 Dec 2026 06:20:53 GMT`).
    if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
        return Ok(dt.timestamp());
    }
    // `%.f` also matches no fraction at all.
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc().timestamp());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc().timestamp());
        }
    }
    Err(format!(
        "cannot read {t:?} as a time; use RFC 3339 (2026-11-20T10:04:00Z or with an offset), \
         2026-11-20 10:04:00 (UTC), a date 2026-11-20 (midnight UTC), unix seconds, or an \
         RFC 2822 date (Fri, 20 Nov 2026 10:04:00 GMT)"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> CiEnv {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CiEnv::from_lookup(move |name| map.get(name).cloned())
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn nothing_detected_is_all_none() {
        assert_eq!(env_of(&[]), CiEnv::default());
        // Variables of a provider without its marker are not enough.
        let got = env_of(&[
            ("GITHUB_SHA", "abc"),
            ("CI_COMMIT_SHA", "def"),
            ("CI", "true"),
        ]);
        assert_eq!(got, CiEnv::default());
        assert_eq!(env_of(&[("GITHUB_ACTIONS", "false")]), CiEnv::default());
        assert_eq!(env_of(&[("GITHUB_ACTIONS", "")]), CiEnv::default());
    }

    #[test]
    fn detect_reads_the_process_environment_without_panicking() {
        let _ = CiEnv::detect();
    }

    #[test]
    fn github_push() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REF", "refs/heads/feature/x"),
            ("GITHUB_REF_NAME", "feature/x"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_JOB", "test"),
            ("GITHUB_RUN_ID", "9876543210"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("github-actions"),
                commit: s("0123abcd"),
                branch: s("feature/x"),
                job: s("CI/test"),
                run_id: s("9876543210"),
                attempt: Some(2),
                started_at: None,
                run_url: None,
            }
        );
    }

    #[test]
    fn github_falls_back_to_ref_and_bare_job() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_JOB", "build"),
            ("GITHUB_RUN_ATTEMPT", "0"),
        ]);
        assert_eq!(got.branch, s("main"));
        assert_eq!(got.job, s("build"));
        assert_eq!(got.attempt, None, "attempts are 1-based");
        assert_eq!(got.commit, None);
    }

    #[test]
    fn github_pull_request_without_event_file_uses_head_ref_and_merge_sha() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_SHA", "merge0000"),
            ("GITHUB_REF", "refs/pull/17/merge"),
            ("GITHUB_REF_NAME", "17/merge"),
            ("GITHUB_HEAD_REF", "fix/flaky"),
        ]);
        assert_eq!(got.commit, s("merge0000"));
        assert_eq!(got.branch, s("fix/flaky"));
    }

    fn event_file(json: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(json.as_bytes()).unwrap();
        file
    }

    #[test]
    fn github_pull_request_prefers_head_sha_from_event_file() {
        let file = event_file(
            r#"{"action":"synchronize","number":17,
                "pull_request":{"number":17,
                  "head":{"sha":"head1111","ref":"fix/flaky","repo":{"name":"r"}},
                  "base":{"sha":"base2222","ref":"main"}}}"#,
        );
        let path = file.path().to_str().unwrap();
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", path),
            ("GITHUB_SHA", "merge0000"),
            ("GITHUB_REF_NAME", "17/merge"),
            ("GITHUB_HEAD_REF", "fix/flaky"),
        ]);
        assert_eq!(got.commit, s("head1111"));
        assert_eq!(got.branch, s("fix/flaky"));

        // pull_request_review has no GITHUB_HEAD_REF: the branch comes from the payload,
        // not from `17/merge`.
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request_review"),
            ("GITHUB_EVENT_PATH", path),
            ("GITHUB_SHA", "merge0000"),
            ("GITHUB_REF_NAME", "17/merge"),
        ]);
        assert_eq!(got.commit, s("head1111"));
        assert_eq!(got.branch, s("fix/flaky"));
    }

    #[test]
    fn github_event_file_without_pull_request_or_unreadable_falls_back() {
        let push = event_file(r#"{"ref":"refs/heads/main","after":"zzz","commits":[]}"#);
        let broken = event_file("{not json");
        let empty_head = event_file(r#"{"pull_request":{"head":{"sha":"","ref":""}}}"#);
        for path in [
            push.path().to_str().unwrap(),
            broken.path().to_str().unwrap(),
            empty_head.path().to_str().unwrap(),
            "/nonexistent/flakehound/event.json",
        ] {
            let got = env_of(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_PATH", path),
                ("GITHUB_SHA", "sha0000"),
                ("GITHUB_REF_NAME", "main"),
            ]);
            assert_eq!(got.commit, s("sha0000"), "{path}");
            assert_eq!(got.branch, s("main"), "{path}");
        }
    }

    #[test]
    fn github_non_pr_event_does_not_read_the_payload() {
        // A push payload never has pull_request.head; even if one did, it is not read.
        let file = event_file(r#"{"pull_request":{"head":{"sha":"head1111"}}}"#);
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", file.path().to_str().unwrap()),
            ("GITHUB_SHA", "sha0000"),
        ]);
        assert_eq!(got.commit, s("sha0000"));
    }

    #[test]
    fn gitlab_branch_pipeline_with_retry_count() {
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "c0ffee"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_JOB_NAME", "rspec 1/3"),
            ("CI_PIPELINE_ID", "1000"),
            ("CI_JOB_ID", "55"),
            ("CI_JOB_RETRY_COUNT", "1"),
            ("CI_JOB_STARTED_AT", "2026-11-20T10:04:00Z"),
            ("CI_PIPELINE_CREATED_AT", "2026-11-20T09:00:00Z"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("gitlab-ci"),
                commit: s("c0ffee"),
                branch: s("main"),
                job: s("rspec 1/3"),
                run_id: s("1000"),
                attempt: Some(2),
                started_at: Some(1_795_169_040),
                run_url: None,
            }
        );
    }

    #[test]
    fn gitlab_without_retry_count_puts_job_id_in_run_id() {
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_ID", "1000"),
            ("CI_JOB_ID", "56"),
            ("CI_JOB_RETRY_COUNT", ""),
            ("CI_PIPELINE_CREATED_AT", "2026-11-20T09:00:00Z"),
        ]);
        assert_eq!(got.run_id, s("1000/56"));
        assert_eq!(got.attempt, None);
        assert_eq!(
            got.started_at,
            Some(1_795_165_200),
            "pipeline time as fallback"
        );

        let only_job = env_of(&[("GITLAB_CI", "true"), ("CI_JOB_ID", "56")]);
        assert_eq!(only_job.run_id, s("56"));
    }

    #[test]
    fn gitlab_retried_job_does_not_take_the_pipeline_time() {
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_RETRY_COUNT", "2"),
            ("CI_PIPELINE_CREATED_AT", "2026-11-20T09:00:00Z"),
        ]);
        assert_eq!(got.attempt, Some(3));
        assert_eq!(got.started_at, None);
    }

    #[test]
    fn gitlab_merge_request_pipelines() {
        // Merge request pipeline: CI_COMMIT_SHA is the source branch head.
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "head1111"),
            ("CI_COMMIT_REF_NAME", "refs/merge-requests/4/head"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix/flaky"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", ""),
        ]);
        assert_eq!(got.commit, s("head1111"));
        assert_eq!(got.branch, s("fix/flaky"));

        // Merged results pipeline: CI_COMMIT_SHA is the merge commit.
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "merge0000"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "head1111"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "fix/flaky"),
        ]);
        assert_eq!(got.commit, s("head1111"));
    }

    #[test]
    fn gitlab_bad_start_time_is_ignored() {
        let got = env_of(&[("GITLAB_CI", "true"), ("CI_JOB_STARTED_AT", "yesterday")]);
        assert_eq!(got.started_at, None);
        assert_eq!(got.provider, Some("gitlab-ci"));
    }

    #[test]
    fn circleci_workflow_and_tag_builds() {
        let got = env_of(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_SHA1", "abc123"),
            ("CIRCLE_BRANCH", "main"),
            ("CIRCLE_JOB", "test-py3.12"),
            ("CIRCLE_WORKFLOW_ID", "6e4c0b1a-0000-4000-8000-000000000000"),
            ("CIRCLE_BUILD_NUM", "321"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("circleci"),
                commit: s("abc123"),
                branch: s("main"),
                job: s("test-py3.12"),
                run_id: s("6e4c0b1a-0000-4000-8000-000000000000"),
                attempt: None,
                started_at: None,
                run_url: None,
            }
        );
        // Tag build: no CIRCLE_BRANCH; older setups without workflows: build number.
        let got = env_of(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_TAG", "v1.2.0"),
            ("CIRCLE_WORKFLOW_ID", ""),
            ("CIRCLE_BUILD_NUM", "321"),
        ]);
        assert_eq!(got.branch, s("v1.2.0"));
        assert_eq!(got.run_id, s("321"));
    }

    #[test]
    fn buildkite_label_retry_and_symbolic_head() {
        let got = env_of(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_COMMIT", "abc123"),
            ("BUILDKITE_BRANCH", "fix/flaky"),
            ("BUILDKITE_PIPELINE_SLUG", "app-ci"),
            ("BUILDKITE_LABEL", ":rspec: Specs (linux)"),
            ("BUILDKITE_STEP_KEY", "specs"),
            ("BUILDKITE_BUILD_ID", "4735ba57-80d0-46e2-8fa0-b28223a86586"),
            ("BUILDKITE_BUILD_NUMBER", "1514"),
            ("BUILDKITE_RETRY_COUNT", "0"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("buildkite"),
                commit: s("abc123"),
                branch: s("fix/flaky"),
                job: s("app-ci/:rspec: Specs (linux)"),
                run_id: s("4735ba57-80d0-46e2-8fa0-b28223a86586"),
                attempt: Some(1),
                started_at: None,
                run_url: None,
            }
        );
        let got = env_of(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_COMMIT", "HEAD"),
            ("BUILDKITE_STEP_KEY", "specs"),
            ("BUILDKITE_BUILD_NUMBER", "1514"),
            ("BUILDKITE_RETRY_COUNT", "2"),
        ]);
        assert_eq!(got.commit, None, "symbolic HEAD names no commit");
        assert_eq!(got.job, s("specs"));
        assert_eq!(got.run_id, s("1514"));
        assert_eq!(got.attempt, Some(3));

        let got = env_of(&[("BUILDKITE", "true"), ("BUILDKITE_RETRY_COUNT", "x")]);
        assert_eq!(got.attempt, None);
    }

    #[test]
    fn jenkins_freestyle_strips_remote_prefix() {
        let got = env_of(&[
            ("JENKINS_URL", "https://ci.example.com/"),
            ("BUILD_ID", "42"),
            ("BUILD_NUMBER", "42"),
            ("JOB_NAME", "team/app-tests"),
            ("GIT_COMMIT", "abc123"),
            ("GIT_BRANCH", "origin/feature/x"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("jenkins"),
                commit: s("abc123"),
                branch: s("feature/x"),
                job: s("team/app-tests"),
                run_id: s("42"),
                attempt: None,
                started_at: None,
                run_url: None,
            }
        );
        let got = env_of(&[
            ("BUILD_ID", "7"),
            ("JOB_NAME", "app"),
            ("GIT_BRANCH", "refs/remotes/origin/main"),
        ]);
        assert_eq!(got.provider, Some("jenkins"));
        assert_eq!(got.branch, s("main"));
        assert_eq!(got.run_id, s("7"));
    }

    #[test]
    fn jenkins_multibranch_change_request() {
        let got = env_of(&[
            ("JENKINS_HOME", "/var/jenkins_home"),
            ("BUILD_NUMBER", "3"),
            ("JOB_NAME", "org/app/PR-12"),
            ("BRANCH_NAME", "PR-12"),
            ("CHANGE_ID", "12"),
            ("CHANGE_BRANCH", "fix/flaky"),
            ("GIT_BRANCH", "PR-12"),
        ]);
        assert_eq!(got.branch, s("fix/flaky"));
        let got = env_of(&[
            ("JENKINS_HOME", "/var/jenkins_home"),
            ("BUILD_NUMBER", "3"),
            ("BRANCH_NAME", "main"),
            ("CHANGE_BRANCH", ""),
        ]);
        assert_eq!(got.branch, s("main"));
    }

    #[test]
    fn jenkins_needs_a_build_number() {
        // The Jenkins CLI reads JENKINS_URL on workstations.
        assert_eq!(
            env_of(&[("JENKINS_URL", "https://ci.example.com/")]),
            CiEnv::default()
        );
        // BUILD_ID alone is too generic.
        assert_eq!(env_of(&[("BUILD_ID", "5")]), CiEnv::default());
    }

    #[test]
    fn azure_pipelines_branch_build() {
        let got = env_of(&[
            ("TF_BUILD", "True"),
            ("BUILD_SOURCEVERSION", "abc123"),
            ("BUILD_SOURCEBRANCH", "refs/heads/feature/x"),
            ("BUILD_DEFINITIONNAME", "app-ci"),
            ("SYSTEM_STAGEDISPLAYNAME", "Test"),
            ("SYSTEM_STAGENAME", "test"),
            ("SYSTEM_JOBDISPLAYNAME", "Unit linux"),
            ("AGENT_JOBNAME", "Job"),
            ("BUILD_BUILDID", "8812"),
            ("SYSTEM_JOBATTEMPT", "1"),
            ("SYSTEM_PIPELINESTARTTIME", "2026-11-20 11:04:00+01:00"),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("azure-pipelines"),
                commit: s("abc123"),
                branch: s("feature/x"),
                job: s("app-ci/Test/Unit linux"),
                run_id: s("8812"),
                attempt: Some(1),
                started_at: Some(1_795_169_040),
                run_url: None,
            }
        );
    }

    #[test]
    fn azure_pipelines_pull_request_and_retry() {
        let got = env_of(&[
            ("TF_BUILD", "true"),
            ("BUILD_REASON", "PullRequest"),
            ("BUILD_SOURCEVERSION", "merge0000"),
            ("BUILD_SOURCEBRANCH", "refs/pull/17/merge"),
            ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/fix/flaky"),
            ("SYSTEM_PULLREQUEST_SOURCECOMMITID", "head1111"),
            ("SYSTEM_STAGENAME", "__default"),
            ("AGENT_JOBNAME", "__default"),
            ("SYSTEM_JOBATTEMPT", "3"),
            ("SYSTEM_PIPELINESTARTTIME", "2026-11-20 11:04:00+01:00"),
        ]);
        assert_eq!(got.commit, s("head1111"));
        assert_eq!(got.branch, s("fix/flaky"));
        assert_eq!(got.job, s("__default"));
        assert_eq!(got.attempt, Some(3));
        assert_eq!(got.started_at, None, "pipeline start predates a retry");
    }

    #[test]
    fn azure_tag_build_and_github_repo_pr_branch() {
        let got = env_of(&[
            ("TF_BUILD", "True"),
            ("BUILD_SOURCEBRANCH", "refs/tags/v2.0"),
        ]);
        assert_eq!(got.branch, s("v2.0"));
        // GitHub-hosted repositories give the PR source branch in short form.
        let got = env_of(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "fix/flaky"),
        ]);
        assert_eq!(got.branch, s("fix/flaky"));
    }

    #[test]
    fn empty_and_blank_values_are_missing() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "  "),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_REF_NAME", " main "),
            ("GITHUB_WORKFLOW", ""),
            ("GITHUB_JOB", "test"),
            ("GITHUB_RUN_ID", ""),
            ("GITHUB_RUN_ATTEMPT", " "),
        ]);
        assert_eq!(
            got,
            CiEnv {
                provider: Some("github-actions"),
                branch: s("main"),
                job: s("test"),
                ..CiEnv::default()
            }
        );
        // A bare ref prefix is no branch.
        let got = env_of(&[("TF_BUILD", "True"), ("BUILD_SOURCEBRANCH", "refs/heads/")]);
        assert_eq!(got.branch, None);
    }

    #[test]
    fn first_matching_provider_wins() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "gh"),
            ("BUILD_ID", "1"),
            ("JOB_NAME", "x"),
        ]);
        assert_eq!(got.provider, Some("github-actions"));
        assert_eq!(got.run_id, None);
    }

    #[test]
    fn serializes_to_json() {
        let got = env_of(&[("CIRCLECI", "true"), ("CIRCLE_SHA1", "abc")]);
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["provider"], "circleci");
        assert_eq!(json["commit"], "abc");
        assert!(json["attempt"].is_null());
    }

    #[test]
    fn parse_timestamp_formats() {
        let t = 1_795_169_040; // 2026-11-20T10:04:00Z
        for text in [
            "2026-11-20T10:04:00Z",
            "2026-11-20t10:04:00z",
            "2026-11-20T11:04:00+01:00",
            "2026-11-20T05:04:00-05:00",
            "2026-11-20T10:04:00.750Z",
            "2026-11-20 10:04:00",
            "2026-11-20 10:04:00.5",
            "2026-11-20T10:04:00",
            "2026-11-20 11:04:00+01:00",
            "2026-11-20 10:04:00Z",
            "  2026-11-20T10:04:00Z\n",
            "1795169040",
            "+1795169040",
            "Fri, 20 Nov 2026 10:04:00 GMT",
            "Fri, 20 Nov 2026 11:04:00 +0100",
        ] {
            assert_eq!(parse_timestamp(text), Ok(t), "{text:?}");
        }
        assert_eq!(parse_timestamp("2026-11-20"), Ok(1_795_132_800));
        assert_eq!(parse_timestamp("0"), Ok(0));
        assert_eq!(parse_timestamp("-86400"), Ok(-86_400));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
    }

    #[test]
    fn parse_timestamp_errors() {
        for text in [
            "",
            "   ",
            "-",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-20T25:00:00Z",
            "2026-11-20T10:04Z",
            "20/11/2026",
            "1795169040.5",
            "12abc",
            "99999999999999999999999",
        ] {
            assert!(parse_timestamp(text).is_err(), "{text:?} should fail");
        }
        let err = parse_timestamp("1795169040000").unwrap_err();
        assert!(err.contains("milliseconds"), "{err}");
        let err = parse_timestamp("soon").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn run_urls_of_every_provider() {
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "9876543210"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ]);
        assert_eq!(
            got.run_url,
            s("https://github.com/acme/shop/actions/runs/9876543210/attempts/2")
        );
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/g/p/-/jobs/55"),
            ("CI_PIPELINE_URL", "https://gitlab.com/g/p/-/pipelines/1000"),
        ]);
        assert_eq!(got.run_url, s("https://gitlab.com/g/p/-/jobs/55"));
        let got = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_URL", "https://gitlab.com/g/p/-/pipelines/1000"),
        ]);
        assert_eq!(got.run_url, s("https://gitlab.com/g/p/-/pipelines/1000"));
        let got = env_of(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/shop/321"),
        ]);
        assert_eq!(got.run_url, s("https://circleci.com/gh/acme/shop/321"));
        let got = env_of(&[
            ("BUILDKITE", "true"),
            (
                "BUILDKITE_BUILD_URL",
                "https://buildkite.com/acme/app-ci/builds/1514",
            ),
            ("BUILDKITE_JOB_ID", "e44f9784-e20e-4b93-a21d-f41fd5869db9"),
        ]);
        assert_eq!(
            got.run_url,
            s("https://buildkite.com/acme/app-ci/builds/1514#e44f9784-e20e-4b93-a21d-f41fd5869db9")
        );
        let got = env_of(&[
            ("BUILD_NUMBER", "42"),
            ("JOB_NAME", "app"),
            ("BUILD_URL", "https://ci.example.com/job/app/42/"),
        ]);
        assert_eq!(got.run_url, s("https://ci.example.com/job/app/42/"));
        let got = env_of(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
            ("SYSTEM_TEAMPROJECT", "Shop App"),
            ("BUILD_BUILDID", "8812"),
        ]);
        assert_eq!(
            got.run_url,
            s("https://dev.azure.com/acme/Shop%20App/_build/results?buildId=8812")
        );
        // Not an http(s) URL: ignored, never stored as a link.
        let got = env_of(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_BUILD_URL", "javascript:alert(1)"),
        ]);
        assert_eq!(got.run_url, None);
        // GitHub without an attempt number links the run.
        let got = env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://ghe.example/"),
            ("GITHUB_REPOSITORY", "a/b"),
            ("GITHUB_RUN_ID", "7"),
        ]);
        assert_eq!(got.run_url, s("https://ghe.example/a/b/actions/runs/7"));
    }
}
