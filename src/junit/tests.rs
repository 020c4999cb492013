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
    // gzip'd UTF-16: the byte-order mark is looked for after decompression.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&utf16).unwrap();
    let r = parse_bytes(&gz.finish().unwrap()).unwrap();
    assert_eq!(r.cases[0].name, "é");
}

#[test]
fn a_declared_encoding_other_than_utf8_is_transcoded() {
    use std::io::Write;
    // ISO-8859-1 (read as browsers do: Windows-1252), as an old Ant or .NET tool writes it.
    let latin = b"<?xml version='1.0' encoding=\"ISO-8859-1\"?>\n<testsuite name=\"s\">\n\
        <testcase classname=\"Caf\xe9Test\" name=\"\x80 r\xe9sum\xe9\">\
        <failure message=\"\xe9chec\">na\xefve</failure></testcase></testsuite>";
    let r = parse_bytes(latin).unwrap();
    assert_eq!(r.cases[0].classname, "CaféTest");
    assert_eq!(r.cases[0].name, "€ résumé");
    let failure = r.cases[0].attempts[0].failure.as_ref().unwrap();
    assert_eq!(failure.message.as_deref(), Some("échec"));
    assert_eq!(failure.body.as_deref(), Some("naïve"));
    // The same through a reader, gzip'd.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(latin).unwrap();
    let r = parse_reader(&gz.finish().unwrap()[..]).unwrap();
    assert_eq!(r.cases[0].name, "€ résumé");
    // Shift_JIS, longer in UTF-8 than in the report, streamed in pieces.
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("テスト");
    let mut xml = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><testsuite>".to_vec();
    for i in 0..20_000 {
        xml.extend_from_slice(format!("<testcase classname=\"c\" name=\"{i}").as_bytes());
        xml.extend_from_slice(&sjis);
        xml.extend_from_slice(b"\"/>");
    }
    xml.extend_from_slice(b"</testsuite>");
    let r = parse_reader(&xml[..]).unwrap();
    assert_eq!(r.cases.len(), 20_000);
    assert_eq!(r.cases[19_999].name, "19999テスト");
    // A UTF-8 declaration, or a label no one knows, is read as UTF-8.
    for decl in ["UTF-8", "utf8", "x-unknown"] {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"{decl}\"?><testsuite><testcase classname=\"c\" name=\"é\"/></testsuite>"
        );
        assert!(is_plain(xml.as_bytes()), "{decl}");
        assert_eq!(parse_bytes(xml.as_bytes()).unwrap().cases[0].name, "é");
    }
}

#[test]
fn utf16_without_a_byte_order_mark_is_recognised_by_its_declaration() {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><testsuite><testcase classname=\"c\" name=\"ü\"/></testsuite>";
    let be: Vec<u8> = xml.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(parse_bytes(&be).unwrap().cases[0].name, "ü");
    let le: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(parse_bytes(&le).unwrap().cases[0].name, "ü");
}

#[test]
fn an_error_in_a_transcoded_report_names_its_line_and_column() {
    let latin = b"<?xml version=\"1.0\" encoding=\"latin1\"?>\n<testsuite>\n<testcase name=\"\xe9\xe9\" classname=\"c\"></testsuite>";
    let e = parse_bytes(latin).unwrap_err();
    let at = located_in(latin, &e);
    assert_eq!(at.line, 3, "{at}");
}

#[test]
fn undeclared_latin1_names_stay_distinct() {
    // Without a declaration the text is UTF-8; a name that is not keeps every byte apart.
    let xml = b"<testsuite><testcase classname=\"c\" name=\"caf\xe9\"/>\
        <testcase classname=\"c\" name=\"caf\xe8\"/></testsuite>";
    let r = parse_bytes(xml).unwrap();
    let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["café", "cafè"]);
}

#[test]
fn invalid_utf8_and_nul_are_read_leniently() {
    let xml = b"<testsuite><testcase classname=\"c\" name=\"bad\xff\x00name\"/></testsuite>";
    let r = parse_bytes(xml).unwrap();
    assert_eq!(r.cases.len(), 1);
    assert!(r.cases[0].name.starts_with("bad"));
}

#[test]
fn unescaped_lt_in_an_attribute_is_malformed() {
    // Catch2's approval baselines keep `name="<exe-name>"`: not XML.
    let e = err(b"<testsuites>\n  <testsuite name=\"<exe-name>\" tests=\"1\"/>\n</testsuites>");
    assert!(e.reason.contains("malformed XML"), "{e}");
    assert_eq!((e.line, e.column), (2, 3), "{e}");
}

#[test]
fn broken_attribute_syntax_is_malformed() {
    let e = err(b"<testsuite>\n<testcase name=\"a\" name=\"b\"/></testsuite>");
    assert!(e.reason.contains("malformed XML"), "{e}");
    assert!(e.reason.contains("`name` given twice"), "{e}");
    assert_eq!(e.line, 2, "{e}");
    // Past the dozen names held on the stack; a name that differs in its prefix is another.
    let many: String = (0..14).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let xml = format!("<testsuite><testcase name=\"t\"{many} a13=\"x\"/></testsuite>");
    let e = err(xml.as_bytes());
    assert!(e.reason.contains("`a13` given twice"), "{e}");
    let xml = format!("<testsuite><testcase name=\"t\"{many} x:a13=\"y\"/></testsuite>");
    assert_eq!(parse_bytes(xml.as_bytes()).unwrap().cases.len(), 1);
    let e = err(b"<testsuite><properties><property name=x/></properties></testsuite>");
    assert!(e.reason.contains("malformed XML"), "{e}");
    let e = err(b"<testsuites><testsuite loose text artifact/></testsuites>");
    assert!(e.reason.contains("malformed XML"), "{e}");
}

#[test]
fn content_outside_the_root_is_rejected() {
    let e = err(b"<testsuite/>\n&amp;");
    assert!(e.reason.contains("after the root"), "{e}");
    let e = err(b"<testsuite/>\nProgram code.\n");
    assert!(e.reason.contains("after the root"), "{e}");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
}

#[test]
fn several_results_in_one_testcase_are_one_attempt_taking_the_most_severe() {
    let r = parse(
        r#"<testsuite name="s">
        <testcase classname="c" name="errors"><skipped/>
          <failure message="first">one</failure><error message="teardown">two</error>
          <failure message="third"/></testcase>
        <testcase classname="c" name="fails"><failure message="a">x</failure><failure message="b">y</failure></testcase>
        <testcase classname="c" name="fails and skipped"><skipped/><failure message="f"/></testcase>
        </testsuite>"#,
    );
    let a = &r.cases[0].attempts;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Errored);
    let f = a[0].failure.as_ref().unwrap();
    assert_eq!(f.message.as_deref(), Some("teardown"));
    assert_eq!(f.body.as_deref(), Some("two"));
    let b = &r.cases[1].attempts;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].outcome, AttemptOutcome::Failed);
    assert_eq!(b[0].failure.as_ref().unwrap().body.as_deref(), Some("x"));
    assert_eq!(r.cases[2].run_outcome(), RunOutcome::Failed);
}

#[test]
fn leaf_suites_skip_wrappers() {
    let r = parse(
        r#"<testsuites><testsuite name="assembly"><testsuite name="ns">
        <testsuite name="A"><testcase name="a"/></testsuite>
        <testsuite name="B"><testcase name="b"/></testsuite>
        </testsuite><testcase name="direct"/></testsuite>
        <testsuite name="empty"/></testsuites>"#,
    );
    assert_eq!(r.info.suites, 5);
    // A, B, "assembly" (holds a case directly) and "empty"; "ns" only wraps.
    assert_eq!(r.info.leaf_suites, 4);
}

