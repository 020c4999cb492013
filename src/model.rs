//! Data passed between the pipeline stages: a parsed test case with its attempts,
//! the run metadata a CI job hands us, and the stable test identity.

use serde::Serialize;

/// How one attempt of a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Passed,
    /// An assertion failure (`<failure>`, `<flakyFailure>`, `<rerunFailure>`).
    Failed,
    /// An unexpected error (`<error>`, `<flakyError>`, `<rerunError>`).
    Errored,
    Skipped,
}

impl AttemptOutcome {
    pub fn is_failure(self) -> bool {
        matches!(self, AttemptOutcome::Failed | AttemptOutcome::Errored)
    }
}

/// Failure details of one failed attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// The `type` attribute, e.g. `java.lang.AssertionError`.
    pub kind: Option<String>,
    pub message: Option<String>,
    /// Text content (stack trace). Capped by the parser so a huge trace cannot blow memory.
    pub body: Option<String>,
}

/// One attempt of a test within one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub duration_s: Option<f64>,
    pub failure: Option<Failure>,
}

/// One test's result in one report: every attempt (reruns merged), in the order they ran.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    /// The innermost `<testsuite name>` around the case.
    pub suite: Option<std::sync::Arc<str>>,
    pub attempts: Vec<Attempt>,
}

/// The outcome of a test in a whole run, after in-run reruns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Passed,
    /// Passed on a rerun inside the run after at least one failed attempt.
    Flaky,
    /// Every executed attempt failed.
    Failed,
    Skipped,
}

impl RunOutcome {
    pub fn code(self) -> u8 {
        match self {
            RunOutcome::Passed => 0,
            RunOutcome::Flaky => 1,
            RunOutcome::Failed => 2,
            RunOutcome::Skipped => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => RunOutcome::Passed,
            1 => RunOutcome::Flaky,
            2 => RunOutcome::Failed,
            3 => RunOutcome::Skipped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Passed => "passed",
            RunOutcome::Flaky => "flaky",
            RunOutcome::Failed => "failed",
            RunOutcome::Skipped => "skipped",
        }
    }
}

impl TestCase {
    pub fn identity(&self) -> TestIdentity {
        TestIdentity::new(&self.classname, &self.name, self.file.as_deref())
    }

    /// Attempts that ran (not skipped).
    pub fn executed_attempts(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Skipped)
            .count()
    }

    pub fn failed_attempts(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.outcome.is_failure())
            .count()
    }

    pub fn run_outcome(&self) -> RunOutcome {
        let executed = self.executed_attempts();
        let failed = self.failed_attempts();
        if executed == 0 {
            RunOutcome::Skipped
        } else if failed == 0 {
            RunOutcome::Passed
        } else if failed < executed {
            RunOutcome::Flaky
        } else {
            RunOutcome::Failed
        }
    }

    /// Wall time of all attempts, in seconds.
    pub fn duration_s(&self) -> f64 {
        self.attempts.iter().filter_map(|a| a.duration_s).sum()
    }
}

/// The stable identity of a test: the fields that name it, hashed with blake3.
///
/// Timestamps, hostnames and durations never enter it, so the same test keeps its
/// identity across runs, machines and jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TestIdentity(pub i64);

/// Identities laid out in at most this many bytes are built on the stack and remembered.
const IDENTITY_ON_STACK: usize = 256;

/// Identities a thread remembers (about 2 MB at most: the server parses on many threads),
/// forgotten all at once when full: a report of more distinct tests only pays the hash again.
const IDENTITY_MEMO_CAP: usize = 1 << 13;

thread_local! {
    static IDENTITY_MEMO: std::cell::RefCell<
        std::collections::HashMap<Box<[u8]>, i64, foldhash::fast::RandomState>,
    > = std::cell::RefCell::new(std::collections::HashMap::default());
}

