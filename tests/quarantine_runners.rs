//! The quarantine output fed to real test runners: each test builds a tiny project with one
//! quarantined test that would fail if it ran, passes our output through `sh -c` as a user
//! would, and checks that the quarantined test was skipped and the others ran.
//!
//! Needs (installed on demand under the cargo target's tmp dir, cached between runs):
//! - pytest: `python3` with `venv` and `pip` reaching PyPI (`pip install pytest`), or a
//!   `python3 -m pytest` already present;
//! - nextest: `cargo nextest` (the CI script installs it); the throwaway crate has no
//!   dependencies and builds offline;
//! - Jest: `npm` reaching the npm registry (`npm install jest`).
//!
//! When a runner cannot be had, its test prints `SKIPPED: ...` and passes; Maven, Gradle
//! and Go `-skip` (Go ≥ 1.20; Debian 12 ships 1.19) are covered by golden files in
//! `quarantine_formats.rs`. Set `FLAKEHOUND_REQUIRE_RUNNERS=1` to make a missing runner fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flakehound::quarantine::{render, QuarantineEntry, QuarantineFormat};

fn entry(classname: &str, name: &str, file: Option<&str>) -> QuarantineEntry {
    QuarantineEntry {
        test_id: "0000000000000000".into(),
        job: "ci".into(),
        classname: classname.into(),
        name: name.into(),
        file: file.map(Into::into),
        reason: "flaky".into(),
        since: "2026-01-10T00:00:00Z".into(),
        until: "2026-01-24T00:00:00Z".into(),
        retries_per_day: 1.0,
        flake_rate: 0.2,
        state: "active".into(),
    }
}

fn cache_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn unavailable(runner: &str, why: &str) {
    if std::env::var_os("FLAKEHOUND_REQUIRE_RUNNERS").is_some() {
        panic!("{runner} is required but unavailable: {why}");
    }
    println!("SKIPPED: {runner} is not available here ({why}); only the golden files cover it");
}

fn sh(dir: &Path, script: &str, envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).current_dir(dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("sh runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A Python with pytest: the system one if it has pytest, else a venv under target/.
fn pytest_python() -> Result<PathBuf, String> {
    let sys = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output();
    match sys {
        Err(e) => return Err(format!("python3: {e}")),
        Ok(o) if o.status.success() => return Ok(PathBuf::from("python3")),
        Ok(_) => {}
    }
    let venv = cache_dir("pytest-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let o = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("python3 -m venv failed: {}", text(&o)));
        }
    }
    let has = Command::new(&python)
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        let o = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pytest",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("pip install pytest failed: {}", text(&o)));
        }
    }
    Ok(python)
}

#[test]
fn pytest_deselects_the_quarantined_tests() {
    let python = match pytest_python() {
        Ok(p) => p,
        Err(why) => return unavailable("pytest", &why),
    };
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(dir.join("tests/__init__.py"), "").unwrap();
    std::fs::write(
        dir.join("tests/test_a.py"),
        r#"import pytest

class TestCls:
    @pytest.mark.parametrize("v", [1, 2])
    def test_x(self, v):
        assert v != 1, "quarantined: must not run"

    def test_other(self):
        pass

@pytest.mark.parametrize("s", ["a b", "c"])
def test_y(s):
    assert s != "a b", "quarantined: must not run"
"#,
    )
    .unwrap();
    // As pytest's own JUnit XML names them (xunit2: no file attribute).
    let entries = [
        entry("tests.test_a.TestCls", "test_x[1]", None),
        entry("tests.test_a", "test_y[a b]", None),
    ];
    let args = render(&entries, QuarantineFormat::Pytest);
    assert_eq!(
        args.trim(),
        "--deselect 'tests/test_a.py::TestCls::test_x[1]' --deselect 'tests/test_a.py::test_y[a b]'"
    );
    let out = sh(
        dir,
        &format!("\"$PY\" -m pytest -v -p no:cacheprovider {}", args.trim()),
        &[("PY", &python)],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("2 deselected"), "{log}");
    assert!(log.contains("test_x[2] PASSED"), "{log}");
    assert!(log.contains("test_other PASSED"), "{log}");
    assert!(log.contains("test_y[c] PASSED"), "{log}");
    assert!(
        !log.contains("test_x[1] PASSED") && !log.contains("test_x[1] FAILED"),
        "{log}"
    );
}

