//! CloudTrail timestamps: parsing the shapes real records carry and formatting the one
//! CloudTrail writes (`YYYY-MM-DDTHH:MM:SSZ`).
//!
//! Pure calendar arithmetic on the proleptic Gregorian calendar in UTC; it never reads a
//! clock. Times are carried as milliseconds since the Unix epoch.

use std::fmt::Write as _;

/// The first instant this module accepts: 1970-01-01T00:00:00Z.
pub const MIN_MS: i64 = 0;
/// One past the last instant it accepts: 10000-01-01T00:00:00Z.
pub const MAX_MS: i64 = 253_402_300_800_000;

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The number of days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Why a timestamp string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {text:?}: expected YYYY-MM-DDTHH:MM:SSZ")]
pub struct TimeParseError {
    text: String,
}

/// Parses the timestamp shapes found in real CloudTrail records into epoch milliseconds:
/// `2024-07-30T21:31:21Z` (CloudTrail's own), with fractional seconds, with a numeric
/// offset (`+00:00`, `-0500`), with a space instead of `T`, or with no zone at all (UTC).
pub fn parse_event_time(text: &str) -> Result<i64, TimeParseError> {
    parse_inner(text.as_bytes()).ok_or_else(|| TimeParseError { text: text.chars().take(64).collect() })
}

fn parse_inner(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
        let slice = b.get(at..at + n)?;
        slice.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    }
    let expect = |at: usize, c: u8| (b.get(at) == Some(&c)).then_some(());

    let year = digits(b, 0, 4)?;
    expect(4, b'-')?;
    let month = u32::try_from(digits(b, 5, 2)?).ok()?;
    expect(7, b'-')?;
    let day = u32::try_from(digits(b, 8, 2)?).ok()?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    expect(13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(16, b':')?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second as RFC 3339 allows; it folds into the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }

    let offset_seconds = match b.get(at) {
        None => 0,
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(b, at + 1, 2)?;
            let rest = &b[at + 3..];
            let minutes = match rest {
                [] => 0,
                [b':', _, _] => digits(rest, 1, 2)?,
                [_, _] => digits(rest, 0, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };

    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let ms = seconds.checked_mul(1000)?.checked_add(millis)?;
    (MIN_MS..MAX_MS).contains(&ms).then_some(ms)
}

/// Formats epoch milliseconds as CloudTrail writes event times: `2024-07-30T21:31:21Z`.
pub fn format_event_time(ms: i64) -> String {
    let mut out = String::with_capacity(20);
    let (days, secs) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
    out
}

/// The UTC calendar date of an instant, as `YYYY-MM-DD` (the partition value of segments).
pub fn format_date(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_cloudtrail_format() {
        assert_eq!(parse_event_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_event_time("2024-07-30T21:31:21Z"), Ok(1_722_375_081_000));
    }

    #[test]
    fn parses_shapes_seen_in_real_pipelines() {
        let base = parse_event_time("2022-12-11T19:42:55Z").unwrap();
        assert_eq!(parse_event_time("2022-12-11 19:42:55"), Ok(base));
        assert_eq!(parse_event_time("2022-12-11 19:42:55.00000"), Ok(base));
        assert_eq!(parse_event_time("2022-12-11T19:42:55.250Z"), Ok(base + 250));
        assert_eq!(parse_event_time("2022-12-11T20:42:55+01:00"), Ok(base));
        assert_eq!(parse_event_time("2022-12-11T14:42:55-0500"), Ok(base));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "reda",
            "...",
            "2024-02-30T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01T00:00:00.Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_event_time(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn leap_day() {
        assert!(parse_event_time("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_event_time("2023-02-29T00:00:00Z").is_err());
        assert!(parse_event_time("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_event_time("1900-02-29T00:00:00Z").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0i64..253_402_300_799) {
            let ms = secs * 1000;
            prop_assert_eq!(parse_event_time(&format_event_time(ms)), Ok(ms));
        }

        #[test]
        fn civil_round_trips(days in 0i64..2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = parse_event_time(&text);
        }
    }
}
