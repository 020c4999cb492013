//! Making untrusted text (test names, jobs, failure messages: whatever a CI job uploads)
//! safe in each output.
//!
//! - CSV: a text cell starting with `=`, `+`, `-`, `@`, tab or carriage return is read as
//!   a formula by spreadsheets; it gets a leading `'`. A cell that is a plain number
//!   (`-2.1`, `3`, `1e-3`) is left alone: a number is never a formula, and our numeric
//!   columns stay numeric.
//! - Markdown (GitHub): raw HTML, images, links, @mentions, pipes, backticks and emphasis
//!   in names are shown as written, never rendered.
//! - Terminals: control characters (ANSI escapes) are shown as `\u{..}`, never sent.

use std::borrow::Cow;

/// A CSV cell that no spreadsheet runs as a formula.
pub fn csv_cell(cell: &str) -> String {
    let risky = cell
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if risky && cell.trim().parse::<f64>().map_or(true, |v| !v.is_finite()) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Text for a Markdown table cell or paragraph, rendered literally by GitHub.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // `@` followed by a zero-width joiner cannot mention anyone.
            '@' => out.push_str("@\u{2060}"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Text for a terminal: control characters shown, never interpreted.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_formulas_are_defused_numbers_kept() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        for risky in ["+1+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "=1"] {
            assert!(csv_cell(risky).starts_with('\''), "{risky}");
        }
        for kept in ["-2.1", "3", "-0.004", "1e-3", "com.acme.A", "test_1"] {
            assert_eq!(csv_cell(kept), kept);
        }
    }

    #[test]
    fn markdown_renders_nothing() {
        let m = markdown(
            "<img src=x onerror=alert(1)> ![p](http://x/a.png) [l](http://x) @team | `c` **b**",
        );
        assert!(!m.contains('<') && m.contains("!\\[p\\]"), "{m}");
        assert!(m.contains("@\u{2060}team"));
        assert!(m.contains("\\|") && m.contains("\\`"));
    }

    #[test]
    fn terminals_see_no_escapes() {
        assert_eq!(terminal("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(terminal("plain"), "plain");
    }
}
