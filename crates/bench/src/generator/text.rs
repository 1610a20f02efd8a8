//! Small text helpers of the generator: word lists, JSON field writing and random
//! identifiers (hex, access key characters, tokens, UUIDs) in the shapes AWS uses.

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::StdRng;
use trailkeeper_core::time::civil_from_days;

pub(super) const WORDS: [&str; 24] = [
    "payments",
    "orders",
    "analytics",
    "billing",
    "auth",
    "search",
    "inventory",
    "reports",
    "ml",
    "backup",
    "media",
    "users",
    "events",
    "catalog",
    "shipping",
    "ledger",
    "notify",
    "gateway",
    "etl",
    "fraud",
    "pricing",
    "checkout",
    "identity",
    "warehouse",
];

pub(super) const ENVIRONMENTS: [&str; 3] = ["prod", "staging", "dev"];
pub(super) fn session_name(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        0 => format!("botocore-session-{}", rng.random_range(1_790_000_000u64..1_800_000_000)),
        1 => format!("aws-go-sdk-{}", rng.random_range(1_790_000_000_000_000_000u64..1_800_000_000_000_000_000)),
        _ => format!("{}-{}", WORDS[rng.random_range(0..WORDS.len())], rng.random_range(1..10_000)),
    }
}

pub(super) fn object_key(rng: &mut StdRng) -> String {
    let word = WORDS[rng.random_range(0..WORDS.len())];
    format!(
        "{word}/year=2026/month={:02}/day={:02}/part-{:05}-{:08x}.snappy.parquet",
        rng.random_range(1..=12),
        rng.random_range(1..=28),
        rng.random_range(0..2000),
        rng.random::<u32>()
    )
}

/// CloudTrail's human-readable time in response elements: `Nov 1, 2026, 1:00:00 AM`.
pub(super) fn push_display_time(out: &mut String, ms: i64) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let (hour12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    let _ = write!(out, "{} {day}, {year}, {hour12}:{minute:02}:{second:02} {half}", MONTHS[(month - 1) as usize]);
}

pub(super) fn kebab_case(name: &str) -> String {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == 'v');
    let chars: Vec<char> = trimmed.chars().collect();
    let mut out = String::with_capacity(trimmed.len() + 4);
    for (index, &c) in chars.iter().enumerate() {
        // A new word starts at an upper-case letter after a lower-case one, or at the last
        // capital of an acronym ("DB" in "DescribeDBInstances").
        let previous_lower = index > 0 && chars[index - 1].is_ascii_lowercase();
        let acronym_end = index > 0 && chars.get(index + 1).is_some_and(char::is_ascii_lowercase);
        if c.is_ascii_uppercase() && (previous_lower || acronym_end) {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

pub(super) fn key(out: &mut String, name: &str) {
    if !matches!(out.as_bytes().last(), Some(b'{' | b'[') | None) {
        out.push(',');
    }
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

pub(super) fn put_str(out: &mut String, name: &str, value: &str) {
    key(out, name);
    push_quoted(out, value);
}

pub(super) fn put_raw(out: &mut String, name: &str, json: &str) {
    key(out, name);
    out.push_str(json);
}

/// Appends a JSON string. Generated values never need escaping, but escaping keeps the
/// output valid whatever a configuration puts in.
pub(super) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn push_hex(out: &mut String, rng: &mut StdRng, digits: usize, upper: bool) {
    let alphabet: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    for _ in 0..digits {
        out.push(char::from(alphabet[rng.random_range(0..16)]));
    }
}

/// Upper-case letters and digits, as in access key IDs.
pub(super) fn push_key_chars(out: &mut String, rng: &mut StdRng, count: usize) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for _ in 0..count {
        out.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
}

/// URL-safe base64-looking text, as in session tokens and encoded failure messages.
pub(super) fn push_token(out: &mut String, rng: &mut StdRng, count: usize) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for _ in 0..count {
        out.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
}

pub(super) fn push_uuid(out: &mut String, rng: &mut StdRng) {
    out.push_str(&uuid_from_bits(rng.random(), rng.random()));
}

/// A UUID version 4 text from 128 bits.
pub(super) fn uuid_from_bits(high: u64, low: u64) -> String {
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// SplitMix64's finaliser over a keyed counter: a cheap, well-mixed hash.
pub(super) fn mix(key: u64, counter: u64) -> u64 {
    let mut z = key.wrapping_add(counter.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
