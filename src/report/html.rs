//! The report as one self-contained HTML file: inline CSS and SVG, no script, no external
//! reference, print rules. Every piece of text from the data is escaped.

use std::fmt::Write as _;

use super::markdown::{expected, interval, pct, signed};
use super::{display_name, MovedTest, Report, TopTest, TrendDay};

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
  --pass:#4ac26b; --flaky:#e3a008; --fail:#d1242f; --skip:#c8ced5; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .note { color: var(--muted); }
.note { font-size: 12.5px; margin: 4px 0 10px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin: 18px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--soft); }
.card .k { font-size: 12px; color: var(--muted); }
.card .v { font-size: 22px; font-weight: 600; margin: 2px 0; }
.card .d { font-size: 12px; color: var(--muted); }
.card.bad { border-color: #f5b5b9; background: #fff1f2; }
.card.bad .v { color: var(--fail); }
.card.good { border-color: #a7e3b7; background: #effbf2; }
.up { color: var(--fail); } .down { color: #1a7f37; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--soft); }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
code, .name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.name { overflow-wrap: anywhere; }
.job { display: inline-block; padding: 0 6px; border-radius: 10px; background: #ddf4ff; color: #0550ae; font-size: 12px; white-space: nowrap; }
.sha { color: var(--muted); }
.msg { color: var(--muted); font-size: 12px; word-break: break-word; }
.strip td { border-bottom: 1px solid var(--line); padding-top: 0; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
.empty { color: var(--muted); font-style: italic; }
.broken-note { color: var(--fail); font-weight: 600; }
svg { display: block; max-width: 100%; height: auto; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(3, 1fr); } }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { font-size: 11px; }
  main { max-width: none; padding: 0; }
  .card, .card.bad, .card.good, th { background: none !important; }
  h2 { break-after: avoid; }
  tr, .card, svg { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn delta_class(x: f64, worse_when_up: bool) -> &'static str {
    if x == 0.0 {
        ""
    } else if (x > 0.0) == worse_when_up {
        "up"
    } else {
        "down"
    }
}

fn card(out: &mut String, class: &str, key: &str, value: &str, delta: Option<(String, f64)>) {
    let _ = write!(
        out,
        r#"<div class="card {class}"><div class="k">{}</div><div class="v">{}</div>"#,
        escape(key),
        escape(value)
    );
    match delta {
        Some((text, x)) => {
            let _ = write!(
                out,
                r#"<div class="d"><span class="{}">{}</span> vs previous</div>"#,
                delta_class(x, true),
                escape(&text)
            );
        }
        None => out.push_str(r#"<div class="d">no previous window</div>"#),
    }
    out.push_str("</div>");
}

fn trend_svg(days: &[TrendDay], slo: f64) -> String {
    let (w, h) = (1100.0, 220.0);
    let (left, right, top, bottom) = (52.0, 78.0, 14.0, 34.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max_rate = days
        .iter()
        .filter_map(|d| d.flake_rate)
        .fold(slo * 1.5, f64::max)
        .max(0.001);
    // A round top for the axis.
    let steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];
    let top_rate = steps
        .iter()
        .copied()
        .find(|s| *s >= max_rate)
        .unwrap_or(1.0);
    let y = |r: f64| top + ph - r / top_rate * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Daily pipeline flake rate">"#
    );
    for i in 0..=4 {
        let r = top_rate * f64::from(i) / 4.0;
        let yy = y(r);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#d1d9e0" stroke-width="1"/><text x="{}" y="{:.1}" font-size="11" fill="#59636e" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            yy + 4.0,
            escape(&pct(r))
        );
    }
    let n = days.len().max(1) as f64;
    let slot = pw / n;
    let bar = (slot * 0.62).max(1.0);
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        if let Some(r) = d.flake_rate {
            let yy = y(r);
            let color = if r > slo { "#d1242f" } else { "#4ac26b" };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{bar:.1}" height="{:.1}" fill="{color}" rx="2"><title>{}: {} ({} of {} attempts)</title></rect>"#,
                (top + ph - yy).max(0.0),
                escape(&d.day),
                escape(&pct(r)),
                d.flaky_failed_attempts,
                d.attempts
            );
        } else {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#8c959f" text-anchor="middle">no runs</text>"##,
                x + bar / 2.0,
                top + ph - 4.0
            );
        }
        let every = (days.len() / 14).max(1);
        if i % every == 0 || i + 1 == days.len() {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#59636e" text-anchor="middle">{}</text>"##,
                x + bar / 2.0,
                h - bottom + 16.0,
                escape(d.day.get(5..).unwrap_or(&d.day))
            );
        }
    }
    let ys = y(slo.min(top_rate));
    let _ = write!(
        s,
        r##"<line x1="{left}" x2="{}" y1="{ys:.1}" y2="{ys:.1}" stroke="#0969da" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" font-size="11" fill="#0969da" text-anchor="start">SLO {}</text>"##,
        w - right,
        w - right + 6.0,
        ys + 4.0,
        escape(&pct(slo))
    );
    s.push_str("</svg>");
    s
}