#[test]
fn nextest_filterset_skips_the_quarantined_test() {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nextest {
        return unavailable("cargo-nextest", "`cargo nextest --version` failed");
    }
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"qdemo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        r#"#[cfg(test)]
mod tests {
    #[test]
    fn quarantined_one() {
        panic!("quarantined: must not run");
    }

    #[test]
    fn stable_one() {}

    #[test]
    fn quarantined_one_suffix() {}
}
"#,
    )
    .unwrap();
    // In nextest's JUnit, classname is the binary id and name the test path.
    let expr = render(
        &[entry("qdemo", "tests::quarantined_one", None)],
        QuarantineFormat::Nextest,
    );
    assert_eq!(
        expr.trim(),
        "not ((binary_id(=qdemo) & test(=tests::quarantined_one)))"
    );
    let target = cache_dir("nextest-qdemo-target");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("cargo nextest run --offline --no-fail-fast -E \"$EXPR\"")
        .current_dir(dir)
        .env("EXPR", expr.trim())
        .env("CARGO_TARGET_DIR", &target);
    // Do not leak the outer cargo/nextest run into the inner one.
    for (k, _) in std::env::vars() {
        if k.starts_with("NEXTEST") || (k.starts_with("CARGO_") && k != "CARGO_HOME") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", &target);
    let out = cmd.output().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("tests::stable_one"), "{log}");
    assert!(log.contains("tests::quarantined_one_suffix"), "{log}");
    assert!(log.contains("2 tests run: 2 passed"), "{log}");
    assert!(log.contains("1 skipped"), "{log}");
}

/// Jest installed once under target/ (npm registry).
fn jest_bin() -> Result<PathBuf, String> {
    let env = cache_dir("jest-env");
    let bin = env.join("node_modules/jest/bin/jest.js");
    if bin.exists() {
        return Ok(bin);
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".into());
    }
    if !env.join("package.json").exists() {
        std::fs::write(
            env.join("package.json"),
            "{\"name\":\"jest-env\",\"private\":true}\n",
        )
        .unwrap();
    }
    let o = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "jest@29"])
        .current_dir(&env)
        .output()
        .map_err(|e| format!("npm: {e}"))?;
    if !o.status.success() || !bin.exists() {
        return Err(format!("npm install jest failed: {}", text(&o)));
    }
    Ok(bin)
}

#[test]
fn jest_name_pattern_skips_the_quarantined_test() {
    let jest = match jest_bin() {
        Ok(p) => p,
        Err(why) => return unavailable("jest", &why),
    };
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"qdemo\",\"private\":true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("math.test.js"),
        r#"describe('math', () => {
  test('adds (1+1) [fast]', () => { throw new Error('quarantined: must not run'); });
  test('adds (1+1) [fast] twice', () => { expect(1 + 1).toBe(2); });
  test('multiplies', () => { expect(2 * 3).toBe(6); });
});
"#,
    )
    .unwrap();
    // jest-junit's default name is the full title: "describe test".
    let args = render(
        &[entry("math", "math adds (1+1) [fast]", None)],
        QuarantineFormat::Jest,
    );
    assert_eq!(
        args.trim(),
        r"--testNamePattern='^(?!(?:math adds \(1\+1\) \[fast\])$).*'"
    );
    let out = sh(
        dir,
        &format!("node \"$JEST\" --ci --rootDir . --verbose {}", args.trim()),
        &[("JEST", &jest)],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("1 skipped"), "{log}");
    assert!(log.contains("2 passed"), "{log}");
}