// Real outputs of the tools, see fixtures/junit/README.md for how they were made.

fn fixture(bytes: &[u8]) -> Report {
    parse_bytes(bytes).expect("fixture parses")
}

fn outcomes(c: &crate::model::TestCase) -> Vec<AttemptOutcome> {
    c.attempts.iter().map(|a| a.outcome).collect()
}

fn case<'a>(r: &'a Report, name: &str) -> &'a crate::model::TestCase {
    r.cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn pytest_rerunfailures_real_output() {
    use AttemptOutcome::*;
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/reruns.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    assert_eq!(r.testcase_elements(), 6);
    assert_eq!(r.cases.len(), 3);
    let flaky = case(&r, "test_flaky_once");
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    let broken = case(&r, "test_always_fails");
    assert_eq!(outcomes(broken), [Failed, Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let last = broken.attempts[2].failure.as_ref().unwrap();
    assert_eq!(
        last.message.as_deref(),
        Some("AssertionError: fails every attempt\nassert 1 == 2")
    );
    assert_eq!(
        broken.attempts[0].failure.as_ref().unwrap().kind.as_deref(),
        Some("rerun")
    );
    assert_eq!(outcomes(case(&r, "test_passes")), [Passed]);
}

#[test]
fn pytest_xdist_dist_each_repeats_are_runs_not_reruns() {
    use AttemptOutcome::*;
    // `--dist each` runs every test once per worker; the suite's `tests` counts each copy.
    // A passing copy before another is a pass, not pytest-rerunfailures' failed try.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-xdist/dist-each.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    assert_eq!(r.info.declared_tests, Some(4));
    assert_eq!(r.testcase_elements(), 4);
    let ok = case(&r, "test_ok");
    assert_eq!(outcomes(ok), [Passed, Passed]);
    assert_eq!(ok.run_outcome(), RunOutcome::Passed);
    let broken = case(&r, "test_broken");
    assert_eq!(outcomes(broken), [Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    // rerunfailures' reports keep reading as reruns: fewer tests declared than written.
    let reruns = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/reruns.xml"
    ));
    assert_eq!(reruns.info.declared_tests, Some(3));
    assert_eq!(reruns.testcase_elements(), 6);
    assert_eq!(
        case(&reruns, "test_flaky_once").run_outcome(),
        RunOutcome::Flaky
    );
    // Subtests count in `tests` without a `<testcase>` of their own: the report holds no
    // more elements than it declares, yet its repeat is a rerun (not every test repeats).
    let subtests = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/subtests-rerun.xml"
    ));
    assert_eq!(subtests.info.declared_tests, Some(4));
    assert_eq!(subtests.testcase_elements(), 3);
    let flaky = case(&subtests, "test_flaky_once");
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    // A failed call and its teardown error are two elements of one attempt.
    let teardown = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/teardown-error-no-reruns.xml"
    ));
    let c = case(&teardown, "test_fails_and_teardown_errors");
    assert_eq!(outcomes(c), [Failed]);
}

#[test]
fn pytest_rerunfailures_custom_suite_name_is_still_pytest() {
    // `-o junit_suite_name=mysuite`: only the root's `name="pytest tests"` tells.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/setup-error-custom-suite-name.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    let c = case(&r, "test_flaky_setup");
    assert_eq!(c.suite.as_deref(), Some("mysuite"));
    assert_eq!(
        outcomes(c),
        [AttemptOutcome::Failed, AttemptOutcome::Passed]
    );
    assert_eq!(c.run_outcome(), RunOutcome::Flaky);
}

#[test]
fn pytest_call_failure_and_teardown_error_are_one_attempt() {
    use AttemptOutcome::*;
    // pytest writes them as two <testcase>s of the same test.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/teardown-error-no-reruns.xml"
    ));
    assert_eq!(r.testcase_elements(), 2);
    let c = &r.cases[0];
    assert_eq!(outcomes(c), [Failed]);
    let f = c.attempts[0].failure.as_ref().unwrap();
    assert_eq!(
        f.message.as_deref(),
        Some("AssertionError: call fails\nassert False")
    );

    // With --reruns 1: the first attempt (failed call, broken teardown) is one bare
    // <testcase>, the second is the failure plus the teardown error.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-rerunfailures/teardown-error-reruns.xml"
    ));
    assert_eq!(r.testcase_elements(), 3);
    assert_eq!(outcomes(&r.cases[0]), [Failed, Failed]);
    assert_eq!(r.cases[0].run_outcome(), RunOutcome::Failed);
}

#[test]
fn jest_junit_records_no_retries() {
    // jest.retryTimes(2): jest-junit writes only each test's final result, so a test
    // that passed on its second try reads as a plain pass.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/jest-junit/retry-times.xml"
    ));
    assert_eq!(r.testcase_elements(), 3);
    assert_eq!(
        outcomes(case(&r, "retries flaky once")),
        [AttemptOutcome::Passed]
    );
    let broken = case(&r, "retries always fails");
    assert_eq!(outcomes(broken), [AttemptOutcome::Failed]);
    assert_eq!(broken.classname, "retries always fails");
}

#[test]
fn unnamed_testcases_are_not_merged_into_one_flaky_test() {
    let r = parse(
        r#"<testsuites><testsuite><testcase/><testcase><skipped/></testcase>
        <testcase><failure/></testcase><testcase name=" "><error/></testcase></testsuite></testsuites>"#,
    );
    assert_eq!(r.cases.len(), 4);
    assert!(r.cases.iter().all(|c| c.attempts.len() == 1));
    assert_eq!(r.cases[0].name, "(unnamed testcase 1)");
    assert_eq!(r.cases[3].name, "(unnamed testcase 4)");
    assert_eq!(r.cases[2].run_outcome(), RunOutcome::Failed);
}

#[test]
fn suite_level_error_is_a_failed_init_case() {
    // Ant writes this when the test class cannot load (JENKINS-6700): no <testcase> at all.
    let r = parse(
        r#"<testsuite errors="1" name="gda.XHDetectorTest" tests="1">
        <properties><property name="a" value="b"/></properties>
        <error message="gda/DAServer" type="java.lang.NoClassDefFoundError">java.lang.NoClassDefFoundError
        at X</error><error message="second"/>
        <system-out/></testsuite>"#,
    );
    assert_eq!(r.testcase_elements(), 0);
    assert_eq!(r.info.suite_errors, 1);
    assert_eq!(r.cases.len(), 1);
    let c = &r.cases[0];
    assert_eq!(
        (c.classname.as_str(), c.name.as_str()),
        ("gda.XHDetectorTest", SUITE_ERROR_CASE)
    );
    assert_eq!(c.run_outcome(), RunOutcome::Failed);
    let f = c.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.kind.as_deref(), Some("java.lang.NoClassDefFoundError"));
    assert_eq!(
        f.body.as_deref(),
        Some("java.lang.NoClassDefFoundError\n        at X")
    );
}

