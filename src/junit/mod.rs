//! JUnit XML → [`TestCase`]s, streamed with quick-xml (no DOM).
//!
//! Strict on structure (well-formed XML: tags, attribute syntax, one `<testsuites>` or
//! `<testsuite>` root, only whitespace, comments and declarations around it), lenient on values
//! (missing or odd times and counts, missing names, unknown status words, stray elements).
//! Entities other than the five predefined ones and character references are never
//! expanded, so a DOCTYPE can neither blow up memory nor reach a file or the network.
//!
//! Every rerun form is read as attempts of one test: Surefire/nextest `flakyFailure`/
//! `flakyError` (failed attempts before the final pass) and `rerunFailure`/`rerunError`
//! (failed attempts after the first failure), and a `<testcase>` repeated within one report
//! (Gradle without mergeReruns, gotestsum `--rerun-fails`, pytest-rerunfailures, whose
//! rerun attempts are bare `<testcase/>`s). jest-junit records no retries at all. The real
//! outputs behind these readings are in `fixtures/junit/` (see its README).

mod checkout;
mod parse;
mod time;

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use checkout::strip_checkout;
pub use parse::{
    head, is_other_tools_xml, parse_slice_with, parse_stream, parse_stream_with, Dialect, Head,
    ParseOptions, ReportInfo, TestNgReporter, BODY_CAP, MAX_VALUE, SUITE_ERROR_CASE,
};
pub use time::parse_time;

use crate::model::{AttemptOutcome, Failure, TestCase, TestIdentity};

/// Why a report was rejected, and where (a byte offset; see [`locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

/// A parsed report: its test cases with repeated `<testcase>`s merged into attempts.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: Vec<TestCase>,
    pub info: ReportInfo,
    /// Each case's test identity as parsed (hashed once, while merging reruns).
    pub ids: Vec<i64>,
}

impl Report {
    /// Occurrences of `<testcase>` in the file, before reruns were merged.
    pub fn testcase_elements(&self) -> u64 {
        self.info.testcases
    }
}

/// Parse a whole report held in memory.
pub fn parse_bytes(bytes: &[u8]) -> Result<Report, ParseError> {
    parse_bytes_with(bytes, ParseOptions::default())
}

/// [`parse_bytes`] with options (the environment its path names).
pub fn parse_bytes_with(bytes: &[u8], options: ParseOptions<'_>) -> Result<Report, ParseError> {
    if is_plain(bytes) {
        return parse_plain(bytes, options, |_| Ok(()));
    }
    parse_reader_with(bytes, options)
}

/// The environment a report's path names, which its tests' names then carry: Gradle writes
/// `build/test-results/<task>/TEST-<class>.xml`, and Android's `gradle test` runs every unit
/// test once per variant (`testDebugUnitTest`, `testReleaseUnitTest`), Kotlin Multiplatform
/// once per target (`jvmTest`, `jsNodeTest`), custom suites once per task (`integrationTest`).
/// A test failing in one of them is broken there, not flaky. The folder must be named like
/// such a task (see [`is_gradle_test_task`]): the plain `test` task names none, so a
/// single-task project's names do not change, and other folders (`test-results/junit/`,
/// `surefire-reports/`) name none. `/` and `\` both separate; `.` and empty parts are
/// skipped.
pub fn path_environment(path: &str) -> Option<&str> {
    let mut parts = path
        .rsplit(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".");
    let file = parts.next()?;
    let task = parts.next()?;
    (is_gradle_report_name(file) && is_gradle_test_task(task)).then_some(task)
}

