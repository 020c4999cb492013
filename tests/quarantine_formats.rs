//! Golden outputs of every quarantine format for names that need escaping: parameters,
//! subtests, regex metacharacters, quotes, spaces, commas.

use flakehound::quarantine::{render, QuarantineEntry, QuarantineFormat};

fn entry(job: &str, classname: &str, name: &str, file: Option<&str>) -> QuarantineEntry {
    QuarantineEntry {
        test_id: format!(
            "{:016x}",
            flakehound::model::TestIdentity::new(classname, name, file).0 as u64
        ),
        job: job.into(),
        classname: classname.into(),
        name: name.into(),
        file: file.map(Into::into),
        reason: "passed and failed on 3 commit(s)".into(),
        since: "2026-01-10T00:00:00Z".into(),
        until: "2026-01-24T00:00:00Z".into(),
        retries_per_day: 0.5,
        flake_rate: 0.12,
        state: "active".into(),
    }
}

fn pytest_entries() -> Vec<QuarantineEntry> {
    vec![
        entry("py", "tests.test_a.TestCls", "test_x[1]", None),
        entry(
            "py",
            "tests.test_a.TestCls",
            "test_x[1]",
            Some("tests/test_a.py"),
        ),
        entry("py", "tests.test_b", "test_y[a b-it's]", None),
        entry(
            "py",
            "pkg.tests.test_c.TestOuter.TestInner",
            "test_z",
            Some("tests/test_c.py"),
        ),
    ]
}

fn nextest_entries() -> Vec<QuarantineEntry> {
    vec![
        entry("rust", "flakehound", "score::tests::flaky_vs_broken", None),
        entry(
            "rust",
            "flakehound::bin/flakehound",
            "cli::tests::parses(a,b)",
            None,
        ),
        entry(
            "rust",
            "my-crate::integration",
            "net/retry::times_out",
            None,
        ),
    ]
}

fn java_entries() -> Vec<QuarantineEntry> {
    vec![
        entry("java", "com.acme.FooIT", "bar", None),
        entry("java", "com.acme.Baz", "qux[1]", None),
        entry(
            "java",
            "com.acme.Outer$Inner",
            "param(int, String)[2] it's",
            None,
        ),
        entry("java", "com.acme.Dots", "rate[1.5]", None),
    ]
}

fn go_entries() -> Vec<QuarantineEntry> {
    vec![
        entry("go", "github.com/acme/svc", "TestA", None),
        entry("go", "github.com/acme/svc", "TestB/sub case", None),
        entry("go", "github.com/acme/svc", "TestC/a.b+(c)/[x]$", None),
    ]
}

fn jest_entries() -> Vec<QuarantineEntry> {
    vec![
        entry("js", "math", "math adds (1+1) [fast]", None),
        entry(
            "js",
            "api",
            "api GET /users?id=1 returns 200 | it's ok",
            None,
        ),
    ]
}

#[test]
fn pytest_deselect() {
    insta::assert_snapshot!(render(&pytest_entries(), QuarantineFormat::Pytest));
}

#[test]
fn nextest_filterset() {
    insta::assert_snapshot!(render(&nextest_entries(), QuarantineFormat::Nextest));
}

#[test]
fn maven_surefire() {
    insta::assert_snapshot!(render(&java_entries(), QuarantineFormat::Maven));
}

#[test]
fn gradle_init_script() {
    insta::assert_snapshot!(render(&java_entries(), QuarantineFormat::Gradle));
}

#[test]
fn go_skip() {
    insta::assert_snapshot!(render(&go_entries(), QuarantineFormat::Go));
}

#[test]
fn jest_name_pattern() {
    insta::assert_snapshot!(render(&jest_entries(), QuarantineFormat::Jest));
}

