//! A test's `file` without the CI checkout folder.
//!
//! PHPUnit, mocha-junit-reporter, TestCafe and others write absolute paths. The checkout
//! folder in front of the repository's own path changes between runs of one job on many
//! CI setups (Jenkins `workspace/job@2`, GitLab's per-runner `builds/<token>/<n>/`,
//! self-hosted GitHub runners `…/actions-runner-2/_work/`, Buildkite agents, Bazel
//! sandboxes), and between the platforms of a matrix. Kept in the test identity, it would
//! split one test's history into several, and a flake whose failed attempt ran in one
//! folder and whose passing retry ran in another would never be seen on one commit.
//!
//! Only the path's text decides, never the environment of the machine that reads the
//! report: `ingest` on the CI machine, `serve` behind an upload and a backfill on a laptop
//! all derive the same identity from the same report. A path no rule recognises is kept as
//! written.

use std::borrow::Cow;

/// `file` without a recognised CI checkout folder, `/`-separated; other paths unchanged.
///
/// Idempotent: the result of a stripped path is relative and is never stripped again.
pub fn strip_checkout(file: &str) -> Cow<'_, str> {
    let windows = is_windows_absolute(file);
    if !file.starts_with('/') && !windows {
        return Cow::Borrowed(file);
    }
    let unified;
    let path = if windows {
        unified = file.replace('\\', "/");
        unified.as_str()
    } else {
        file
    };
    let segments: Vec<&str> = path.split('/').collect();
    let Some((start, jenkins)) = repository_start(&segments, windows) else {
        return Cow::Borrowed(file);
    };
    let mut rest: Vec<&str> = segments
        .get(start..)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if rest.is_empty() || segments.last().is_some_and(|s| s.is_empty()) {
        return Cow::Borrowed(file);
    }
    if jenkins {
        // Jenkins runs concurrent builds of a job in `job@2`, `job@3`; a job in a folder
        // keeps its own folder, which must name the same folder in every copy.
        rest[0] = jenkins_base(rest[0]);
    }
    Cow::Owned(rest.join("/"))
}