/// [`path_environment`] of a file on this machine: a bare file name given from inside its
/// task's folder (`TEST-a.B.xml`) is named by that folder.
pub fn local_path_environment(path: &Path) -> Option<String> {
    let shown = path.to_string_lossy();
    if let Some(env) = path_environment(&shown) {
        return Some(env.to_string());
    }
    let has_folder = shown
        .rsplit(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .nth(1)
        .is_some();
    let file = path.file_name()?.to_string_lossy();
    if has_folder || !is_gradle_report_name(&file) {
        return None;
    }
    let absolute = std::path::absolute(path).ok()?;
    path_environment(&absolute.to_string_lossy()).map(str::to_string)
}

/// Gradle's report file name: `TEST-<class>.xml`, gzip'd or not.
fn is_gradle_report_name(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    file.starts_with("TEST-") && stem.ends_with(".xml")
}

/// Whether an environment label is a Gradle test task's name, as the `gradle` quarantine
/// format needs: `…Test` in camel case (`jvmTest`, `testReleaseUnitTest`), other than `test`.
pub fn is_gradle_test_task(name: &str) -> bool {
    let Some(head) = name.strip_suffix("Test") else {
        return false;
    };
    head.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The key that tells one report of a run from another: its content hash, with the
/// environment its path names, so that byte-identical reports of two variants are both
/// stored. Without an environment it is the content hash itself.
pub fn report_key(content_hash: String, environment: Option<&str>) -> String {
    match environment {
        None => content_hash,
        Some(env) => {
            let mut h = blake3::Hasher::new();
            h.update(content_hash.as_bytes());
            h.update(b"\0");
            h.update(env.as_bytes());
            h.finalize().to_hex().to_string()
        }
    }
}

/// Whether a report in memory can be parsed as it is: not gzip'd, and UTF-8 (no UTF-16
/// and no other declared encoding to transcode).
pub fn is_plain(bytes: &[u8]) -> bool {
    !is_gzip(bytes) && encoding_of(bytes).is_none()
}

/// Whether the bytes start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The encoding a report's text must be transcoded from, from its start: UTF-16 by its
/// byte-order mark (or by `<?` written in 16-bit units), else the `encoding` of the XML
/// declaration when it is not UTF-8 (`ISO-8859-1`, `windows-1252`, `Shift_JIS`, …; labels
/// as browsers read them). `None` means UTF-8, also for an unknown label: the structure is
/// still read, and a value that is not UTF-8 is read by [`parse`]'s lossless fallback.
pub fn encoding_of(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[b'<', 0, b'?', 0]) {
        return Some(encoding_rs::UTF_16LE);
    }
    if head.starts_with(&[0xFE, 0xFF]) || head.starts_with(&[0, b'<', 0, b'?']) {
        return Some(encoding_rs::UTF_16BE);
    }
    let decl = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(&decl[..decl.len().min(512)], b"?>")?;
    let decl = &decl[..end];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = decl[at + b"encoding".len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    let quote = *rest.first().filter(|q| **q == b'"' || **q == b'\'')?;
    let label = &rest[1..];
    let label = &label[..memchr::memchr(quote, label)?];
    let encoding = encoding_rs::Encoding::for_label(label)?;
    // Text read as ASCII up to here cannot be UTF-16 (a wrong label), and "replacement"
    // stands for encodings no one should decode.
    (encoding != encoding_rs::UTF_8
        && encoding.is_ascii_compatible()
        && encoding != encoding_rs::REPLACEMENT)
        .then_some(encoding)
}

/// Parse a plain (UTF-8, not gzip'd) report held in memory without copying its text;
/// `on_case` sees each test case first and may refuse it (the server counts their memory).
pub fn parse_plain(
    bytes: &[u8],
    options: ParseOptions<'_>,
    mut on_case: impl FnMut(&TestCase) -> Result<(), ParseError>,
) -> Result<Report, ParseError> {
    let mut merger = Merger::default();
    let info = parse_slice_with(bytes, options, |case, dialect| {
        on_case(&case)?;
        merger.push(case, dialect);
        Ok(())
    })?;
    merger.judge_repeats(&info);
    let (cases, ids) = merger.finish_with_ids();
    Ok(Report { cases, info, ids })
}

/// A test name's environment, as the parser writes it (`[testReleaseUnitTest] › adds`,
/// `[firefox] › renders header`), and the name the test runner knows.
pub fn split_environment(name: &str) -> (Option<&str>, &str) {
    name.strip_prefix('[')
        .and_then(|rest| rest.split_once("] › "))
        .map_or((None, name), |(env, name)| (Some(env), name))
}

/// Parse a report from any reader; gzip and UTF-16 inputs are recognised by their magic.
pub fn parse_reader<R: Read>(reader: R) -> Result<Report, ParseError> {
    parse_reader_with(reader, ParseOptions::default())
}

/// [`parse_reader`] with options.
pub fn parse_reader_with<R: Read>(
    reader: R,
    options: ParseOptions<'_>,
) -> Result<Report, ParseError> {
    let mut merger = Merger::default();
    let info = parse_any_with(reader, options, |case, dialect| {
        merger.push(case, dialect);
        Ok(())
    })?;
    merger.judge_repeats(&info);
    let (cases, ids) = merger.finish_with_ids();
    Ok(Report { cases, info, ids })
}

/// Parse a report file (its tests carry the environment its path names).
pub fn parse_file(path: &Path) -> Result<Report, FileError> {
    let file = std::fs::File::open(path).map_err(|e| FileError::Io(e.to_string()))?;
    let environment = local_path_environment(path);
    let options = ParseOptions {
        environment: environment.as_deref(),
        ..ParseOptions::default()
    };
    parse_reader_with(file, options).map_err(|e| FileError::Parse(located(path, &e)))
}

/// A report that could not be read or parsed, ready to print as `path:line:column: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    Io(String),
    Parse(LocatedError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    pub line: u64,
    pub column: u64,
    pub reason: String,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.reason)
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "cannot read: {e}"),
            FileError::Parse(e) => e.fmt(f),
        }
    }
}

