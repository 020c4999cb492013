//! The scorer and the impact model against the simulator's known truth: a 30-day history
//! with several jobs and dialects, auto-retries, in-run reruns, PR breakages fixed in the
//! next commit, main regressions and a platform-only breakage.

use flakehound::eval::evaluate;
use flakehound::score::{score, ScoreOptions, Status};
use flakehound::sim::{simulate, Kind, SimConfig};
use flakehound::store::Store;

fn check(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&SimConfig::demo(seed), dir.path()).unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    assert!(manifest.starts_with("path,commit,branch,job,run_id,attempt,started_at,duration_s"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_flakehound"))
        .arg("--db")
        .arg(dir.path().join("f.db"))
        .args(["ingest", "--manifest"])
        .arg(dir.path().join("runs.csv"))
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let store = Store::open_read_only(&dir.path().join("f.db")).unwrap();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let eval = evaluate(&scored, &sim.truth);
    println!("seed {seed}: {eval:?}");
    assert!(eval.precision >= 0.95, "precision {eval:?}");
    assert!(eval.recall >= 0.9, "recall {eval:?}");
    assert_eq!(eval.breakages_flagged, 0, "{eval:?}");
    assert!(eval.spearman >= 0.8, "spearman {eval:?}");
    assert!(eval.total_error.abs() <= 0.25, "total {eval:?}");

    // Tests broken on one platform only are never flaky there or on the sibling job.
    for t in sim
        .truth
        .tests
        .iter()
        .filter(|t| t.kind == Kind::PlatformBroken)
    {
        let s = scored
            .tests
            .iter()
            .find(|s| s.test_id == t.id && s.job == t.job);
        assert!(s.is_none_or(|s| s.status != Status::Flaky), "{t:?}");
    }
    // Re-ingesting the same manifest adds nothing.
    let mut store = Store::open(&dir.path().join("f.db")).unwrap();
    let before = store.test_counts().unwrap();
    let text = std::fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    assert!(text.lines().count() > 1000);
    drop(store);
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_flakehound"))
        .arg("--db")
        .arg(dir.path().join("f.db"))
        .args(["ingest", "--json", "--manifest"])
        .arg(dir.path().join("runs.csv"))
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["tests"], 0);
    store = Store::open(&dir.path().join("f.db")).unwrap();
    assert_eq!(store.test_counts().unwrap(), before);
}

#[test]
fn demo_history_seed_7() {
    check(7);
}

#[test]
fn demo_history_seed_3() {
    check(3);
}