#[test]
fn list_and_json() {
    let entries = java_entries();
    insta::assert_snapshot!(render(&entries, QuarantineFormat::List));
    let json: serde_json::Value =
        serde_json::from_str(&render(&entries, QuarantineFormat::Json)).unwrap();
    let first = &json[0];
    for key in [
        "job",
        "classname",
        "name",
        "reason",
        "since",
        "until",
        "test_id",
        "file",
        "retries_per_day",
        "flake_rate",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn empty_quarantine() {
    assert_eq!(render(&[], QuarantineFormat::Pytest), "");
    assert_eq!(render(&[], QuarantineFormat::Nextest), "all()\n");
    assert_eq!(render(&[], QuarantineFormat::Maven), "");
    assert_eq!(render(&[], QuarantineFormat::Go), "");
    assert_eq!(render(&[], QuarantineFormat::Jest), "");
    assert!(render(&[], QuarantineFormat::Gradle).contains("allprojects"));
    assert_eq!(render(&[], QuarantineFormat::Json).trim(), "[]");
}

/// The Go pattern, checked the way `go test` reads it: split on unbracketed `|` and `/`.
#[test]
fn go_pattern_splits_like_go() {
    let out = render(&go_entries(), QuarantineFormat::Go);
    let pattern = out
        .trim()
        .strip_prefix("-skip '")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap();
    let mut alternatives: Vec<Vec<String>> = vec![vec![String::new()]];
    let (mut brackets, mut parens) = (0i32, 0i32);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let cur = alternatives.last_mut().unwrap();
        match c {
            '\\' => {
                let next = chars.next().unwrap();
                cur.last_mut().unwrap().extend([c, next]);
                continue;
            }
            '[' => brackets += 1,
            ']' => brackets = (brackets - 1).max(0),
            '(' if brackets == 0 => parens += 1,
            ')' if brackets == 0 => parens -= 1,
            '/' if brackets == 0 && parens == 0 => {
                cur.push(String::new());
                continue;
            }
            '|' if brackets == 0 && parens == 0 => {
                alternatives.push(vec![String::new()]);
                continue;
            }
            _ => {}
        }
        cur.last_mut().unwrap().push(c);
    }
    assert_eq!(
        alternatives,
        vec![
            vec!["^TestA$".to_string()],
            vec!["^TestB$".into(), "^sub_case$".into()],
            vec![
                "^TestC$".into(),
                r"^a\.b\+\(c\)$".into(),
                r"^\[x\]\$$".into()
            ],
        ]
    );
}

/// Issue 13, item 9: a test name can neither break the init script nor widen what it
/// excludes.
#[test]
fn gradle_names_cannot_break_the_script_or_exclude_a_package() {
    let entries = vec![
        entry("it", "com.acme.Foo", "line\nbreak' }\nprintln 'pwned", None),
        entry("it", "com", ".", None),
    ];
    let script = render(&entries, QuarantineFormat::Gradle);
    // Every line is a comment, a structural line of the script or one exclusion.
    for line in script.lines() {
        let t = line.trim();
        assert!(
            t.starts_with("//")
                || t.starts_with("excludeTestsMatching '")
                || [
                    "allprojects {",
                    "tasks.withType(Test).configureEach {",
                    "filter {",
                    "}"
                ]
                .contains(&t),
            "unexpected line {line:?} in\n{script}"
        );
    }
    assert!(script.contains(r"excludeTestsMatching 'com.acme.Foo.line*break\' }*println \'pwned'"));
    // `com` + `.` would be `com.*`: every class below com. Not excluded, and said so.
    assert!(!script.contains("'com.*'"), "{script}");
    assert!(script.contains("// not excluded"), "{script}");
    assert!(script.contains("1 test(s) excluded"), "{script}");
}

/// A test quarantined in one Gradle test task (an Android variant) is excluded from that
/// task only: in the other variant it still runs and still counts.
#[test]
fn gradle_excludes_a_variant_test_from_its_task_only() {
    let entries = vec![
        entry(
            "android",
            "com.acme.Foo",
            "[testReleaseUnitTest] › bar",
            None,
        ),
        entry("android", "com.acme.Foo", "plain", None),
        entry(
            "android",
            "com.acme.Foo",
            "[testReleaseUnitTest] › baz",
            None,
        ),
        entry("android", "com.acme.Foo", "[connectedTest] › bar", None),
        entry("android", "com.acme.Foo", "[Pixel_6(AVD) - 13] › bar", None),
    ];
    let script = render(&entries, QuarantineFormat::Gradle);
    assert_eq!(
        script,
        "// flakehound quarantine: 4 test(s) excluded.
// Use: gradle test --init-script quarantine.gradle
// not excluded, it runs in an environment that is not a Gradle test task: com.acme.Foo.[Pixel_6(AVD) - 13] › bar
allprojects {
    tasks.withType(Test).configureEach {
        filter {
            excludeTestsMatching 'com.acme.Foo.plain'
        }
        if (it.name == 'testReleaseUnitTest') {
            filter {
                excludeTestsMatching 'com.acme.Foo.bar'
                excludeTestsMatching 'com.acme.Foo.baz'
            }
        }
        if (it.name == 'connectedTest') {
            filter {
                excludeTestsMatching 'com.acme.Foo.bar'
            }
        }
    }
}
"
    );
}