/// Turn a parse error's byte offset into a 1-based line and column by rereading the file.
/// Done only on the error path, so the hot path never counts newlines.
pub fn located(path: &Path, err: &ParseError) -> LocatedError {
    let (line, column) = std::fs::File::open(path)
        .ok()
        .and_then(|f| locate(decoded_reader(f).ok()?, err.offset).ok())
        .unwrap_or((1, 1));
    LocatedError {
        line,
        column,
        reason: err.reason.clone(),
    }
}

/// Same as [`located`] for a report held in memory.
pub fn located_in(bytes: &[u8], err: &ParseError) -> LocatedError {
    let (line, column) = decoded_reader(bytes)
        .ok()
        .and_then(|r| locate(r, err.offset).ok())
        .unwrap_or((1, 1));
    LocatedError {
        line,
        column,
        reason: err.reason.clone(),
    }
}

/// 1-based line and column (in characters) of a byte offset in a stream.
pub fn locate<R: BufRead>(mut reader: R, offset: u64) -> std::io::Result<(u64, u64)> {
    let mut line = 1u64;
    let mut column = 1u64;
    let mut pos = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let take = buf.len().min((offset - pos) as usize);
        for &b in &buf[..take] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Count characters, not UTF-8 continuation bytes.
                column += 1;
            }
        }
        pos += take as u64;
        reader.consume(take);
        if pos >= offset {
            break;
        }
    }
    Ok((line, column))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A byte stream as the XML parser should see it: always UTF-8. A gzip'd report (often
/// uploaded as `.xml`) is decompressed on the fly; UTF-16 and declared encodings other than
/// UTF-8 are transcoded on the fly (see [`encoding_of`]).
pub enum Decoded<R: BufRead> {
    Plain(R),
    Gzip(BufReader<flate2::bufread::MultiGzDecoder<R>>),
    Transcoded(Transcode<R>),
    GzipTranscoded(Transcode<BufReader<flate2::bufread::MultiGzDecoder<R>>>),
}

/// Wrap a raw byte stream as [`Decoded`].
pub fn decoded_reader<R: Read>(reader: R) -> std::io::Result<Decoded<BufReader<R>>> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    if is_gzip(reader.fill_buf()?) {
        let mut gz =
            BufReader::with_capacity(64 * 1024, flate2::bufread::MultiGzDecoder::new(reader));
        return Ok(match encoding_of(gz.fill_buf()?) {
            Some(encoding) => Decoded::GzipTranscoded(Transcode::new(gz, encoding)),
            None => Decoded::Gzip(gz),
        });
    }
    Ok(match encoding_of(reader.fill_buf()?) {
        Some(encoding) => Decoded::Transcoded(Transcode::new(reader, encoding)),
        None => Decoded::Plain(reader),
    })
}

/// A stream in another encoding, read as UTF-8 (a byte-order mark is dropped; what cannot
/// be decoded becomes U+FFFD).
pub struct Transcode<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    out: Box<[u8]>,
    start: usize,
    end: usize,
    done: bool,
}

