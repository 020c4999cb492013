//! Lenient parsing of the `time` attribute, which producers write in many shapes.

/// Seconds from a `time` value: `1.5`, `1,234.5`, `0,5`, `1e-3`, `2.`, ` 3 `, `1.5s`.
/// Returns `None` for empty, negative or non-numeric values.
pub fn parse_time(raw: &str) -> Option<f64> {
    let text = raw.trim();
    let text = text.strip_suffix('s').unwrap_or(text).trim_end();
    if text.is_empty() {
        return None;
    }
    let normalised;
    let text = if text.contains(',') {
        normalised = if text.contains('.') {
            // `1,234.5`: commas group thousands.
            text.replace(',', "")
        } else {
            let (int, frac) = text.rsplit_once(',').unwrap_or((text, ""));
            let grouping = text.matches(',').count() > 1
                || (frac.len() == 3 && int != "0" && !int.is_empty() && !int.starts_with('-'));
            if grouping {
                // `1,234` or `1,234,567`: thousands.
                text.replace(',', "")
            } else {
                // `0,5`: a decimal comma (European locales).
                text.replace(',', ".")
            }
        };
        normalised.as_str()
    } else {
        text
    };
    let value: f64 = text.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn reads_common_shapes() {
        assert_eq!(parse_time("1.5"), Some(1.5));
        assert_eq!(parse_time("1,234.5"), Some(1234.5));
        assert_eq!(parse_time("0,5"), Some(0.5));
        assert_eq!(parse_time("1,234"), Some(1234.0));
        assert_eq!(parse_time("12,5"), Some(12.5));
        assert_eq!(parse_time("1e-3"), Some(0.001));
        assert_eq!(parse_time("2."), Some(2.0));
        assert_eq!(parse_time(" 3 "), Some(3.0));
        assert_eq!(parse_time("0.25s"), Some(0.25));
    }

    #[test]
    fn rejects_nonsense() {
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("abc"), None);
        assert_eq!(parse_time("NaN"), None);
        assert_eq!(parse_time("inf"), None);
    }
}
