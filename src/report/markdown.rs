//! The report as GitHub-flavoured Markdown, at most [`MARKDOWN_LIMIT`] characters: when it
//! would be longer, the long tails of the tables are cut ("… and N more") until it fits.

use std::fmt::Write as _;

use super::{display_name, MovedTest, Report};

/// GitHub's limit for an issue or pull-request comment body, in characters.
pub const MARKDOWN_LIMIT: usize = 65_536;
/// Longest test name or message shown in a cell.
const CELL_CHARS: usize = 160;

/// Rows shown per table; `usize::MAX` for all.
#[derive(Clone, Copy)]
struct Limits {
    rows: usize,
}

/// The report as Markdown for a GitHub issue or PR comment (≤ 65,536 characters).
pub fn to_markdown(report: &Report) -> String {
    let mut limits = Limits { rows: usize::MAX };
    let mut out = render(report, limits);
    while out.chars().count() > MARKDOWN_LIMIT && limits.rows > 1 {
        let longest = longest_table(report);
        limits.rows = if limits.rows == usize::MAX {
            longest.saturating_sub(1).max(1)
        } else {
            (limits.rows * 2 / 3).max(1)
        };
        out = render(report, limits);
    }
    if out.chars().count() > MARKDOWN_LIMIT {
        // Only absurdly long names can get here: cut the text itself.
        let note = "\n\n… truncated to fit in 65,536 characters; see the JSON/HTML report.\n";
        let keep = MARKDOWN_LIMIT - note.chars().count();
        out = out.chars().take(keep).collect::<String>() + note;
    }
    out
}

fn longest_table(r: &Report) -> usize {
    [
        r.movement.new_flaky.len(),
        r.movement.fixed.len(),
        r.movement.worse.len(),
        r.top.len(),
        r.co_failures.groups.len(),
        r.broken.len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// Inline code that survives table cells: `|` escaped, newlines flattened, long text cut.
pub(crate) fn code(s: &str) -> String {
    let mut s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if s.chars().count() > CELL_CHARS {
        s = s.chars().take(CELL_CHARS - 1).collect::<String>() + "…";
    }
    let s = s.replace('|', "\\|");
    let mut run = 0;
    let mut longest = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

pub(crate) fn signed(x: f64, digits: usize) -> String {
    let s = format!("{:+.*}", digits, x);
    if s.trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        format!("{:.*}", digits, 0.0)
    } else {
        s
    }
}

pub(crate) fn interval(rate: f64, low: f64, high: f64) -> String {
    format!("{} ({}–{})", pct(rate), pct(low), pct(high))
}

fn more(out: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(
            out,
            "\n… and {} more; see the JSON/HTML report.",
            total - shown
        );
    }
}

fn moved_table(out: &mut String, rows: &[MovedTest], limit: usize, previous: bool) {
    if previous {
        out.push_str("| Test | Job | Status | Flake rate (before → now) | Retries/day (before → now) |\n|---|---|---|---:|---:|\n");
    } else {
        out.push_str(
            "| Test | Job | Flake rate | Retries/day | First flake |\n|---|---|---:|---:|---|\n",
        );
    }
    for m in rows.iter().take(limit) {
        let name = code(&display_name(&m.classname, &m.name));
        if previous {
            let _ = writeln!(
                out,
                "| {name} | {} | {} → {} | {} → {} | {:.2} → {:.2} |",
                code(&m.job),
                m.previous_status,
                m.status,
                pct(m.previous_flake_rate),
                pct(m.flake_rate),
                m.previous_retries_per_day,
                m.retries_per_day
            );
        } else {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.2} | {} |",
                code(&m.job),
                pct(m.flake_rate),
                m.retries_per_day,
                m.first_flake_at.as_deref().unwrap_or("—")
            );
        }
    }
    more(out, rows.len(), limit.min(rows.len()));
}

