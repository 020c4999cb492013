//! The streaming state machine over quick-xml events.

use std::borrow::Cow;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{parse_time, ParseError};
use crate::model::{Attempt, AttemptOutcome, Failure, TestCase};

/// Failure bodies (stack traces) are kept up to this many bytes: enough to fingerprint
/// and to read, bounded so a runaway trace cannot blow memory.
pub const BODY_CAP: usize = 8 * 1024;
/// The longest attribute value kept (a test's name, classname, file, a suite's name…): a
/// longer one rejects the report, with its line and column. `message` is cut to
/// [`BODY_CAP`] instead.
pub const MAX_VALUE: usize = 64 * 1024;
/// Deeper nesting than this is hostile input, not a test report.
const MAX_DEPTH: usize = 256;

/// The name of the test case that stands for a suite-level `<error>`/`<failure>`, as
/// Jenkins names it: the suite failed before (or instead of) running its tests.
pub const SUITE_ERROR_CASE: &str = "<init>";

/// Which producer wrote the report, where it changes how the report is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Generic,
    /// pytest's junitxml (`<testsuite name="pytest">`): repeated bare cases are reruns.
    Pytest,
    /// jest-junit (`<testsuites name="jest tests">`): it never writes retries, so a repeated
    /// case is another test with the same title, not a rerun.
    Jest,
    /// Vitest (`<testsuites name="vitest tests">`): a retried test is one `<testcase>`, so
    /// a repeated case is another test (`test.each` rows, same-titled tests).
    Vitest,
    /// Playwright (a root `<testsuites id=…>` whose suites carry the project in `hostname`
    /// and no `id`): a retried test is one `<testcase>`; each project (browser) runs every
    /// test again, so a test's name gets its project, as Playwright prints it
    /// (`[firefox] › renders header`).
    Playwright,
    /// Node's built-in test runner (`node --test --test-reporter=junit`): every test has
    /// `classname="test"` and only the `<testsuite>`s around it (its `describe`s and parent
    /// tests) tell it apart, so its name is their path (`cart › totals › adds`). Recognised
    /// by a bare root `<testsuites>` and suites with `disabled` and `hostname` but no
    /// `timestamp`.
    NodeTest,
    /// cucumber-js's junit formatter: a root `<testsuite name="Cucumber">`, a scenario's
    /// feature as its class. It writes a scenario retried with `--retry` once, as its last
    /// try: a repeated feature and scenario name is another scenario (another file).
    CucumberJs,
    /// Python unittest through unittest-xml-reporting (xmlrunner: suites named
    /// `module.Class-YYYYMMDDhhmmss`, or with `outsuffix=""` test cases carrying both
    /// `timestamp` and `line`) or nose2's junitxml plugin (suite `nose2-junit`): a
    /// failing `subTest` is written as a `<testcase>` of its own, `test_rows (i=1)`, and
    /// the test itself only when it passed. A subtest's failure is the test's failure.
    PyUnittest,
}

impl Dialect {
    /// Whether the tool writes a retried test as one `<testcase>`, never as repeats: a
    /// repeated name is then another test, not a rerun.
    pub fn never_repeats_retries(self) -> bool {
        matches!(
            self,
            Dialect::Jest
                | Dialect::Vitest
                | Dialect::Playwright
                | Dialect::NodeTest
                | Dialect::CucumberJs
        )
    }
}

/// Suite timestamps before this (2000-01-01T00:00:00Z) are placeholders, not times a test
/// ran: the Unix epoch of a suite that never started, or a runner without a clock.
pub const EARLIEST_TIMESTAMP: i64 = 946_684_800;

/// What the report says about itself, beyond its test cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportInfo {
    /// `<testcase>` elements in the file.
    pub testcases: u64,
    /// `<testsuite>` elements in the file.
    pub suites: u64,
    /// `<testsuite>` elements that hold `<testcase>`s directly or no other suite: the
    /// suites a reader of the report sees (nested wrappers are not counted).
    pub leaf_suites: u64,
    /// The root's `time`, else the sum of the outermost suites' times, else of the test
    /// cases' times.
    pub time_s: Option<f64>,
    /// Sum of the outermost suites' times; `time_s` falls back to it.
    pub suites_time_s: Option<f64>,
    /// Sum of the test cases' own times (every attempt), the last fallback of `time_s`: Bazel
    /// and some hand-rolled reporters give no suite time, and a run's wall time of 0 would
    /// make every CI-minutes figure 0.
    pub cases_time_s: Option<f64>,
    /// Suites with their own `<error>` or `<failure>` (Ant writes one when the test class
    /// cannot load): each is handed over as a failed test case named [`SUITE_ERROR_CASE`].
    pub suite_errors: u64,
    /// The earliest plausible `timestamp` attribute of a suite, as written: one that reads
    /// as a time after [`EARLIEST_TIMESTAMP`] (jest-junit writes `1970-01-01T00:00:00` on a
    /// suite that failed to run, which would date the whole run to 1970).
    pub timestamp: Option<String>,
    /// `timestamp` as Unix seconds.
    pub timestamp_s: Option<i64>,
    /// The `file` of mocha-junit-reporter's latest `Root Suite`: under Cypress only that
    /// empty suite names the spec, and the suites after it (one per `describe`) are its
    /// tests. Same titles in two specs are two tests.
    pub spec_file: Option<String>,
    /// Whether the root `<testsuites>` has an `id` (Playwright writes one, even empty).
    pub root_has_id: bool,
    /// Whether the root is a `<testsuites>` without attributes (Node's test runner).
    pub root_bare: bool,
    pub dialect: Dialect,
    /// Which of TestNG's JUnit reporters wrote the report, from its leading
    /// `<!-- Generated by org.testng.reporters.… -->` comment: TestNG writes every result
    /// again beside Surefire's own report, so ingest keeps one copy.
    pub testng: Option<TestNgReporter>,
    /// The environment the report's path names ([`ParseOptions::environment`]): its tests'
    /// names carry it, unless a suite names its own (a Playwright project, an Android device).
    pub environment: Option<String>,
    /// Sum of the outermost suites' `tests` attributes, as written. pytest leaves
    /// pytest-rerunfailures' reruns out of it, so more `<testcase>`s than that means reruns.
    pub declared_tests: Option<u64>,
}

