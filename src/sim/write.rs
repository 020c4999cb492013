//! Report writers, one per dialect, shaped like what the real tools write; and the
//! `runs.csv` ingest manifest.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::config::Dialect;
use super::engine::{AttemptRec, BROKEN, GROUP, PASS};
use super::names::{self, Template};
use super::rng::{key, mix, Purpose};
use super::world::{TestW, World};

/// One failed in-run attempt as a report shows it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: &'static str,
    pub error: bool,
    pub message: String,
}

/// The message of test `t`'s failed in-run attempt `r` (whose cause is `cause`).
pub fn failure_msg(w: &World, rec: &AttemptRec, t: u32, r: usize, cause: u8) -> Msg {
    let test = &w.tests[t as usize];
    let d = w.dialect(test.job);
    let commit = w.runs[rec.run as usize].commit as u64;
    let (tpl, h): (Template, u64) = if !test.children.is_empty() {
        // A Go parent has no message of its own: its subtest failed.
        return Msg {
            kind: "",
            error: false,
            message: String::new(),
        };
    } else if cause == BROKEN {
        let pool = if test.platform_broken {
            names::platform_templates(d)
        } else {
            names::broken_templates(d)
        };
        let h = key(w.seed, Purpose::BreakMessage, &[t as u64, commit]);
        (pool[(h % pool.len() as u64) as usize], h)
    } else if cause == GROUP {
        let g = test.group.unwrap_or(0) as u64;
        let group = &w.groups[g as usize];
        let h = key(
            w.seed,
            Purpose::Message,
            &[u64::MAX - g, rec.run as u64, rec.attempt as u64, r as u64],
        );
        (group.template, h)
    } else {
        let pool = names::flaky_templates(d);
        let h = key(
            w.seed,
            Purpose::Message,
            &[rec.run as u64, rec.attempt as u64, t as u64, r as u64],
        );
        let which = if test.templates.is_empty() {
            0
        } else {
            test.templates[(h % test.templates.len() as u64) as usize] as usize
        };
        (pool[which % pool.len()], h)
    };
    Msg {
        kind: tpl.kind,
        error: tpl.error,
        message: names::render(tpl.text, mix(h), &test.func),
    }
}

/// XML-escape for attributes and text (what most Java/Python/JS writers do).
fn esc(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

/// Escape element text, keeping newlines literal.
fn esc_text(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\t' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

/// Go's `encoding/xml` escaping (attributes and text alike).
fn esc_go(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

fn cdata(out: &mut String, s: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&s.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// One test as one attempt's report shows it.
struct Case<'a> {
    t: u32,
    test: &'a TestW,
    /// In-run attempts' causes; `[PASS]` for a plain pass.
    tries: &'a [u8],
}

const ONE_PASS: &[u8] = &[PASS];

impl Case<'_> {
    fn final_fail(&self) -> bool {
        self.tries.last().is_some_and(|&c| c != PASS)
    }
}

/// The tests of the attempt's job that exist on its commit, in report order.
fn cases<'a>(w: &'a World, rec: &'a AttemptRec) -> Vec<Case<'a>> {
    let job = &w.jobs[rec.job as usize];
    let time = w.commits[w.runs[rec.run as usize].commit as usize].time;
    job.tests
        .clone()
        .filter(|&t| w.tests[t as usize].exists_at(time))
        .map(|t| Case {
            t,
            test: &w.tests[t as usize],
            tries: rec
                .fail_of(t)
                .map(|f| f.tries.as_slice())
                .unwrap_or(ONE_PASS),
        })
        .collect()
}

/// Consecutive cases of one suite (reports list a suite's tests together).
fn by_suite<'a, 'b>(cases: &'b [Case<'a>]) -> Vec<&'b [Case<'a>]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=cases.len() {
        if i == cases.len() || cases[i].test.suite != cases[start].test.suite {
            if i > start {
                out.push(&cases[start..i]);
            }
            start = i;
        }
    }
    out
}

fn java_trace(test: &TestW, m: &Msg) -> String {
    let class = &test.classname;
    let simple = class.rsplit('.').next().unwrap_or(class);
    format!(
        "{kind}: {msg}\n\tat {class}.{func}({simple}.java:{line})\n\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)\n\tat java.base/java.lang.reflect.Method.invoke(Method.java:580)\n\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:728)\n",
        kind = m.kind,
        msg = m.message,
        func = test.func,
        line = test.line,
    )
}

