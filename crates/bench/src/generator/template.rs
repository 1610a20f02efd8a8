//! Request and response templates: `$placeholder` substitution for the bodies in the
//! action catalog.

use std::fmt::Write as _;

use rand::Rng;
use rand::rngs::StdRng;

use super::text::{WORDS, push_display_time, push_hex, push_key_chars, push_token, push_uuid};

/// The values a template's `$placeholders` stand for in one record. Values that appear
/// twice in a record (the object key in the request and in `resources[]`) are fixed here;
/// identifiers such as `$uuid` are drawn afresh at each use.
pub(super) struct TemplateContext<'a> {
    pub(super) name: &'a str,
    pub(super) arn: &'a str,
    pub(super) region: &'a str,
    pub(super) account: &'a str,
    pub(super) user: &'a str,
    pub(super) session: String,
    pub(super) object_key: String,
    pub(super) time_ms: i64,
    pub(super) event_time: &'a str,
}

/// Appends `template` with each `$placeholder` replaced. A `$` not followed by a known
/// placeholder name (such as Lambda's `$LATEST`) is copied as it is.
pub(super) fn render(out: &mut String, template: &str, context: &TemplateContext<'_>, rng: &mut StdRng) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let name_len = after.bytes().take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit()).count();
        let name = &after[..name_len];
        if !substitute(out, name, context, rng) {
            out.push('$');
            out.push_str(name);
        }
        rest = &after[name_len..];
    }
    out.push_str(rest);
}

/// Writes the value of placeholder `name`; false when there is no such placeholder.
pub(super) fn substitute(out: &mut String, name: &str, context: &TemplateContext<'_>, rng: &mut StdRng) -> bool {
    match name {
        "name" => out.push_str(context.name),
        "arn" => out.push_str(context.arn),
        "region" => out.push_str(context.region),
        "regiona" => {
            out.push_str(context.region);
            out.push(['a', 'b', 'c'][rng.random_range(0..3)]);
        }
        "account" => out.push_str(context.account),
        "user" => out.push_str(context.user),
        "session" => out.push_str(&context.session),
        "objectkey" => out.push_str(&context.object_key),
        "word" => out.push_str(WORDS[rng.random_range(0..WORDS.len())]),
        "uuid" => push_uuid(out, rng),
        "hex2" => push_hex(out, rng, 2, false),
        "hex6" => push_hex(out, rng, 6, false),
        "hex16" => push_hex(out, rng, 16, true),
        "hex17" => push_hex(out, rng, 17, false),
        "hex32" => push_hex(out, rng, 32, false),
        "n" => {
            let _ = write!(out, "{}", rng.random_range(1..=250));
        }
        "bytes" => {
            let _ = write!(out, "{}", rng.random_range(1_000..60_000_000));
        }
        "akid" => {
            out.push_str("ASIA");
            push_key_chars(out, rng, 16);
        }
        "token" => push_token(out, rng, 280),
        "time" => out.push_str(context.event_time),
        "epochms" => {
            let _ = write!(out, "{}", context.time_ms);
        }
        "date" => out.push_str(&context.event_time[..10]),
        "expiry" => push_display_time(out, context.time_ms + 3_600_000),
        "displaytime" => push_display_time(out, context.time_ms),
        _ => return false,
    }
    true
}
