use super::*;
use crate::model::{AttemptOutcome, RunOutcome};

fn parse(xml: &str) -> Report {
    parse_bytes(xml.as_bytes()).expect("parses")
}

fn err(xml: &[u8]) -> LocatedError {
    let e = parse_bytes(xml).expect_err("must be rejected");
    located_in(xml, &e)
}

#[test]
fn surefire_flaky_failure_is_attempts_of_one_test() {
    let r = parse(
        r#"<?xml version="1.0"?>
<testsuite name="com.acme.PaymentServiceIT" tests="1">
  <testcase name="refundsTwice" classname="com.acme.PaymentServiceIT" time="1.5">
    <flakyFailure message="timeout" type="java.net.SocketTimeoutException">
      <stackTrace>at com.acme.X(X.java:1)</stackTrace>
      <system-out>noise</system-out>
    </flakyFailure>
    <flakyError message="boom" type="java.lang.IllegalStateException"/>
  </testcase>
</testsuite>"#,
    );
    assert_eq!(r.cases.len(), 1);
    let c = &r.cases[0];
    assert_eq!(c.attempts.len(), 3);
    assert_eq!(c.run_outcome(), RunOutcome::Flaky);
    assert_eq!(c.attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(c.attempts[1].outcome, AttemptOutcome::Errored);
    let f = c.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.kind.as_deref(), Some("java.net.SocketTimeoutException"));
    assert_eq!(f.body.as_deref(), Some("at com.acme.X(X.java:1)"));
}

#[test]
fn rerun_failure_means_every_attempt_failed() {
    let r = parse(
        r#"<testsuite><testcase name="t" classname="C">
        <failure message="m" type="T">trace</failure>
        <rerunFailure message="m" type="T"><stackTrace>trace2</stackTrace></rerunFailure>
        </testcase></testsuite>"#,
    );
    let c = &r.cases[0];
    assert_eq!(c.attempts.len(), 2);
    assert_eq!(c.run_outcome(), RunOutcome::Failed);
    assert_eq!(
        c.attempts[0].failure.as_ref().unwrap().body.as_deref(),
        Some("trace")
    );
}

#[test]
fn repeated_testcase_is_merged_into_attempts() {
    // gotestsum --rerun-fails and Gradle without mergeReruns repeat the case.
    let r = parse(
        r#"<testsuites><testsuite name="pkg">
        <testcase classname="pkg" name="TestX" time="0.1"><failure message="x"/></testcase>
        <testcase classname="pkg" name="TestY" time="0.1"/>
        <testcase classname="pkg" name="TestX" time="0.2"/>
        </testsuite></testsuites>"#,
    );
    assert_eq!(r.cases.len(), 2);
    assert_eq!(r.testcase_elements(), 3);
    assert_eq!(r.cases[0].attempts.len(), 2);
    assert_eq!(r.cases[0].run_outcome(), RunOutcome::Flaky);
}

#[test]
fn pytest_bare_repeats_are_failed_attempts() {
    let r = parse(
        r#"<testsuites><testsuite name="pytest" tests="1">
        <testcase classname="tests.test_a" name="test_x" time="0.1"/>
        <testcase classname="tests.test_a" name="test_x" time="0.1"/>
        <testcase classname="tests.test_a" name="test_x" time="0.2"/>
        </testsuite></testsuites>"#,
    );
    let c = &r.cases[0];
    assert_eq!(c.attempts.len(), 3);
    assert_eq!(c.failed_attempts(), 2);
    assert_eq!(c.run_outcome(), RunOutcome::Flaky);
}

#[test]
fn nested_suites_entities_cdata_and_skips() {
    let r = parse(
        "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\
        <testsuites><testsuite name=\"outer\" time=\"1,234.5\"><testsuite name=\"inner &amp; co\">\
        <testcase name=\"a &lt; b\"><failure><![CDATA[x < y]]> &amp; &#65;&custom;</failure></testcase>\
        <testcase name=\"s\"><skipped/></testcase>\
        <testcase name=\"d\" status=\"disabled\"/>\
        </testsuite></testsuite></testsuites>",
    );
    assert_eq!(r.info.suites, 2);
    assert_eq!(r.info.time_s, Some(1234.5));
    assert_eq!(r.cases.len(), 3);
    let a = &r.cases[0];
    assert_eq!(a.classname, "inner & co");
    assert_eq!(a.name, "a < b");
    assert_eq!(
        a.attempts[0].failure.as_ref().unwrap().body.as_deref(),
        Some("x < y & A&custom;")
    );
    assert_eq!(r.cases[1].run_outcome(), RunOutcome::Skipped);
    assert_eq!(r.cases[2].run_outcome(), RunOutcome::Skipped);
}

#[test]
fn billion_laughs_is_not_expanded() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite><testcase name="t" classname="c"><failure message="&lol3;">&lol3;</failure></testcase></testsuite>"#;
    let r = parse(xml);
    let f = r.cases[0].attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.body.as_deref(), Some("&lol3;"));
    assert_eq!(f.message.as_deref(), Some("&lol3;"));
}

#[test]
fn only_testsuite_is_an_empty_report() {
    let r = parse("<testsuite/>");
    assert!(r.cases.is_empty());
    assert_eq!(r.info.suites, 1);
}

#[test]
fn rejects_with_line_and_column() {
    let e = err(b"<testsuite>\n  <testcase name=\"a\">\n</testsuite>");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.reason.contains("malformed"), "{e}");

    let e = err(b"<?xml version=\"1.0\"?>\n<html><body/></html>");
    assert!(e.reason.starts_with("not a JUnit report"), "{e}");

    let e = err(b"");
    assert!(e.reason.starts_with("empty report"), "{e}");

    let e = err(b"<testsuite>\n<testcase name=\"a\"/>\n");
    assert!(e.reason.contains("unexpected end of file"), "{e}");
    assert_eq!(e.line, 3);

    let e = err(b"this is not xml");
    assert!(e.reason.contains("before the root"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let xml = format!("<testsuite>{}", "<a>".repeat(10_000));
    let e = err(xml.as_bytes());
    assert!(e.reason.contains("nested deeper"), "{e}");
}

#[test]
fn gzip_and_utf16_reports_are_decoded() {
    use std::io::Write;
    let xml = "<testsuite><testcase classname=\"c\" name=\"é\"/></testsuite>";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(xml.as_bytes()).unwrap();
    let r = parse_bytes(&gz.finish().unwrap()).unwrap();
    assert_eq!(r.cases[0].name, "é");

    let mut utf16 = vec![0xFF, 0xFE];
    for unit in xml.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let r = parse_bytes(&utf16).unwrap();
    assert_eq!(r.cases[0].name, "é");
}

#[test]
fn invalid_utf8_and_nul_are_read_leniently() {
    let xml = b"<testsuite><testcase classname=\"c\" name=\"bad\xff\x00name\"/></testsuite>";
    let r = parse_bytes(xml).unwrap();
    assert_eq!(r.cases.len(), 1);
    assert!(r.cases[0].name.starts_with("bad"));
}