impl<R: BufRead> Transcode<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Transcode {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            out: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Transcode<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.start == self.end && !self.done {
            let input = self.inner.fill_buf()?;
            let last = input.is_empty();
            let (result, read, written, _) =
                self.decoder.decode_to_utf8(input, &mut self.out, last);
            self.inner.consume(read);
            self.start = 0;
            self.end = written;
            self.done = last && result == encoding_rs::CoderResult::InputEmpty;
        }
        Ok(&self.out[self.start..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.end);
    }
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
            Decoded::Transcoded(r) => r.read(buf),
            Decoded::GzipTranscoded(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> BufRead for Decoded<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Decoded::Plain(r) => r.fill_buf(),
            Decoded::Gzip(r) => r.fill_buf(),
            Decoded::Transcoded(r) => r.fill_buf(),
            Decoded::GzipTranscoded(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            Decoded::Plain(r) => r.consume(amt),
            Decoded::Gzip(r) => r.consume(amt),
            Decoded::Transcoded(r) => r.consume(amt),
            Decoded::GzipTranscoded(r) => r.consume(amt),
        }
    }
}

/// Stream-parse a report from any reader, calling `on_case` for each `<testcase>` element.
pub fn parse_any<R: Read, F>(reader: R, on_case: F) -> Result<ReportInfo, ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    parse_any_with(reader, ParseOptions::default(), on_case)
}

/// [`parse_any`] with options.
pub fn parse_any_with<R: Read, F>(
    reader: R,
    options: ParseOptions<'_>,
    on_case: F,
) -> Result<ReportInfo, ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    let decoded = decoded_reader(reader).map_err(io_error)?;
    parse_stream_with(decoded, options, on_case)
}

fn io_error(e: std::io::Error) -> ParseError {
    ParseError {
        offset: 0,
        reason: format!("cannot read report: {e}"),
    }
}

/// Merges repeated `<testcase>` elements of one report into attempts of one test.
#[derive(Default)]
pub struct Merger {
    // Identities are already blake3-derived: foldhash instead of SipHash.
    /// Each name's first case, and the hash of its suite's name.
    index: HashMap<TestIdentity, (usize, u64), foldhash::fast::RandomState>,
    /// The case a name stands for in suites of other names than its first one's.
    other_suites: HashMap<(TestIdentity, u64), usize, foldhash::fast::RandomState>,
    /// Cases from `drained` on (see [`Merger::drain`]).
    cases: Vec<TestCase>,
    /// `<testcase>` elements merged into each case.
    copies: Vec<u32>,
    /// Whether every attempt of each case so far failed: a rerun follows only a failure.
    all_failed: Vec<bool>,
    /// The `n` of a case kept apart as `name [#n]` (0 for others).
    nth: Vec<u32>,
    /// Occurrences of a name that were kept apart as distinct tests.
    duplicates: HashMap<TestIdentity, u32, foldhash::fast::RandomState>,
    /// pytest: cases repeated in the report, whose bare attempts before the last are
    /// pytest-rerunfailures' failed tries unless [`Merger::judge_repeats`] says otherwise.
    repeated: Vec<usize>,
    /// Set by [`Merger::judge_repeats`] when the report shows its repeats are not reruns.
    repeats_are_runs: bool,
    /// Whether each case is a Go test's first, and the repeats of them kept apart after a
    /// pass: (`name [#n]`'s case, the first's). Folded back as runs of one test when every
    /// Go test of the report repeats alike (`go test -count=N`; see
    /// [`Merger::judge_repeats`]).
    go: Vec<bool>,
    go_twins: Vec<(usize, usize)>,
    go_count: bool,
    /// Cases handed out by [`Merger::drain`]; those before it live on only in `copies`,
    /// `all_failed` and `nth`.
    drained: usize,
    /// Handed-out cases repeated since: their new attempts, to hand out again.
    revisited: std::collections::BTreeMap<usize, TestCase>,
}

/// Hashes suite names for [`Merger`]'s per-suite lookup.
const SUITE_KEY: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5717e);

/// The message pytest gives the `<error>` of a teardown that broke after the call failed.
const PYTEST_TEARDOWN_ERROR: &str = "failed on teardown with ";

