//! The quarantine in the syntax each test runner takes as it is.
//!
//! Runner formats print command-line arguments already shell-quoted, on one line, meant for
//! `xargs` or `eval` (`flakehound quarantine --format pytest | xargs pytest`), except
//! `nextest` and `gradle`, which print a bare filterset expression and an init script. A
//! test quarantined in several jobs gives one pattern. With no entries, the argument formats
//! print nothing, `nextest` prints `all()` and `gradle` a script that excludes nothing.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::str::FromStr;

use super::QuarantineEntry;
use crate::model::readable_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineFormat {
    /// One entry a line: `<test_id> <readable name> (<job>)`.
    List,
    /// `serde_json::to_string_pretty` of the entries.
    Json,
    /// `--deselect <node id>` arguments.
    Pytest,
    /// A filterset expression for `cargo nextest run -E`.
    Nextest,
    /// A Surefire `-Dtest=` exclusion argument.
    Maven,
    /// A Gradle init script (`gradle test --init-script quarantine.gradle`).
    Gradle,
    /// A `go test -skip` argument.
    Go,
    /// A Jest `--testNamePattern` argument.
    Jest,
}

impl FromStr for QuarantineFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "list" => QuarantineFormat::List,
            "json" => QuarantineFormat::Json,
            "pytest" => QuarantineFormat::Pytest,
            "nextest" => QuarantineFormat::Nextest,
            "maven" | "surefire" => QuarantineFormat::Maven,
            "gradle" => QuarantineFormat::Gradle,
            "go" => QuarantineFormat::Go,
            "jest" => QuarantineFormat::Jest,
            _ => {
                return Err(format!(
                    "unknown quarantine format {s:?} (list, json, pytest, nextest, maven, gradle, go, jest)"
                ))
            }
        })
    }
}

/// Render the entries (in their order) for a runner; see the module docs.
pub fn render(entries: &[QuarantineEntry], format: QuarantineFormat) -> String {
    match format {
        QuarantineFormat::List => entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} ({})\n",
                    e.test_id,
                    readable_name(&e.classname, &e.name),
                    e.job
                )
            })
            .collect(),
        QuarantineFormat::Json => {
            let mut s = serde_json::to_string_pretty(entries).unwrap_or_else(|_| "[]".into());
            s.push('\n');
            s
        }
        QuarantineFormat::Pytest => {
            let args: Vec<String> = unique(
                entries
                    .iter()
                    .map(|e| pytest_node_id(&e.classname, &e.name, e.file.as_deref())),
            )
            .into_iter()
            .map(|id| format!("--deselect {}", shell_quote(&id)))
            .collect();
            line(args.join(" "))
        }
        QuarantineFormat::Nextest => {
            let terms = unique(entries.iter().map(|e| {
                if e.classname.is_empty() {
                    format!("test(={})", nextest_escape(&e.name))
                } else {
                    format!(
                        "(binary_id(={}) & test(={}))",
                        nextest_escape(&e.classname),
                        nextest_escape(&e.name)
                    )
                }
            }));
            if terms.is_empty() {
                "all()\n".to_string()
            } else {
                format!("not ({})\n", terms.join(" | "))
            }
        }
        QuarantineFormat::Maven => {
            let pats = unique(
                entries
                    .iter()
                    .map(|e| format!("!{}", surefire_pattern(&e.classname, &e.name))),
            );
            if pats.is_empty() {
                String::new()
            } else {
                line(format!("-Dtest={}", shell_quote(&pats.join(","))))
            }
        }
        QuarantineFormat::Gradle => {
            let (exact, loose): (Vec<_>, Vec<_>) = entries.iter().partition(|e| {
                let (env, name) = crate::junit::split_environment(&e.name);
                gradle_name_is_matchable(name) && env.is_none_or(crate::junit::is_gradle_test_task)
            });
            // A test of one Gradle test task (Android's `testReleaseUnitTest`) is excluded
            // from that task only; the rest from every task.
            let mut tasks: Vec<(Option<&str>, Vec<String>)> = Vec::new();
            for e in &exact {
                let (env, name) = crate::junit::split_environment(&e.name);
                let pattern = gradle_pattern(&e.classname, name);
                match tasks.iter_mut().find(|(t, _)| *t == env) {
                    Some((_, pats)) if pats.contains(&pattern) => {}
                    Some((_, pats)) => pats.push(pattern),
                    None => tasks.push((env, vec![pattern])),
                }
            }
            let total: usize = tasks.iter().map(|(_, p)| p.len()).sum();
            let mut s = format!(
                "// flakehound quarantine: {total} test(s) excluded.\n// Use: gradle test --init-script quarantine.gradle\n",
            );
            // A name that would be all wildcards (`.`, `*`) would exclude a whole package:
            // say so instead of excluding more than the quarantine holds.
            for e in &loose {
                let why = match crate::junit::split_environment(&e.name).0 {
                    // An Android device, a Playwright project: no Gradle test task runs it.
                    Some(env) if !crate::junit::is_gradle_test_task(env) => {
                        "it runs in an environment that is not a Gradle test task"
                    }
                    _ => "its name cannot be matched by Gradle without a wildcard for the whole class",
                };
                let _ = writeln!(
                    s,
                    "// not excluded, {why}: {}",
                    comment_safe(&format!("{}.{}", e.classname, e.name))
                );
            }
            s.push_str("allprojects {\n    tasks.withType(Test).configureEach {\n");
            let exclusions = |s: &mut String, pats: &[String], indent: &str| {
                let _ = writeln!(s, "{indent}filter {{");
                for p in pats {
                    let _ = writeln!(s, "{indent}    excludeTestsMatching '{}'", groovy_escape(p));
                }
                let _ = writeln!(s, "{indent}}}");
            };
            let everywhere = tasks.iter().find(|(t, _)| t.is_none());
            exclusions(&mut s, everywhere.map_or(&[][..], |(_, p)| p), "        ");
            for (task, pats) in tasks.iter().filter_map(|(t, p)| Some((t.as_ref()?, p))) {
                let _ = writeln!(s, "        if (it.name == '{}') {{", groovy_escape(task));
                exclusions(&mut s, pats, "            ");
                s.push_str("        }\n");
            }
            s.push_str("    }\n}\n");
            s
        }
        QuarantineFormat::Go => {
            let alts = unique(entries.iter().map(|e| go_skip_pattern(&e.name)));
            if alts.is_empty() {
                String::new()
            } else {
                line(format!("-skip {}", shell_quote(&alts.join("|"))))
            }
        }
        QuarantineFormat::Jest => {
            let names = unique(entries.iter().map(|e| jest_escape(&e.name)));
            if names.is_empty() {
                String::new()
            } else {
                let pattern = format!("^(?!(?:{})$).*", names.join("|"));
                line(format!("--testNamePattern={}", shell_quote(&pattern)))
            }
        }
    }
}

