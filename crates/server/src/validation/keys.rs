//! Digest keys and dates exactly as the AWS CLI computes them: the listing marker and
//! prefix, the pattern a key of the trail must match, the time read back from a key, and
//! dates parsed and printed the way `validate-logs` does.
//!
//! These follow the AWS CLI's text handling on purpose, quirks included (a prefix is joined
//! with `/` even when it ends in one; a key's time is the 16 characters before `.json.gz`,
//! counted in characters; a UTC offset in a date is dropped, not applied), because the same
//! input must list the same keys and print the same lines.

use trailkeeper_core::time::{civil_from_days, days_from_civil, days_in_month, format_event_time};

/// One trail's digests in one Region, as the AWS CLI names and finds them.
#[derive(Debug, Clone, Copy)]
pub(super) struct DigestKeys<'a> {
    pub prefix: Option<&'a str>,
    pub account_id: &'a str,
    pub source_region: &'a str,
    pub home_region: &'a str,
    pub trail_name: &'a str,
}

impl DigestKeys<'_> {
    fn with_prefix(&self, rest: &str) -> String {
        match self.prefix {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}/{rest}"),
            _ => rest.to_owned(),
        }
    }

    /// The key a digest ending one minute before `start_ms` would have: the listing starts
    /// after it.
    pub fn marker(&self, start_ms: i64) -> String {
        let date_ms = start_ms - 60_000;
        let (year, month, day) = civil_from_days(date_ms.div_euclid(86_400_000));
        let (account, source, home, name) = (self.account_id, self.source_region, self.home_region, self.trail_name);
        self.with_prefix(&format!(
            "AWSLogs/{account}/CloudTrail-Digest/{source}/{year:04}/{month:02}/{day:02}/\
             {account}_CloudTrail-Digest_{source}_{name}_{home}_{}.json.gz",
            compact_date(date_ms)
        ))
    }

    /// What every digest key of the Region starts with (without a trailing slash).
    pub fn list_prefix(&self) -> String {
        self.with_prefix(&format!("AWSLogs/{}/CloudTrail-Digest/{}", self.account_id, self.source_region))
    }

    /// Whether `key` is one of this trail's digests: the AWS CLI's
    /// `^<prefix>/AWSLogs/<account>/CloudTrail\-Digest/<region>/\d+/\d+/\d+/<account>_CloudTrail\-Digest_<region>_<name>_<home>_.+(?:_backfill)?\.json\.gz$`.
    pub fn matches(&self, key: &str) -> bool {
        let head = self.with_prefix(&format!("AWSLogs/{}/CloudTrail-Digest/{}/", self.account_id, self.source_region));
        let Some(mut rest) = key.strip_prefix(head.as_str()) else { return false };
        for _ in 0..3 {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            match rest[digits..].strip_prefix('/') {
                Some(after) if digits > 0 => rest = after,
                _ => return false,
            }
        }
        let name = format!(
            "{}_CloudTrail-Digest_{}_{}_{}_",
            self.account_id, self.source_region, self.trail_name, self.home_region
        );
        let Some(rest) = rest.strip_prefix(name.as_str()) else { return false };
        rest.strip_suffix(".json.gz").is_some_and(|middle| !middle.is_empty() && !middle.contains('\n'))
    }
}

pub(super) fn is_backfill_key(key: &str) -> bool {
    key.ends_with("_backfill.json.gz")
}

/// The time in a digest key as the AWS CLI reads it: characters `[-24:-8]` of the key
/// (`[-33:-17]` for a backfill digest), with Python's slicing rules.
pub(super) fn key_date(key: &str) -> String {
    let (from_end, to_end) = if is_backfill_key(key) { (33, 17) } else { (24, 8) };
    let length = key.chars().count();
    let start = length.saturating_sub(from_end);
    let end = length.saturating_sub(to_end);
    key.chars().skip(start).take(end.saturating_sub(start)).collect()
}