#[test]
fn nextest_retries_real_output() {
    use AttemptOutcome::*;
    // retries = 2: a flaky pass is <flakyFailure> + a passing case; a test failing every
    // try is <failure> (the first try, which the case's time and timestamp describe)
    // followed by one <rerunFailure> per retry.
    let r = fixture(include_bytes!("../../fixtures/junit/nextest/retries.xml"));
    assert_eq!(r.testcase_elements(), 3);
    let flaky = case(&r, "tests::flaky_once");
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    assert_eq!(flaky.attempts[0].duration_s, Some(0.011));
    assert_eq!(flaky.attempts[1].duration_s, Some(0.010));
    let f = flaky.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.kind.as_deref(), Some("test failure with exit code 101"));
    // The trace is the element's own text; its <system-out>/<system-err> stay out.
    let body = f.body.as_deref().unwrap();
    assert!(body.starts_with("thread 'tests::flaky_once' (29001) panicked at src/lib.rs:16:9:\nfails on the first attempt"), "{body}");
    assert!(!body.contains("running 1 test"), "{body}");

    let broken = case(&r, "tests::always_fails");
    assert_eq!(outcomes(broken), [Failed, Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let durations: Vec<_> = broken.attempts.iter().map(|a| a.duration_s).collect();
    assert_eq!(durations, [Some(0.022), Some(0.012), Some(0.005)]);
    assert_eq!(outcomes(case(&r, "tests::passes")), [Passed]);
}

#[test]
fn root_time_is_not_added_to_the_suites_times() {
    let r = parse(
        r#"<testsuites time="10"><testsuite name="a" time="4"/><testsuite name="b" time="6"/></testsuites>"#,
    );
    assert_eq!(r.info.time_s, Some(10.0));
    let r = parse(
        r#"<testsuites><testsuite name="a" time="4"/><testsuite name="b" time="6"/></testsuites>"#,
    );
    assert_eq!(r.info.time_s, Some(10.0));
}

#[test]
fn without_suite_times_the_cases_times_add_up() {
    // Bazel's test.xml and hand-rolled reporters: no suite time. Every attempt counts,
    // a bare rerun repeat included; a case without a time adds nothing.
    let r = parse(
        r#"<testsuites><testsuite name="a"><testcase classname="A" name="t1" time="2.5"/>
        <testcase classname="A" name="t2" time="1,000.5"><flakyFailure time="0.5"/></testcase>
        <testcase classname="A" name="t3"/><testcase classname="A" name="t1" time="1"/>
        </testsuite></testsuites>"#,
    );
    assert_eq!(r.info.time_s, Some(1004.5));
    // A suite's own time still wins over its cases'.
    let r = parse(
        r#"<testsuite name="a" time="9"><testcase classname="A" name="t" time="2"/></testsuite>"#,
    );
    assert_eq!(r.info.time_s, Some(9.0));
    let r = parse(r#"<testsuite name="a"><testcase classname="A" name="t"/></testsuite>"#);
    assert_eq!(r.info.time_s, None);
}

#[test]
fn a_repeat_after_a_pass_is_another_test_not_a_rerun() {
    // Two tests share a title; a runner reruns only after a failure, so this is no flake.
    let r = parse(
        r#"<testsuite><testcase classname="C" name="works"/>
        <testcase classname="C" name="works"><failure message="x"/></testcase></testsuite>"#,
    );
    assert_eq!(r.cases.len(), 2);
    assert_eq!(r.cases[1].name, "works [#2]");
    assert!(r.cases.iter().all(|c| c.run_outcome() != RunOutcome::Flaky));
}

#[test]
fn jest_junit_repeats_are_never_reruns() {
    let r = parse(
        r#"<testsuites name="jest tests"><testsuite name="Cart">
        <testcase classname="Cart renders" name="Cart renders"><failure>boom</failure></testcase>
        <testcase classname="Cart renders" name="Cart renders"/></testsuite></testsuites>"#,
    );
    assert_eq!(r.cases.len(), 2);
    assert_eq!(r.cases[0].run_outcome(), RunOutcome::Failed);
    assert_eq!(r.cases[1].run_outcome(), RunOutcome::Passed);
}

#[test]
fn gotestsum_rerun_fails_real_output() {
    use AttemptOutcome::*;
    // --rerun-fails=2: every attempt is its own <testcase> with the same classname and
    // name, in one <testsuite> per package; gotestsum writes a package's failed attempts
    // first, then its passed ones, so each test's attempts still come in the order run.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/gotestsum/rerun-fails.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Generic);
    assert_eq!(r.info.suites, 2);
    assert_eq!(r.testcase_elements(), 14);
    assert_eq!(r.cases.len(), 8, "{:#?}", r.cases);
    assert!(r.cases.iter().all(|c| !c.name.contains("[#")));

    let flaky = case(&r, "TestFlakyOnce");
    assert_eq!(flaky.classname, "example.com/flaky");
    assert_eq!(flaky.suite.as_deref(), Some("example.com/flaky"));
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    let f = flaky.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.message.as_deref(), Some("Failed"));
    assert_eq!(f.kind, None, "type=\"\" is no type");
    // The body is the test's `go test -v` output (its last newline trimmed, as any body).
    assert_eq!(
        f.body.as_deref(),
        Some("=== RUN   TestFlakyOnce\n    flaky_test.go:25: fails on the first attempt\n--- FAIL: TestFlakyOnce (0.00s)")
    );
    assert!(flaky.attempts[1].failure.is_none());

    let broken = case(&r, "TestAlwaysFails");
    assert_eq!(outcomes(broken), [Failed, Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    assert_eq!(outcomes(case(&r, "TestPasses")), [Passed]);

    // A failing subtest fails its parent too; gotestsum reruns only the failed subtest
    // (`-test.run=^TestTable$/^flaky_case$`), so the parent runs again with it and the
    // passing sibling does not. Go writes the space in `t.Run("flaky case")` as `_`.
    let sub = case(&r, "TestTable/flaky_case");
    assert_eq!(outcomes(sub), [Failed, Passed]);
    assert_eq!(sub.run_outcome(), RunOutcome::Flaky);
    let parent = case(&r, "TestTable");
    assert_eq!(outcomes(parent), [Failed, Passed]);
    assert_eq!(parent.run_outcome(), RunOutcome::Flaky);
    assert_eq!(outcomes(case(&r, "TestTable/ok")), [Passed]);

    // The second package is its own suite and classname.
    let other = case(&r, "TestOtherFlaky");
    assert_eq!(other.classname, "example.com/flaky/other");
    assert_eq!(other.suite.as_deref(), Some("example.com/flaky/other"));
    assert_eq!(outcomes(other), [Failed, Passed]);
    assert_eq!(outcomes(case(&r, "TestOtherPasses")), [Passed]);

    let flaky_tests: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.run_outcome() == RunOutcome::Flaky)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        flaky_tests,
        [
            "TestFlakyOnce",
            "TestTable/flaky_case",
            "TestTable",
            "TestOtherFlaky"
        ]
    );
}

#[test]
fn gotestsum_short_names_real_output() {
    use AttemptOutcome::*;
    // --junitfile-testcase-classname=short --junitfile-testsuite-name=short: the package's
    // last path element as classname and suite name, the attempts as above.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/gotestsum/rerun-fails-short.xml"
    ));
    assert_eq!(r.testcase_elements(), 14);
    assert_eq!(r.cases.len(), 8);
    let flaky = case(&r, "TestFlakyOnce");
    assert_eq!(flaky.classname, "flaky");
    assert_eq!(flaky.suite.as_deref(), Some("flaky"));
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(
        outcomes(case(&r, "TestAlwaysFails")),
        [Failed, Failed, Failed]
    );
    assert_eq!(outcomes(case(&r, "TestTable/flaky_case")), [Failed, Passed]);
    assert_eq!(outcomes(case(&r, "TestTable")), [Failed, Passed]);
    let other = case(&r, "TestOtherFlaky");
    assert_eq!(other.classname, "other");
    assert_eq!(outcomes(other), [Failed, Passed]);
}