/// TestNG's two JUnit-shaped reporters. Both run by default, beside Surefire's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TestNgReporter {
    /// `org.testng.reporters.JUnitXMLReporter`: `<suite>/<test>.xml`, in the order run.
    JUnitXml,
    /// `org.testng.reporters.JUnitReportReporter`: `junitreports/TEST-<class>.xml`, in an
    /// order that changes between runs.
    JUnitReport,
}

/// The start of the reason a report whose root is not a JUnit element is refused with.
const FOREIGN_ROOT: &str = "not a JUnit report: root element is <";

impl ParseError {
    /// See [`is_other_tools_xml`].
    pub fn is_foreign_root(&self) -> bool {
        is_other_tools_xml(&self.reason)
    }
}

/// Whether a rejection's reason says the file is well-formed up to a root element other
/// than `<testsuites>` or `<testsuite>`: another tool's XML (a `pom.xml`,
/// `testng-results.xml`, a checkstyle report), not a broken report. An HTML page is not
/// one of those: it is what a failed download saves as `report.xml`.
pub fn is_other_tools_xml(reason: &str) -> bool {
    let Some(rest) = reason.strip_prefix(FOREIGN_ROOT) else {
        return false;
    };
    let name = rest.split('>').next().unwrap_or_default();
    !is_html(name.as_bytes())
}

/// `html`, `HTML`, `h:html`: a web page, whatever its namespace prefix.
fn is_html(name: &[u8]) -> bool {
    let local = name.rsplit(|&b| b == b':').next().unwrap_or_default();
    local.eq_ignore_ascii_case(b"html")
}

/// What the start of a plain (UTF-8) report says about it, read up to its root element
/// only: enough to pick reports out of a folder before sending them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The root element's name when it is not `<testsuites>`/`<testsuite>`: another
    /// tool's XML (see [`is_other_tools_xml`]). `None` for a JUnit root, an HTML page, and
    /// input too broken to tell (the full parse then says why).
    pub foreign_root: Option<String>,
    pub testng: Option<TestNgReporter>,
}

/// Read a plain report's prolog and root element name (a streamed report's first bytes:
/// its full parse comes later).
pub fn head(bytes: &[u8]) -> Head {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = Reader::from_reader(bytes);
    let mut out = Head::default();
    loop {
        match reader.read_event() {
            Ok(Event::Comment(c)) => {
                if let Some(r) = testng_reporter(c.as_ref()) {
                    out.testng = Some(r);
                }
            }
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                let junit = name.as_ref() == b"testsuites" || name.as_ref() == b"testsuite";
                if !junit && !is_html(e.name().as_ref()) {
                    out.foreign_root = Some(String::from_utf8_lossy(e.name().as_ref()).into());
                }
                return out;
            }
            // Text before the root: not a well-formed document, for the parse to reject.
            Ok(Event::Text(t)) if !t.iter().all(u8::is_ascii_whitespace) => return Head::default(),
            Ok(Event::Eof) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}

/// The reporter named by a comment before the root element, if it is TestNG's.
fn testng_reporter(comment: &[u8]) -> Option<TestNgReporter> {
    let text = std::str::from_utf8(comment).ok()?.trim();
    match text.strip_prefix("Generated by org.testng.reporters.")? {
        "JUnitXMLReporter" => Some(TestNgReporter::JUnitXml),
        "JUnitReportReporter" => Some(TestNgReporter::JUnitReport),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Suites,
    Suite,
    Case,
    /// `<failure>`/`<error>`: the final attempt's failure.
    Final,
    /// `<error>`/`<failure>` directly in a `<testsuite>`: the suite itself broke.
    SuiteError,
    /// `<flakyFailure>`/`<flakyError>`/`<rerunFailure>`/`<rerunError>`.
    Rerun,
    /// `<stackTrace>` inside a rerun element.
    StackTrace,
    /// A suite's `<properties>`.
    Properties,
    Skipped,
    Other,
}

#[derive(Default)]
struct CaseBuilder {
    classname: Option<String>,
    name: Option<String>,
    file: Option<String>,
    time: Option<f64>,
    final_failure: Option<(AttemptOutcome, Failure)>,
    skipped: bool,
    /// Node's test runner marks a `todo` test `<skipped type="todo">`; it may fail without
    /// failing the run, and then also holds the `<failure>`.
    todo: bool,
    flaky: Vec<Attempt>,
    reruns: Vec<Attempt>,
    /// The rerun element being read, if any.
    open_rerun: Option<(bool, Attempt)>,
    /// 1-based position among the `<testcase>`s of its suite (of the report, outside suites).
    ordinal: u64,
}

struct SuiteFrame {
    name: Option<std::sync::Arc<str>>,
    file: Option<String>,
    /// Playwright's project (the suite's `hostname`).
    project: Option<String>,
    /// Android's connected tests: the `device` and `flavor` properties of the suite, and
    /// whether it has the others AGP writes (`flavor`, `project`), so that a Surefire
    /// report's system property `device` is not taken for one.
    device: Option<String>,
    flavor: Option<String>,
    agp: bool,
    has_suites: bool,
    /// `<testcase>` children so far.
    cases: u64,
    /// Whether a suite-level `<error>`/`<failure>` was already reported.
    broke: bool,
}

/// [`truncate_push`] from raw bytes: only the part that fits is decoded, so a huge text
/// node is never copied.
fn truncate_push_bytes(body: &mut String, raw: &[u8]) {
    let room = BODY_CAP.saturating_sub(body.len());
    if room == 0 {
        return;
    }
    // A few bytes more, so a character cut at the edge is decoded whole or dropped.
    let take = raw.len().min(room + 4);
    truncate_push(body, &String::from_utf8_lossy(&raw[..take]));
}

fn truncate_push(body: &mut String, text: &str) {
    if body.len() >= BODY_CAP {
        return;
    }
    let room = BODY_CAP - body.len();
    if text.len() <= room {
        body.push_str(text);
    } else {
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        body.push_str(&text[..cut]);
    }
}

/// An attribute's text, borrowed from the report when it is valid UTF-8 without entity
/// references (the usual case), so that values only looked at (a `time`) cost no copy.
///
/// A value that is not UTF-8 (a report in Latin-1 without an `encoding` declaration) is
/// read as Windows-1252 when `lossless`: every byte stays a distinct character, so two
/// test names never collapse into one (`caf\xE9` and `caf\xE8` would both read `caf\u{FFFD}`
/// lossily). A failure message is read lossily: it is only shown and fingerprinted.
/// `amp`: whether the value may hold a `&` (false when its reading found none).
fn attr_text(value: &[u8], lossless: bool, amp: bool) -> Cow<'_, str> {
    if !amp {
        if let Ok(text) = std::str::from_utf8(value) {
            return Cow::Borrowed(text);
        }
    }
    let raw = match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) if lossless => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(value)
                .0
        }
        Err(_) => String::from_utf8_lossy(value),
    };
    if !raw.contains('&') {
        return raw;
    }
    match quick_xml::escape::unescape(&raw) {
        Ok(text) => Cow::Owned(text.into_owned()),
        // Lenient on values: an unknown entity stays as written, never expanded.
        Err(_) => raw,
    }
}

