//! Test owners from a CODEOWNERS file, with GitHub's rules: the last matching pattern
//! wins; patterns are gitignore-style globs (`*` within a folder, `**` across folders,
//! `?` one character); a leading `/` or a `/` inside anchors the pattern at the
//! repository root, otherwise it matches at any depth; a pattern naming a folder owns
//! everything under it; a pattern with no owners leaves the path unowned. As on GitHub,
//! `!` negation and `[ ]` ranges are not supported (such lines are skipped with a warning).
//!
//! A test is matched by its `file` attribute. Without one, its classname is turned into
//! candidate paths under an unknown folder: `com.acme.FooTest` becomes
//! `…/com/acme/FooTest.java` (and `.kt`, `.py`, …), then its shorter dotted prefixes
//! (`…/com/acme.py` for a Python module `com.acme` with class `FooTest`); a Go package
//! path `github.com/acme/shop/pay` becomes `…/pay/x_test.go` for every suffix of it.

use std::path::{Path, PathBuf};

/// Where CODEOWNERS is looked for, relative to the current folder, in GitHub's order.
pub const LOCATIONS: [&str; 4] = [
    ".github/CODEOWNERS",
    "CODEOWNERS",
    "docs/CODEOWNERS",
    ".gitlab/CODEOWNERS",
];

/// Extensions tried for a classname's file.
const EXTENSIONS: [&str; 16] = [
    "java", "kt", "scala", "groovy", "py", "rb", "js", "ts", "jsx", "tsx", "cs", "php", "go", "rs",
    "swift", "ex",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    segments: Vec<String>,
    /// A folder pattern (no glob in its last part, or `**`): owns everything below.
    owns_below: bool,
    /// Matches files only (`dir/`); then only what is below counts.
    dir_only: bool,
    owners: Vec<String>,
}

/// A parsed CODEOWNERS file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeOwners {
    rules: Vec<Rule>,
    /// The repository root the file belongs to, to make absolute test paths relative.
    root: Option<PathBuf>,
}

/// How a candidate path relates to the repository root.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// Relative to the root.
    Exact,
    /// An absolute path: some suffix of it is relative to the root.
    PathSuffix,
    /// Relative to an unknown folder under the root (from a classname).
    UnknownFolder,
}

