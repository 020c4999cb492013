//! Lenient parsing of the `time` attribute, which producers write in many shapes.

/// Seconds from a `time` value: `1.5`, `1,234.5`, `0,5`, `0,288`, `1.234,5`, `1e-3`, `2.`,
/// ` 3 `, `1.5s`. Returns `None` for empty, negative or non-numeric values.
///
/// With both `,` and `.`, the last one is the decimal point and the other groups thousands
/// (`1,234.5`, `1.234,5`). A lone separator repeated groups thousands (`1,234,567`); a
/// single comma is a decimal comma: locale-formatted producers write `0,288` and `1,288`
/// for 1.288 s (the xunit/MSTest conversions do), while thousands grouping in real
/// reports comes with a decimal point (`2,503.1`). Reading `1,288` as 1288 s would be a
/// thousandfold error on the far more common case.
pub fn parse_time(raw: &str) -> Option<f64> {
    // Nearly every report writes plain `1.5`: digits and at most one dot need none of the
    // normalising below, which would leave them as they are.
    let bytes = raw.as_bytes();
    if !bytes.is_empty()
        && bytes.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        && bytes.iter().filter(|&&b| b == b'.').count() <= 1
    {
        let value: f64 = raw.parse().ok()?;
        return value.is_finite().then_some(value);
    }
    let text = raw.trim();
    let text = text.strip_suffix('s').unwrap_or(text).trim_end();
    if text.is_empty() {
        return None;
    }
    let normalised;
    let text = match (text.rfind(','), text.rfind('.')) {
        (None, _) if text.matches('.').count() <= 1 => text,
        // `1.234.567`: dots grouping thousands.
        (None, _) => {
            normalised = text.replace('.', "");
            &normalised
        }
        // `1,234.5`
        (Some(comma), Some(dot)) if dot > comma => {
            normalised = text.replace(',', "");
            &normalised
        }
        // `1.234,5`
        (Some(_), Some(_)) => {
            normalised = text.replace('.', "").replace(',', ".");
            &normalised
        }
        // `1,234,567`
        (Some(_), None) if text.matches(',').count() > 1 => {
            normalised = text.replace(',', "");
            &normalised
        }
        // `0,5`, `0,288`
        (Some(_), None) => {
            normalised = text.replace(',', ".");
            &normalised
        }
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
        // A single comma is a decimal comma, whatever the digits after it.
        assert_eq!(parse_time("1,234"), Some(1.234));
        assert_eq!(parse_time("0,288"), Some(0.288));
        assert_eq!(parse_time("12,5"), Some(12.5));
        assert_eq!(parse_time("1,234,567"), Some(1_234_567.0));
        assert_eq!(parse_time("2,503.1"), Some(2503.1));
        assert_eq!(parse_time("1.234,5"), Some(1234.5));
        assert_eq!(parse_time("1.234.567"), Some(1_234_567.0));
        assert_eq!(
            parse_time("4.50611114501953e-05"),
            Some(4.50611114501953e-05)
        );
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
        assert_eq!(parse_time("-999.88"), None);
        assert_eq!(parse_time("$TIME"), None);
        assert_eq!(parse_time("o99,999.881"), None);
        assert_eq!(parse_time("{duration}"), None);
    }
}
