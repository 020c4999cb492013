//! The nightly report on a fixed history: Markdown and JSON pinned by snapshots, the
//! Markdown size cap, and a self-contained HTML page.

mod report_fixture;

use flakehound::report::{self, ReportOptions, MARKDOWN_LIMIT};
use flakehound::store::Store;
use report_fixture::{ingest_history, standard_store, Spec};

fn standard_report() -> report::Report {
    let dir = tempfile::tempdir().unwrap();
    let store = standard_store(dir.path());
    report::build(&store, &ReportOptions::default()).unwrap()
}

#[test]
fn markdown_and_json_are_pinned() {
    let r = standard_report();
    let json = serde_json::to_string_pretty(&r).unwrap();
    let md = report::to_markdown(&r);
    insta::assert_snapshot!("report_markdown", md);
    insta::assert_snapshot!("report_json", json);
}

#[test]
fn report_finds_what_the_fixture_planted() {
    let r = standard_report();
    let readable = |c: &str, n: &str| flakehound::model::readable_name(c, n);
    let top: Vec<String> = r
        .top
        .iter()
        .map(|t| readable(&t.classname, &t.name))
        .collect();
    assert!(top.iter().any(|n| n.contains("refundsTwice")), "{top:?}");
    assert!(
        top.iter().any(|n| n.contains("test_upload[<big>")),
        "{top:?}"
    );
    let new: Vec<&str> = r
        .movement
        .new_flaky
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert!(new.iter().any(|n| n.starts_with("test_upload")), "{new:?}");
    let fixed: Vec<&str> = r.movement.fixed.iter().map(|m| m.name.as_str()).collect();
    assert!(fixed.contains(&"evictsOldest"), "{fixed:?}");
    let worse: Vec<&str> = r.movement.worse.iter().map(|m| m.name.as_str()).collect();
    assert!(worse.contains(&"refundsTwice"), "{worse:?}");
    assert!(r.broken.iter().any(|b| b.name == "parsesIsoDates"));
    let group = r
        .co_failures
        .groups
        .iter()
        .find(|g| g.members.iter().any(|m| m.name == "migratesUp"))
        .expect("the migration tests fail together");
    assert!(group.members.iter().any(|m| m.name == "migratesDown"));
    assert!(group.all_together as f64 > 5.0 * group.all_expected);
    let clock = r
        .top
        .iter()
        .find(|t| t.name == "ticksMonotonically")
        .unwrap();
    assert_eq!(clock.also_flaky_in.len(), 1);
    assert!(r.top.iter().all(|t| !t.strip.is_empty()));
    assert_eq!(r.trend.len(), 8);
}

#[test]
fn outputs_are_deterministic() {
    let a = standard_report();
    let b = standard_report();
    assert_eq!(report::to_markdown(&a), report::to_markdown(&b));
    assert_eq!(report::to_html(&a), report::to_html(&b));
}

#[test]
fn html_is_self_contained_and_escaped() {
    let r = standard_report();
    let html = report::to_html(&r);
    // To look at the outputs: FLAKEHOUND_REPORT_DIR=/tmp cargo nextest run html_is
    if let Ok(dir) = std::env::var("FLAKEHOUND_REPORT_DIR") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("report.html"), &html).unwrap();
        std::fs::write(dir.join("report.md"), report::to_markdown(&r)).unwrap();
        let json = serde_json::to_string_pretty(&r).unwrap();
        std::fs::write(dir.join("report.json"), json).unwrap();
    }
    assert!(html.contains("<svg"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script"));
    assert!(html.contains("@media print"));
    assert!(html.contains("test_upload<wbr>[&lt;big&gt; &amp; &quot;quoted&quot; &#39;x&#39;]"));
    assert!(!html.contains("<big>"));
}

#[test]
fn huge_history_markdown_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut specs = Vec::new();
    for i in 0..1500u32 {
        specs.push(Spec {
            p: Box::new(|_| 0.3),
            message: format!("timeout in step {i}"),
            ..Spec::stable(
                &format!(
                    "com.example.generated.module{:03}.SomeRatherLongTestClassName",
                    i / 10
                ),
                &format!("test_case_with_a_long_descriptive_name_{i:04}"),
                vec!["unit"],
            )
        });
    }
    let mut store = Store::open_in_memory().unwrap();
    ingest_history(&mut store, dir.path(), &specs, 3, 6);
    let r = report::build(
        &store,
        &ReportOptions {
            top: 5000,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert!(r.top.len() > 1000, "{}", r.top.len());
    let md = report::to_markdown(&r);
    if let Ok(dir) = std::env::var("FLAKEHOUND_REPORT_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("huge.md"), &md).unwrap();
    }
    assert!(
        md.chars().count() <= MARKDOWN_LIMIT,
        "{}",
        md.chars().count()
    );
    assert!(md.contains("Truncated"));
    assert!(md.contains("more; see the JSON/HTML report"));
}

#[test]
fn empty_database_gives_an_empty_report() {
    let store = Store::open_in_memory().unwrap();
    let r = report::build(&store, &ReportOptions::default()).unwrap();
    assert!(r.top.is_empty());
    let md = report::to_markdown(&r);
    assert!(md.contains("No flaky tests"));
    assert!(report::to_html(&r).contains("<svg"));
}

/// A window longer than the history says both lengths: per-day figures are over the days
/// that hold runs, not over the window asked for.
#[test]
fn a_window_longer_than_the_history_says_what_per_day_figures_are_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = standard_store(dir.path());
    let r = report::build(
        &store,
        &ReportOptions {
            window_s: 3650 * 86_400,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let heading = format!(
        "(3650.0 days; per-day figures are over its last {:.1}, where the runs are)",
        r.window_days
    );
    assert!(r.window_days < 60.0, "{}", r.window_days);
    assert!(report::to_markdown(&r).contains(&heading), "{heading}");
    assert!(report::to_html(&r).contains(&heading), "{heading}");
    // A window the history covers is given by its length alone.
    let week = standard_report();
    assert_eq!(week.window_text(), "7.0 days");
}