#[test]
fn playwright_default_junit_records_no_retries() {
    use AttemptOutcome::*;
    // retries: 2 with the junit reporter's defaults: a test that passed on a retry is a plain
    // passing <testcase> (only its <system-out> names the failed try's error-context.md
    // attachment), and one failing every try is a single <failure> whose text holds every
    // try's error ("Retry #1", "Retry #2"). Flakiness retried away is invisible here.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/playwright/retries.xml"
    ));
    // No projects configured: `hostname=""`, and the names stay as written.
    assert_eq!(r.info.dialect, Dialect::Playwright);
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "flaky once");
    assert_eq!(flaky.classname, "flaky.spec.js");
    assert_eq!(flaky.suite.as_deref(), Some("flaky.spec.js"));
    assert_eq!(outcomes(flaky), [Passed]);
    assert_eq!(outcomes(case(&r, "group › flaky in describe")), [Passed]);
    let broken = case(&r, "always fails");
    assert_eq!(outcomes(broken), [Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let f = broken.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.message.as_deref(), Some("fails every attempt"));
    assert_eq!(f.kind.as_deref(), Some("expect.toBe"));
    let body = f.body.as_deref().unwrap();
    assert!(
        body.starts_with("flaky.spec.js:19:1 › always fails"),
        "{body}"
    );
    assert!(body.contains("Retry #2"), "{body}");
    assert_eq!(outcomes(case(&r, "passes")), [Passed]);
    assert!(r.cases.iter().all(|c| c.run_outcome() != RunOutcome::Flaky));
}

