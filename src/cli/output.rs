//! Rendering rows as a table for people, CSV or JSON for tools.

use std::io::Write;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Rows with a header, rendered in any [`Format`]. JSON comes from the serialisable items.
pub struct Rows<'a, T: Serialize> {
    pub header: Vec<&'static str>,
    pub cells: Vec<Vec<String>>,
    pub items: &'a [T],
    /// Columns that may be cut to fit a terminal (index, max width).
    pub squeeze: Option<(usize, usize)>,
}

impl<T: Serialize> Rows<'_, T> {
    pub fn write(&self, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
        match format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, self.items)?;
                writeln!(out)
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&self.header)?;
                for row in &self.cells {
                    w.write_record(row.iter().map(|c| flakehound::escape::csv_cell(c)))?;
                }
                w.flush()
            }
            Format::Table => write_table(&self.header, &self.cells, self.squeeze, out),
        }
    }
}

pub fn write_table(
    header: &[&str],
    cells: &[Vec<String>],
    squeeze: Option<(usize, usize)>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // Columns are measured in terminal cells: a CJK or emoji character takes two.
    let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
    let cut = |i: usize, s: &str| -> String {
        match squeeze {
            Some((col, max)) if col == i && width(s) > max => {
                let mut keep = String::new();
                let mut used = 0;
                for c in s.chars() {
                    let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                    if used + w > max.saturating_sub(1) {
                        break;
                    }
                    used += w;
                    keep.push(c);
                }
                format!("{keep}…")
            }
            _ => s.to_string(),
        }
    };
    // Names come from uploaded reports: no escape sequence reaches the terminal.
    let cells: Vec<Vec<String>> = cells
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| flakehound::escape::terminal(c).into_owned())
                .collect()
        })
        .collect();
    let cells = cells.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(&cut(i, c)));
        }
    }
    let line = |row: Vec<String>, out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i] - width(c);
            text.push_str(c);
            if i + 1 < row.len() {
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(header.iter().map(|h| h.to_string()).collect(), out)?;
    for row in cells {
        line(
            row.iter().enumerate().map(|(i, c)| cut(i, c)).collect(),
            out,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_table;
    use unicode_width::UnicodeWidthStr;

    fn table(cells: &[[&str; 2]], squeeze: Option<(usize, usize)>) -> Vec<String> {
        let cells: Vec<Vec<String>> = cells
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let mut out = Vec::new();
        write_table(&["test", "job"], &cells, squeeze, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The display column where the job column starts on each line.
    fn job_column(lines: &[String]) -> Vec<usize> {
        lines
            .iter()
            .map(|l| {
                let at = l.rfind("  ").unwrap() + 2;
                l[..at].width()
            })
            .collect()
    }

    #[test]
    fn wide_characters_keep_the_columns_aligned() {
        let lines = table(
            &[
                ["ログインできる", "e2e"],
                ["logs in", "unit"],
                ["🚀 ships", "e2e"],
            ],
            None,
        );
        let cols = job_column(&lines);
        assert!(cols.iter().all(|c| *c == cols[0]), "{lines:#?}");
        // A newline in a name is shown, not printed: one line per row.
        assert_eq!(table(&[["a\nb", "unit"]], None).len(), 2);
    }

    #[test]
    fn a_squeezed_column_is_cut_to_its_width_in_cells() {
        let lines = table(
            &[["テストテストテスト", "e2e"], ["short", "unit"]],
            Some((0, 7)),
        );
        assert!(lines[1].starts_with("テスト…"), "{lines:#?}");
        let cols = job_column(&lines);
        assert!(cols.iter().all(|c| *c == cols[0]), "{lines:#?}");
        assert!(cols[0] <= 7 + 2, "{lines:#?}");
    }
}