impl CodeOwners {
    /// Parse CODEOWNERS text. Malformed lines are skipped with a warning naming the line.
    pub fn parse(text: &str, source: &str) -> CodeOwners {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // A `#` after whitespace starts a comment; `\#` is a literal.
            let line = match line.find(" #") {
                Some(i) => &line[..i],
                None => line,
            };
            let mut parts = line.split_whitespace();
            let Some(pattern) = parts.next() else {
                continue;
            };
            let pattern = pattern.replace("\\#", "#");
            if pattern.starts_with('!') || pattern.contains('[') {
                tracing::warn!(
                    file = source,
                    line = i + 1,
                    pattern,
                    "CODEOWNERS: negation and [ ] ranges are not supported; line skipped"
                );
                continue;
            }
            let owners = parts.map(str::to_string).collect();
            rules.push(Rule::new(&pattern, owners));
        }
        CodeOwners { rules, root: None }
    }

    /// Read a CODEOWNERS file; the repository root is taken to be its folder (or the
    /// folder above, for `.github/`, `docs/` and `.gitlab/`).
    pub fn load(path: &Path) -> std::io::Result<CodeOwners> {
        let text = std::fs::read_to_string(path)?;
        let mut owners = Self::parse(&text, &path.display().to_string());
        let dir = path.parent().unwrap_or(Path::new("."));
        let in_sub = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| matches!(n, ".github" | "docs" | ".gitlab"));
        let root = if in_sub {
            dir.parent().unwrap_or(Path::new("."))
        } else {
            dir
        };
        owners.root = std::fs::canonicalize(root).ok();
        Ok(owners)
    }

    /// `--codeowners PATH`, else the first of [`LOCATIONS`] under `dir` that exists.
    pub fn find(flag: Option<&Path>, dir: &Path) -> Result<Option<CodeOwners>, String> {
        if let Some(p) = flag {
            return Self::load(p)
                .map(Some)
                .map_err(|e| format!("--codeowners {}: {e}", p.display()));
        }
        for rel in LOCATIONS {
            let p = dir.join(rel);
            if p.is_file() {
                tracing::info!(path = %p.display(), "reading test owners");
                return Self::load(&p)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", p.display()));
            }
        }
        Ok(None)
    }

    /// Owners of a repository path (relative, `/`-separated), by the last matching rule.
    pub fn owners_of_path(&self, path: &str) -> Vec<String> {
        let segs = split(path);
        self.last_match(&segs, Anchor::Exact)
            .map(|r| r.owners.clone())
            .unwrap_or_default()
    }

    /// Owners of a test: by its file, else by paths guessed from its classname.
    pub fn owners_of_test(&self, classname: &str, file: Option<&str>) -> Vec<String> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        if let Some(file) = file.map(str::trim).filter(|f| !f.is_empty()) {
            let file = file.replace('\\', "/");
            if let Some(rule) = self.match_file(&file) {
                return rule.owners.clone();
            }
        }
        // Each group is one guess at the file (any of its extensions or folder suffixes);
        // within a group the last matching rule wins, and the most specific guess first.
        for group in classname_paths(classname) {
            let rule = self
                .rules
                .iter()
                .rev()
                .find(|r| group.iter().any(|c| r.matches(c, Anchor::UnknownFolder)));
            if let Some(rule) = rule {
                return rule.owners.clone();
            }
        }
        Vec::new()
    }

    fn match_file(&self, file: &str) -> Option<&Rule> {
        let is_absolute = file.starts_with('/') || file.get(1..3) == Some(":/");
        if !is_absolute {
            let rel = file.trim_start_matches("./");
            return self.last_match(&split(rel), Anchor::Exact);
        }
        if let Some(root) = &self.root {
            let root = root.to_string_lossy().replace('\\', "/");
            let root = root.trim_end_matches('/');
            if let Some(rest) = file.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
                return self.last_match(&split(rest), Anchor::Exact);
            }
        }
        self.last_match(&split(file), Anchor::PathSuffix)
    }

    fn last_match(&self, path: &[String], anchor: Anchor) -> Option<&Rule> {
        self.rules.iter().rev().find(|r| r.matches(path, anchor))
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect()
}

/// Candidate paths of a test without a file, in groups, most specific group first.
fn classname_paths(classname: &str) -> Vec<Vec<Vec<String>>> {
    let classname = classname.trim();
    if classname.is_empty() {
        return Vec::new();
    }
    if classname.contains('/') {
        // A Go package path: the repository holds some suffix of it.
        let segs = split(classname);
        let group = (0..segs.len())
            .map(|k| {
                let mut p = segs[k..].to_vec();
                p.push("x_test.go".into());
                p
            })
            .collect();
        return vec![group];
    }
    // Java nested classes (`Outer$Inner`) live in the outer class's file.
    let base = classname.split('$').next().unwrap_or(classname);
    let parts: Vec<&str> = base.split('.').filter(|s| !s.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| {
            EXTENSIONS
                .iter()
                .map(|ext| {
                    let mut p: Vec<String> = parts[..n].iter().map(|s| s.to_string()).collect();
                    let last = p.pop().unwrap_or_default();
                    p.push(format!("{last}.{ext}"));
                    p
                })
                .collect()
        })
        .collect()
}