#[test]
fn playwright_include_retries_real_output() {
    use AttemptOutcome::*;
    // includeRetries: true: a flaky pass is <flakyFailure> (its own time, a <stackTrace>
    // and a nested <system-out>) in the passing <testcase>, whose time is the last try's; a
    // test failing every try has one <rerunFailure> per retry written BEFORE the <failure>
    // of the first try (the <testcase>'s time is the first try's).
    let r = fixture(include_bytes!(
        "../../fixtures/junit/playwright/include-retries.xml"
    ));
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "flaky once");
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    let durations: Vec<_> = flaky.attempts.iter().map(|a| a.duration_s).collect();
    assert_eq!(durations, [Some(0.01), Some(0.011)]);
    let f = flaky.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.message.as_deref(), Some("fails on the first attempt"));
    assert_eq!(f.kind.as_deref(), Some("expect.toBeGreaterThan"));
    // The <stackTrace> CDATA; the nested <system-out> attachment line stays out.
    assert_eq!(
        f.body.as_deref(),
        Some("Error: fails on the first attempt\n\nexpect(received).toBeGreaterThan(expected)\n\nExpected: > 1\nReceived:   1\n    at /tmp/fh-cap/playwright/tests/flaky.spec.js:16:63")
    );
    let grouped = case(&r, "group › flaky in describe");
    assert_eq!(outcomes(grouped), [Failed, Passed]);
    assert_eq!(grouped.run_outcome(), RunOutcome::Flaky);

    let broken = case(&r, "always fails");
    assert_eq!(outcomes(broken), [Failed, Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let durations: Vec<_> = broken.attempts.iter().map(|a| a.duration_s).collect();
    assert_eq!(durations, [Some(0.035), Some(0.012), Some(0.013)]);
    let first = broken.attempts[0].failure.as_ref().unwrap();
    assert_eq!(first.message.as_deref(), Some("fails every attempt"));
    assert!(first
        .body
        .as_deref()
        .unwrap()
        .starts_with("flaky.spec.js:19:1 › always fails"));
    let retry = broken.attempts[1].failure.as_ref().unwrap();
    assert_eq!(retry.kind.as_deref(), Some("expect.toBe"));
    assert!(retry
        .body
        .as_deref()
        .unwrap()
        .starts_with("Error: fails every attempt"));
    assert_eq!(outcomes(case(&r, "passes")), [Passed]);
}

#[test]
fn vitest_junit_records_no_passed_retries() {
    use AttemptOutcome::*;
    // retry: 2: a test that passed on a retry is a plain passing <testcase>; one failing
    // every try gets one <failure> per try, all in its one <testcase>. Several results in
    // one <testcase> are read as one failed attempt (Vitest writes several for one try too,
    // with expect.soft), keeping the first: the test is failed, its message kept.
    let r = fixture(include_bytes!("../../fixtures/junit/vitest/retry.xml"));
    assert_eq!(r.info.dialect, Dialect::Vitest);
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "flaky once");
    assert_eq!(flaky.classname, "test/flaky.test.js");
    assert_eq!(flaky.suite.as_deref(), Some("test/flaky.test.js"));
    assert_eq!(outcomes(flaky), [Passed]);
    assert_eq!(outcomes(case(&r, "group > flaky in describe")), [Passed]);
    let broken = case(&r, "always fails");
    assert_eq!(outcomes(broken), [Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let f = broken.attempts[0].failure.as_ref().unwrap();
    assert_eq!(
        f.message.as_deref(),
        Some("fails every attempt: expected 1 to be 2 // Object.is equality")
    );
    assert_eq!(f.kind.as_deref(), Some("AssertionError"));
    let body = f.body.as_deref().unwrap();
    assert!(
        body.starts_with("AssertionError: fails every attempt"),
        "{body}"
    );
    assert!(body.ends_with("❯ test/flaky.test.js:20:36"), "{body}");
    assert_eq!(outcomes(case(&r, "passes")), [Passed]);
}

#[test]
fn mocha_junit_reporter_records_no_retries() {
    use AttemptOutcome::*;
    // mocha --retries 2 (and this.retries(2) in a describe): Mocha emits `retry`, not
    // `fail`, for a try it reruns, and mocha-junit-reporter listens only to pass/fail/
    // pending, so a test that passed on a retry is a plain pass and one failing every try a
    // single <failure>. Top-level tests are in <testsuite name="Root Suite">, a describe is
    // its own suite with an absolute `file`; classname is the test's own title.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/mocha-junit-reporter/retries.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Generic);
    assert_eq!(r.info.suites, 2);
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "flaky once");
    assert_eq!(flaky.classname, "flaky once");
    assert_eq!(flaky.suite.as_deref(), Some("Root Suite"));
    assert_eq!(flaky.file, None);
    assert_eq!(outcomes(flaky), [Passed]);
    let grouped = case(&r, "group flaky in describe");
    assert_eq!(grouped.classname, "flaky in describe");
    assert_eq!(grouped.suite.as_deref(), Some("group"));
    assert_eq!(
        grouped.file.as_deref(),
        Some("/tmp/fh-cap/mocha/test/flaky.test.js")
    );
    assert_eq!(outcomes(grouped), [Passed]);
    let broken = case(&r, "always fails");
    assert_eq!(outcomes(broken), [Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    let f = broken.attempts[0].failure.as_ref().unwrap();
    assert_eq!(f.kind.as_deref(), Some("AssertionError"));
    // The message attribute holds raw newlines.
    assert_eq!(
        f.message.as_deref(),
        Some("fails every attempt\n\n1 !== 2\n")
    );
    let body = f.body.as_deref().unwrap();
    assert!(
        body.starts_with("AssertionError [ERR_ASSERTION]: fails every attempt"),
        "{body}"
    );
    assert_eq!(outcomes(case(&r, "passes")), [Passed]);
}

#[test]
fn pytest_retry_records_no_retries() {
    use AttemptOutcome::*;
    // pytest-retry reruns the call inside one test protocol (tearing down by calling the
    // hook, not reporting it), so junitxml keeps ONE <testcase> per test: a test that
    // passed on a retry is a plain pass, one failing every try a single <failure> (the last
    // try's).
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-retry/retries.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    assert_eq!(outcomes(case(&r, "test_flaky_once")), [Passed]);
    let grouped = case(&r, "test_flaky_in_class");
    assert_eq!(grouped.classname, "test_flaky.TestGroup");
    assert_eq!(outcomes(grouped), [Passed]);
    let broken = case(&r, "test_always_fails");
    assert_eq!(outcomes(broken), [Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    assert_eq!(
        broken.attempts[0]
            .failure
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some("AssertionError: fails every attempt\nassert 1 == 2")
    );
    assert_eq!(outcomes(case(&r, "test_passes")), [Passed]);
}

#[test]
fn pytest_retry_outcome_failed_writes_only_the_first_failure() {
    use AttemptOutcome::*;
    // --retry-outcome=failed: pytest-retry reports the first failed try as "failed" into the
    // <testcase> that the final try then completes, and a pass adds nothing to it. So the
    // test that PASSED on its second try is a <testcase> holding the first try's <failure>
    // and no sign of the pass: the file says failed, and so do we. A test failing every try
    // gets two <failure>s (the first try's and the last's, none for the middle one), read
    // as one failed attempt. The suite says tests="7" failures="4" for 4 <testcase>s.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/pytest-retry/retry-outcome-failed.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    assert_eq!(r.testcase_elements(), 4);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "test_flaky_once");
    assert_eq!(outcomes(flaky), [Failed]);
    assert_eq!(
        flaky.attempts[0].failure.as_ref().unwrap().message.as_deref(),
        Some("AssertionError: fails on the first attempt\nassert 1 > 1\n +  where 1 = attempt('flaky_once')")
    );
    assert_eq!(outcomes(case(&r, "test_flaky_in_class")), [Failed]);
    assert_eq!(outcomes(case(&r, "test_always_fails")), [Failed]);
    assert_eq!(outcomes(case(&r, "test_passes")), [Passed]);
}

#[test]
fn flaky_plugin_max_runs_real_output() {
    use AttemptOutcome::*;
    // @flaky(max_runs=3, min_passes=1): flaky does not log the call report of a try it
    // reruns (only setup's and teardown's), so, as with pytest-rerunfailures, each such try
    // is a bare <testcase/> and only the last carries <failure>.
    let r = fixture(include_bytes!("../../fixtures/junit/flaky/max-runs.xml"));
    assert_eq!(r.info.dialect, Dialect::Pytest);
    assert_eq!(r.testcase_elements(), 8);
    assert_eq!(r.cases.len(), 4);
    let flaky = case(&r, "test_flaky_once");
    assert_eq!(outcomes(flaky), [Failed, Passed]);
    assert_eq!(flaky.run_outcome(), RunOutcome::Flaky);
    let grouped = case(&r, "test_flaky_in_class");
    assert_eq!(grouped.classname, "test_flaky.TestGroup");
    assert_eq!(outcomes(grouped), [Failed, Passed]);
    assert_eq!(grouped.run_outcome(), RunOutcome::Flaky);
    let broken = case(&r, "test_always_fails");
    assert_eq!(outcomes(broken), [Failed, Failed, Failed]);
    assert_eq!(broken.run_outcome(), RunOutcome::Failed);
    assert_eq!(
        broken.attempts[2]
            .failure
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some("AssertionError: fails every attempt\nassert 1 == 2")
    );
    assert_eq!(outcomes(case(&r, "test_passes")), [Passed]);
}

/// TestNG's two JUnit reporters are told apart by the comment they start with (the
/// folder names come from the user's testng.xml); Surefire's own report has none.
#[test]
fn testng_reporters_are_named_by_their_leading_comment() {
    use super::{head, TestNgReporter};
    let xml = include_bytes!(
        "../../fixtures/junit/testng/surefire/default/surefire-reports/Surefire suite/Surefire test.xml"
    );
    let report = include_bytes!(
        "../../fixtures/junit/testng/surefire/default/surefire-reports/junitreports/TEST-example.FlakyTest.xml"
    );
    let surefire = include_bytes!(
        "../../fixtures/junit/testng/surefire/default/surefire-reports/TEST-example.FlakyTest.xml"
    );
    let results = include_bytes!(
        "../../fixtures/junit/testng/surefire/default/surefire-reports/testng-results.xml"
    );
    assert_eq!(fixture(xml).info.testng, Some(TestNgReporter::JUnitXml));
    assert_eq!(
        fixture(report).info.testng,
        Some(TestNgReporter::JUnitReport)
    );
    assert_eq!(fixture(surefire).info.testng, None);
    assert_eq!(head(xml).testng, Some(TestNgReporter::JUnitXml));
    assert_eq!(head(xml).foreign_root, None);
    assert_eq!(head(surefire), super::Head::default());
    assert_eq!(
        head(results).foreign_root.as_deref(),
        Some("testng-results")
    );
    let err = super::parse_bytes(results).unwrap_err();
    assert!(err.is_foreign_root(), "{err}");
    // A comment after the root is not a producer's mark.
    let late =
        b"<testsuite><!-- Generated by org.testng.reporters.JUnitXMLReporter --></testsuite>";
    assert_eq!(fixture(late).info.testng, None);
    for page in [
        &b"<html><body>502</body></html>"[..],
        b"<HTML lang=en/>",
        b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'/>",
    ] {
        let err = super::parse_bytes(page).unwrap_err();
        assert!(!err.is_foreign_root(), "{err}");
        assert_eq!(head(page).foreign_root, None);
    }
    // A BOM is no text; text before the root is for the full parse to reject.
    assert_eq!(
        head(b"\xEF\xBB\xBF<project/>").foreign_root.as_deref(),
        Some("project")
    );
    assert_eq!(head(b"garbage<project/>"), super::Head::default());
}

#[test]
fn playwright_projects_are_apart_not_reruns() {
    use AttemptOutcome::*;
    // Two projects (firefox first): the same classname and name in a suite per project,
    // told apart only by `hostname`. A failure on firefox is a broken test there, not a
    // flaky one; and the names do not depend on the projects' order.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/playwright/projects.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Playwright);
    let mut names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "[chromium] › passes",
            "[chromium] › renders header",
            "[firefox] › passes",
            "[firefox] › renders header"
        ]
    );
    assert_eq!(outcomes(case(&r, "[firefox] › renders header")), [Failed]);
    assert_eq!(outcomes(case(&r, "[chromium] › renders header")), [Passed]);
    assert!(r.cases.iter().all(|c| c.classname == "app.spec.js"));
    // A report with a root id whose suites have their own ids (not Playwright) keeps its
    // names, hostname or not.
    let r = parse(
        r#"<testsuites id="x" name="r"><testsuite id="s" name="S" hostname="ci-7">
        <testcase classname="C" name="t"/></testsuite></testsuites>"#,
    );
    assert_eq!(r.info.dialect, Dialect::Generic);
    assert_eq!(r.cases[0].name, "t");
    // `includeProjectInTestName: true` names the project itself: no second prefix.
    let r = parse(
        r#"<testsuites id="" name=""><testsuite name="a.spec.ts" hostname="firefox">
        <testcase name="[firefox] renders header" classname="a.spec.ts"/></testsuite></testsuites>"#,
    );
    assert_eq!(r.cases[0].name, "[firefox] renders header");
}

#[test]
fn vitest_repeats_are_never_reruns() {
    use AttemptOutcome::*;
    let r = fixture(include_bytes!("../../fixtures/junit/vitest/same-names.xml"));
    assert_eq!(r.info.dialect, Dialect::Vitest);
    assert_eq!(r.cases.len(), 5);
    let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "adds",
            "adds [#2]",
            "adds [#3]",
            "parser > handles input",
            "parser > handles input [#2]"
        ]
    );
    assert_eq!(outcomes(case(&r, "parser > handles input")), [Failed]);
    assert_eq!(outcomes(case(&r, "parser > handles input [#2]")), [Passed]);
    assert!(r.cases.iter().all(|c| c.run_outcome() != RunOutcome::Flaky));
}

#[test]
fn jest_junit_suite_that_failed_to_run() {
    use AttemptOutcome::*;
    // Written twice (an <error> and a <failure>) and dated 1970: one failed test, and the
    // report's time is the suite that ran.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/jest-junit/suite-error.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::Jest);
    assert_eq!(r.cases.len(), 2, "{:#?}", r.cases);
    let broken = case(&r, "__tests__/broken.test.js");
    assert_eq!(broken.classname, "Test suite failed to run");
    assert_eq!(outcomes(broken), [Errored]);
    assert_eq!(r.info.timestamp.as_deref(), Some("2026-12-07T03:33:57"));
}

#[test]
fn suite_timestamps_are_compared_as_times() {
    // The earliest by time, not by text (+02:00 is earlier here), and never the epoch.
    let r = parse(
        r#"<testsuites>
        <testsuite name="a" timestamp="2026-12-07T02:30:00Z"><testcase name="t"/></testsuite>
        <testsuite name="b" timestamp="2026-12-07T03:00:00+02:00"><testcase name="t"/></testsuite>
        <testsuite name="c" timestamp="1970-01-01T00:00:00"><testcase name="t"/></testsuite>
        <testsuite name="d" timestamp="not a time"><testcase name="t"/></testsuite>
        </testsuites>"#,
    );
    assert_eq!(
        r.info.timestamp.as_deref(),
        Some("2026-12-07T03:00:00+02:00")
    );
    let r = parse(
        r#"<testsuite name="c" timestamp="1970-01-01T00:00:00"><testcase name="t"/></testsuite>"#,
    );
    assert_eq!(r.info.timestamp, None);
}

#[test]
fn cypress_specs_are_named_by_their_root_suite() {
    // mocha-junit-reporter under Cypress: only the empty "Root Suite" has the spec's
    // `file`; the describe suites after it have none. Same titles in two specs (two
    // reports, or one merged report) are two tests.
    let r = parse(
        r#"<testsuites name="Mocha Tests">
        <testsuite name="Root Suite" tests="0" file="cypress/e2e/admin/login.cy.js"></testsuite>
        <testsuite name="login" tests="1"><testcase name="login shows the dashboard" classname="shows the dashboard"><failure message="x"/></testcase></testsuite>
        <testsuite name="Root Suite" tests="0" file="cypress/e2e/user/login.cy.js"></testsuite>
        <testsuite name="login" tests="1"><testcase name="login shows the dashboard" classname="shows the dashboard"/></testsuite>
        </testsuites>"#,
    );
    let files: Vec<Option<&str>> = r.cases.iter().map(|c| c.file.as_deref()).collect();
    assert_eq!(
        files,
        [
            Some("cypress/e2e/admin/login.cy.js"),
            Some("cypress/e2e/user/login.cy.js")
        ]
    );
    assert!(r.cases.iter().all(|c| c.run_outcome() != RunOutcome::Flaky));
    // Plain mocha: the describe suites carry their own file, and the root suite none.
    let r = parse(
        r#"<testsuites name="Mocha Tests"><testsuite name="Root Suite" tests="0"></testsuite>
        <testsuite name="g" file="test/a.js"><testcase name="t" classname="t"/></testsuite></testsuites>"#,
    );
    assert_eq!(r.cases[0].file.as_deref(), Some("test/a.js"));
    // A root suite without a file (plain mocha merged after a Cypress spec) ends the spec.
    let r = parse(
        r#"<testsuites name="Mocha Tests">
        <testsuite name="Root Suite" tests="0" file="cypress/e2e/login.cy.js"></testsuite>
        <testsuite name="login"><testcase name="a" classname="a"/></testsuite>
        <testsuite name="Root Suite" tests="1"><testcase name="top" classname="top"/></testsuite>
        <testsuite name="unit"><testcase name="b" classname="b"/></testsuite></testsuites>"#,
    );
    let files: Vec<Option<&str>> = r.cases.iter().map(|c| c.file.as_deref()).collect();
    assert_eq!(files, [Some("cypress/e2e/login.cy.js"), None, None]);
}

#[test]
fn gradle_test_tasks_other_than_test_are_environments() {
    for (path, env) in [
        (
            "app/build/test-results/testDebugUnitTest/TEST-com.a.FooTest.xml",
            Some("testDebugUnitTest"),
        ),
        (
            "/ci/app/build/test-results//testReleaseUnitTest/./TEST-com.a.FooTest.xml",
            Some("testReleaseUnitTest"),
        ),
        (
            r"lib\build\test-results\jvmTest\TEST-com.a.FooTest.xml",
            Some("jvmTest"),
        ),
        // gzip'd, and downloaded without its test-results folder (an artifact's root).
        (
            "artifacts/integrationTest/TEST-com.a.FooTest.xml.GZ",
            Some("integrationTest"),
        ),
        // A single-task project keeps its names.
        ("build/test-results/test/TEST-com.a.FooTest.xml", None),
        // Folders not named like a Gradle test task name none.
        ("test-results/junit/TEST-com.a.FooTest.xml", None),
        ("test-results/jest/results.xml", None),
        ("target/surefire-reports/TEST-com.a.FooTest.xml", None),
        ("reports/latest/TEST-com.a.FooTest.xml", None),
        ("reports/Test/TEST-com.a.FooTest.xml", None),
        ("build/test-results/testDebugUnitTest/results.xml", None),
        ("TEST-com.a.FooTest.xml", None),
    ] {
        assert_eq!(path_environment(path), env, "{path}");
    }
    assert!(is_gradle_test_task("testReleaseUnitTest"));
    assert!(is_gradle_test_task("iosX64Test"));
    assert!(!is_gradle_test_task("test"));
    assert!(!is_gradle_test_task("Pixel_6_API_33(AVD) - 13"));
    assert!(!is_gradle_test_task("firefox"));
}

#[test]
fn byte_identical_reports_of_two_environments_have_two_keys() {
    let hash = blake3::hash(b"<testsuite/>").to_hex().to_string();
    assert_eq!(report_key(hash.clone(), None), hash);
    let debug = report_key(hash.clone(), Some("testDebugUnitTest"));
    let release = report_key(hash.clone(), Some("testReleaseUnitTest"));
    assert_ne!(debug, hash);
    assert_ne!(debug, release);
}

#[test]
fn a_gradle_environment_names_its_tests() {
    let xml = br#"<testsuite name="com.a.FooTest"><testcase classname="com.a.FooTest" name="adds"/>
        <testcase classname="com.a.FooTest" name="[testDebugUnitTest] subtracts"/></testsuite>"#;
    let options = ParseOptions {
        environment: path_environment(
            "build/test-results/testDebugUnitTest/TEST-com.a.FooTest.xml",
        ),
        ..ParseOptions::default()
    };
    let r = parse_bytes_with(xml, options).unwrap();
    assert_eq!(r.info.environment.as_deref(), Some("testDebugUnitTest"));
    let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    // A name that already starts with its environment is kept as written.
    assert_eq!(
        names,
        [
            "[testDebugUnitTest] › adds",
            "[testDebugUnitTest] subtracts"
        ]
    );
    // The same file elsewhere names nothing, so its ids stay those of plain `test`.
    let plain = parse_bytes(xml).unwrap();
    assert_eq!(plain.cases[0].name, "adds");
    assert_ne!(plain.ids[0], r.ids[0]);
}

#[test]
fn android_connected_tests_are_named_by_their_device() {
    // AGP writes one report per device with the device and flavor as suite properties
    // (as in the corpus's JENKINS-42438 report); two devices are two environments.
    let report = |device: &str, flavor: &str| {
        format!(
            r#"<?xml version='1.0' encoding='UTF-8' ?>
<testsuite name="com.a.LoginTest" tests="2" failures="1" errors="0" skipped="0" time="2.0" hostname="localhost">
  <properties>
    <property name="device" value="{device}" />
    <property name="flavor" value="{flavor}" />
    <property name="project" value="app" />
  </properties>
  <testcase name="logsIn" classname="com.a.LoginTest" time="1.0" />
  <testcase name="logsOut" classname="com.a.LoginTest" time="1.0"><failure>boom</failure></testcase>
</testsuite>"#
        )
    };
    let api33 = parse_bytes(report("Pixel_6_API_33(AVD) - 13", "").as_bytes()).unwrap();
    let api28 = parse_bytes(report("Pixel_3_API_28(AVD) - 9", "").as_bytes()).unwrap();
    assert_eq!(api33.cases[0].name, "[Pixel_6_API_33(AVD) - 13] › logsIn");
    assert_eq!(api28.cases[1].name, "[Pixel_3_API_28(AVD) - 9] › logsOut");
    assert_ne!(api33.ids[0], api28.ids[0]);
    let free = parse_bytes(report("Pixel_6_API_33(AVD) - 13", "free").as_bytes()).unwrap();
    assert_eq!(
        free.cases[0].name,
        "[Pixel_6_API_33(AVD) - 13 free] › logsIn"
    );

    // Surefire writes every system property: a `device` alone is not Android's.
    let surefire = br#"<testsuite name="s"><properties><property name="device" value="iPhone"/>
        <property name="java.version" value="21"/></properties>
        <testcase classname="c" name="a"/></testsuite>"#;
    assert_eq!(parse_bytes(surefire).unwrap().cases[0].name, "a");
    // A device a name could not carry unambiguously is not used.
    let odd = parse_bytes(report("emu] › x", "").as_bytes()).unwrap();
    assert_eq!(odd.cases[0].name, "logsIn");

    // A property after the suite's first test would name its tests unevenly: ignored.
    let late = br#"<testsuite name="s"><testcase classname="c" name="a"/>
        <properties><property name="device" value="d"/><property name="project" value="p"/></properties>
        <testcase classname="c" name="b"/></testsuite>"#;
    let r = parse_bytes(late).unwrap();
    let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // A test's own properties (pytest's record_property) are not its suite's.
    let own = br#"<testsuite name="s"><testcase classname="c" name="a">
        <properties><property name="device" value="d"/><property name="project" value="p"/></properties></testcase></testsuite>"#;
    assert_eq!(parse_bytes(own).unwrap().cases[0].name, "a");
}

#[test]
fn a_repeat_in_another_suite_is_another_test_not_a_rerun() {
    use AttemptOutcome::*;
    // gotestsum's short names: packages a/util and b/util are both suite `util` with a
    // `util.TestSame`. Suites of one name are where merged retry reports put a rerun, so
    // this reads as a rerun: a known limit, documented (use full package names).
    let r = fixture(include_bytes!(
        "../../fixtures/junit/gotestsum/short-names-two-packages.xml"
    ));
    assert_eq!(outcomes(&r.cases[0]), [Failed, Passed]);
    // Node's test runner: `describe('cart')` and `describe('list')` each with `it('works')`.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/node-test/two-describes-same-it.xml"
    ));
    assert!(r.cases.iter().all(|c| c.run_outcome() != RunOutcome::Flaky));
    let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cart › works", "list › works"]);
    // A rerun in the first attempt's suite is still a rerun (gotestsum --rerun-fails).
    let r = fixture(include_bytes!(
        "../../fixtures/junit/gotestsum/rerun-fails-short.xml"
    ));
    assert_eq!(outcomes(case(&r, "TestFlakyOnce")), [Failed, Passed]);
}

