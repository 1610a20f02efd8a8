//! The two timestamp forms SigV4 meets, converted to and from Unix seconds without a clock:
//! ISO 8601 basic (`20150830T123600Z`, in `X-Amz-Date`) and the HTTP `Date` header
//! (`Sun, 30 Aug 2015 12:36:00 GMT`, or botocore's `-0000` spelling of UTC).

use trailkeeper_core::time::{civil_from_days, days_from_civil, days_in_month};

fn unix_seconds(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let month = u32::try_from(month).ok().filter(|month| (1..=12).contains(month))?;
    let day = u32::try_from(day).ok().filter(|&day| (1..=days_in_month(year, month)).contains(&day))?;
    let valid = (0..24).contains(&hour) && (0..60).contains(&minute) && (0..60).contains(&second);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub(crate) fn format_iso8601_basic(unix_seconds: i64) -> String {
    let (year, month, day) = civil_from_days(unix_seconds.div_euclid(86_400));
    let second_of_day = unix_seconds.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses exactly `YYYYMMDDTHHMMSSZ` into Unix seconds.
pub(crate) fn parse_iso8601_basic(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    unix_seconds(
        digits(text.get(0..4)?)?,
        digits(text.get(4..6)?)?,
        digits(text.get(6..8)?)?,
        digits(text.get(9..11)?)?,
        digits(text.get(11..13)?)?,
        digits(text.get(13..15)?)?,
    )
}

/// Parses an HTTP date in UTC (`[Day, ]DD Mon YYYY HH:MM:SS GMT|UTC|+0000|-0000`) into Unix
/// seconds. The weekday, when present, is not checked against the date.
pub(crate) fn parse_http_date(text: &str) -> Option<i64> {
    let after_weekday = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    let fields: Vec<&str> = after_weekday.split_whitespace().collect();
    let [day, month, year, clock, zone] = fields.as_slice() else {
        return None;
    };
    if !matches!(*zone, "GMT" | "UTC" | "Z" | "+0000" | "-0000") {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month_number = MONTHS.iter().position(|name| name.eq_ignore_ascii_case(month))? as i64 + 1;
    let clock_fields: Vec<&str> = clock.split(':').collect();
    let [hour, minute, second] = clock_fields.as_slice() else {
        return None;
    };
    unix_seconds(digits(year)?, month_number, digits(day)?, digits(hour)?, digits(minute)?, digits(second)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_format_round_trips() {
        assert_eq!(format_iso8601_basic(0), "19700101T000000Z");
        assert_eq!(format_iso8601_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_iso8601_basic("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_iso8601_basic("20240229T235959Z"), Some(1_709_251_199));
        for unix in [0, 951_782_400, 1_709_251_199, 4_102_444_800, -86_400] {
            assert_eq!(parse_iso8601_basic(&format_iso8601_basic(unix)), Some(unix));
        }
    }

    #[test]
    fn basic_format_rejects_anything_else() {
        for bad in [
            "",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150830t123600Z",
            "20230229T000000Z",
            "20151301T000000Z",
            "20150830T246000Z",
            "2015083+T123600Z",
            "20150830T12360éZ",
        ] {
            assert_eq!(parse_iso8601_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates_in_utc_are_read() {
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(1_440_938_160));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 -0000"), Some(1_440_938_160));
        assert_eq!(parse_http_date("30 aug 2015 12:36:00 UTC"), Some(1_440_938_160));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 +0200"), None);
        assert_eq!(parse_http_date("Sun, 31 Sep 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
