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
    if let Some(value) = short_decimal(raw.as_bytes()) {
        return Some(value);
    }
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

/// A plain decimal of at most 15 digits (`0.123`, `12`, `2.`), read without the general
/// float parser, which is most of the cost of a `time` (every test case has one). Its
/// digits as an integer and the power of ten are both exact in an `f64` (below 2^53), and
/// IEEE division rounds correctly, so the result is the float `str::parse` gives.
fn short_decimal(bytes: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction: Option<usize> = None;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    (digits > 0).then(|| mantissa as f64 / POW10[fraction.unwrap_or(0)])
}

#[cfg(test)]
mod tests {
    use super::{parse_time, short_decimal};

    /// The short path gives exactly the float the general parser gives, and declines what
    /// it cannot read exactly.
    #[test]
    fn short_decimals_read_exactly_as_the_float_parser() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let whole = next() % 10u64.pow((next() % 8) as u32);
            let places = (next() % 9) as usize;
            let frac = next() % 10u64.pow(places as u32);
            let text = if places == 0 {
                format!("{whole}")
            } else {
                format!("{whole}.{frac:0places$}")
            };
            let want: f64 = text.parse().unwrap();
            assert_eq!(short_decimal(text.as_bytes()), Some(want), "{text}");
            assert_eq!(parse_time(&text), Some(want), "{text}");
        }
        for (text, want) in [
            ("0.1", Some(0.1)),
            ("2.", Some(2.0)),
            (".5", Some(0.5)),
            ("999999999999999", Some(999_999_999_999_999.0)),
            ("0.000000000000001", None),
            ("1234567890123456", None),
            ("1.2.3", None),
            (".", None),
            ("", None),
            ("1,5", None),
            ("1e3", None),
            ("-1", None),
        ] {
            assert_eq!(short_decimal(text.as_bytes()), want, "{text:?}");
        }
        // Declined values still read through the general path.
        assert_eq!(parse_time("0.000000000000001"), Some(1e-15));
        assert_eq!(
            parse_time("1234567890123456"),
            Some(1_234_567_890_123_456.0)
        );
    }

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