impl Rule {
    fn new(pattern: &str, owners: Vec<String>) -> Rule {
        let mut p = pattern;
        let anchored_root = p.starts_with('/');
        p = p.trim_start_matches('/');
        let dir_only = p.ends_with('/');
        p = p.trim_end_matches('/');
        let anchored = anchored_root || p.contains('/');
        let mut segments: Vec<String> = if p.is_empty() {
            Vec::new()
        } else {
            p.split('/').map(str::to_string).collect()
        };
        if !anchored {
            segments.insert(0, "**".into());
        }
        let last = segments.last().map(String::as_str).unwrap_or("**");
        // `docs/*` owns the files in docs/ but not in its subfolders (GitHub's docs).
        let owns_below = last == "**" || !(last.contains('*') || last.contains('?'));
        Rule {
            segments,
            owns_below,
            dir_only,
            owners,
        }
    }

    fn matches(&self, path: &[String], anchor: Anchor) -> bool {
        match anchor {
            Anchor::Exact => self.matches_exact(&self.segments, path),
            Anchor::PathSuffix => {
                (0..path.len()).any(|k| self.matches_exact(&self.segments, &path[k..]))
            }
            Anchor::UnknownFolder => (0..=self.segments.len()).any(|k| {
                let rest = &self.segments[k..];
                // The unknown folder may absorb the pattern's head, but not all of it.
                (k == 0 || rest.iter().any(|s| s != "**")) && self.matches_exact(rest, path)
            }),
        }
    }

    fn matches_exact(&self, pattern: &[String], path: &[String]) -> bool {
        if path.is_empty() {
            return false;
        }
        if !self.dir_only && glob(pattern, path) {
            return true;
        }
        // A folder pattern owns what is below it: it matches a proper prefix of the path.
        self.owns_below && (1..path.len()).any(|n| glob(pattern, &path[..n]))
    }
}