fn secs3(out: &mut String, t: f64) {
    let _ = write!(out, "{t:.3}");
}

/// Surefire: one `TEST-<class>.xml` per class, or everything in one compact file.
fn surefire(w: &World, rec: &AttemptRec, compact: bool) -> Vec<(String, String)> {
    let reruns = w.jobs[rec.job as usize].cfg.in_run_reruns;
    let all = cases(w, rec);
    let mut files = Vec::new();
    let mut body = String::new();
    if compact {
        body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    }
    for suite in by_suite(&all) {
        let (mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0.0);
        let mut cases_xml = String::with_capacity(suite.len() * 120);
        for c in suite {
            let times: Vec<f64> = (0..c.tries.len())
                .map(|r| w.test_time(rec.run as usize, rec.attempt, c.t, r))
                .collect();
            let last_time = *times.last().unwrap_or(&0.0);
            time += times.iter().sum::<f64>();
            let indent = if compact { "" } else { "  " };
            let _ = write!(cases_xml, "{indent}<testcase name=\"");
            esc(&mut cases_xml, &c.test.name);
            cases_xml.push_str("\" classname=\"");
            esc(&mut cases_xml, &c.test.classname);
            cases_xml.push_str("\" time=\"");
            secs3(&mut cases_xml, if c.test.skipped { 0.0 } else { last_time });
            cases_xml.push('"');
            if c.test.skipped {
                skipped += 1;
                cases_xml.push_str(">\n");
                let _ = writeln!(
                    cases_xml,
                    "{indent}  <skipped message=\"Disabled until ACME-{} is fixed\"/>",
                    1000 + c.test.line
                );
                let _ = writeln!(cases_xml, "{indent}</testcase>");
                continue;
            }
            if c.tries == ONE_PASS {
                cases_xml.push_str("/>\n");
                continue;
            }
            cases_xml.push_str(">\n");
            let msgs: Vec<Msg> = c
                .tries
                .iter()
                .enumerate()
                .filter(|(_, &cause)| cause != PASS)
                .map(|(r, &cause)| failure_msg(w, rec, c.t, r, cause))
                .collect();
            let elem = |m: &Msg, flaky: bool, first: bool| -> &'static str {
                match (flaky, first, m.error) {
                    (true, _, false) => "flakyFailure",
                    (true, _, true) => "flakyError",
                    (false, true, false) => "failure",
                    (false, true, true) => "error",
                    (false, false, false) => "rerunFailure",
                    (false, false, true) => "rerunError",
                }
            };
            let flaky = !c.final_fail();
            if !flaky {
                if msgs.first().is_some_and(|m| m.error) {
                    errors += 1;
                } else {
                    failures += 1;
                }
            }
            for (i, m) in msgs.iter().enumerate() {
                let name = elem(m, flaky, i == 0);
                let _ = write!(cases_xml, "{indent}  <{name} message=\"");
                esc(&mut cases_xml, &m.message);
                cases_xml.push_str("\" type=\"");
                esc(&mut cases_xml, m.kind);
                cases_xml.push('"');
                if compact {
                    cases_xml.push_str("/>\n");
                    continue;
                }
                cases_xml.push('>');
                let trace = java_trace(c.test, m);
                if name == "failure" || name == "error" {
                    cdata(&mut cases_xml, &trace);
                } else {
                    cases_xml.push_str("\n      <stackTrace>");
                    cdata(&mut cases_xml, &trace);
                    let _ = write!(cases_xml, "</stackTrace>\n    ");
                }
                let _ = writeln!(cases_xml, "</{name}>");
            }
            let _ = writeln!(cases_xml, "{indent}</testcase>");
        }
        let class = &suite[0].test.suite;
        if compact {
            body.push_str("<testsuite name=\"");
        } else {
            body.clear();
            body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report-3.0.xsd\" version=\"3.0\" name=\"");
        }
        esc(&mut body, class);
        let _ = writeln!(
            body,
            "\" time=\"{time:.3}\" tests=\"{}\" errors=\"{errors}\" skipped=\"{skipped}\" failures=\"{failures}\">",
            suite.len()
        );
        if !compact {
            let _ = write!(
                body,
                "  <properties>\n    <property name=\"java.version\" value=\"21.0.5\"/>\n    <property name=\"os.name\" value=\"Linux\"/>\n    <property name=\"surefire.rerunFailingTestsCount\" value=\"{reruns}\"/>\n  </properties>\n"
            );
        }
        body.push_str(&cases_xml);
        body.push_str("</testsuite>\n");
        if !compact {
            files.push((format!("TEST-{class}.xml"), std::mem::take(&mut body)));
        }
    }
    if compact {
        body.push_str("</testsuites>\n");
        files.push(("junit.xml".to_string(), body));
    }
    files
}