#[test]
fn a_failing_node_todo_test_is_skipped_as_node_counts_it() {
    // Node exits 0: a `todo` test may fail. It holds `<skipped type="todo">` and `<failure>`.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/node-test/todo-failing.xml"
    ));
    let todo = case(&r, "todo failing only");
    assert_eq!(outcomes(todo), [AttemptOutcome::Skipped]);
    assert_eq!(outcomes(case(&r, "ok")), [AttemptOutcome::Passed]);
    // Any other skip with a failure reads as before: failed.
    let r = parse(
        r#"<testsuite><testcase classname="c" name="t"><skipped/><failure message="x"/></testcase></testsuite>"#,
    );
    assert_eq!(outcomes(&r.cases[0]), [AttemptOutcome::Failed]);
}

#[test]
fn node_test_names_are_the_path_of_their_suites() {
    use AttemptOutcome::*;
    let r = fixture(include_bytes!(
        "../../fixtures/junit/node-test/nested-same-names.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::NodeTest);
    assert_eq!(outcomes(case(&r, "cart › adds")), [Passed]);
    assert_eq!(outcomes(case(&r, "cart › totals › adds")), [Passed]);
    assert_eq!(outcomes(case(&r, "cart › fails")), [Failed]);
    assert_eq!(outcomes(case(&r, "cart › todo failing")), [Skipped]);
    assert_eq!(
        outcomes(case(&r, "top with subtests › sub fails")),
        [Failed]
    );
    // Tests outside any suite keep their title; b.test.js's `cart › adds` has no file
    // to tell it from a.test.js's, so it is kept apart by position.
    assert_eq!(outcomes(case(&r, "same title")), [Passed]);
    assert_eq!(outcomes(case(&r, "cart › adds [#2]")), [Passed]);
    assert!(r.cases.iter().all(|c| c.classname == "test"));
    // Tests outside any `describe`, straight under the bare root: Node too.
    let r = parse(
        r#"<testsuites><testcase name="works" classname="test"><failure message="boom"/></testcase><testcase name="works" classname="test"/></testsuites>"#,
    );
    assert_eq!(r.info.dialect, Dialect::NodeTest);
    assert_eq!(outcomes(case(&r, "works")), [Failed]);
    assert_eq!(outcomes(case(&r, "works [#2]")), [Passed]);
    // Other reports with a bare root and `hostname` keep their names (a timestamp, no
    // `disabled`).
    let other = parse(
        r#"<testsuites><testsuite name="s" hostname="h" timestamp="2026-01-01T00:00:00"
        disabled="0"><testcase classname="c" name="t"/></testsuite></testsuites>"#,
    );
    assert_eq!(other.info.dialect, Dialect::Generic);
    assert_eq!(other.cases[0].name, "t");
}

/// A huge report is stored in chunks ([`Merger::drain`]), merged in the database by test
/// identity: it must read as the same report parsed whole, wherever the chunks end.
#[test]
fn a_report_drained_in_chunks_reads_as_it_does_whole() {
    let reports: [&[u8]; 9] = [
        include_bytes!("../../fixtures/junit/pytest-rerunfailures/reruns.xml"),
        include_bytes!("../../fixtures/junit/pytest-rerunfailures/teardown-error-reruns.xml"),
        include_bytes!("../../fixtures/junit/unittest/nose2-0.16-run1.xml"),
        include_bytes!("../../fixtures/junit/gotestsum/rerun-fails-short.xml"),
        include_bytes!("../../fixtures/junit/node-test/nested-same-names.xml"),
        include_bytes!("../../fixtures/junit/vitest/same-names.xml"),
        include_bytes!("../../fixtures/junit/jest-junit/suite-error.xml"),
        include_bytes!("../../fixtures/junit/playwright/projects.xml"),
        include_bytes!("../../fixtures/junit/gotestsum/short-names-two-packages.xml"),
    ];
    // A unittest test's subtest rows: a skipped one, then a failing one.
    let subtests = br#"<testsuite name="nose2-junit"><testcase classname="m.T" name="test_a"/><testcase classname="m.T" name="test_x (i=0)"><skipped/></testcase><testcase classname="m.T" name="test_x (i=1)"><failure message="a"/></testcase></testsuite>"#;
    let reports = reports.into_iter().chain([&subtests[..]]);
    // Attempts per identity, in the order stored.
    fn by_identity(cases: &[crate::model::TestCase]) -> Vec<(String, Vec<AttemptOutcome>)> {
        let mut order: Vec<String> = Vec::new();
        let mut attempts: HashMap<String, Vec<AttemptOutcome>> = HashMap::new();
        for c in cases {
            let id = c.identity().hex();
            if !attempts.contains_key(&id) {
                order.push(id.clone());
            }
            attempts.entry(id).or_default().extend(outcomes(c));
        }
        order
            .into_iter()
            .map(|id| {
                let a = attempts.remove(&id).unwrap();
                (id, a)
            })
            .collect()
    }
    for bytes in reports {
        let mut elements = Vec::new();
        parse_any(bytes, |case, dialect| {
            elements.push((case, dialect));
            Ok(())
        })
        .unwrap();
        let mut whole = Merger::default();
        for (case, dialect) in elements.iter().cloned() {
            whole.push(case, dialect);
        }
        let want = by_identity(&whole.finish());
        assert!(!want.is_empty());
        for every in 1..=3 {
            let mut chunked = Merger::default();
            let mut stored = Vec::new();
            for (case, dialect) in elements.iter().cloned() {
                chunked.push(case, dialect);
                if chunked.pending() >= every {
                    stored.extend(chunked.drain());
                }
            }
            stored.extend(chunked.drain_all());
            assert_eq!(by_identity(&stored), want, "drained every {every}");
        }
    }
}

#[test]
fn go_test_count_repeats_are_runs_of_one_test() {
    use AttemptOutcome::*;
    // `go test -count=2 | go-junit-report`: every test twice in its package's suite.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/go-junit-report/count2-pass-then-fail.xml"
    ));
    assert_eq!(r.cases.len(), 2);
    assert_eq!(outcomes(case(&r, "TestPasses")), [Passed, Passed]);
    let alternates = case(&r, "TestAlternates");
    assert_eq!(outcomes(alternates), [Passed, Failed]);
    assert_eq!(alternates.run_outcome(), RunOutcome::Flaky);
    let r = fixture(include_bytes!(
        "../../fixtures/junit/go-junit-report/count2-full.xml"
    ));
    assert_eq!(r.cases.len(), 13);
    assert!(r.cases.iter().all(|c| c.attempts.len() == 2));
    assert_eq!(outcomes(case(&r, "TestTable/bad_case")), [Failed, Failed]);
    assert_eq!(outcomes(case(&r, "TestFlaky")), [Failed, Passed]);
    // go-junit-report 0.9 names the class by the path's last element.
    let r = parse(
        r#"<testsuites><testsuite name="example.com/probe"><testcase classname="probe" name="TestA"/><testcase classname="probe" name="TestA"><failure/></testcase></testsuite></testsuites>"#,
    );
    assert_eq!(outcomes(&r.cases[0]), [Passed, Failed]);
    // Only when every Go test repeats alike: two `TestX` of one package (its internal
    // and external test files) are two tests.
    let r = parse(
        r#"<testsuite name="example.com/p"><testcase classname="example.com/p" name="TestX"/><testcase classname="example.com/p" name="TestY"/><testcase classname="example.com/p" name="TestX"><failure/></testcase></testsuite>"#,
    );
    assert_eq!(r.cases.len(), 3);
    assert_eq!(outcomes(case(&r, "TestX [#2]")), [Failed]);
    // Other runners' repeats after a pass stay apart: a Java class, or Deno's file and
    // free-text names, are no Go package and test.
    for (class, name) in [
        ("com.acme.FooTest", "TestA"),
        ("./parse_test.ts", "Test parse"),
    ] {
        let r = parse(&format!(
            r#"<testsuite name="{class}"><testcase classname="{class}" name="{name}"/><testcase classname="{class}" name="{name}"><failure/></testcase></testsuite>"#
        ));
        assert_eq!(r.cases.len(), 2, "{class}");
    }
}