fn tag_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// Read an element's attributes: strict on their syntax, the structural part of a tag
/// (each is `name="value"` or `name='value'`, no name twice, no `<` anywhere in the tag:
/// an unescaped `<` in a value is the classic broken-producer bug, e.g. Catch2's
/// `name="<exe-name>"` placeholder), lenient on their values (an unknown entity stays as
/// written). `f` sees each attribute's local name and unescaped value.
fn attrs(e: &BytesStart<'_>, mut f: impl FnMut(&[u8], Cow<'_, str>)) -> Result<(), String> {
    checked_attrs(e, |attr| {
        let RawAttr {
            local: key,
            value,
            text,
            amp,
            ..
        } = attr;
        let value = if value.len() <= MAX_VALUE {
            value
        } else if key == b"message" {
            // A failure message is read like a stack trace: its head is enough.
            cut_value(value, BODY_CAP)
        } else {
            return Err(format!(
                "attribute `{}` of <{}> is {} bytes long, more than the {} KiB a name or value may have",
                String::from_utf8_lossy(key),
                tag_name(e),
                value.len(),
                MAX_VALUE / 1024
            ));
        };
        // A cut message keeps its text only when the cut falls between characters.
        match text.and_then(|t| t.get(..value.len())) {
            Some(text) if !amp => f(key, Cow::Borrowed(text)),
            _ => f(key, attr_text(value, key != b"message", amp)),
        }
        Ok(())
    })
}

/// The structural checks of [`attrs`] (no `<` in the tag, each attribute well formed, no
/// name twice), handing each attribute to `f` as written.
fn checked_attrs<'a>(
    e: &'a BytesStart<'_>,
    mut f: impl FnMut(RawAttr<'a>) -> Result<(), String>,
) -> Result<(), String> {
    if memchr::memchr(b'<', e.attributes_raw()).is_some() {
        return Err(format!(
            "malformed XML: unescaped '<' inside the tag <{}>",
            tag_name(e)
        ));
    }
    let mut names = AttrNames::default();
    let mut scan = AttrScan::of(e);
    while let Some(attr) = scan.next() {
        let attr = attr
            .map_err(|err| format!("malformed XML: bad attribute in <{}>: {err}", tag_name(e)))?;
        names.check(attr.name, e)?;
        f(attr)?;
    }
    Ok(())
}

/// The `name="value"` pairs of a tag, read straight from its bytes: quick-xml's attribute
/// iterator, generic over HTML-style attributes and checked values, was a tenth of the
/// instructions of an ingest of small reports. The syntax accepted and the errors (with
/// their positions) are quick-xml's: whitespace may surround `=`, a value is in `"` or `'`,
/// and a value needs no whitespace after it.
struct AttrScan<'a> {
    /// The tag's bytes from its name on (positions in errors count from there).
    tag: &'a [u8],
    /// The same bytes as text, when they are UTF-8: checked once for the whole tag, where
    /// checking each value on its own cost several times more (short values are checked a
    /// byte at a time).
    text: Option<&'a str>,
    at: usize,
}

impl<'a> AttrScan<'a> {
    fn of(e: &'a BytesStart<'_>) -> AttrScan<'a> {
        let raw = e.attributes_raw();
        let name_len = e.name().as_ref().len();
        // `attributes_raw` is the tag's bytes after its name.
        let tag: &'a [u8] = &e.as_ref()[..name_len + raw.len()];
        AttrScan {
            tag,
            text: std::str::from_utf8(tag).ok(),
            at: name_len,
        }
    }

    fn skip_space(&mut self) -> Option<u8> {
        while let Some(&b) = self.tag.get(self.at) {
            if !matches!(b, b' ' | b'\r' | b'\n' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// The next attribute; after an error, stop reading.
    fn next(&mut self) -> Option<Result<RawAttr<'a>, AttrError>> {
        let tag = self.tag;
        let end = tag.len();
        self.skip_space()?;
        let start = self.at;
        // A name's first byte is taken whatever it is (quick-xml reads `="x"` as a name
        // `="x"` missing its `=`). The local name follows the first `:`.
        let mut local = if tag[start] == b':' { start + 1 } else { start };
        self.at += 1;
        while let Some(&b) = tag.get(self.at) {
            match b {
                b'=' | b' ' | b'\r' | b'\n' | b'\t' => break,
                b':' if local == start => local = self.at + 1,
                _ => {}
            }
            self.at += 1;
        }
        let (name, local) = (&tag[start..self.at], &tag[local..self.at]);
        let fail = |this: &mut Self, err| {
            this.at = end;
            Some(Err(err))
        };
        match self.skip_space() {
            Some(b'=') => self.at += 1,
            Some(_) => {
                let at = self.at;
                return fail(self, AttrError::ExpectedEq(at));
            }
            None => return fail(self, AttrError::ExpectedEq(end)),
        }
        let quote = match self.skip_space() {
            Some(q @ (b'"' | b'\'')) => q,
            Some(_) => {
                let at = self.at;
                return fail(self, AttrError::UnquotedValue(at));
            }
            None => return fail(self, AttrError::ExpectedValue(end)),
        };
        let value_start = self.at + 1;
        let rest = &tag[value_start..];
        // Look for the closing quote and an entity reference in one pass.
        let (len, amp) = match memchr::memchr2(quote, b'&', rest) {
            Some(at) if rest[at] == b'&' => {
                (memchr::memchr(quote, &rest[at..]).map(|q| at + q), true)
            }
            found => (found, false),
        };
        match len {
            Some(len) => {
                self.at = value_start + len + 1;
                Some(Ok(RawAttr {
                    name,
                    local,
                    value: &rest[..len],
                    // Quotes are ASCII, so the value's ends are character boundaries.
                    text: self
                        .text
                        .and_then(|t| t.get(value_start..value_start + len)),
                    amp,
                }))
            }
            None => fail(self, AttrError::ExpectedQuote(end, quote)),
        }
    }
}

/// An attribute as written: its name, local name (after the prefix: `x:name` → `name`,
/// as quick-xml's `QName::local_name` reads it), raw value, and whether that value holds
/// a `&`.
struct RawAttr<'a> {
    name: &'a [u8],
    local: &'a [u8],
    value: &'a [u8],
    /// The value as text, when the tag is UTF-8.
    text: Option<&'a str>,
    amp: bool,
}