impl TestIdentity {
    pub fn new(classname: &str, name: &str, file: Option<&str>) -> Self {
        // Length-prefix each part so ("a.b", "c") and ("a", "b.c") never collide. The parts
        // are laid out in one buffer and hashed at once: cheaper than six small updates,
        // and this runs for every test case ingested.
        let parts = [classname, name, file.unwrap_or("")];
        let len: usize = parts.iter().map(|p| 8 + p.len()).sum();
        let mut stack = [0u8; IDENTITY_ON_STACK];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let mut at = 0;
        for part in parts {
            buf[at..at + 8].copy_from_slice(&(part.len() as u64).to_le_bytes());
            at += 8;
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        if len > IDENTITY_ON_STACK {
            return TestIdentity(Self::digest(buf));
        }
        // Every run repeats its job's tests, and a case's identity is asked for twice
        // (merging reruns, then storing): a per-thread memo answers most of them for the
        // price of a foldhash, where blake3 costs two compressions.
        IDENTITY_MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(&id) = memo.get(&*buf) {
                return TestIdentity(id);
            }
            if memo.len() >= IDENTITY_MEMO_CAP {
                memo.clear();
            }
            let id = Self::digest(buf);
            memo.insert(Box::from(&*buf), id);
            TestIdentity(id)
        })
    }

    fn digest(buf: &[u8]) -> i64 {
        let bytes = blake3::hash(buf);
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        i64::from_le_bytes(first)
    }

    /// The 16-hex-digit form printed in outputs and accepted by `show`.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0 as u64)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 16 {
            return None;
        }
        u64::from_str_radix(text, 16)
            .ok()
            .map(|v| TestIdentity(v as i64))
    }
}

/// A human-readable test name: `classname.name`, or `name` alone when there is no class.
pub fn readable_name(classname: &str, name: &str) -> String {
    if classname.is_empty() {
        name.to_string()
    } else if name.strip_prefix(classname).is_some_and(|rest| {
        rest.is_empty() || rest.starts_with([' ', '/', '.', ':', '>', '›', '#', '(', '[', '-'])
    }) {
        // Some dialects (Jest, Go) already prefix the name with its suite; a name that
        // merely starts with the same letters (`test_flaky`, `test_flaky_once`) does not.
        name.to_string()
    } else {
        format!("{classname}.{name}")
    }
}

/// How far ahead of the wall clock a run may start: ingest refuses later starts, and the
/// default "now" of the queries ignores them.
pub const MAX_FUTURE_S: i64 = 86_400;

/// Everything that identifies one run: one execution (attempt) of a job on a commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMeta {
    pub commit: String,
    pub branch: String,
    pub job: String,
    pub run_id: String,
    pub attempt: u32,
    /// Start of the run, in seconds since the Unix epoch (UTC).
    pub started_at: i64,
    /// The job's wall time in seconds, when the caller knows it.
    pub duration_s: Option<f64>,
    /// The run's page on the CI provider, when known (`--run-url` or the CI environment).
    pub run_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: AttemptOutcome) -> Attempt {
        Attempt {
            outcome,
            duration_s: Some(0.5),
            failure: None,
        }
    }

    fn case(outcomes: &[AttemptOutcome]) -> TestCase {
        TestCase {
            classname: "com.acme.PaymentServiceIT".into(),
            name: "refundsTwice".into(),
            file: None,
            suite: None,
            attempts: outcomes.iter().copied().map(attempt).collect(),
        }
    }

    #[test]
    fn run_outcome_merges_attempts() {
        use AttemptOutcome::*;
        assert_eq!(case(&[Passed]).run_outcome(), RunOutcome::Passed);
        assert_eq!(case(&[Failed, Passed]).run_outcome(), RunOutcome::Flaky);
        assert_eq!(case(&[Errored, Failed]).run_outcome(), RunOutcome::Failed);
        assert_eq!(case(&[Skipped]).run_outcome(), RunOutcome::Skipped);
        assert_eq!(case(&[Skipped, Failed]).run_outcome(), RunOutcome::Failed);
    }

    #[test]
    fn identity_is_stable_and_separates_parts() {
        let a = TestIdentity::new("a.b", "c", None);
        assert_eq!(a, TestIdentity::new("a.b", "c", None));
        assert_ne!(a, TestIdentity::new("a", "b.c", None));
        assert_ne!(a, TestIdentity::new("a.b", "c", Some("x.py")));
        assert_eq!(TestIdentity::from_hex(&a.hex()), Some(a));
    }

    #[test]
    fn readable_name_avoids_double_prefix() {
        assert_eq!(readable_name("pkg.Cls", "test_x"), "pkg.Cls.test_x");
        assert_eq!(readable_name("", "test_x"), "test_x");
        assert_eq!(readable_name("TestFoo", "TestFoo/sub"), "TestFoo/sub");
        assert_eq!(readable_name("cart adds", "cart adds"), "cart adds");
        assert_eq!(
            readable_name("test_flaky", "test_flaky_once"),
            "test_flaky.test_flaky_once"
        );
    }
}