/// `%Y%m%dT%H%M%SZ`, the time in digest keys.
pub(super) fn compact_date(ms: i64) -> String {
    let (days, second_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

/// `%Y-%m-%dT%H:%M:%SZ`, the dates `validate-logs` prints.
pub(super) fn display_date(ms: i64) -> String {
    format_event_time(ms)
}

/// Parses a date as `validate-logs` does (dateutil, then the zone replaced by UTC): the
/// ISO 8601 shapes `2026-11-20`, `2026-11-20T00:00[:00[.123456]]` (or with a space), the
/// compact `20261120T000000`, each with an optional zone (`Z`, `+05:00`, `-0500`) that is
/// dropped, not applied. The error is the AWS CLI's message.
pub fn parse_date(text: &str) -> Result<i64, String> {
    parse_date_inner(text.trim()).ok_or_else(|| format!("Unable to parse date value: {text}"))
}

fn parse_date_inner(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |at: usize, length: usize| -> Option<i64> {
        let digits = bytes.get(at..at + length)?;
        digits.iter().try_fold(0i64, |total, &byte| byte.is_ascii_digit().then(|| total * 10 + i64::from(byte - b'0')))
    };
    let compact = bytes.get(8) == Some(&b'T') && bytes.iter().take(8).all(u8::is_ascii_digit);
    let (year, month, day, mut at) = if compact {
        (number(0, 4)?, number(4, 2)?, number(6, 2)?, 8)
    } else {
        if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
            return None;
        }
        (number(0, 4)?, number(5, 2)?, number(8, 2)?, 10)
    };
    let month = u32::try_from(month).ok().filter(|month| (1..=12).contains(month))?;
    let day = u32::try_from(day).ok().filter(|&day| day >= 1 && day <= days_in_month(year, month))?;
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if at < bytes.len() {
        if !matches!(bytes[at], b'T' | b't' | b' ') {
            return None;
        }
        at += 1;
        let separated = !compact;
        hour = number(at, 2)?;
        at += 2;
        let colon = |at: &mut usize| -> Option<()> {
            if separated { (bytes.get(*at) == Some(&b':')).then(|| *at += 1) } else { Some(()) }
        };
        colon(&mut at)?;
        minute = number(at, 2)?;
        at += 2;
        if at < bytes.len() && !is_zone_start(bytes[at]) {
            colon(&mut at)?;
            second = number(at, 2)?;
            at += 2;
            if matches!(bytes.get(at), Some(b'.' | b',')) {
                at += 1;
                let digits = bytes[at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                micros =
                    bytes[at..at + digits.min(6)].iter().fold(0i64, |total, &byte| total * 10 + i64::from(byte - b'0'))
                        * 10i64.pow(6 - digits.min(6) as u32);
                at += digits;
            }
        }
        if !valid_zone(&bytes[at..]) {
            return None;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds * 1000 + micros / 1000)
}

fn is_zone_start(byte: u8) -> bool {
    matches!(byte, b'Z' | b'z' | b'+' | b'-')
}

/// An empty zone, `Z`, or `±HH`, `±HHMM`, `±HH:MM`.
fn valid_zone(zone: &[u8]) -> bool {
    let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    match zone {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', rest @ ..] => match rest {
            [_, _] | [_, _, _, _] => digits(rest),
            [a, b, b':', c, d] => digits(&[*a, *b, *c, *d]),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEYS: DigestKeys<'static> = DigestKeys {
        prefix: None,
        account_id: "123456789012",
        source_region: "us-east-1",
        home_region: "us-east-1",
        trail_name: "org-trail",
    };

    #[test]
    fn computes_marker_prefix_and_pattern_as_the_aws_cli() {
        let start = parse_date("2026-11-20T00:00:00Z").unwrap();
        assert_eq!(
            KEYS.marker(start),
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/19/\
             123456789012_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20261119T235900Z.json.gz"
        );
        assert_eq!(KEYS.list_prefix(), "AWSLogs/123456789012/CloudTrail-Digest/us-east-1");
        let prefixed = DigestKeys { prefix: Some("logs/"), ..KEYS };
        assert_eq!(
            prefixed.list_prefix(),
            "logs//AWSLogs/123456789012/CloudTrail-Digest/us-east-1",
            "joined as the CLI joins"
        );

        let key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/20/\
                   123456789012_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20261120T010203Z.json.gz";
        assert!(KEYS.matches(key));
        assert!(KEYS.matches(&key.replace(".json.gz", "_backfill.json.gz")));
        assert!(!KEYS.matches(&key.replace("org-trail", "other")), "another trail");
        assert!(!KEYS.matches(&key.replace("/2026/", "/x/")));
        assert!(!KEYS.matches(&key.replace("_20261120T010203Z", "")), "no time at all");
        assert!(!KEYS.matches(&format!("logs/{key}")));
        assert!(DigestKeys { prefix: Some("logs"), ..KEYS }.matches(&format!("logs/{key}")));
        assert_eq!(key_date(key), "20261120T010203Z");
        assert_eq!(key_date(&key.replace(".json.gz", "_backfill.json.gz")), "20261120T010203Z");
        assert_eq!(key_date("short.json.gz"), "short", "Python slicing of a short key");
    }

    #[test]
    fn parses_and_prints_dates_as_the_aws_cli() {
        let ms = 1_795_132_800_000; // 2026-11-20T00:00:00Z
        assert_eq!(parse_date("2026-11-20T00:00:00Z"), Ok(ms));
        assert_eq!(parse_date("2026-11-20"), Ok(ms));
        assert_eq!(parse_date("2026-11-20 00:00"), Ok(ms));
        assert_eq!(parse_date("20261120T000000Z"), Ok(ms));
        assert_eq!(parse_date("2026-11-20T00:00:00+05:00"), Ok(ms), "the offset is dropped, as the CLI does");
        assert_eq!(parse_date("2026-11-20T00:00:01.5Z"), Ok(ms + 1500));
        assert_eq!(parse_date("yesterday"), Err("Unable to parse date value: yesterday".to_owned()));
        assert!(parse_date("2026-02-30T00:00:00Z").is_err());
        assert_eq!(compact_date(ms + 3_723_000), "20261120T010203Z");
        assert_eq!(display_date(ms + 3_723_999), "2026-11-20T01:02:03Z");
    }
}