/// The first `cap` bytes of an attribute value, never ending inside an entity reference.
fn cut_value(value: &[u8], cap: usize) -> &[u8] {
    let head = &value[..cap.min(value.len())];
    match head.iter().rposition(|&b| b == b'&') {
        Some(amp) if !head[amp..].contains(&b';') => &head[..amp],
        _ => head,
    }
}

/// [`attrs`] for an element whose attributes we do not use: only checked.
fn check_attrs(e: &BytesStart<'_>) -> Result<(), String> {
    checked_attrs(e, |_| Ok(()))
}

/// The attribute names of one tag so far, to refuse a name given twice. quick-xml's own
/// check keeps them in a vector it allocates for every tag (3 % of an ingest of small
/// reports); a tag has a handful: they fit on the stack.
#[derive(Default)]
struct AttrNames<'a> {
    first: [&'a [u8]; 12],
    count: usize,
    more: Vec<&'a [u8]>,
}

impl<'a> AttrNames<'a> {
    fn check(&mut self, name: &'a [u8], e: &BytesStart<'_>) -> Result<(), String> {
        let held = self.count.min(self.first.len());
        // Names of one tag rarely share a length and a first letter: test those first.
        let same = |k: &&[u8]| k.len() == name.len() && k.first() == name.first() && *k == name;
        if self.first[..held].iter().any(same) || self.more.iter().any(same) {
            return Err(format!(
                "malformed XML: attribute `{}` given twice in <{}>",
                String::from_utf8_lossy(name),
                tag_name(e)
            ));
        }
        match self.first.get_mut(self.count) {
            Some(slot) => *slot = name,
            None => self.more.push(name),
        }
        self.count += 1;
        Ok(())
    }
}

/// How severe a result element is. Several in one `<testcase>` are one attempt, which
/// takes the most severe, as JUnit reporting tools rank them (publish-unit-test-result-
/// action: error over failure over skipped).
fn severity(outcome: AttemptOutcome) -> u8 {
    match outcome {
        AttemptOutcome::Errored => 2,
        AttemptOutcome::Failed => 1,
        _ => 0,
    }
}

fn failure_of(e: &BytesStart<'_>) -> Result<Failure, String> {
    let mut failure = Failure::default();
    attrs(e, |key, value| match key {
        b"message" if !value.is_empty() => failure.message = Some(value.into_owned()),
        b"type" if !value.is_empty() => failure.kind = Some(value.into_owned()),
        _ => {}
    })?;
    Ok(failure)
}

/// How much of a report the parser keeps, and when it gives up.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// Checked every few hundred events: set, the parse stops with an error (the server
    /// sets it when the request has timed out, so that nobody waits for the answer).
    pub cancel: Option<&'a AtomicBool>,
    /// The environment the report's path names (see [`super::path_environment`]): a
    /// Gradle test task's folder, such as Android's `testReleaseUnitTest`. The same test
    /// in two environments of one run is two tests, not a rerun.
    pub environment: Option<&'a str>,
}

/// Events between two looks at [`ParseOptions::cancel`].
const CANCEL_EVERY: u32 = 256;

/// xmlrunner's `module.Class-20261207061908` (its default suffix, the run's time) or
/// nose2's `nose2-junit`.
fn is_py_unittest_suite(name: &str) -> bool {
    name == "nose2-junit"
        || name.rsplit_once('-').is_some_and(|(class, stamp)| {
            !class.is_empty()
                && !class.contains(char::is_whitespace)
                && stamp.len() == 14
                && stamp.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A unittest subtest's name, `test_rows (i=1)`, `test_rows [msg] (i=1)` or
/// `test_rows [msg]`: the test method and what tells the subtest.
fn subtest_of(name: &str) -> Option<(&str, &str)> {
    let (test, params) = name.split_once(' ')?;
    let ident = test.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && test.chars().all(|c| c.is_alphanumeric() || c == '_');
    let told = (params.starts_with('(') && params.ends_with(')'))
        || (params.starts_with('[') && params.ends_with([']', ')']));
    (ident && told).then_some((test, params))
}

/// Stream-parse one report, calling `on_case` for every `<testcase>` element as it closes.
pub fn parse_stream<R: BufRead, F>(input: R, on_case: F) -> Result<ReportInfo, ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    parse_stream_with(input, ParseOptions::default(), on_case)
}

/// [`parse_stream`] with options.
pub fn parse_stream_with<R: BufRead, F>(
    input: R,
    options: ParseOptions<'_>,
    mut on_case: F,
) -> Result<ReportInfo, ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut machine = Machine::for_report(&options);
    let mut buf = Vec::with_capacity(4096);
    loop {
        machine.check_cancel(&options, reader.buffer_position())?;
        // Where the next event starts: errors about a tag point at its `<`.
        let start = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|e| ParseError {
            offset: reader.error_position(),
            reason: format!("malformed XML: {e}"),
        })?;
        let offset = reader.buffer_position();
        if machine.event(start, offset, event, &mut on_case)? {
            break;
        }
        buf.clear();
    }
    Ok(machine.finish())
}

/// Parse a report held in memory (plain UTF-8 XML). Events borrow from `input` instead of
/// being copied into a buffer, so a huge text node costs nothing beyond the input itself.
pub fn parse_slice_with<F>(
    input: &[u8],
    options: ParseOptions<'_>,
    mut on_case: F,
) -> Result<ReportInfo, ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut machine = Machine::for_report(&options);
    loop {
        machine.check_cancel(&options, reader.buffer_position())?;
        let start = reader.buffer_position();
        let event = reader.read_event().map_err(|e| ParseError {
            offset: reader.error_position(),
            reason: format!("malformed XML: {e}"),
        })?;
        let offset = reader.buffer_position();
        if machine.event(start, offset, event, &mut on_case)? {
            break;
        }
    }
    Ok(machine.finish())
}