/// Simulate, ingest through the CLI, score and evaluate.
fn evaluate_config(cfg: &SimConfig) -> flakehound::eval::Evaluation {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(cfg, dir.path()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flakehound"))
        .arg("--db")
        .arg(dir.path().join("f.db"))
        .args(["ingest", "--manifest"])
        .arg(dir.path().join("runs.csv"))
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_read_only(&dir.path().join("f.db")).unwrap();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let eval = evaluate(&scored, &sim.truth);
    println!("seed {}: {eval:?}", cfg.seed);
    eval
}

/// A third of the flaky tests fixed part-way, some flakiness starting part-way: real fixes
/// are found, still-flaky tests are not called fixed (measured over seeds 1–5: 0–1 false
/// fixes per seed, 70–100% of the visible fixes found, 85% overall).
#[test]
fn churn_fixes_are_found_and_streaks_are_not_fixes() {
    let (mut visible, mut found, mut false_fixed, mut scored_fixed) = (0, 0, 0, 0);
    for seed in [2, 4] {
        let eval = evaluate_config(&SimConfig::churn(seed));
        assert!(eval.precision >= 0.95, "{eval:?}");
        assert!(eval.recall >= 0.95, "{eval:?}");
        assert_eq!(eval.breakages_flagged, 0, "{eval:?}");
        // Retries/day charged by the chain counterfactual (measured over seeds 1–5: −0%…+7%
        // of the truth, Spearman 0.90–1.00; the model alone was −17%…+18%, 0.87–0.99).
        assert!(eval.total_error.abs() <= 0.1, "total {eval:?}");
        assert!(eval.spearman >= 0.9, "spearman {eval:?}");
        visible += eval.visible_fixes;
        found += eval.fixes_found;
        false_fixed += eval.false_fixed;
        scored_fixed += eval.scored_fixed;
    }
    assert!(visible >= 20, "{visible}");
    assert!(
        found as f64 >= 0.8 * visible as f64,
        "found {found} of {visible}"
    );
    // The expected share of false fixes is held at 5%: at most one here.
    assert!(false_fixed <= 1, "{false_fixed} of {scored_fixed}");
}

/// Failed jobs rarely re-run (15%), no nightly: lone failures and in-run reruns carry the
/// evidence. (Measured over seeds 1–5: recall 0.94–0.98, precision 1.00, no false fixes.)
#[test]
fn sparse_retries_keep_precision_and_recall() {
    let eval = evaluate_config(&SimConfig::churn(3).sparse());
    assert!(eval.precision >= 0.95, "{eval:?}");
    assert!(eval.recall >= 0.95, "{eval:?}");
    assert_eq!(eval.false_fixed, 0, "{eval:?}");
    assert!(eval.spearman >= 0.8, "{eval:?}");
}

/// Rare retries, the hard case (14 days, 10–20% of failed jobs re-run, no in-run reruns,
/// no nightly): lone failures judged against the history's own confirmed flakes and
/// breakages lift recall without calling a breakage flaky. (Measured over seeds 1–5: recall
/// 0.79–0.97, mean 0.920 with messages that name a transient cause weighed and double
/// flakes not taught as breakages, 0.907 before; 0.90 before tests found flaky stopped
/// crowding the runs they failed in; at first 0.68–0.91, mean 0.79, and 0.61–0.88, mean 0.72, before the statistical
/// judgement; precision 1.00 on every seed.)
#[test]
fn rare_retries_lone_failures_are_judged_without_false_flakes() {
    let mut recall = 0.0;
    for seed in [1, 2, 4] {
        let mut cfg = SimConfig::demo(seed).rare();
        cfg.days = 14;
        let eval = evaluate_config(&cfg);
        assert!(eval.precision >= 0.95, "{eval:?}");
        assert_eq!(eval.breakages_flagged, 0, "{eval:?}");
        recall += eval.recall;
    }
    // Before the statistical judgement these two seeds had recall 0.88 and 0.74; with
    // breakage streaks counted as many one-off breakages (an overestimated breakage rate),
    // 0.91 and 0.81; with one-off breakages only, 0.97 and 0.81 (0.84 with message
    // likeness); with a flaky test's every-attempt failures no longer taught as breakages
    // (on a trunk they looked like breakages that vanish), 0.97 and 0.90. Seed 2 had 0.90
    // while two flaky tests that failed one run together each crowded the other's failure
    // like a breaking change; with the one found flaky first no longer crowding, 0.94.
    // With messages naming a transient cause weighed (a deadlock, a timeout), seed 4 went
    // from 0.90 to 0.97 (0.958 over these three seeds).
    assert!(recall / 3.0 >= 0.95, "mean recall {}", recall / 3.0);
}

/// Rare retries over 30 days with fixes and late onsets: a Go breakage whose messages share
/// only "got" and "want" with a flaky template ("got status 500, want 200" against
/// "unexpected count: got 3, want 4") was once called flaky on statistics (P = 0.947).
/// Message likeness now needs a Jaccard of 0.5. (Seeds 1–5: precision 1.00 each.)
#[test]
fn rare_retries_over_a_month_call_no_breakage_flaky() {
    let eval = evaluate_config(&SimConfig::churn(1).rare());
    assert_eq!(eval.breakages_flagged, 0, "{eval:?}");
    assert!(eval.recall >= 0.9, "{eval:?}");
}