fn is_windows_absolute(file: &str) -> bool {
    let b = file.as_bytes();
    b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// `job@2` → `job`.
fn jenkins_base(segment: &str) -> &str {
    match segment.rsplit_once('@') {
        Some((base, n)) if !base.is_empty() && is_number(n) => base,
        _ => segment,
    }
}

/// The index of the first segment of the repository's own path, if a CI checkout layout is
/// recognised. The layout that starts earliest in the path wins (a repository folder named
/// `builds` or `workspace` inside a GitHub checkout stays part of the path); Bazel's
/// execroot and runfiles, which sit inside other layouts, win when they end later.
fn repository_start(seg: &[&str], windows: bool) -> Option<(usize, bool)> {
    let n = seg.len();
    let at = |i: usize| seg.get(i).copied().unwrap_or("");
    let mut ci: Option<usize> = None;
    let mut jenkins = false;
    if windows && at(1) == "a" {
        // GitHub-hosted and Azure-hosted Windows: D:\a\<repo>\<repo>\, D:\a\1\s\.
        ci = Some(runner_checkout(seg, 1));
    }
    for i in 1..n {
        if ci.is_some() {
            break;
        }
        let s = seg[i];
        let before = if i > 0 { seg[i - 1] } else { "" };
        ci = match s {
            // GitHub self-hosted and container jobs (`_work`, `/__w`), Azure self-hosted
            // (`_work/1/s`): two folders below.
            "_work" | "__w" => Some(runner_checkout(seg, i)),
            // GitHub-hosted Linux and macOS (`/home/runner/work/<repo>/<repo>`), Azure-hosted
            // (`/home/vsts/work/1/s`).
            "work" if matches!(before, "runner" | "vsts") => Some(runner_checkout(seg, i)),
            // TeamCity: `buildAgent/work/<16 hex digits>`.
            "work" if is_teamcity_checkout(at(i + 1)) => Some(i + 2),
            // Buildkite: `builds/<agent>/<organisation>/<pipeline>`.
            "builds" if before.contains("buildkite") => Some(i + 4),
            // GitLab: `/builds/<group>/<project>` (Docker, Kubernetes), or with the runner's
            // short token and concurrency slot, `builds/<token>/<n>/<group>/<project>` (shell).
            // The group's depth is unknown, so the path keeps `<group>/<project>/`.
            "builds" if i == 1 || before.contains("gitlab") => {
                if at(i + 1).len() == 8 && is_number(at(i + 2)) {
                    Some(i + 3)
                } else {
                    Some(i + 1)
                }
            }
            // Travis CI: `/home/travis/build/<owner>/<repo>`.
            "build" if before == "travis" => Some(i + 3),
            // Bitbucket Pipelines: `/opt/atlassian/pipelines/agent/build`.
            "build" if before == "agent" && at(i.wrapping_sub(2)) == "pipelines" => Some(i + 1),
            // CircleCI: `/home/circleci/project`.
            "project" if before == "circleci" => Some(i + 1),
            // Drone: `/drone/src`; Woodpecker: `/woodpecker/src/<forge>/<owner>/<repo>`.
            "src" if i == 2 && before == "drone" => Some(i + 1),
            "src" if i == 2 && before == "woodpecker" => Some(i + 4),
            // AWS CodeBuild: `/codebuild/output/src<digits>/src`.
            _ if before == "output" && at(i + 1) == "src" && is_src_digits(s) => Some(i + 2),
            // Hudson and old Jenkins: `jobs/<job>/workspace` is the checkout.
            "workspace" if i >= 2 && seg[i - 2] == "jobs" => Some(i + 1),
            // Jenkins: `<agent root>/workspace/<job>[@<n>]`.
            "workspace" if i + 2 < n => {
                jenkins = true;
                Some(i + 2)
            }
            _ => None,
        };
    }
    // Bazel: `…/execroot/<workspace>/`, `…/<target>.runfiles/<workspace>/`; the innermost.
    let bazel = (1..n)
        .rev()
        .find(|&i| seg[i] == "execroot" || seg[i].ends_with(".runfiles"))
        .map(|i| i + 2);
    match (ci, bazel) {
        (Some(c), Some(b)) if b > c => Some((b, false)),
        (Some(c), _) => Some((c, jenkins)),
        (None, b) => b.map(|b| (b, false)),
    }
}

/// Where the checkout under a GitHub or Azure work folder (`seg[work]`) starts: GitHub
/// repeats the repository's name (`work/shop/shop`), Azure numbers the pipeline and names
/// the sources folder (`_work/12/s`). Otherwise (`actions/checkout` with a `path`) the
/// folder below the repository's name stays in the path: it is the same in every run.
fn runner_checkout(seg: &[&str], work: usize) -> usize {
    let (a, b) = (
        seg.get(work + 1).copied().unwrap_or(""),
        seg.get(work + 2).copied().unwrap_or(""),
    );
    if a == b || (is_number(a) && b.len() == 1) {
        work + 3
    } else {
        work + 2
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_teamcity_checkout(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_src_digits(s: &str) -> bool {
    s.strip_prefix("src").is_some_and(is_number)
}

#[cfg(test)]
mod tests {
    use super::strip_checkout;

    #[track_caller]
    fn strips(from: &str, to: &str) {
        assert_eq!(strip_checkout(from), to, "{from}");
        // Idempotent: what was stripped is never stripped again.
        assert_eq!(strip_checkout(to), to, "again: {to}");
    }

    #[test]
    fn github_actions_hosted_self_hosted_and_containers() {
        strips(
            "/home/runner/work/shop/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            "/Users/runner/work/shop/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(r"D:\a\shop\shop\tests\CartTest.php", "tests/CartTest.php");
        strips("C:/a/shop/shop/tests/CartTest.php", "tests/CartTest.php");
        strips("/__w/shop/shop/tests/CartTest.php", "tests/CartTest.php");
        strips(
            "/opt/actions-runner-2/_work/shop/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            "/home/runner/_work/shop/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        // actions/checkout with `path: app`.
        strips(
            "/home/runner/work/shop/app/tests/CartTest.php",
            "app/tests/CartTest.php",
        );
    }

    #[test]
    fn azure_teamcity_travis_circle_bitbucket_drone_codebuild() {
        strips("/home/vsts/work/1/s/test/cart.spec.js", "test/cart.spec.js");
        strips("/agent/_work/12/s/test/cart.spec.js", "test/cart.spec.js");
        strips(r"D:\a\1\s\test\cart.spec.js", "test/cart.spec.js");
        strips(
            "/opt/buildAgent/work/9f0a7d3c2b1e4a56/test/a.js",
            "test/a.js",
        );
        strips("/home/travis/build/acme/shop/test/a.js", "test/a.js");
        strips("/home/circleci/project/test/a.js", "test/a.js");
        strips(
            "/opt/atlassian/pipelines/agent/build/test/a.js",
            "test/a.js",
        );
        strips("/drone/src/test/a.js", "test/a.js");
        strips(
            "/woodpecker/src/github.com/acme/shop/test/a.js",
            "test/a.js",
        );
        strips("/codebuild/output/src1234567/src/test/a.js", "test/a.js");
    }

    #[test]
    fn every_copy_of_a_jenkins_workspace_is_one_folder() {
        strips(
            "/var/lib/jenkins/workspace/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            "/var/lib/jenkins/workspace/shop@2/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            "/home/jenkins/agent/workspace/shop@3/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            r"C:\Jenkins\workspace\shop@2\tests\CartTest.php",
            "tests/CartTest.php",
        );
        // A job in a folder keeps the job's own folder, the same in every copy.
        strips(
            "/var/jenkins_home/workspace/team/shop/t/A.php",
            "shop/t/A.php",
        );
        strips(
            "/var/jenkins_home/workspace/team/shop@2/t/A.php",
            "shop/t/A.php",
        );
        // Hudson and old Jenkins: the workspace folder is the checkout.
        strips(
            "/var/lib/hudson/jobs/books/workspace/tests/CartTest.php",
            "tests/CartTest.php",
        );
    }

    #[test]
    fn gitlab_runner_slots_and_buildkite_agents_are_one_folder() {
        strips(
            "/builds/acme/shop/tests/CartTest.php",
            "acme/shop/tests/CartTest.php",
        );
        strips(
            "/home/gitlab-runner/builds/xNf2UjaS/0/acme/shop/tests/CartTest.php",
            "acme/shop/tests/CartTest.php",
        );
        strips(
            "/builds/xNf2UjaS/1/acme/shop/tests/CartTest.php",
            "acme/shop/tests/CartTest.php",
        );
        strips(
            "/var/lib/buildkite-agent/builds/ci-7-1/acme/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
        strips(
            "/buildkite/builds/ci-2-3/acme/shop/tests/CartTest.php",
            "tests/CartTest.php",
        );
    }

    #[test]
    fn bazel_sandboxes_keep_the_workspace_path() {
        strips(
            "/home/u/.cache/bazel/_bazel_u/4f2e/sandbox/linux-sandbox/17/execroot/_main/tests/a_test.py",
            "tests/a_test.py",
        );
        strips(
            "/home/u/.cache/bazel/_bazel_u/4f2e/execroot/_main/bazel-out/k8-fastbuild/bin/tests/a_test.runfiles/_main/tests/a_test.py",
            "tests/a_test.py",
        );
    }

    #[test]
    fn the_earliest_layout_wins_and_unknown_paths_stay() {
        // A repository folder named like another layout stays part of the repository path.
        strips(
            "/home/runner/work/shop/shop/builds/t/A.php",
            "builds/t/A.php",
        );
        strips(
            "/home/runner/work/shop/shop/workspace/t/A.php",
            "workspace/t/A.php",
        );
        for kept in [
            "tests/CartTest.php",
            "./tests/CartTest.php",
            "/home/dev/src/shop/tests/CartTest.php",
            "/home/runner/work/shop/shop",
            "/home/runner/work/shop/shop/",
            "/var/lib/jenkins/workspace/shop",
            "C:relative\\path.php",
            "",
        ] {
            assert_eq!(strip_checkout(kept), kept);
        }
        // A real path segment that merely contains '@' is not a Jenkins copy.
        strips(
            "/var/lib/jenkins/workspace/shop/t/@types/a@b.ts",
            "t/@types/a@b.ts",
        );
    }
}