/// pytest junitxml (xunit1) with pytest-rerunfailures: one line, each rerun attempt a
/// bare `<testcase/>` before the final one.
fn pytest(w: &World, rec: &AttemptRec) -> Vec<(String, String)> {
    let all = cases(w, rec);
    let (mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0.0);
    let mut xml = String::with_capacity(all.len() * 160);
    for c in &all {
        let open = |xml: &mut String, t: f64| {
            xml.push_str("<testcase classname=\"");
            esc(xml, &c.test.classname);
            xml.push_str("\" file=\"");
            esc(xml, c.test.file.as_deref().unwrap_or(""));
            let _ = write!(xml, "\" line=\"{}\" name=\"", c.test.line);
            esc(xml, &c.test.name);
            let _ = write!(xml, "\" time=\"{t:.3}\"");
        };
        if c.test.skipped {
            skipped += 1;
            open(&mut xml, 0.0);
            let _ = write!(
                xml,
                "><skipped type=\"pytest.skip\" message=\"requires sandbox credentials\">{}:{}: requires sandbox credentials</skipped></testcase>",
                c.test.src, c.test.line
            );
            continue;
        }
        for (r, &cause) in c.tries.iter().enumerate() {
            let t = w.test_time(rec.run as usize, rec.attempt, c.t, r);
            time += t;
            open(&mut xml, t);
            let last = r + 1 == c.tries.len();
            if !last || cause == PASS {
                // A rerun attempt: pytest-rerunfailures leaves it bare, like a pass.
                xml.push_str(" />");
                continue;
            }
            let m = failure_msg(w, rec, c.t, r, cause);
            let elem = if m.error { "error" } else { "failure" };
            if m.error {
                errors += 1;
            } else {
                failures += 1;
            }
            let _ = write!(xml, "><{elem} message=\"");
            esc(&mut xml, &m.message);
            xml.push_str("\">");
            let body = format!(
                "def {func}(client, db):\n>       assert resp.ok, resp.text\nE       {msg}\n\n{src}:{line}: {kind}",
                func = c.test.func,
                msg = m.message,
                src = c.test.src,
                line = c.test.line + 7,
                kind = m.kind
            );
            esc_text(&mut xml, &body);
            let _ = write!(xml, "</{elem}></testcase>");
        }
    }
    let start = w.runs[rec.run as usize].started_at;
    let h = key(w.seed, Purpose::Message, &[rec.run as u64, rec.job as u64]);
    let micros = (h >> 32) % 1_000_000;
    let ts = chrono::DateTime::from_timestamp(rec.started_at.max(start) + 40, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let ts = format!("{ts}.{micros:06}+00:00");
    let host = h & 0xFF_FFFF;
    let mut out = String::with_capacity(xml.len() + 300);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" errors=\"{errors}\" failures=\"{failures}\" skipped=\"{skipped}\" tests=\"{}\" time=\"{time:.3}\" timestamp=\"{ts}\" hostname=\"fv-az{host:06x}\">",
        all.len()
    );
    out.push_str(&xml);
    out.push_str("</testsuite></testsuites>");
    vec![("junit.xml".to_string(), out)]
}

