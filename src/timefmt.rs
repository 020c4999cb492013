//! Times and durations from users, one way for the CLI and the server.
//!
//! A run's start is RFC 3339 (or the other shapes [`crate::ci_env::parse_timestamp`]
//! reads) or Unix seconds. Milliseconds since the epoch, and times more than a day ahead
//! of the clock, are refused: stored, they would put a run decades away and skew every
//! window. Durations are `30d`, `12h`, `2w`, `90m` or seconds, at most a hundred years.

/// How far ahead of the clock a start may be (clock skew between CI and server).
pub const MAX_AHEAD_S: i64 = 86_400;
/// The longest duration accepted: a hundred years.
pub const MAX_DURATION_S: i64 = 100 * 366 * 86_400;

/// A run's start as Unix seconds, checked against `now`.
pub fn parse_started_at(text: &str, now: i64) -> Result<i64, String> {
    let secs = crate::ci_env::parse_timestamp(text).map_err(|e| {
        format!("{e} (expected RFC 3339, e.g. 2026-01-02T03:04:05Z, or Unix seconds)")
    })?;
    if secs > now.saturating_add(MAX_AHEAD_S) {
        // A bare number that far ahead is most likely milliseconds; a date, a wrong clock.
        let hint = if text.trim().bytes().all(|b| b.is_ascii_digit()) {
            "milliseconds? expected Unix seconds"
        } else {
            "check the runner's clock and the time zone"
        };
        return Err(format!(
            "{:?} is more than a day in the future ({}); {hint}",
            text.trim(),
            crate::score::rfc3339(secs)
        ));
    }
    if secs < 0 {
        return Err(format!("{:?} is before 1970", text.trim()));
    }
    Ok(secs)
}

/// Parse a duration like `30d`, `12h`, `2w`, `90m`; the unit is required.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (num, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| text.split_at(i))
        // A bare number is refused rather than guessed (seconds? days?).
        .ok_or_else(|| {
            format!("duration {text:?} has no unit: add a unit: {text}d (s, m, h, d or w)")
        })?;
    let value: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected e.g. 30d, 12h, 2w"))?;
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        other => {
            return Err(format!(
                "bad duration unit {other:?} in {text:?}: use s, m, h, d or w"
            ))
        }
    };
    if value.is_nan() || value <= 0.0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    let secs = value * scale;
    if !(secs.is_finite() && secs <= MAX_DURATION_S as f64) {
        return Err(format!("duration {text:?} is longer than a hundred years"));
    }
    Ok((secs.round() as i64).max(1))
}

/// A fraction strictly between 0 and 1 (an SLO, a significance level): NaN, infinities
/// and values outside are refused.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{text:?} must be a number between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn starts() {
        assert_eq!(parse_started_at("1767323045", NOW), Ok(1767323045));
        assert_eq!(
            parse_started_at("2026-01-02T03:04:05Z", NOW),
            Ok(1767323045)
        );
        // Milliseconds, far future, nonsense.
        assert!(parse_started_at("1767323045000", NOW)
            .unwrap_err()
            .contains("milliseconds"));
        assert!(parse_started_at(&(NOW + 2 * 86_400).to_string(), NOW)
            .unwrap_err()
            .contains("future"));
        assert!(parse_started_at("9999-01-01T00:00:00Z", NOW).is_err());
        assert!(parse_started_at("soon", NOW).is_err());
        assert!(parse_started_at(&(NOW + 3600).to_string(), NOW).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert!(parse_duration("3600").unwrap_err().contains("add a unit"));
        assert!(parse_duration("999999999999999999999999w").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("NaNd").is_err());
        assert!(parse_duration("1y").is_err());
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_fraction("0.01"), Ok(0.01));
        for bad in ["NaN", "inf", "-0.1", "0", "1", "1.5", "x"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }
}