#[test]
fn cucumber_js_scenarios_of_one_name_are_two_scenarios() {
    use AttemptOutcome::*;
    // Two feature files, both `Feature: Cart` / `Scenario: adds`: a's fails, b's passes.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/cucumber-js/same-feature-scenario-names.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::CucumberJs);
    assert_eq!(outcomes(case(&r, "adds")), [Failed]);
    assert_eq!(outcomes(case(&r, "adds [#2]")), [Passed]);
    // `--retry 1`: the retried scenario is written once, as its passing last try.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/cucumber-js/full-run-retry.xml"
    ));
    assert_eq!(outcomes(case(&r, "flaky")), [Passed]);
    assert_eq!(outcomes(case(&r, "outline - #1.2")), [Failed]);
    assert_eq!(r.cases.len(), 9);
}

#[test]
fn a_unittest_subtest_failure_is_its_test_failing() {
    use AttemptOutcome::*;
    // xmlrunner writes only the failing subtest, `test_rows (i=1)`, and the test itself
    // when it passes: one test, failed then passed.
    let failed = fixture(include_bytes!(
        "../../fixtures/junit/unittest/run1-subtest-fails.xml"
    ));
    let passed = fixture(include_bytes!(
        "../../fixtures/junit/unittest/run2-passes.xml"
    ));
    assert_eq!(failed.info.dialect, Dialect::PyUnittest);
    let (f, p) = (case(&failed, "test_rows"), case(&passed, "test_rows"));
    assert_eq!(f.identity(), p.identity());
    assert_eq!(outcomes(f), [Failed]);
    assert_eq!(outcomes(p), [Passed]);
    let message = f.attempts[0].failure.as_ref().unwrap().message.as_deref();
    assert!(
        message.unwrap().starts_with("(i=1) 0 not greater"),
        "{message:?}"
    );
    // nose2 alike; two failing subtests of one test are one failed attempt.
    let r = fixture(include_bytes!(
        "../../fixtures/junit/unittest/nose2-0.16-run1.xml"
    ));
    assert_eq!(r.info.dialect, Dialect::PyUnittest);
    assert_eq!(outcomes(case(&r, "test_rows")), [Failed]);
    assert_eq!(outcomes(case(&r, "test_subtests")), [Failed]);
    let r = parse(
        r#"<testsuite name="nose2-junit"><testcase classname="m.T" name="test_x (i=1)"><failure message="a"/></testcase><testcase classname="m.T" name="test_x (i=2)"><error message="b"/></testcase></testsuite>"#,
    );
    assert_eq!(r.cases.len(), 1);
    assert_eq!(outcomes(&r.cases[0]), [Errored]);
    // `subTest("msg", i=1)` and `subTest("msg")`, and xmlrunner with `outsuffix=""` (suites
    // named by class; its cases carry `timestamp` and `line`).
    for bytes in [
        &include_bytes!("../../fixtures/junit/unittest/subtest-msg.xml")[..],
        &include_bytes!("../../fixtures/junit/unittest/subtest-msg-no-suffix.xml")[..],
    ] {
        let r = fixture(bytes);
        assert_eq!(r.info.dialect, Dialect::PyUnittest);
        let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_ok", "test_plain_msg", "test_rows"]);
        let rows = case(&r, "test_rows").attempts[0].failure.as_ref().unwrap();
        let message = rows.message.as_deref().unwrap();
        assert!(message.starts_with("[row check] (i=1) "), "{message}");
    }
    // Other reports keep such names.
    let r = parse(
        r#"<testsuite name="s"><testcase classname="c" name="test_x (i=1)"><failure/></testcase></testsuite>"#,
    );
    assert_eq!(r.cases[0].name, "test_x (i=1)");
}