fn strip_svg(t: &TopTest) -> String {
    let n = t.strip.chars().count();
    if n == 0 {
        return r#"<span class="empty">no runs</span>"#.to_string();
    }
    let width = 1060.0_f64;
    let cell = (width / n as f64).clamp(1.0, 12.0);
    let gap = if cell >= 4.0 { 1.0 } else { 0.0 };
    let w = cell * n as f64;
    let mut s = format!(
        r#"<svg viewBox="0 0 {w:.1} 14" width="{w:.1}" height="14" role="img" aria-label="{} runs: {}">"#,
        n,
        escape(&strip_summary(&t.strip))
    );
    for (i, c) in t.strip.chars().enumerate() {
        let color = match c {
            'p' => "#4ac26b",
            'f' => "#e3a008",
            'x' => "#d1242f",
            _ => "#c8ced5",
        };
        let _ = write!(
            s,
            r#"<rect x="{:.2}" y="0" width="{:.2}" height="14" fill="{color}"/>"#,
            cell * i as f64,
            (cell - gap).max(0.5)
        );
    }
    s.push_str("</svg>");
    s
}

fn strip_summary(strip: &str) -> String {
    let count = |ch: char| strip.chars().filter(|c| *c == ch).count();
    format!(
        "{} passed, {} flaky in the run, {} failed, {} skipped",
        count('p'),
        count('f'),
        count('x'),
        count('s')
    )
}

/// Escaped, with line-break opportunities after `.`, `/`, `:` and before `[`, so long
/// dotted names wrap at their parts.
fn breakable(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c == '[' {
            out.push_str("<wbr>");
        }
        out.push_str(&escape(c.encode_utf8(&mut [0; 4])));
        if matches!(c, '.' | '/' | ':') {
            out.push_str("<wbr>");
        }
    }
    out
}

fn name_cell(classname: &str, name: &str) -> String {
    format!(
        r#"<span class="name">{}</span>"#,
        breakable(&display_name(classname, name))
    )
}

