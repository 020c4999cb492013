//! Links from a flaky test to where people look next: the CI run's page and the commit's
//! page. Run URLs are stored at ingest; commit URLs are made when an output is rendered,
//! from a template (`--commit-url-template`), else from the CI environment, else guessed
//! from the run's URL on GitHub and GitLab.

/// Longest URL accepted; a run URL is a few hundred bytes at most.
const MAX_URL: usize = 2048;

/// Accept an `http://` or `https://` URL without whitespace or control characters, so
/// that it is safe to put in an `href` (no `javascript:`) and prints on one line.
pub fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    if url.len() > MAX_URL {
        return Err(format!("URL longer than {MAX_URL} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains whitespace or control characters"));
    }
    Ok(url.to_string())
}

/// What the outputs link and annotate a test with: its owners and commit pages.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub owners: Option<crate::codeowners::CodeOwners>,
    pub commits: CommitLinks,
}

impl Links {
    /// The owners of a test (empty without a CODEOWNERS file or a matching rule).
    pub fn owners_of(&self, classname: &str, file: Option<&str>) -> Vec<String> {
        self.owners
            .as_ref()
            .map(|o| o.owners_of_test(classname, file))
            .unwrap_or_default()
    }
}

/// How commit pages are linked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitLinks {
    /// A template with `{sha}`, e.g. `https://github.com/o/r/commit/{sha}`. Without one,
    /// each commit is linked from its run's URL where that names a GitHub or GitLab project.
    pub template: Option<String>,
}

impl CommitLinks {
    /// From a flag's value, else the environment: `FLAKEHOUND_COMMIT_URL_TEMPLATE`, then
    /// GitHub Actions' `GITHUB_SERVER_URL` and `GITHUB_REPOSITORY`.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<CommitLinks, String> {
        Self::resolve(flag, |name| std::env::var(name).ok())
    }

    /// As [`from_flag_or_env`](Self::from_flag_or_env) with any lookup (for tests).
    pub fn resolve(
        flag: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<CommitLinks, String> {
        let given = flag
            .map(str::to_string)
            .or_else(|| lookup("FLAKEHOUND_COMMIT_URL_TEMPLATE"))
            .filter(|t| !t.trim().is_empty());
        if let Some(t) = given {
            if !t.contains("{sha}") {
                return Err(format!(
                    "commit URL template {t:?} has no {{sha}} placeholder"
                ));
            }
            check_url(&t.replace("{sha}", "0"))?;
            return Ok(CommitLinks {
                template: Some(t.trim().to_string()),
            });
        }
        let server = lookup("GITHUB_SERVER_URL").filter(|s| !s.trim().is_empty());
        let repo = lookup("GITHUB_REPOSITORY").filter(|s| !s.trim().is_empty());
        let template = match (server, repo) {
            (Some(server), Some(repo)) => Some(format!(
                "{}/{}/commit/{{sha}}",
                server.trim().trim_end_matches('/'),
                repo.trim()
            )),
            _ => None,
        };
        Ok(CommitLinks {
            template: template.filter(|t| check_url(t).is_ok()),
        })
    }

    /// The page of `sha`, given the URL of a run that tested it (if any).
    pub fn commit_url(&self, sha: &str, run_url: Option<&str>) -> Option<String> {
        // A SHA is hex; anything else is not put into a URL.
        if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        if let Some(t) = &self.template {
            return Some(t.replace("{sha}", sha));
        }
        project_of_run_url(run_url?).map(|(base, kind)| match kind {
            Forge::GitHub => format!("{base}/commit/{sha}"),
            Forge::GitLab => format!("{base}/-/commit/{sha}"),
        })
    }
}

enum Forge {
    GitHub,
    GitLab,
}

/// The project URL of a GitHub Actions or GitLab CI run URL.
fn project_of_run_url(url: &str) -> Option<(&str, Forge)> {
    if let Some(i) = url.find("/actions/runs/") {
        return Some((&url[..i], Forge::GitHub));
    }
    for marker in ["/-/jobs/", "/-/pipelines/"] {
        if let Some(i) = url.find(marker) {
            return Some((&url[..i], Forge::GitLab));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http() {
        assert!(check_url("https://ci.example/runs/1").is_ok());
        assert_eq!(check_url(" http://x/1 ").unwrap(), "http://x/1");
        assert!(check_url("javascript:alert(1)").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://x/a b").is_err());
        assert!(check_url(&format!("https://x/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn template_from_flag_then_env_then_github() {
        let none = |_: &str| None;
        let links = CommitLinks::resolve(Some("https://git.example/r/commit/{sha}"), none).unwrap();
        assert_eq!(
            links.commit_url("abc123", None).as_deref(),
            Some("https://git.example/r/commit/abc123")
        );
        assert!(CommitLinks::resolve(Some("https://git.example/r"), none).is_err());
        assert!(CommitLinks::resolve(Some("javascript:{sha}"), none).is_err());
        let gh = |n: &str| match n {
            "GITHUB_SERVER_URL" => Some("https://github.com/".to_string()),
            "GITHUB_REPOSITORY" => Some("acme/shop".to_string()),
            _ => None,
        };
        let links = CommitLinks::resolve(None, gh).unwrap();
        assert_eq!(
            links.commit_url("ff00", None).as_deref(),
            Some("https://github.com/acme/shop/commit/ff00")
        );
        let env =
            |n: &str| (n == "FLAKEHOUND_COMMIT_URL_TEMPLATE").then(|| "https://h/{sha}".into());
        assert_eq!(
            CommitLinks::resolve(None, env).unwrap().template.as_deref(),
            Some("https://h/{sha}")
        );
    }

    #[test]
    fn commit_linked_from_the_run_url_without_a_template() {
        let links = CommitLinks::default();
        assert_eq!(
            links
                .commit_url(
                    "a1b2",
                    Some("https://github.com/acme/shop/actions/runs/42/attempts/2")
                )
                .as_deref(),
            Some("https://github.com/acme/shop/commit/a1b2")
        );
        assert_eq!(
            links
                .commit_url("a1b2", Some("https://gitlab.com/g/p/-/jobs/7"))
                .as_deref(),
            Some("https://gitlab.com/g/p/-/commit/a1b2")
        );
        assert_eq!(
            links.commit_url("a1b2", Some("https://ci.example/build/3")),
            None
        );
        assert_eq!(links.commit_url("a1b2", None), None);
        // Not hex: never spliced into a URL.
        let t = CommitLinks {
            template: Some("https://h/{sha}".into()),
        };
        assert_eq!(t.commit_url("x\"><script>", None), None);
    }
}
