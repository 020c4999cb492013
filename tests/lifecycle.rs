//! From a flaky test to its run, its commit and its owners: run URLs stored at ingest,
//! CODEOWNERS in every output; shell completions and the man page.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{surefire_xml, BIN, O};

/// The binary in `cwd` (where CODEOWNERS is looked for), with no CI variables but `env`.
fn run(cwd: &Path, db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).arg("--db").arg(db).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GITHUB_")
            || k.starts_with("CI_")
            || k.starts_with("FLAKEHOUND_")
            || [
                "GITLAB_CI",
                "CIRCLECI",
                "BUILDKITE",
                "TF_BUILD",
                "BUILD_ID",
                "BUILD_NUMBER",
            ]
            .contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("CI", "true").envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    text(&o.stdout)
}

fn sha(i: u32) -> String {
    format!("{i:040x}")
}

/// A history in which PaymentServiceIT flakes on two commits (a job re-run passes), with
/// GitHub Actions run URLs, and a CODEOWNERS file in `.github/`.
fn flaky_history(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("f.db");
    std::fs::create_dir_all(dir.join(".github")).unwrap();
    std::fs::write(
        dir.join(".github/CODEOWNERS"),
        "* @acme/everyone\n/src/test/java/com/acme/payments/ @acme/payments\n",
    )
    .unwrap();
    for i in 0..10u32 {
        for attempt in 1..=2u32 {
            let pay = if attempt == 1 && (i == 3 || i == 7) {
                O::Fail
            } else {
                O::Pass
            };
            if attempt == 2 && pay == O::Pass && i != 3 && i != 7 {
                continue;
            }
            let report = dir.join(format!("r{i}-{attempt}.xml"));
            std::fs::write(
                &report,
                surefire_xml(&[
                    ("com.acme.payments.PaymentServiceIT", "refundsTwice", pay),
                    ("com.acme.CartTest", "total", O::Pass),
                ]),
            )
            .unwrap();
            let started = format!("2026-11-{:02}T10:00:00Z", 10 + i);
            let env = [
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "acme/shop"),
                ("GITHUB_RUN_ID", &format!("{}", 500 + i)),
                ("GITHUB_RUN_ATTEMPT", &attempt.to_string()),
                ("GITHUB_SHA", &sha(i)),
                ("GITHUB_REF_NAME", "main"),
                ("GITHUB_WORKFLOW", "CI"),
                ("GITHUB_JOB", "it"),
            ];
            let o = run(
                dir,
                &db,
                &["ingest", "--started-at", &started, report.to_str().unwrap()],
                &env,
            );
            ok(&o);
        }
    }
    db
}

#[test]
fn run_urls_from_the_environment_flag_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let db = flaky_history(dir.path());
    let runs: serde_json::Value = serde_json::from_str(&ok(&run(
        dir.path(),
        &db,
        &["runs", "--format", "json"],
        &[],
    )))
    .unwrap();
    assert_eq!(
        runs[0]["run_url"],
        "https://github.com/acme/shop/actions/runs/500/attempts/1"
    );

    // The flag wins over the environment.
    let report = dir.path().join("one.xml");
    std::fs::write(&report, surefire_xml(&[("a.B", "c", O::Pass)])).unwrap();
    let base = ["ingest", "--commit", "abc1", "--job", "unit"];
    let mut args = base.to_vec();
    args.extend([
        "--run-id",
        "77",
        "--run-url",
        "https://ci.example/build/77",
        report.to_str().unwrap(),
    ]);
    ok(&run(
        dir.path(),
        &db,
        &args,
        &[
            ("CIRCLECI", "true"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/x/1"),
        ],
    ));
    let runs = ok(&run(dir.path(), &db, &["runs", "--format", "csv"], &[]));
    assert!(runs.lines().next().unwrap().ends_with(",run_url"), "{runs}");
    assert!(
        runs.contains(",77,1,") && runs.contains("https://ci.example/build/77"),
        "{runs}"
    );

    // Not an http(s) URL: a usage error, nothing stored.
    let mut args = base.to_vec();
    args.extend([
        "--run-id",
        "78",
        "--run-url",
        "javascript:alert(1)",
        report.to_str().unwrap(),
    ]);
    let o = run(dir.path(), &db, &args, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--run-url"), "{}", text(&o.stderr));

    // The manifest's optional run_url column.
    std::fs::write(
        dir.path().join("runs.csv"),
        "path,commit,branch,job,run_id,attempt,started_at,run_url\n\
         one.xml,abc2,main,unit,90,1,2026-11-30T00:00:00Z,https://jenkins.example/job/unit/90/\n\
         one.xml,abc3,main,unit,91,1,2026-11-30T01:00:00Z,\n",
    )
    .unwrap();
    ok(&run(
        dir.path(),
        &db,
        &["ingest", "--manifest", "runs.csv"],
        &[],
    ));
    let runs: serde_json::Value = serde_json::from_str(&ok(&run(
        dir.path(),
        &db,
        &["runs", "--format", "json"],
        &[],
    )))
    .unwrap();
    let url_of = |id: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id)
            .map(|r| r["run_url"].clone())
            .unwrap()
    };
    assert_eq!(url_of("90"), "https://jenkins.example/job/unit/90/");
    assert_eq!(url_of("91"), serde_json::Value::Null);
}