fn render(r: &Report, limits: Limits) -> String {
    let lim = limits.rows;
    let truncated = lim < longest_table(r);
    let mut out = String::new();
    let h = &r.headline;
    let c = &h.current;
    let scope = match (&r.branch, &r.job) {
        (Some(b), Some(j)) => format!(" — branch {}, job {}", code(b), code(j)),
        (Some(b), None) => format!(" — branch {}", code(b)),
        (None, Some(j)) => format!(" — job {}", code(j)),
        (None, None) => String::new(),
    };
    let _ = writeln!(out, "# Flaky-test report{scope}\n");
    let _ = writeln!(
        out,
        "Window: {} → {} ({}). One row per (test, job): a test flaky in several jobs has a row for each.\n",
        r.since,
        r.as_of,
        r.window_text()
    );
    if truncated {
        out.push_str("> **Truncated**: the long tails of the tables below were cut to fit in a GitHub comment (65,536 characters); the JSON and HTML reports have everything.\n\n");
    }
    let verdict = if c.meets_slo {
        format!("meets the {} SLO", pct(h.slo))
    } else {
        format!("**above the {} SLO**", pct(h.slo))
    };
    let _ = writeln!(
        out,
        "**Pipeline flake rate {}** ({} of {} job attempts failed only because of flaky tests) — {verdict}. Job failure rate, all causes: **{}**.\n",
        pct(c.flake_rate),
        c.flaky_failed_attempts,
        c.attempts,
        pct(c.job_failure_rate)
    );
    if c.masked_share >= 0.2 {
        let _ = writeln!(
            out,
            "> **Masked**: {} of job attempts failed for other reasons (broken tests, infrastructure). Flaky tests' failures there cost no extra retry today, so their retries/day count only the attempts that would otherwise pass; fix the breakages and the flaky tests' cost shows.\n",
            pct(c.masked_share)
        );
    }
    out.push_str("| | This window | Previous window | Change |\n|---|---:|---:|---:|\n");
    let p = h.previous.as_ref();
    let ch = h.change.as_ref();
    let dash = || "—".to_string();
    let rows: [(&str, String, String, String); 6] = [
        (
            "Pipeline flake rate",
            pct(c.flake_rate),
            p.map_or_else(dash, |p| pct(p.flake_rate)),
            ch.map_or_else(dash, |d| format!("{} pp", signed(d.flake_rate * 100.0, 2))),
        ),
        (
            "Wasted retries/day (observed)",
            format!("{:.2}", c.wasted_retries_per_day),
            p.map_or_else(dash, |p| format!("{:.2}", p.wasted_retries_per_day)),
            ch.map_or_else(dash, |d| signed(d.wasted_retries_per_day, 2)),
        ),
        (
            "Wasted CI minutes/day (observed)",
            format!("{:.1}", c.wasted_ci_minutes_per_day),
            p.map_or_else(dash, |p| format!("{:.1}", p.wasted_ci_minutes_per_day)),
            ch.map_or_else(dash, |d| signed(d.wasted_ci_minutes_per_day, 1)),
        ),
        (
            "Retries/day caused by flaky tests (model)",
            format!("{:.2}", c.model_retries_per_day),
            p.map_or_else(dash, |p| format!("{:.2}", p.model_retries_per_day)),
            ch.map_or_else(dash, |d| signed(d.model_retries_per_day, 2)),
        ),
        (
            "Flaky tests",
            c.flaky_tests.to_string(),
            p.map_or_else(dash, |p| p.flaky_tests.to_string()),
            ch.map_or_else(dash, |d| format!("{:+}", d.flaky_tests)),
        ),
        (
            "Broken tests",
            c.broken_tests.to_string(),
            p.map_or_else(dash, |p| p.broken_tests.to_string()),
            ch.map_or_else(dash, |d| format!("{:+}", d.broken_tests)),
        ),
    ];
    for (label, a, b, d) in rows {
        let _ = writeln!(out, "| {label} | {a} | {b} | {d} |");
    }
    out.push_str("\n## Movement since the previous window\n\n");
    let m = &r.movement;
    if p.is_none() {
        out.push_str("No runs in the previous window: nothing to compare with.\n");
    } else {
        for (i, (title, rows, previous)) in [
            ("New flaky tests", &m.new_flaky, false),
            ("Fixed since the last window", &m.fixed, true),
            ("Got worse", &m.worse, true),
        ]
        .into_iter()
        .enumerate()
        {
            let gap = if i == 0 { "" } else { "\n" };
            let _ = writeln!(out, "{gap}### {title} ({})\n", rows.len());
            if rows.is_empty() {
                out.push_str("None.\n");
            } else {
                moved_table(&mut out, rows, lim, previous);
            }
        }
    }

    let _ = writeln!(
        out,
        "\n## Top flaky tests by retries/day saved ({} of {})\n",
        r.top.len().min(lim),
        r.flaky_total
    );
    if r.top.is_empty() {
        out.push_str("No flaky tests in this window.\n");
    } else {
        out.push_str("Flake rate is per attempt, with its 95% interval. Retries/day and CI minutes/day are what fixing the test would save (model).\n\n");
        if r.go_parents_in_subtest_rows > 0 {
            let _ = writeln!(
                out,
                "{} flaky Go parent test(s) are counted in their flaky subtest's row: a parent fails whenever its subtest does.\n",
                r.go_parents_in_subtest_rows
            );
        }
        out.push_str("| # | Test | Job | Flake rate (95% CI) | Retries/day | CI min/day | Flaky commits | Top failure |\n|---:|---|---|---:|---:|---:|---|---|\n");
        for t in r.top.iter().take(lim) {
            let mut jobs = code(&t.job);
            if !t.also_flaky_in.is_empty() {
                let _ = write!(jobs, " (also {})", t.also_flaky_in.len());
            }
            let mut shas = t
                .flaky_shas
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(" ");
            if t.more_commits > 0 {
                let _ = write!(shas, " +{}", t.more_commits);
            }
            let fp = t
                .fingerprints
                .first()
                .map(|f| format!("{} ×{}", code(&f.message), f.count))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.1} | {} | {} |",
                t.rank,
                if t.owners.is_empty() {
                    code(&display_name(&t.classname, &t.name))
                } else {
                    format!(
                        "{} ({})",
                        code(&display_name(&t.classname, &t.name)),
                        t.owners.join(" ").replace('|', "\\|")
                    )
                },
                jobs,
                interval(t.flake_rate, t.flake_rate_low, t.flake_rate_high),
                t.retries_per_day,
                t.ci_minutes_per_day,
                shas,
                fp
            );
        }
        more(&mut out, r.flaky_total, r.top.len().min(lim));
    }

    let cf = &r.co_failures;
    let _ = writeln!(out, "\n## Tests that fail together ({})\n", cf.groups.len());
    let _ = writeln!(
        out,
        "Pairs that {}, merged into groups. {} job attempts looked at{}.\n",
        cf.criterion,
        cf.runs,
        if cf.runs_left_out > 0 {
            format!(
                "; {} left out with more than {} failing tests",
                cf.runs_left_out, cf.max_failed_per_run
            )
        } else {
            String::new()
        }
    );
    if cf.groups.is_empty() {
        out.push_str("None found.\n");
    } else {
        out.push_str(
            "| Job | Tests | Failed together | Expected by chance |\n|---|---|---|---:|\n",
        );
        for g in cf.groups.iter().take(lim) {
            let names = g
                .members
                .iter()
                .map(|m| {
                    format!(
                        "{} ({} failing runs)",
                        code(&display_name(&m.classname, &m.name)),
                        m.failed_runs
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            let together = if g.members.len() == 2 {
                format!("{} of {} runs", g.all_together, g.runs)
            } else {
                format!(
                    "all {} in {} of {} runs; 2+ in {}",
                    g.members.len(),
                    g.all_together,
                    g.runs,
                    g.two_or_more
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                code(&g.job),
                names,
                together,
                expected(g.all_expected)
            );
        }
        more(&mut out, cf.groups.len(), lim.min(cf.groups.len()));
    }

    let _ = writeln!(
        out,
        "\n## Broken tests — fail on every attempt, do not retry ({})\n",
        r.broken.len()
    );
    if r.broken.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| Test | Job | Broken commits | Failure or reason |\n|---|---|---:|---|\n");
        for b in r.broken.iter().take(lim) {
            let fp = b
                .fingerprints
                .first()
                .map(|f| code(&f.message))
                .unwrap_or_else(|| b.reason.replace('|', "\\|"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                code(&display_name(&b.classname, &b.name)),
                code(&b.job),
                b.broken_commits,
                fp
            );
        }
        more(&mut out, r.broken.len(), lim.min(r.broken.len()));
    }
    out
}

pub(crate) fn expected(x: f64) -> String {
    if x >= 0.1 {
        format!("{x:.1}")
    } else if x >= 0.001 {
        format!("{x:.3}")
    } else {
        format!("{x:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::{code, signed};

    #[test]
    fn code_spans_survive_tables() {
        assert_eq!(code("a.b"), "`a.b`");
        assert_eq!(code("x | y"), r"`x \| y`");
        assert_eq!(code("uses `tick`"), "`` uses `tick` ``");
        assert_eq!(code("`edge`"), "`` `edge` ``");
        assert_eq!(code("two\nlines"), "`two lines`");
        assert!(code(&"n".repeat(500)).chars().count() < 200);
    }

    #[test]
    fn hostile_test_names_stay_literal_code() {
        // Inside a code span GitHub renders HTML, images, links, @mentions and #refs as
        // text; what could break out is a backtick run, a newline or a table's pipe.
        for name in [
            "<img src=x onerror=alert(1)>",
            "<details><summary>x</summary>",
            "![x](https://e.example/y.png)",
            "[click](https://e.example)",
            "@octocat please look",
            "fixes #123",
            "a|b||c",
            "tick`s ``and`` more",
            "line\nbreak\r\nagain",
            "back\\|slash",
        ] {
            let c = code(name);
            let fence_len = c.chars().take_while(|&ch| ch == '`').count();
            let fence = "`".repeat(fence_len);
            assert!(c.ends_with(&fence), "{c}");
            let inner = &c[fence_len..c.len() - fence_len];
            // The fence is longer than any backtick run inside, so the span cannot end early.
            assert!(!inner.contains(&fence), "{c}");
            assert!(!c.contains('\n') && !c.contains('\r'), "{c}");
            // Every pipe is escaped, so the table's cell does not split.
            let bytes = c.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'|' {
                    assert!(i > 0 && bytes[i - 1] == b'\\', "{c}");
                }
            }
        }
    }

    #[test]
    fn signs() {
        assert_eq!(signed(0.25, 2), "+0.25");
        assert_eq!(signed(-0.0001, 2), "0.00");
        assert_eq!(signed(-1.5, 1), "-1.5");
    }
}