/// pytest writes a failed call followed by a broken teardown as two `<testcase>`s of the
/// same test, the second holding only `<error message="failed on teardown with …">`. They
/// are one attempt, not a rerun.
fn is_pytest_teardown_error(case: &TestCase) -> bool {
    matches!(case.attempts.as_slice(), [only]
        if only.outcome == AttemptOutcome::Errored
            && only
                .failure
                .as_ref()
                .and_then(|f| f.message.as_deref())
                .is_some_and(|m| m.starts_with(PYTEST_TEARDOWN_ERROR)))
}

/// Whether a case is a Go test in its package's suite (go-junit-report, gotestsum): a
/// test function `Test…`, `Fuzz…` or `Example…` (subtests after `/`; Go names and
/// `t.Run` names hold no whitespace) whose class is the suite's import path, its last
/// element (go-junit-report 0.9) or a short package name. Never a Java or .NET class
/// (`com.acme.FooTest`) or a file (Deno's `./parse_test.ts`).
fn is_go_test(case: &TestCase) -> bool {
    // Every case of every report is asked: the cheap prefix test goes first. It reads the
    // top-level test's name (before any `/subtest`) without splitting: after the prefix
    // comes either the rest of that name or the `/`, which is not lowercase either.
    let go_name = ["Test", "Fuzz", "Example"].iter().any(|prefix| {
        case.name
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_lowercase()))
    }) && !case.name.contains(char::is_whitespace);
    if !go_name {
        return false;
    }
    let class = case.classname.as_str();
    let package = !class.is_empty()
        && !class.starts_with('.')
        && !class.contains(char::is_whitespace)
        && (class.contains('/') || !class.contains(|c: char| c.is_uppercase() || c == '.'));
    let in_suite = case.suite.as_deref().is_some_and(|suite| {
        suite == class
            || suite
                .strip_suffix(class)
                .is_some_and(|path| path.ends_with('/'))
    });
    package && in_suite
}

/// How bad an attempt's outcome is, to keep the worst of a test's subtests.
fn severity(outcome: AttemptOutcome) -> u8 {
    match outcome {
        AttemptOutcome::Skipped => 0,
        AttemptOutcome::Passed => 1,
        AttemptOutcome::Failed => 2,
        AttemptOutcome::Errored => 3,
    }
}

/// The classname jest-junit gives a test file that failed to run (a syntax error, a
/// missing module).
const JEST_SUITE_FAILED: &str = "Test suite failed to run";

impl Merger {
    pub fn push(&mut self, case: TestCase, dialect: Dialect) {
        let id = case.identity();
        // Runners write a rerun in a suite of the first attempt's name: the same test name
        // in a suite of another name (Node's `describe`s) is another test.
        let suite = SUITE_KEY.hash_one(case.suite.as_deref());
        let at = match self.index.get(&id) {
            None => {
                let go = is_go_test(&case);
                let at = self.add_case(case);
                self.index.insert(id, (at, suite));
                self.go[at] = go;
                return;
            }
            Some(&(at, first)) if first == suite => at,
            Some(_) => match self.other_suites.get(&(id, suite)) {
                Some(&at) => at,
                None => {
                    let at = self.keep_apart(id, suite, case);
                    self.other_suites.insert((id, suite), at);
                    return;
                }
            },
        };
        if dialect == Dialect::PyUnittest {
            // unittest has no reruns: a repeat is another failing subtest of the same test,
            // in the same run of it. One attempt: the worst outcome, with its failure.
            let Some(into) = self.case_mut(at).and_then(|c| c.attempts.last_mut()) else {
                // Handed out already (a huge report's chunk ended between them).
                self.extend(at, case, false);
                return;
            };
            if let Some(new) = case.attempts.into_iter().next() {
                if severity(new.outcome) > severity(into.outcome) {
                    into.outcome = new.outcome;
                    into.failure = new.failure.or(into.failure.take());
                }
                let failed = into.outcome.is_failure();
                self.all_failed[at] = failed;
            }
            return;
        }
        if dialect == Dialect::Pytest {
            if is_pytest_teardown_error(&case) {
                let last = self
                    .case_mut(at)
                    .and_then(|c| c.attempts.last_mut())
                    .filter(|a| a.outcome.is_failure());
                if let Some(last) = last {
                    // Same attempt: keep the call's failure, add the teardown's time.
                    if let Some(t) = case.attempts[0].duration_s {
                        *last.duration_s.get_or_insert(0.0) += t;
                    }
                    return;
                }
            }
            // pytest-rerunfailures writes each failed attempt as a bare <testcase/>
            // (its report outcome is "rerun", which junitxml records as nothing), so
            // it reads as a pass; decided when the whole report is read.
            self.repeated.push(at);
        } else if dialect == Dialect::Jest && case.classname == JEST_SUITE_FAILED {
            // jest-junit (`reportTestSuiteErrors`) writes a suite that failed to
            // run twice, as an <error> and as a <failure> of its cause: one failure.
            return;
        } else if dialect.never_repeats_retries() || !self.all_failed[at] {
            // Runners rerun a test only after it failed. A repeat after a pass or a skip
            // (or any repeat from jest-junit, Vitest, Playwright or Node, which never
            // write retries so) is another test with the same name: keep it apart.
            // A Go test's repeat may be `go test -count=N`: decided on the whole report.
            let go = !dialect.never_repeats_retries() && self.go[at];
            let twin = self.keep_apart(id, suite, case);
            if go && twin != at {
                self.go_twins.push((twin, at));
            }
            return;
        }
        self.extend(at, case, false);
    }