#[test]
fn owners_and_links_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = flaky_history(d);
    let pay_owners = serde_json::json!(["@acme/payments"]);

    let flaky: serde_json::Value =
        serde_json::from_str(&ok(&run(d, &db, &["flaky", "--format", "json"], &[]))).unwrap();
    assert_eq!(flaky[0]["name"], "refundsTwice");
    assert_eq!(flaky[0]["owners"], pay_owners);
    // Key order is kept: `owners` comes after the existing keys.
    let keys: Vec<&String> = flaky[0].as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "test_id");
    assert_eq!(keys.last().unwrap().as_str(), "owners");

    let csv = ok(&run(d, &db, &["flaky", "--format", "csv"], &[]));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let owners_at = header.iter().position(|h| h == "owners").unwrap();
    assert_eq!(header.get(owners_at - 1), Some("test_id"), "{csv}");
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(first.get(owners_at), Some("@acme/payments"), "{csv}");

    let backlog = ok(&run(d, &db, &["backlog"], &[]));
    let mut lines = backlog.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Priority,Item,Estimated Impact,Retries/day,CI minutes/day,Flake rate,Evidence,Test ID,Owner"
    );
    assert!(
        lines.next().unwrap().ends_with(",@acme/payments"),
        "{backlog}"
    );

    // An explicit file wins over the auto-found one.
    let other = d.join("OWNERS-other");
    std::fs::write(&other, "** @someone-else\n").unwrap();
    let backlog = ok(&run(
        d,
        &db,
        &["backlog", "--codeowners", other.to_str().unwrap()],
        &[],
    ));
    assert!(
        backlog.lines().nth(1).unwrap().ends_with(",@someone-else"),
        "{backlog}"
    );
    let o = run(d, &db, &["backlog", "--codeowners", "missing"], &[]);
    assert_eq!(o.status.code(), Some(2));

    let report: serde_json::Value = serde_json::from_str(&ok(&run(
        d,
        &db,
        &["report", "--format", "json", "--window", "30d"],
        &[],
    )))
    .unwrap();
    let top = &report["top"][0];
    assert_eq!(top["owners"], pay_owners);
    assert_eq!(
        top["commits"][0]["url"],
        format!("https://github.com/acme/shop/commit/{}", sha(7))
    );
    assert_eq!(
        top["failed_runs"][0]["url"],
        "https://github.com/acme/shop/actions/runs/507/attempts/1"
    );
    let md = ok(&run(d, &db, &["report", "--window", "30d"], &[]));
    assert!(
        md.contains("`com.acme.payments.PaymentServiceIT.refundsTwice` (@acme/payments)"),
        "{md}"
    );
    let html = ok(&run(
        d,
        &db,
        &["report", "--format", "html", "--window", "30d"],
        &[],
    ));
    assert!(html.contains(&format!(
        r#"<a href="https://github.com/acme/shop/commit/{}" rel="noopener"><code class="sha">{}</code></a>"#,
        sha(7),
        &sha(7)[..7]
    )), "{html}");
    assert!(html.contains(
        r#"<a href="https://github.com/acme/shop/actions/runs/507/attempts/1" rel="noopener">"#
    ));
    assert!(html.contains("owners: @acme/payments"));

    // A template overrides the guess from the run URL.
    let html = ok(&run(
        d,
        &db,
        &[
            "report",
            "--format",
            "html",
            "--window",
            "30d",
            "--commit-url-template",
            "https://git.example/shop/-/commit/{sha}",
        ],
        &[],
    ));
    assert!(html.contains(&format!("https://git.example/shop/-/commit/{}", sha(7))));

    let q: serde_json::Value = serde_json::from_str(&ok(&run(
        d,
        &db,
        &[
            "quarantine",
            "--format",
            "json",
            "--min-retries-per-day",
            "0",
        ],
        &[],
    )))
    .unwrap();
    assert_eq!(q[0]["owners"], pay_owners, "{q}");

    let show = ok(&run(d, &db, &["show", "refundsTwice"], &[]));
    assert!(show.contains("owners @acme/payments"), "{show}");
    assert!(show.contains("run 507 attempt 1"), "{show}");
    assert!(
        show.contains("https://github.com/acme/shop/actions/runs/507/attempts/1"),
        "{show}"
    );
    assert!(
        show.contains(&format!("https://github.com/acme/shop/commit/{}", sha(7))),
        "{show}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&ok(&run(d, &db, &["show", "refundsTwice", "--json"], &[]))).unwrap();
    assert_eq!(show["owners"], pay_owners);
    assert_eq!(
        show["history"][0]["run_url"],
        "https://github.com/acme/shop/actions/runs/509/attempts/1"
    );
}