/// gotestsum: a `<testsuite>` per package; every attempt its own `<testcase>`, failed
/// ones first (gotestsum lists a package's failures, then skips, then passes).
fn gotestsum(w: &World, rec: &AttemptRec) -> Vec<(String, String)> {
    let all = cases(w, rec);
    let ts = rfc3339(rec.started_at + 30);
    let mut out = String::with_capacity(all.len() * 200);
    let mut suites = String::new();
    let (mut total_tests, mut total_fail, mut total_time) = (0usize, 0usize, 0.0);
    for pkg in by_suite(&all) {
        let mut failed_xml = String::new();
        let mut skipped_xml = String::new();
        let mut passed_xml = String::new();
        let (mut tests, mut fails, mut time) = (0usize, 0usize, 0.0);
        let max_tries = pkg.iter().map(|c| c.tries.len()).max().unwrap_or(1);
        for r in 0..max_tries {
            for c in pkg.iter().filter(|c| r < c.tries.len() && !c.test.skipped) {
                let t = w.test_time(rec.run as usize, rec.attempt, c.t, r);
                time += if c.test.parent.is_none() { t } else { 0.0 };
                tests += 1;
                let cause = c.tries[r];
                let target = if cause == PASS {
                    &mut passed_xml
                } else {
                    &mut failed_xml
                };
                target.push_str("\t\t<testcase classname=\"");
                esc_go(target, &c.test.classname);
                target.push_str("\" name=\"");
                esc_go(target, &c.test.name);
                let _ = write!(target, "\" time=\"{t:.6}\">");
                if cause != PASS {
                    fails += 1;
                    let m = failure_msg(w, rec, c.t, r, cause);
                    let mut text = format!("=== RUN   {}\n", c.test.name);
                    if !m.message.is_empty() {
                        for (i, line) in m.message.lines().enumerate() {
                            if i == 0 {
                                let _ =
                                    writeln!(text, "    {}:{}: {line}", c.test.src, c.test.line);
                            } else {
                                let _ = writeln!(text, "        {line}");
                            }
                        }
                    }
                    let _ = writeln!(text, "--- FAIL: {} ({t:.2}s)", c.test.name);
                    target.push_str("\n\t\t\t<failure message=\"Failed\" type=\"\">");
                    esc_go(target, &text);
                    target.push_str("</failure>\n\t\t");
                }
                target.push_str("</testcase>\n");
            }
        }
        for c in pkg.iter().filter(|c| c.test.skipped) {
            tests += 1;
            skipped_xml.push_str("\t\t<testcase classname=\"");
            esc_go(&mut skipped_xml, &c.test.classname);
            skipped_xml.push_str("\" name=\"");
            esc_go(&mut skipped_xml, &c.test.name);
            skipped_xml.push_str("\" time=\"0.000000\">\n\t\t\t<skipped message=\"");
            let text = format!(
                "=== RUN   {n}\n    {}:{}: skipping: needs docker\n--- SKIP: {n} (0.00s)\n",
                c.test.src,
                c.test.line,
                n = c.test.name
            );
            esc_go(&mut skipped_xml, &text);
            skipped_xml.push_str("\"></skipped>\n\t\t</testcase>\n");
        }
        total_tests += tests;
        total_fail += fails;
        total_time += time;
        let _ = write!(
            suites,
            "\t<testsuite tests=\"{tests}\" failures=\"{fails}\" time=\"{time:.6}\" name=\""
        );
        esc_go(&mut suites, &pkg[0].test.suite);
        let _ = write!(
            suites,
            "\" timestamp=\"{ts}\">\n\t\t<properties>\n\t\t\t<property name=\"go.version\" value=\"go1.23.4 linux/amd64\"></property>\n\t\t</properties>\n"
        );
        suites.push_str(&failed_xml);
        suites.push_str(&skipped_xml);
        suites.push_str(&passed_xml);
        suites.push_str("\t</testsuite>\n");
    }
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{total_tests}\" failures=\"{total_fail}\" errors=\"0\" time=\"{total_time:.6}\">\n"
    );
    out.push_str(&suites);
    out.push_str("</testsuites>\n");
    vec![("junit.xml".to_string(), out)]
}

/// jest-junit: a `<testsuite>` per describe block; no reruns.
fn jest(w: &World, rec: &AttemptRec) -> Vec<(String, String)> {
    let all = cases(w, rec);
    let ts = chrono::DateTime::from_timestamp(rec.started_at + 20, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let mut suites = String::with_capacity(all.len() * 180);
    let (mut total_fail, mut total_time) = (0usize, 0.0);
    for suite in by_suite(&all) {
        let mut xml = String::new();
        let (mut fails, mut skipped, mut time) = (0usize, 0usize, 0.0);
        for c in suite {
            // Without reruns only the (single) final attempt exists.
            let r = c.tries.len() - 1;
            let cause = c.tries[r];
            let t = if c.test.skipped {
                0.0
            } else {
                w.test_time(rec.run as usize, rec.attempt, c.t, r)
            };
            time += t;
            xml.push_str("    <testcase classname=\"");
            esc(&mut xml, &c.test.classname);
            xml.push_str("\" name=\"");
            esc(&mut xml, &c.test.name);
            let _ = writeln!(xml, "\" time=\"{t:.3}\">");
            if c.test.skipped {
                skipped += 1;
                xml.push_str("      <skipped/>\n");
            } else if cause != PASS {
                fails += 1;
                let m = failure_msg(w, rec, c.t, r, cause);
                let col = 5 + c.test.line % 30;
                let body = format!(
                    "{}\n    at Object.<anonymous> (/builds/acme/web/{}:{}:{col})\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)",
                    m.message, c.test.src, c.test.line
                );
                xml.push_str("      <failure>");
                esc_text(&mut xml, &body);
                xml.push_str("</failure>\n");
            }
            xml.push_str("    </testcase>\n");
        }
        total_fail += fails;
        total_time += time;
        suites.push_str("  <testsuite name=\"");
        esc(&mut suites, &suite[0].test.suite);
        let _ = writeln!(
            suites,
            "\" errors=\"0\" failures=\"{fails}\" skipped=\"{skipped}\" timestamp=\"{ts}\" time=\"{time:.3}\" tests=\"{}\">",
            suite.len()
        );
        suites.push_str(&xml);
        suites.push_str("  </testsuite>\n");
    }
    let mut out = String::with_capacity(suites.len() + 200);
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"jest tests\" tests=\"{}\" failures=\"{total_fail}\" errors=\"0\" time=\"{total_time:.3}\">",
        all.len()
    );
    out.push_str(&suites);
    out.push_str("</testsuites>\n");
    vec![("junit.xml".to_string(), out)]
}

