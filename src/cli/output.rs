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
    let cut = |i: usize, s: &str| -> String {
        match squeeze {
            Some((col, max)) if col == i && s.chars().count() > max => {
                let keep: String = s.chars().take(max.saturating_sub(1)).collect();
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
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(cut(i, c).chars().count());
        }
    }
    let line = |row: Vec<String>, out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i] - c.chars().count();
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