const SUBCOMMANDS: [&str; 15] = [
    "demo",
    "simulate",
    "ingest",
    "runs",
    "tests",
    "flaky",
    "show",
    "backlog",
    "report",
    "quarantine",
    "serve",
    "upload",
    "token",
    "completions",
    "man",
];

#[test]
fn completions_and_man_page_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = ok(&run(dir.path(), &db, &["completions", shell], &[]));
        assert!(out.len() > 1000, "{shell}: {out}");
        for sub in SUBCOMMANDS {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    assert!(ok(&run(dir.path(), &db, &["completions", "bash"], &[])).contains("--run-url"));
    let man = ok(&run(dir.path(), &db, &["man"], &[]));
    assert!(
        man.starts_with(".ie") || man.contains(".TH flakehound"),
        "{man}"
    );
    for sub in SUBCOMMANDS {
        assert!(
            man.contains(&format!("flakehound\\-{sub}")) || man.contains(sub),
            "man lacks {sub}"
        );
    }
    let o = run(dir.path(), &db, &["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn install_templates_use_flags_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let help = ok(&run(
        dir.path(),
        &dir.path().join("f.db"),
        &["upload", "--help"],
        &[],
    ));
    for flag in [
        "--job",
        "--strict",
        "FLAKEHOUND_SERVER",
        "FLAKEHOUND_TOKEN",
        "--run-url",
    ] {
        assert!(help.contains(flag), "upload --help lacks {flag}");
    }
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    assert!(action.contains("using: composite") && action.contains("flakehound upload"));
    for input in ["server:", "token:", "path:", "job:", "gate:"] {
        assert!(action.contains(input), "action.yml lacks input {input}");
    }
    let gitlab = std::fs::read_to_string(root.join("ci/gitlab/flakehound.gitlab-ci.yml")).unwrap();
    assert!(gitlab.contains("after_script") && gitlab.contains("flakehound upload"));
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(docker.contains("cargo build --release --locked"));
    assert!(
        docker.contains("USER flakehound"),
        "runs as a non-root user"
    );
}