/// Whole-path glob over segments, with `**` matching any number of segments.
fn glob(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|k| glob(rest, &path[k..])),
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                segment(first.as_bytes(), seg.as_bytes()) && glob(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One segment: `*` any run of characters, `?` one character.
fn segment(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| segment(rest, &s[k..])),
        Some((b'?', rest)) => !s.is_empty() && segment(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && segment(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_EXAMPLE: &str = r#"
# From GitHub's documentation, in order.
*       @global-owner1 @global-owner2
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
"#;

    fn owners(text: &str, path: &str) -> Vec<String> {
        CodeOwners::parse(text, "CODEOWNERS").owners_of_path(path)
    }

    #[test]
    fn last_matching_pattern_wins() {
        assert_eq!(
            owners(GITHUB_EXAMPLE, "README.md"),
            ["@global-owner1", "@global-owner2"]
        );
        assert_eq!(owners(GITHUB_EXAMPLE, "src/app.js"), ["@js-owner"]);
        assert_eq!(owners(GITHUB_EXAMPLE, "cmd/main.go"), ["docs@example.com"]);
        assert_eq!(
            owners(GITHUB_EXAMPLE, "a/b/notes.txt"),
            ["@octo-org/octocats"]
        );
    }

    #[test]
    fn anchored_and_directory_patterns() {
        // **/logs matches at any depth and comes after /build/logs/, so it wins.
        assert_eq!(
            owners(GITHUB_EXAMPLE, "build/logs/today/x.log"),
            ["@octocat"]
        );
        assert_eq!(
            owners("/build/logs/ @doc\n", "build/logs/today/x.log"),
            ["@doc"]
        );
        assert!(owners("/build/logs/ @doc\n", "deep/build/logs/x.log").is_empty());
        assert_eq!(
            owners(GITHUB_EXAMPLE, "scripts/deploy.sh"),
            ["@doctocat", "@octocat"]
        );
        // /docs/ comes after docs/*, and owns everything below docs/.
        assert_eq!(
            owners(GITHUB_EXAMPLE, "docs/build-app/troubleshooting.md"),
            ["@doctocat"]
        );
        // An unanchored folder pattern matches at any depth.
        assert_eq!(owners(GITHUB_EXAMPLE, "lib/apps/x.rb"), ["@octocat"]);
        // A pattern without owners leaves the path unowned.
        assert!(owners(GITHUB_EXAMPLE, "apps/github/x.rb").is_empty());
        assert_eq!(owners(GITHUB_EXAMPLE, "apps/other/x.rb"), ["@octocat"]);
    }

    #[test]
    fn star_stays_within_a_folder() {
        let text = "docs/*  @docs\n";
        assert_eq!(owners(text, "docs/getting-started.md"), ["@docs"]);
        assert!(owners(text, "docs/build-app/troubleshooting.md").is_empty());
        let text = "/src/**/test_*.py @py\n/a/?.txt @q\n";
        assert_eq!(owners(text, "src/test_a.py"), ["@py"]);
        assert_eq!(owners(text, "src/x/y/test_b.py"), ["@py"]);
        assert!(owners(text, "lib/src/test_a.py").is_empty());
        assert_eq!(owners(text, "a/b.txt"), ["@q"]);
        assert!(owners(text, "a/bc.txt").is_empty());
    }

    #[test]
    fn directory_only_pattern_does_not_match_a_file_of_that_name() {
        let text = "logs/ @dirs\n";
        assert!(owners(text, "logs").is_empty());
        assert_eq!(owners(text, "x/logs/a"), ["@dirs"]);
    }

    #[test]
    fn unsupported_lines_are_skipped() {
        let text = "* @all\n!secret.txt @nobody\n[ab].txt @range\n\\#hash @hash\n";
        let co = CodeOwners::parse(text, "CODEOWNERS");
        assert_eq!(co.owners_of_path("secret.txt"), ["@all"]);
        assert_eq!(co.owners_of_path("a.txt"), ["@all"]);
        assert_eq!(co.owners_of_path("#hash"), ["@hash"]);
    }

    #[test]
    fn tests_by_file_then_classname() {
        let text = "* @everyone\n/src/test/java/com/acme/payments/ @payments\n/tests/api/ @api\n/pkg/billing/ @billing\n";
        let co = CodeOwners::parse(text, "CODEOWNERS");
        assert_eq!(
            co.owners_of_test("x", Some("tests/api/test_users.py")),
            ["@api"]
        );
        assert_eq!(
            co.owners_of_test("x", Some("./tests/api/test_users.py")),
            ["@api"]
        );
        // An absolute path from an unknown checkout folder.
        assert_eq!(
            co.owners_of_test("x", Some("/srv/ci/shop/tests/api/t.py")),
            ["@api"]
        );
        assert_eq!(
            co.owners_of_test("com.acme.payments.RefundIT", None),
            ["@payments"]
        );
        assert_eq!(
            co.owners_of_test("com.acme.payments.RefundIT$Nested", None),
            ["@payments"]
        );
        assert_eq!(
            co.owners_of_test("com.acme.orders.OrderIT", None),
            ["@everyone"]
        );
        assert_eq!(
            co.owners_of_test("github.com/acme/shop/pkg/billing", None),
            ["@billing"]
        );
        // A folder rule does not claim a classname it shares no part with.
        let co = CodeOwners::parse("/frontend/ @web\n", "CODEOWNERS");
        assert!(co.owners_of_test("com.acme.FooTest", None).is_empty());
        assert!(CodeOwners::default()
            .owners_of_test("a.B", Some("a/B.java"))
            .is_empty());
    }

    #[test]
    fn found_in_the_usual_places_and_root_strips_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CodeOwners::find(None, dir.path()).unwrap(), None);
        std::fs::create_dir(dir.path().join(".github")).unwrap();
        std::fs::write(dir.path().join(".github/CODEOWNERS"), "/src/ @core\n").unwrap();
        let co = CodeOwners::find(None, dir.path()).unwrap().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let abs = format!("{}/src/a_test.py", root.display());
        assert_eq!(co.owners_of_test("x", Some(&abs)), ["@core"]);
        let missing = dir.path().join("nope");
        assert!(CodeOwners::find(Some(&missing), dir.path()).is_err());
    }
}