/// The parser's state between events.
#[derive(Default)]
struct Machine {
    info: ReportInfo,
    stack: Vec<Elem>,
    suites: Vec<SuiteFrame>,
    case: Option<CaseBuilder>,
    seen_root: bool,
    root_closed: bool,
    events: u32,
}

impl Machine {
    fn for_report(options: &ParseOptions<'_>) -> Machine {
        let mut machine = Machine::default();
        machine.info.environment = options.environment.map(str::to_string);
        machine
    }

    fn check_cancel(&mut self, options: &ParseOptions<'_>, at: u64) -> Result<(), ParseError> {
        self.events = self.events.wrapping_add(1);
        if self.events % CANCEL_EVERY == 0
            && options.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(ParseError {
                offset: at,
                reason: "parsing cancelled (the request timed out)".into(),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> ReportInfo {
        // A root <testsuites time> is the whole; without it, the suites' times add up.
        if self.info.time_s.is_none() {
            self.info.time_s = self.info.suites_time_s.or(self.info.cases_time_s);
        }
        self.info
    }

    /// Handle one event; `Ok(true)` at the end of the input.
    fn event<F>(
        &mut self,
        start: u64,
        offset: u64,
        event: Event<'_>,
        on_case: &mut F,
    ) -> Result<bool, ParseError>
    where
        F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
    {
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local_name = e.local_name();
                let name = local_name.as_ref();
                if self.root_closed {
                    return Err(ParseError {
                        offset: start,
                        reason: "malformed XML: more than one root element".into(),
                    });
                }
                if !self.seen_root {
                    self.seen_root = true;
                    if name != b"testsuites" && name != b"testsuite" {
                        return Err(ParseError {
                            offset: start,
                            reason: format!(
                                "{FOREIGN_ROOT}{}>, expected <testsuites> or <testsuite>",
                                String::from_utf8_lossy(e.name().as_ref())
                            ),
                        });
                    }
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ParseError {
                        offset: start,
                        reason: format!("elements nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                let parent = self.stack.last().copied();
                let elem = open_element(
                    name,
                    e,
                    parent,
                    &mut self.case,
                    &mut self.suites,
                    &mut self.info,
                )
                .map_err(|reason| ParseError {
                    offset: start,
                    reason,
                })?;
                if empty {
                    close_element(
                        elem,
                        &mut self.case,
                        &mut self.suites,
                        &mut self.info,
                        on_case,
                    )?;
                    if self.stack.is_empty() {
                        self.root_closed = true;
                    }
                } else {
                    self.stack.push(elem);
                }
            }
            Event::End(_) => {
                let elem = self.stack.pop().ok_or_else(|| ParseError {
                    offset: start,
                    reason: "malformed XML: closing tag without an opening tag".into(),
                })?;
                close_element(
                    elem,
                    &mut self.case,
                    &mut self.suites,
                    &mut self.info,
                    on_case,
                )?;
                if self.stack.is_empty() {
                    self.root_closed = true;
                }
            }
            Event::Text(ref t) => {
                let raw = t.as_ref();
                if self.stack.is_empty() {
                    if let Some(at) = raw.iter().position(|b| !b.is_ascii_whitespace()) {
                        return Err(outside_root(start + at as u64, self.seen_root, "text"));
                    }
                } else if let Some(body) = body_target(&self.stack, &mut self.case) {
                    truncate_push_bytes(body, raw);
                }
            }
            Event::CData(ref t) => {
                if self.stack.is_empty() {
                    return Err(outside_root(start, self.seen_root, "CDATA"));
                }
                if let Some(body) = body_target(&self.stack, &mut self.case) {
                    truncate_push_bytes(body, t.as_ref());
                }
            }
            Event::GeneralRef(ref r) => {
                if self.stack.is_empty() {
                    return Err(outside_root(start, self.seen_root, "an entity reference"));
                }
                if let Some(body) = body_target(&self.stack, &mut self.case) {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(ch)) => Some(ch.to_string()),
                        _ => quick_xml::escape::resolve_predefined_entity(
                            &String::from_utf8_lossy(r.as_ref()),
                        )
                        .map(str::to_string),
                    };
                    // Custom and external entities are never expanded (no billion laughs,
                    // no XXE): kept as written.
                    let text = resolved
                        .unwrap_or_else(|| format!("&{};", String::from_utf8_lossy(r.as_ref())));
                    truncate_push(body, &text);
                }
            }
            Event::Eof => {
                if !self.seen_root {
                    return Err(ParseError {
                        offset,
                        reason: "empty report: no root element".into(),
                    });
                }
                if let Some(open) = self.stack.first() {
                    return Err(ParseError {
                        offset,
                        reason: format!(
                            "unexpected end of file: {} still open (truncated report?)",
                            describe(*open, self.stack.len())
                        ),
                    });
                }
                return Ok(true);
            }
            // The DTD is skipped whole: no entity it declares is ever read or fetched.
            Event::Comment(ref c) if !self.seen_root => {
                if let Some(r) = testng_reporter(c.as_ref()) {
                    self.info.testng = Some(r);
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        Ok(false)
    }
}

fn outside_root(offset: u64, seen_root: bool, what: &str) -> ParseError {
    ParseError {
        offset,
        reason: if seen_root {
            format!("malformed XML: {what} after the root element")
        } else {
            format!("not a JUnit report: {what} before the root element")
        },
    }
}

fn describe(root: Elem, depth: usize) -> String {
    let name = match root {
        Elem::Suites => "<testsuites>",
        _ => "<testsuite>",
    };
    format!("{name} ({depth} element(s))")
}

fn body_target<'a>(stack: &[Elem], case: &'a mut Option<CaseBuilder>) -> Option<&'a mut String> {
    let top = *stack.last()?;
    let case = case.as_mut()?;
    match top {
        Elem::Final | Elem::SuiteError => case
            .final_failure
            .as_mut()
            .map(|(_, f)| f.body.get_or_insert_with(String::new)),
        Elem::Rerun | Elem::StackTrace => case
            .open_rerun
            .as_mut()
            .and_then(|(_, a)| a.failure.as_mut())
            .map(|f| f.body.get_or_insert_with(String::new)),
        _ => None,
    }
}

fn open_element(
    name: &[u8],
    e: &BytesStart<'_>,
    parent: Option<Elem>,
    case: &mut Option<CaseBuilder>,
    suites: &mut Vec<SuiteFrame>,
    info: &mut ReportInfo,
) -> Result<Elem, String> {
    let in_case = matches!(parent, Some(Elem::Case));
    let elem = match name {
        b"testsuites" if parent.is_none() => {
            info.root_bare = e.attributes().next().is_none();
            attrs(e, |key, value| match key {
                // The root's total wins over summing suites.
                b"time" => info.time_s = parse_time(&value),
                // Recent pytest names the root so; its suite name is configurable
                // (`junit_suite_name`), so this is the surer sign.
                b"name" if value == "pytest tests" => info.dialect = Dialect::Pytest,
                b"name" if value == "jest tests" => info.dialect = Dialect::Jest,
                b"name" if value == "vitest tests" => info.dialect = Dialect::Vitest,
                b"id" => info.root_has_id = true,
                _ => {}
            })?;
            Elem::Suites
        }
        b"testsuite" if case.is_none() => {
            info.suites += 1;
            let nested = matches!(parent, Some(Elem::Suite));
            if nested {
                if let Some(outer) = suites.last_mut() {
                    outer.has_suites = true;
                }
            }
            let mut frame = SuiteFrame {
                name: None,
                file: None,
                project: None,
                device: None,
                flavor: None,
                agp: false,
                has_suites: false,
                cases: 0,
                broke: false,
            };
            let outermost = !nested;
            let (mut hostname, mut has_id) = (None, false);
            let (mut disabled, mut stamped) = (false, false);
            attrs(e, |key, value| match key {
                b"name" => frame.name = Some(value.as_ref().into()),
                b"hostname" => hostname = Some(value.into_owned()),
                b"id" => has_id = true,
                b"disabled" => disabled = true,
                b"file" | b"filepath" => frame.file = Some(value.into_owned()),
                b"tests" if outermost => {
                    if let Ok(n) = value.trim().parse::<u64>() {
                        *info.declared_tests.get_or_insert(0) += n;
                    }
                }
                // Outermost suites' times add up; a root <testsuites time> wins (see Eof).
                b"time" if outermost => {
                    if let Some(t) = parse_time(&value) {
                        *info.suites_time_s.get_or_insert(0.0) += t;
                    }
                }
                b"timestamp" if value.is_empty() => stamped = true,
                b"timestamp" => {
                    stamped = true;
                    // Compared as times, not as text: offsets and formats differ.
                    if let Ok(t) = crate::ci_env::parse_timestamp(&value) {
                        if t >= EARLIEST_TIMESTAMP && info.timestamp_s.is_none_or(|e| t < e) {
                            info.timestamp = Some(value.into_owned());
                            info.timestamp_s = Some(t);
                        }
                    }
                }
                _ => {}
            })?;
            let node = info.root_bare && disabled && hostname.is_some() && !stamped && !has_id;
            if node && info.dialect == Dialect::Generic {
                info.dialect = Dialect::NodeTest;
            }
            if frame.name.as_deref() == Some("pytest") {
                info.dialect = Dialect::Pytest;
            }
            let root = parent.is_none();
            if frame.name.as_deref().is_some_and(is_py_unittest_suite)
                && info.dialect == Dialect::Generic
            {
                info.dialect = Dialect::PyUnittest;
            }
            if root && frame.name.as_deref() == Some("Cucumber") && info.dialect == Dialect::Generic
            {
                info.dialect = Dialect::CucumberJs;
            }
            if info.root_has_id && !has_id && hostname.is_some() && info.dialect == Dialect::Generic
                || info.dialect == Dialect::Playwright
            {
                info.dialect = Dialect::Playwright;
                frame.project = hostname.filter(|h| !h.is_empty());
            }
            if outermost {
                if frame.name.as_deref() == Some("Root Suite") {
                    // A root suite without a file (plain mocha) ends the last spec's.
                    info.spec_file = frame.file.clone();
                } else if frame.file.is_none() {
                    frame.file = info.spec_file.clone();
                }
            }
            suites.push(frame);
            Elem::Suite
        }
        b"testcase" if case.is_none() => {
            info.testcases += 1;
            let mut builder = CaseBuilder {
                ordinal: info.testcases,
                ..CaseBuilder::default()
            };
            if matches!(parent, Some(Elem::Suite)) {
                if let Some(suite) = suites.last_mut() {
                    suite.cases += 1;
                    builder.ordinal = suite.cases;
                }
            }
            let mut stamped_line = (false, false);
            attrs(e, |key, value| match key {
                b"name" => builder.name = Some(value.into_owned()),
                b"classname" | b"class" => builder.classname = Some(value.into_owned()),
                b"file" | b"filepath" => builder.file = Some(value.into_owned()),
                b"time" | b"duration" => builder.time = parse_time(&value),
                b"status" | b"result" => {
                    let v = value.to_ascii_lowercase();
                    if matches!(
                        v.as_str(),
                        "skipped"
                            | "skip"
                            | "disabled"
                            | "notrun"
                            | "not_run"
                            | "ignored"
                            | "pending"
                            // googletest: `status="notrun" result="suppressed"` for DISABLED_.
                            | "suppressed"
                    ) {
                        builder.skipped = true;
                    }
                }
                b"skipped" | b"ignored" if value == "true" => builder.skipped = true,
                // xmlrunner's own attributes (see `Dialect::PyUnittest`).
                b"timestamp" => stamped_line.0 = true,
                b"line" => stamped_line.1 = true,
                _ => {}
            })?;
            if stamped_line.0 && stamped_line.1 && info.dialect == Dialect::Generic {
                info.dialect = Dialect::PyUnittest;
            }
            // Node's test runner writes a test outside any `describe` straight under its
            // bare root, before any suite could tell the dialect.
            let node_top = info.root_bare
                && matches!(parent, Some(Elem::Suites))
                && builder.classname.as_deref() == Some("test");
            if node_top && info.dialect == Dialect::Generic {
                info.dialect = Dialect::NodeTest;
            }
            *case = Some(builder);
            Elem::Case
        }
        b"failure" | b"error" if in_case => {
            let c = case.as_mut().expect("in case");
            let outcome = if name == b"error" {
                AttemptOutcome::Errored
            } else {
                AttemptOutcome::Failed
            };
            // Several results in one testcase are one failed attempt (doctest writes one
            // <failure> per failed check; some tools add an <error> for a broken teardown
            // after the <failure>): it takes the most severe, the first of its kind.
            let kept = c.final_failure.as_ref().map(|(o, _)| severity(*o));
            if kept.is_none_or(|k| severity(outcome) > k) {
                c.final_failure = Some((outcome, failure_of(e)?));
                Elem::Final
            } else {
                check_attrs(e)?;
                Elem::Other
            }
        }
        b"failure" | b"error" if matches!(parent, Some(Elem::Suite)) && case.is_none() => {
            let Some(suite) = suites.last_mut().filter(|s| !s.broke) else {
                check_attrs(e)?;
                return Ok(Elem::Other);
            };
            suite.broke = true;
            info.suite_errors += 1;
            let outcome = if name == b"error" {
                AttemptOutcome::Errored
            } else {
                AttemptOutcome::Failed
            };
            *case = Some(CaseBuilder {
                name: Some(SUITE_ERROR_CASE.into()),
                final_failure: Some((outcome, failure_of(e)?)),
                ..CaseBuilder::default()
            });
            Elem::SuiteError
        }
        b"flakyFailure" | b"flakyError" | b"rerunFailure" | b"rerunError" if in_case => {
            let c = case.as_mut().expect("in case");
            let outcome = if name.ends_with(b"Error") {
                AttemptOutcome::Errored
            } else {
                AttemptOutcome::Failed
            };
            let mut duration = None;
            attrs(e, |key, value| {
                if key == b"time" {
                    duration = parse_time(&value);
                }
            })?;
            let attempt = Attempt {
                outcome,
                duration_s: duration,
                failure: Some(failure_of(e)?),
            };
            c.open_rerun = Some((name.starts_with(b"flaky"), attempt));
            Elem::Rerun
        }
        b"properties" if matches!(parent, Some(Elem::Suite)) && case.is_none() => {
            check_attrs(e)?;
            Elem::Properties
        }
        b"property" if matches!(parent, Some(Elem::Properties)) => {
            let (mut key, mut text) = (None, None);
            attrs(e, |k, value| match k {
                b"name" => key = Some(value.into_owned()),
                b"value" => text = Some(value.into_owned()),
                _ => {}
            })?;
            // Android's connected tests write one report per device, each with every test:
            // the device (and flavor) is the environment. Read only before the suite's
            // first test, so that all its tests are named alike.
            if let Some(suite) = suites.last_mut().filter(|s| s.cases == 0 && !s.has_suites) {
                // A label a name could not carry unambiguously is not used.
                let text = text
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty() && !t.contains(|c: char| c == ']' || c.is_control()));
                match key.as_deref() {
                    Some("device") => suite.device = text,
                    Some("flavor") => (suite.flavor, suite.agp) = (text, true),
                    Some("project") => suite.agp = true,
                    _ => {}
                }
            }
            Elem::Other
        }
        b"stackTrace" if matches!(parent, Some(Elem::Rerun)) => {
            check_attrs(e)?;
            Elem::StackTrace
        }
        b"skipped" if in_case => {
            let c = case.as_mut().expect("in case");
            attrs(e, |key, value| {
                if key == b"type" && value == "todo" {
                    c.todo = true;
                }
            })?;
            c.skipped = true;
            Elem::Skipped
        }
        _ => {
            check_attrs(e)?;
            Elem::Other
        }
    };
    Ok(elem)
}

fn close_element<F>(
    elem: Elem,
    case: &mut Option<CaseBuilder>,
    suites: &mut Vec<SuiteFrame>,
    info: &mut ReportInfo,
    on_case: &mut F,
) -> Result<(), ParseError>
where
    F: FnMut(TestCase, Dialect) -> Result<(), ParseError>,
{
    match elem {
        Elem::Suite => {
            if let Some(suite) = suites.pop() {
                if suite.cases > 0 || !suite.has_suites {
                    info.leaf_suites += 1;
                }
            }
        }
        Elem::Rerun => {
            if let Some(c) = case.as_mut() {
                if let Some((flaky, attempt)) = c.open_rerun.take() {
                    if flaky {
                        c.flaky.push(attempt);
                    } else {
                        c.reruns.push(attempt);
                    }
                }
            }
        }
        Elem::Case | Elem::SuiteError => {
            if let Some(builder) = case.take() {
                let case = finish_case(builder, suites, info.environment.as_deref(), info.dialect);
                for t in case.attempts.iter().filter_map(|a| a.duration_s) {
                    *info.cases_time_s.get_or_insert(0.0) += t;
                }
                on_case(case, info.dialect)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn trim_body(failure: &mut Failure) {
    if let Some(body) = failure.body.take() {
        let trimmed = body.trim();
        if !trimmed.is_empty() {
            failure.body = Some(trimmed.to_string());
        }
    }
}

fn finish_case(
    mut b: CaseBuilder,
    suites: &[SuiteFrame],
    path_environment: Option<&str>,
    dialect: Dialect,
) -> TestCase {
    for attempt in b.flaky.iter_mut().chain(b.reruns.iter_mut()) {
        if let Some(f) = attempt.failure.as_mut() {
            trim_body(f);
        }
    }
    if let Some((_, f)) = b.final_failure.as_mut() {
        trim_body(f);
    }
    let suite = suites.iter().rev().find_map(|s| s.name.clone());
    let file = b
        .file
        .or_else(|| suites.iter().rev().find_map(|s| s.file.clone()))
        .map(|f| match super::strip_checkout(&f) {
            Cow::Borrowed(_) => f,
            Cow::Owned(relative) => relative,
        });
    // Without a classname, the suite names the test (Jest, Catch2, some converters).
    let classname = b
        .classname
        .filter(|c| !c.is_empty())
        .or_else(|| suite.as_deref().map(str::to_string))
        .unwrap_or_default();
    // A test without a name cannot be told from its neighbours: merging them as reruns of
    // one test would invent flakiness, so each keeps its place as its name.
    let name = b
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("(unnamed testcase {})", b.ordinal));
    // A unittest subtest's failure is its test's, named in the message.
    let subtest = (dialect == Dialect::PyUnittest)
        .then(|| subtest_of(&name))
        .flatten();
    let name = match subtest {
        Some((test, params)) => {
            if let Some((_, f)) = b.final_failure.as_mut() {
                f.message = Some(match f.message.take() {
                    Some(m) => format!("{params} {m}"),
                    None => params.to_string(),
                });
            }
            test.to_string()
        }
        None => name,
    };
    // Node's `describe`s and parent tests are the suites around it.
    let name = if dialect == Dialect::NodeTest {
        let mut path: Vec<&str> = suites.iter().filter_map(|s| s.name.as_deref()).collect();
        if path.is_empty() {
            name
        } else {
            path.push(&name);
            path.join(" › ")
        }
    } else {
        name
    };
    // The test's environment, when one report of a run holds one environment's results:
    // the same test in two environments is two tests. `includeProjectInTestName` writes
    // `[firefox] renders header` itself.
    let device = suites.iter().rev().find_map(|s| {
        let device = s.device.as_deref().filter(|_| s.agp)?;
        Some(match s.flavor.as_deref() {
            Some(flavor) => Cow::Owned(format!("{device} {flavor}")),
            None => Cow::Borrowed(device),
        })
    });
    let environment = suites
        .iter()
        .rev()
        .find_map(|s| s.project.as_deref().map(Cow::Borrowed))
        .or(device)
        .or(path_environment.map(Cow::Borrowed));
    let name = match environment {
        Some(env)
            if !name
                .strip_prefix('[')
                .and_then(|n| n.strip_prefix(&*env))
                .is_some_and(|n| n.starts_with("] ")) =>
        {
            format!("[{env}] › {name}")
        }
        _ => name,
    };

    let mut attempts = Vec::with_capacity(1 + b.flaky.len() + b.reruns.len());
    // Flaky attempts failed before the final one; rerun attempts failed after it.
    attempts.extend(b.flaky);
    let last = match b.final_failure.filter(|_| !b.todo) {
        Some((outcome, failure)) => Attempt {
            outcome,
            duration_s: b.time,
            failure: Some(failure),
        },
        None => Attempt {
            outcome: if b.skipped {
                AttemptOutcome::Skipped
            } else {
                AttemptOutcome::Passed
            },
            duration_s: b.time,
            failure: None,
        },
    };
    attempts.push(last);
    attempts.extend(b.reruns);
    TestCase {
        classname,
        name,
        file,
        suite,
        attempts,
    }
}

#[cfg(test)]
mod attr_scan_tests {
    use super::*;
    use proptest::prelude::*;

    /// Each attribute's name and raw value, up to the first error (its message).
    type Reading = Vec<Result<(Vec<u8>, Vec<u8>), String>>;

    /// What quick-xml's attribute iterator reads from the tag `<t{attrs}>`.
    fn quick_xml_reads(attrs: &str) -> Reading {
        quick_xml_reads_in(&format!("<t{attrs}>"))
    }

    fn scan_reads(attrs: &str) -> Reading {
        scan_reads_in(&format!("<t{attrs}>"))
    }

    /// `read` of the first tag of `xml`, a start tag or an empty element.
    fn first_tag(xml: &str, read: impl FnOnce(&BytesStart<'_>, &mut Reading)) -> Reading {
        let mut reader = Reader::from_str(xml);
        let (Ok(Event::Start(e)) | Ok(Event::Empty(e))) = reader.read_event() else {
            return vec![Err("not a start tag".into())];
        };
        let mut out = Vec::new();
        read(&e, &mut out);
        out
    }

    fn quick_xml_reads_in(xml: &str) -> Reading {
        first_tag(xml, |e, out| {
            for a in e.attributes().with_checks(false) {
                match a {
                    Ok(a) => out.push(Ok((a.key.as_ref().to_vec(), a.value.to_vec()))),
                    Err(err) => return out.push(Err(err.to_string())),
                }
            }
        })
    }

    fn scan_reads_in(xml: &str) -> Reading {
        first_tag(xml, |e, out| {
            let mut scan = AttrScan::of(e);
            while let Some(a) = scan.next() {
                match a {
                    Ok(a) => {
                        let qname = quick_xml::name::QName(a.name);
                        assert_eq!(
                            a.local,
                            qname.local_name().as_ref(),
                            "local name of {qname:?}"
                        );
                        assert_eq!(a.amp, a.value.contains(&b'&'));
                        out.push(Ok((a.name.to_vec(), a.value.to_vec())))
                    }
                    Err(err) => return out.push(Err(err.to_string())),
                }
            }
        })
    }

    /// The scanner reads what quick-xml reads, and fails where it fails, with the same
    /// message and position: a report accepted or refused before still is.
    #[test]
    fn the_scanner_reads_tags_as_quick_xml_does() {
        for attrs in [
            "",
            " ",
            r#" name="a" classname='b' time="1.5""#,
            " a = \"x\"\t\nb\r\n=\n'y'",
            r#" a="1"b="2""#,
            r#" x:name="ns" name="plain""#,
            r#" a="it's" b='say "hi"'"#,
            r#" a="&lt;&amp;&#x41;""#,
            r#" a="""#,
            " a",
            " a ",
            " a b=\"1\"",
            " a=",
            " a= ",
            " a=b",
            " a=\"unterminated",
            " a='unterminated",
            r#" ="no name""#,
            r#" a="1" ="2""#,
        ] {
            assert_eq!(scan_reads(attrs), quick_xml_reads(attrs), "tag <t{attrs}>");
            // An empty element's `/` is not part of its attributes.
            let empty = format!("<t{attrs}/>");
            assert_eq!(
                scan_reads_in(&empty),
                quick_xml_reads_in(&empty),
                "tag {empty}"
            );
        }
        assert_eq!(
            scan_reads_in(r#"<testcase name="a" time="1" />"#),
            vec![
                Ok((b"name".to_vec(), b"a".to_vec())),
                Ok((b"time".to_vec(), b"1".to_vec()))
            ]
        );
    }

    proptest! {
        #[test]
        fn the_scanner_agrees_with_quick_xml_on_any_tag(attrs in "[ab:= \t\n'\"x&;]{0,24}") {
            let attrs = format!(" {attrs}");
            prop_assert_eq!(scan_reads(&attrs), quick_xml_reads(&attrs));
            let empty = format!("<t{attrs}/>");
            prop_assert_eq!(scan_reads_in(&empty), quick_xml_reads_in(&empty));
        }
    }
}