fn line(s: String) -> String {
    if s.is_empty() {
        s
    } else {
        s + "\n"
    }
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|s| seen.insert(s.clone())).collect()
}

/// Quote for a POSIX shell when needed: `'...'`, with `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The pytest node id `path::Class::name` of a JUnit test case.
///
/// pytest's classname is the dotted module path plus any classes
/// (`tests.test_a.TestCls`). With `file`, the path is the file and the classes are the
/// classname's parts after the module (matched by the file's dotted path, else by its
/// stem). Without it (pytest's default `xunit2` reports carry none), the trailing parts that
/// start with an upper-case letter are the classes (pytest collects `Test*` classes from
/// lower-case `test_*` modules) and the rest is the module: `a.b` → `a/b.py`.
pub fn pytest_node_id(classname: &str, name: &str, file: Option<&str>) -> String {
    let parts: Vec<&str> = classname.split('.').filter(|p| !p.is_empty()).collect();
    let (path, classes): (String, Vec<&str>) = match file {
        Some(f) if !f.is_empty() => {
            let f = f.replace('\\', "/");
            let module_path = f.trim_end_matches(".py").replace('/', ".");
            let stem = module_path.rsplit('.').next().unwrap_or("").to_string();
            let classes = if let Some(rest) = classname.strip_prefix(&format!("{module_path}.")) {
                rest.split('.').collect()
            } else if classname == module_path {
                Vec::new()
            } else if let Some(i) = parts.iter().rposition(|p| *p == stem) {
                parts[i + 1..].to_vec()
            } else {
                parts
                    .iter()
                    .rev()
                    .take_while(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
                    .copied()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect()
            };
            (f, classes)
        }
        _ => {
            let n_classes = parts
                .iter()
                .rev()
                .take_while(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
                .count()
                .min(parts.len().saturating_sub(1));
            let split = parts.len() - n_classes;
            let module = parts[..split].join("/");
            (format!("{module}.py"), parts[split..].to_vec())
        }
    };
    let mut id = path;
    for c in classes {
        id.push_str("::");
        id.push_str(c);
    }
    id.push_str("::");
    id.push_str(name);
    id
}

/// Escape a string for nextest's `=`, `~` and `#` matchers.
pub fn nextest_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '/' => out.push_str(r"\/"),
            ')' => out.push_str(r"\)"),
            ',' => out.push_str(r"\,"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() => {
                let _ = write!(out, r"\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `Class#method` for Surefire's `-Dtest`. Surefire reads both parts as patterns (`*`,
/// `?`) and splits the list on `,`, `#` and `+`, so every character outside
/// `[A-Za-z0-9_$]` (and `.` in the class) becomes `?`, which matches exactly one
/// character: `bar[1]` → `bar?1?`. A few other names of the same shape may match too.
pub fn surefire_pattern(classname: &str, name: &str) -> String {
    let class: String = classname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.' {
                c
            } else {
                '?'
            }
        })
        .collect();
    let method: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("{class}#{method}")
}

/// `Class.method` for Gradle's `excludeTestsMatching`. Gradle's only wildcard is `*`; a
/// `.` inside the method name would be read as a class separator, so it becomes `*`, as
/// does a literal `*` (which cannot be escaped).
/// Control characters (a newline would end the init script's string) become `*` too.
pub fn gradle_pattern(classname: &str, name: &str) -> String {
    let method: String = name
        .chars()
        .map(|c| if c == '.' || c.is_control() { '*' } else { c })
        .collect();
    if classname.is_empty() {
        method
    } else {
        format!("{classname}.{method}")
    }
}

/// Whether a test name keeps a literal character in its Gradle pattern: a name of only
/// `.`, `*`, blanks or control characters becomes `Class.*`, every test of the class (and,
/// with a package for a class name, every class below it).
fn gradle_name_is_matchable(name: &str) -> bool {
    name.chars()
        .any(|c| c != '.' && c != '*' && !c.is_control() && !c.is_whitespace())
}

/// Text for a `//` comment line: control characters shown escaped, never a line break.
fn comment_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn groovy_escape(s: &str) -> String {
    s.replace('\\', r"\\").replace('\'', r"\'")
}

/// Quote regular-expression metacharacters like Go's `regexp.QuoteMeta`.
fn go_quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One alternative of `go test -skip`: each `/`-separated level of the name anchored and
/// quoted, joined by `/` (Go splits the pattern by unbracketed `/` and `|`, and matches
/// each element against one level). Spaces become `_`, as Go renames subtests.
pub fn go_skip_pattern(name: &str) -> String {
    name.split('/')
        .map(|level| format!("^{}$", go_quote_meta(&level.replace(' ', "_"))))
        .collect::<Vec<_>>()
        .join("/")
}

/// Escape JavaScript regular-expression metacharacters.
pub fn jest_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\^$.*+?()[]{}|/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_ids() {
        assert_eq!(
            pytest_node_id("tests.test_a.TestCls", "test_x[1]", Some("tests/test_a.py")),
            "tests/test_a.py::TestCls::test_x[1]"
        );
        assert_eq!(
            pytest_node_id("tests.test_a.TestCls", "test_x[1]", None),
            "tests/test_a.py::TestCls::test_x[1]"
        );
        assert_eq!(
            pytest_node_id("tests.test_b", "test_y", None),
            "tests/test_b.py::test_y"
        );
        assert_eq!(
            pytest_node_id(
                "pkg.tests.test_a.TestA.TestB",
                "test_z",
                Some("tests/test_a.py")
            ),
            "tests/test_a.py::TestA::TestB::test_z"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(shell_quote("a/b.py::x"), "a/b.py::x");
        assert_eq!(shell_quote("it's [1]"), r"'it'\''s [1]'");
        assert_eq!(nextest_escape("a::b(1,2)/c"), r"a::b(1\,2\)\/c");
        assert_eq!(
            surefire_pattern("com.acme.Foo", "bar[1]"),
            "com.acme.Foo#bar?1?"
        );
        assert_eq!(
            gradle_pattern("com.acme.Foo", "bar[1.5]"),
            "com.acme.Foo.bar[1*5]"
        );
        assert_eq!(
            gradle_pattern("com.acme.Foo", "line\nbreak"),
            "com.acme.Foo.line*break"
        );
        assert!(!gradle_name_is_matchable("."));
        assert!(!gradle_name_is_matchable("*"));
        assert!(gradle_name_is_matchable("a.b"));
        assert_eq!(
            go_skip_pattern("TestB/sub case.v2"),
            r"^TestB$/^sub_case\.v2$"
        );
        assert_eq!(jest_escape("a (b) [c] d?"), r"a \(b\) \[c\] d\?");
    }
}