    /// The case at `at`, unless it was handed out and not repeated since.
    fn case_mut(&mut self, at: usize) -> Option<&mut TestCase> {
        match at.checked_sub(self.drained) {
            Some(i) => self.cases.get_mut(i),
            None => self.revisited.get_mut(&at),
        }
    }

    fn add_case(&mut self, case: TestCase) -> usize {
        let at = self.copies.len();
        self.all_failed
            .push(case.attempts.iter().all(|a| a.outcome.is_failure()));
        self.cases.push(case);
        self.copies.push(1);
        self.nth.push(0);
        self.go.push(false);
        at
    }

    /// Add a repeat's attempts to case `at`; `named`: the repeat has the case's name
    /// already (a `name [#n]` given as such).
    fn extend(&mut self, at: usize, mut case: TestCase, named: bool) {
        self.all_failed[at] &= case.attempts.iter().all(|a| a.outcome.is_failure());
        self.copies[at] += 1;
        if let Some(into) = self.case_mut(at) {
            into.attempts.extend(case.attempts);
            return;
        }
        // Handed out before: the repeat's attempts go out again under the case's name.
        if !named && self.nth[at] > 0 {
            case.name = format!("{} [#{}]", case.name, self.nth[at]);
        }
        self.revisited.insert(at, case);
    }

    /// Store a repeated name as another test, `name [#n]`; its index.
    fn keep_apart(&mut self, id: TestIdentity, suite: u64, mut case: TestCase) -> usize {
        let nth = {
            let n = self.duplicates.entry(id).or_insert(1);
            *n += 1;
            *n
        };
        case.name = format!("{} [#{nth}]", case.name);
        let new_id = case.identity();
        if let Some(&(at, _)) = self.index.get(&new_id) {
            // Pathological input (the suffixed name exists too): fold it in.
            self.extend(at, case, true);
            at
        } else {
            let at = self.add_case(case);
            self.nth[at] = nth;
            self.index.insert(new_id, (at, suite));
            at
        }
    }

    /// pytest: whether the report's repeated `<testcase>`s are reruns. pytest counts
    /// every test once in a suite's `tests`, leaving pytest-rerunfailures' reruns out; when
    /// the report holds no more `<testcase>`s than that, a repeat is another run of the
    /// test (pytest-xdist `--dist each` runs every test once per worker), and a bare one
    /// passed. Without this call, repeats are read as reruns.
    pub fn judge_repeats(&mut self, info: &ReportInfo) {
        // `--dist each` writes every test once per worker; counting alone is not enough:
        // pytest's subtests also count in `tests`, beside rerunfailures' bare attempts.
        let every_test_alike = self
            .copies
            .first()
            .is_some_and(|&k| k >= 2 && self.copies.iter().all(|&c| c == k));
        // A failed call's teardown error is a second `<testcase>`, and counted in `tests`.
        self.repeats_are_runs =
            every_test_alike && info.declared_tests.is_some_and(|d| info.testcases <= d);
        // `go test -count=N` writes every test N times; two Go tests of one name in a
        // package (its internal and external test files) repeat one test, not all.
        let mut seen: HashMap<usize, u32> = (0..self.go.len())
            .filter(|&at| self.go[at])
            .map(|at| (at, self.copies[at]))
            .collect();
        for &(twin, first) in &self.go_twins {
            *seen.entry(first).or_default() += self.copies[twin];
        }
        let k = seen.values().next().copied().unwrap_or(0);
        self.go_count = k >= 2 && seen.values().all(|&n| n == k);
    }