/// cargo-nextest with retries: `<flakyFailure>`s in a passing case, or `<failure>` plus
/// `<rerunFailure>`s; the panic output is the element's text.
fn nextest(w: &World, rec: &AttemptRec) -> Vec<(String, String)> {
    let all = cases(w, rec);
    let ts = chrono::DateTime::from_timestamp(rec.started_at + 25, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string())
        .unwrap_or_default();
    let mut suites = String::with_capacity(all.len() * 200);
    let (mut total_fail, mut total_time) = (0usize, 0.0);
    for suite in by_suite(&all) {
        let mut xml = String::new();
        let (mut fails, mut skipped) = (0usize, 0usize);
        for c in suite {
            let times: Vec<f64> = (0..c.tries.len())
                .map(|r| w.test_time(rec.run as usize, rec.attempt, c.t, r))
                .collect();
            total_time += times.iter().sum::<f64>();
            // A passing case shows its passing attempt's time; a failed one its first.
            let last = if c.test.skipped {
                0.0
            } else if c.final_fail() {
                times[0]
            } else {
                *times.last().unwrap_or(&0.0)
            };
            xml.push_str("        <testcase name=\"");
            esc(&mut xml, &c.test.name);
            xml.push_str("\" classname=\"");
            esc(&mut xml, &c.test.classname);
            let _ = writeln!(xml, "\" timestamp=\"{ts}\" time=\"{last:.3}\">");
            if c.test.skipped {
                skipped += 1;
                xml.push_str("            <skipped/>\n");
            } else if c.tries != ONE_PASS {
                let flaky = !c.final_fail();
                if !flaky {
                    fails += 1;
                }
                let mut first = true;
                for (r, &cause) in c.tries.iter().enumerate() {
                    if cause == PASS {
                        continue;
                    }
                    let m = failure_msg(w, rec, c.t, r, cause);
                    let col = 5 + c.test.line % 40;
                    let text = format!(
                        "thread '{}' panicked at {}:{}:{col}:\n{}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
                        c.test.name, c.test.src, c.test.line, m.message
                    );
                    let elem = match (flaky, first) {
                        (true, _) => "flakyFailure",
                        (false, true) => "failure",
                        (false, false) => "rerunFailure",
                    };
                    if elem == "failure" {
                        xml.push_str("            <failure type=\"test failure\">");
                    } else {
                        let _ = write!(
                            xml,
                            "            <{elem} timestamp=\"{ts}\" time=\"{:.3}\" type=\"test failure\">",
                            times[r]
                        );
                    }
                    esc_text(&mut xml, &text);
                    let _ = writeln!(xml, "</{elem}>");
                    first = false;
                }
            }
            xml.push_str("        </testcase>\n");
        }
        total_fail += fails;
        suites.push_str("    <testsuite name=\"");
        esc(&mut suites, &suite[0].test.suite);
        let _ = writeln!(
            suites,
            "\" tests=\"{}\" disabled=\"{skipped}\" errors=\"0\" failures=\"{fails}\">",
            suite.len()
        );
        suites.push_str(&xml);
        suites.push_str("    </testsuite>\n");
    }
    let h = key(
        w.seed,
        Purpose::Message,
        &[rec.run as u64, rec.job as u64, 7],
    );
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xFFFF,
        h & 0xFFF,
        (h >> 4) & 0xFFF,
        mix(h) & 0xFFFF_FFFF_FFFF
    );
    let mut out = String::with_capacity(suites.len() + 300);
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"nextest-run\" tests=\"{}\" failures=\"{total_fail}\" errors=\"0\" uuid=\"{uuid}\" timestamp=\"{ts}\" time=\"{total_time:.3}\">",
        all.len()
    );
    out.push_str(&suites);
    out.push_str("</testsuites>\n");
    vec![("junit.xml".to_string(), out)]
}