fn job(j: &str) -> String {
    format!(r#"<span class="job">{}</span>"#, escape(j))
}

fn moved_table(out: &mut String, rows: &[MovedTest], previous: bool) {
    if rows.is_empty() {
        out.push_str(r#"<p class="empty">None.</p>"#);
        return;
    }
    out.push_str("<table><thead><tr><th>Test</th><th>Job</th>");
    if previous {
        out.push_str(r#"<th>Status</th><th class="n">Flake rate (before → now)</th><th class="n">Retries/day (before → now)</th>"#);
    } else {
        out.push_str(
            r#"<th class="n">Flake rate</th><th class="n">Retries/day</th><th>First flake</th>"#,
        );
    }
    out.push_str("</tr></thead><tbody>");
    for m in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            name_cell(&m.classname, &m.name),
            job(&m.job)
        );
        if previous {
            let _ = write!(
                out,
                r#"<td>{} → {}</td><td class="n">{} → {}</td><td class="n">{:.2} → {:.2}</td>"#,
                escape(&m.previous_status),
                escape(&m.status),
                pct(m.previous_flake_rate),
                pct(m.flake_rate),
                m.previous_retries_per_day,
                m.retries_per_day
            );
        } else {
            let _ = write!(
                out,
                r#"<td class="n">{}</td><td class="n">{:.2}</td><td>{}</td>"#,
                pct(m.flake_rate),
                m.retries_per_day,
                escape(m.first_flake_at.as_deref().unwrap_or("—"))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// The report as one self-contained HTML page.
pub fn to_html(r: &Report) -> String {
    to_html_with(r, None)
}

/// A link to a page, or the text alone without a URL.
fn link(url: Option<&str>, inner: &str) -> String {
    match url {
        Some(u) => format!(r#"<a href="{}" rel="noopener">{inner}</a>"#, escape(u)),
        None => inner.to_string(),
    }
}

/// The report; with `test_pages`, each top test's name links to `{test_pages}{test_id}`
/// (the server's per-test pages).
pub fn to_html_with(r: &Report, test_pages: Option<&str>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let scope = match (&r.branch, &r.job) {
        (Some(b), Some(j)) => format!(" — branch {b}, job {j}"),
        (Some(b), None) => format!(" — branch {b}"),
        (None, Some(j)) => format!(" — job {j}"),
        (None, None) => String::new(),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Flaky-test report {}{}</title><style>{CSS}</style></head><body><main>",
        escape(&r.as_of),
        escape(&scope)
    );
    let _ = write!(
        out,
        r#"<h1>Flaky-test report{}</h1><div class="sub">{} → {} ({})</div>"#,
        escape(&scope),
        escape(&r.since),
        escape(&r.as_of),
        escape(&r.window_text())
    );

    // Headline cards.
    let h = &r.headline;
    let c = &h.current;
    let ch = h.change.as_ref();
    out.push_str(r#"<div class="cards">"#);
    card(
        &mut out,
        if c.meets_slo { "good" } else { "bad" },
        &format!("Pipeline flake rate (SLO {})", pct(h.slo)),
        &pct(c.flake_rate),
        ch.map(|d| {
            (
                format!("{} pp", signed(d.flake_rate * 100.0, 2)),
                d.flake_rate,
            )
        }),
    );
    card(
        &mut out,
        if c.masked_share >= 0.2 { "bad" } else { "" },
        "Job failure rate (all causes)",
        &pct(c.job_failure_rate),
        None,
    );
    card(
        &mut out,
        "",
        "Wasted retries/day (observed)",
        &format!("{:.2}", c.wasted_retries_per_day),
        ch.map(|d| {
            (
                signed(d.wasted_retries_per_day, 2),
                d.wasted_retries_per_day,
            )
        }),
    );
    card(
        &mut out,
        "",
        "Wasted CI min/day (observed)",
        &format!("{:.1}", c.wasted_ci_minutes_per_day),
        ch.map(|d| {
            (
                signed(d.wasted_ci_minutes_per_day, 1),
                d.wasted_ci_minutes_per_day,
            )
        }),
    );
    card(
        &mut out,
        "",
        "Retries/day from flaky tests (model)",
        &format!("{:.2}", c.model_retries_per_day),
        ch.map(|d| (signed(d.model_retries_per_day, 2), d.model_retries_per_day)),
    );
    card(
        &mut out,
        "",
        "Flaky tests",
        &c.flaky_tests.to_string(),
        ch.map(|d| (format!("{:+}", d.flaky_tests), d.flaky_tests as f64)),
    );
    card(
        &mut out,
        if c.broken_tests > 0 { "bad" } else { "" },
        "Broken tests",
        &c.broken_tests.to_string(),
        ch.map(|d| (format!("{:+}", d.broken_tests), d.broken_tests as f64)),
    );
    out.push_str("</div>");
    let _ = write!(
        out,
        r#"<p class="note">{} of {} job attempts failed only because of flaky tests. Observed numbers count re-runs that followed such failures; the model estimates the re-runs all flaky tests cause together. One row per (test, job) below: a test flaky in several jobs has a row for each.</p>"#,
        c.flaky_failed_attempts, c.attempts
    );

    out.push_str("<h2>Daily pipeline flake rate</h2>");
    out.push_str(r#"<p class="note">Share of job attempts each day that failed only because of flaky tests; red above the SLO (dashed).</p>"#);
    out.push_str(&trend_svg(&r.trend, h.slo));

    out.push_str("<h2>Movement since the previous window</h2>");
    let m = &r.movement;
    if h.previous.is_none() {
        out.push_str(
            r#"<p class="empty">No runs in the previous window: nothing to compare with.</p>"#,
        );
    } else {
        for (title, rows, previous) in [
            ("New flaky tests", &m.new_flaky, false),
            ("Fixed since the last window", &m.fixed, true),
            ("Got worse", &m.worse, true),
        ] {
            let _ = write!(out, "<h3>{title} ({})</h3>", rows.len());
            moved_table(&mut out, rows, previous);
        }
    }

    let _ = write!(
        out,
        "<h2>Top flaky tests by retries/day saved ({} of {})</h2>",
        r.top.len(),
        r.flaky_total
    );
    if r.top.is_empty() {
        out.push_str(r#"<p class="empty">No flaky tests in this window.</p>"#);
    } else {
        out.push_str(r##"<p class="note legend">Flake rate per attempt with its 95% interval; retries and CI minutes per day are what a fix would save (model). Strip: one cell per run of the test in its job, oldest first —
<span><i style="background:#4ac26b"></i>passed</span><span><i style="background:#e3a008"></i>flaky in the run (passed on rerun)</span><span><i style="background:#d1242f"></i>failed</span><span><i style="background:#c8ced5"></i>skipped</span></p>"##);
        if r.go_parents_in_subtest_rows > 0 {
            let _ = write!(
                out,
                r#"<p class="note">{} flaky Go parent test(s) are counted in their flaky subtest's row: a parent fails whenever its subtest does.</p>"#,
                r.go_parents_in_subtest_rows
            );
        }
        out.push_str(r#"<table><thead><tr><th class="n">#</th><th>Test</th><th>Job</th><th class="n">Flake rate (95% CI)</th><th class="n">Retries/day</th><th class="n">CI min/day</th><th>Flaky commits</th><th>Top failures</th></tr></thead><tbody>"#);
        for t in &r.top {
            let mut jobs = job(&t.job);
            if !t.also_flaky_in.is_empty() {
                let _ = write!(
                    jobs,
                    r#"<div class="msg">also flaky in {}</div>"#,
                    escape(&t.also_flaky_in.join(", "))
                );
            }
            let mut shas = t
                .flaky_shas
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let url = t.commits.get(i).and_then(|c| c.url.as_deref());
                    link(url, &format!("<code class=\"sha\">{}</code>", escape(s)))
                })
                .collect::<Vec<_>>()
                .join(" ");
            if t.more_commits > 0 {
                let _ = write!(shas, " +{}", t.more_commits);
            }
            let fps = t
                .fingerprints
                .iter()
                .map(|f| {
                    format!(
                        r#"<div class="msg">×{} <code>{}</code></div>"#,
                        f.count,
                        escape(&f.message)
                    )
                })
                .collect::<String>();
            let _ = write!(
                out,
                r#"<tr><td class="n">{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{:.2}</td><td class="n">{:.1}</td><td>{}</td><td>{}</td></tr>"#,
                t.rank,
                {
                    let name = name_cell(&t.classname, &t.name);
                    let mut cell = match test_pages {
                        Some(prefix) => format!(
                            r#"<a class="test" href="{}{}">{name}</a>"#,
                            escape(prefix),
                            escape(&t.test_id)
                        ),
                        None => name,
                    };
                    if !t.owners.is_empty() {
                        let _ = write!(
                            cell,
                            r#"<div class="msg owners">owners: {}</div>"#,
                            escape(&t.owners.join(" "))
                        );
                    }
                    cell
                },
                jobs,
                interval(t.flake_rate, t.flake_rate_low, t.flake_rate_high),
                t.retries_per_day,
                t.ci_minutes_per_day,
                shas,
                if fps.is_empty() {
                    "—".to_string()
                } else {
                    fps
                }
            );
            let runs = t
                .failed_runs
                .iter()
                .map(|f| {
                    link(
                        f.url.as_deref(),
                        &format!(
                            "{} run {} #{} ({})",
                            escape(&f.started_at),
                            escape(&f.run_id),
                            f.attempt,
                            escape(&f.outcome)
                        ),
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let runs = if runs.is_empty() {
                String::new()
            } else {
                format!(r#"<div class="msg runs">last failures: {runs}</div>"#)
            };
            let _ = write!(
                out,
                r#"<tr class="strip"><td></td><td colspan="7">{}{runs}</td></tr>"#,
                strip_svg(t)
            );
        }
        out.push_str("</tbody></table>");
        if r.flaky_total > r.top.len() {
            let _ = write!(
                out,
                r#"<p class="note">… and {} more flaky tests; see the JSON report.</p>"#,
                r.flaky_total - r.top.len()
            );
        }
    }

    let cf = &r.co_failures;
    let _ = write!(
        out,
        "<h2>Tests that fail together ({})</h2>",
        cf.groups.len()
    );
    let _ = write!(
        out,
        r#"<p class="note">Pairs that {}, merged into groups. {} job attempts looked at{}.</p>"#,
        escape(&cf.criterion),
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
        out.push_str(r#"<p class="empty">None found.</p>"#);
    } else {
        out.push_str(r#"<table><thead><tr><th>Job</th><th>Tests (failing runs)</th><th>Failed together</th><th class="n">Expected by chance</th><th class="n">Strongest pair</th></tr></thead><tbody>"#);
        for g in &cf.groups {
            let names = g
                .members
                .iter()
                .map(|m| {
                    format!(
                        "<div>{} <span class=\"msg\">({})</span></div>",
                        name_cell(&m.classname, &m.name),
                        m.failed_runs
                    )
                })
                .collect::<String>();
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
            let strongest = g
                .pairs
                .first()
                .map(|p| format!("{}× as often; p = {:.1e}", p.lift, p.p_value))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                job(&g.job),
                names,
                escape(&together),
                expected(g.all_expected),
                escape(&strongest)
            );
        }
        out.push_str("</tbody></table>");
    }

    let _ = write!(out, "<h2>Broken tests ({})</h2>", r.broken.len());
    out.push_str(r#"<p class="broken-note">These fail on every attempt — do not retry them; fix or revert.</p>"#);
    if r.broken.is_empty() {
        out.push_str(r#"<p class="empty">None.</p>"#);
    } else {
        out.push_str(r#"<table><thead><tr><th>Test</th><th>Job</th><th class="n">Broken commits</th><th>Failure or reason</th></tr></thead><tbody>"#);
        for b in &r.broken {
            let fp = b
                .fingerprints
                .first()
                .map(|f| format!("<code class=\"msg\">{}</code>", escape(&f.message)))
                .unwrap_or_else(|| format!("<span class=\"msg\">{}</span>", escape(&b.reason)));
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td>{}</td><td class="n">{}</td><td>{}</td></tr>"#,
                name_cell(&b.classname, &b.name),
                job(&b.job),
                b.broken_commits,
                fp
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = writeln!(
        out,
        "<footer>Generated by flakehound from the runs up to {}. The JSON report carries every number shown here.</footer></main></body></html>",
        escape(&r.as_of)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{breakable, escape};

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(breakable("a.b[<1>]"), "a.<wbr>b<wbr>[&lt;1&gt;]");
    }
}