    /// Fold the Go repeats kept apart back into their tests (see `go_count`); the cases
    /// folded away, by index.
    fn fold_go_count(&mut self) -> Vec<bool> {
        let mut gone = vec![false; self.cases.len()];
        if !self.go_count || self.drained > 0 {
            return gone;
        }
        for &(twin, first) in &self.go_twins {
            let attempts = std::mem::take(&mut self.cases[twin].attempts);
            self.cases[first].attempts.extend(attempts);
            gone[twin] = true;
        }
        gone
    }

    /// A rerun happens only after a failure, so the bare attempts before a repeated
    /// test's last one failed.
    fn mark_reruns(&mut self) {
        if self.repeats_are_runs {
            return;
        }
        for at in std::mem::take(&mut self.repeated) {
            let Some(case) = self.case_mut(at) else {
                continue;
            };
            let Some((_, earlier)) = case.attempts.split_last_mut() else {
                continue;
            };
            for attempt in earlier {
                if attempt.outcome == AttemptOutcome::Passed && attempt.failure.is_none() {
                    attempt.outcome = AttemptOutcome::Failed;
                    attempt.failure = Some(Failure {
                        kind: Some("rerun".into()),
                        message: Some(
                            "failed attempt, rerun (the report records no details: pytest-rerunfailures, flaky)"
                                .into(),
                        ),
                        body: None,
                    });
                }
            }
        }
    }

    /// Cases merged since the last drain: new tests, and tests handed out before that
    /// were repeated since.
    pub fn pending(&self) -> usize {
        self.cases.len() + self.revisited.len()
    }

    /// Hand out the cases merged so far but the last, keeping what later repeats of them
    /// need, so that a huge report is stored in chunks and read as it would be whole: a
    /// later repeat's attempts come out again under the test's name, to be merged by test
    /// identity. The last case waits for the next chunk, as rows of one test come together
    /// (pytest's reruns and teardown errors, unittest's subtests). pytest's repeats stay
    /// reruns and Go's stay apart ([`Merger::judge_repeats`] needs the whole report).
    pub fn drain(&mut self) -> Vec<TestCase> {
        self.drain_but(1)
    }

    /// Hand out every case merged so far: the end of a report drained in chunks.
    pub fn drain_all(&mut self) -> Vec<TestCase> {
        self.drain_but(0)
    }

    fn drain_but(&mut self, keep: usize) -> Vec<TestCase> {
        self.mark_reruns();
        let held = self
            .cases
            .split_off(self.cases.len() - keep.min(self.cases.len()));
        self.drained = self.copies.len() - held.len();
        let revisited = std::mem::take(&mut self.revisited).into_values();
        let out = revisited.chain(std::mem::take(&mut self.cases)).collect();
        self.cases = held;
        out
    }

    pub fn finish(self) -> Vec<TestCase> {
        self.finish_with_ids().0
    }

    /// The merged cases and the test identity of each.
    pub fn finish_with_ids(mut self) -> (Vec<TestCase>, Vec<i64>) {
        debug_assert_eq!(self.drained, 0, "a drained merger ends with drain");
        self.mark_reruns();
        let mut ids = vec![0i64; self.cases.len()];
        for (id, &(at, _)) in &self.index {
            ids[at] = id.0;
        }
        let gone = self.fold_go_count();
        if !gone.contains(&true) {
            return (self.cases, ids);
        }
        self.cases
            .into_iter()
            .zip(ids)
            .zip(gone)
            .filter(|(_, gone)| !gone)
            .map(|(kept, _)| kept)
            .unzip()
    }
}

#[cfg(test)]
mod tests;