/// The report files of one attempt: (file name, content). None when it left no report.
pub fn render(w: &World, rec: &AttemptRec) -> Vec<(String, String)> {
    if !rec.has_report() {
        return Vec::new();
    }
    match w.dialect(rec.job as usize) {
        Dialect::Surefire => surefire(w, rec, false),
        Dialect::Compact => surefire(w, rec, true),
        Dialect::Pytest => pytest(w, rec),
        Dialect::Gotestsum => gotestsum(w, rec),
        Dialect::Jest => jest(w, rec),
        Dialect::Nextest => nextest(w, rec),
    }
}

/// Test results one attempt's report holds (one per test, reruns merged).
pub fn results_of(w: &World, rec: &AttemptRec) -> u64 {
    if !rec.has_report() {
        return 0;
    }
    let time = w.commits[w.runs[rec.run as usize].commit as usize].time;
    w.jobs[rec.job as usize]
        .tests
        .clone()
        .filter(|&t| w.tests[t as usize].exists_at(time))
        .count() as u64
}

/// The attempt's folder, relative to the output folder.
pub fn attempt_dir(w: &World, rec: &AttemptRec) -> String {
    format!(
        "reports/{}/{}-{}",
        w.jobs[rec.job as usize].cfg.name, w.runs[rec.run as usize].run_id, rec.attempt
    )
}

/// Totals of what was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
    pub results: u64,
}

/// Write every attempt's reports under `out/reports/`, in parallel.
pub fn write_reports(w: &World, recs: &[AttemptRec], out: &Path) -> io::Result<Written> {
    recs.par_iter()
        .map(|rec| -> io::Result<Written> {
            let dir: PathBuf = out.join(attempt_dir(w, rec));
            std::fs::create_dir_all(&dir)?;
            let mut written = Written {
                results: results_of(w, rec),
                ..Written::default()
            };
            for (name, content) in render(w, rec) {
                std::fs::write(dir.join(name), content.as_bytes())?;
                written.files += 1;
                written.bytes += content.len() as u64;
            }
            Ok(written)
        })
        .try_reduce(Written::default, |a, b| {
            Ok(Written {
                files: a.files + b.files,
                bytes: a.bytes + b.bytes,
                results: a.results + b.results,
            })
        })
}

/// Write `out/runs.csv`, sorted by start time, then job.
pub fn write_manifest(w: &World, recs: &[AttemptRec], out: &Path) -> io::Result<u64> {
    let mut order: Vec<&AttemptRec> = recs.iter().collect();
    order.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then_with(|| {
                w.jobs[a.job as usize]
                    .cfg
                    .name
                    .cmp(&w.jobs[b.job as usize].cfg.name)
            })
            .then_with(|| {
                w.runs[a.run as usize]
                    .run_id
                    .cmp(&w.runs[b.run as usize].run_id)
            })
            .then_with(|| a.attempt.cmp(&b.attempt))
    });
    let mut csv = csv::Writer::from_path(out.join("runs.csv")).map_err(io::Error::other)?;
    csv.write_record([
        "path",
        "commit",
        "branch",
        "job",
        "run_id",
        "attempt",
        "started_at",
        "duration_s",
    ])
    .map_err(io::Error::other)?;
    for rec in &order {
        let run = &w.runs[rec.run as usize];
        let commit = &w.commits[run.commit as usize];
        csv.write_record([
            attempt_dir(w, rec).as_str(),
            commit.sha.as_str(),
            commit.branch.as_str(),
            w.jobs[rec.job as usize].cfg.name.as_str(),
            run.run_id.to_string().as_str(),
            rec.attempt.to_string().as_str(),
            rfc3339(rec.started_at).as_str(),
            format!("{}", rec.duration_s as i64).as_str(),
        ])
        .map_err(io::Error::other)?;
    }
    csv.flush()?;
    Ok(order.len() as u64)
}
