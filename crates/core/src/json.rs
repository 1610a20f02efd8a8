//! Byte-level JSON helpers that keep text exactly as written.

use std::borrow::Cow;
use std::ops::Range;

mod check;

pub use check::{
    CheckedMember, MAX_DEPTH, MemberVisitor, SyntaxError, array_elements, object_members, visit_members, visit_objects,
};

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The index just past the closing quote of the string whose opening quote is at `open`,
/// or the end of the text for an unterminated string. Jumps over string contents with
/// memchr: most of a CloudTrail record's bytes are inside strings.
fn string_end(text: &[u8], open: usize) -> usize {
    let mut at = open + 1;
    while let Some(found) = memchr::memchr2(b'"', b'\\', &text[at.min(text.len())..]) {
        let position = at + found;
        if text[position] == b'"' {
            return position + 1;
        }
        // A backslash escapes the next byte, whatever it is.
        at = position + 2;
    }
    text.len()
}

/// Drops the whitespace between JSON tokens and nothing else: strings, numbers and key
/// order stay exactly as written. Returns the input itself when it is already compact.
/// The input need not be valid JSON; invalid input is left for the parser to refuse.
pub fn minify(text: &[u8]) -> Cow<'_, [u8]> {
    let mut at = 0;
    let first_space = loop {
        match text.get(at) {
            None => return Cow::Borrowed(text),
            Some(b'"') => at = string_end(text, at),
            Some(&byte) if is_json_whitespace(byte) => break at,
            Some(_) => at += 1,
        }
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&text[..first_space]);
    let mut at = first_space;
    while let Some(&byte) = text.get(at) {
        if byte == b'"' {
            let end = string_end(text, at);
            out.extend_from_slice(&text[at..end]);
            at = end;
        } else {
            if !is_json_whitespace(byte) {
                out.push(byte);
            }
            at += 1;
        }
    }
    Cow::Owned(out)
}

/// One member of a JSON object: where its key's text (inside the quotes, escapes as
/// written) and its value's text sit in the object's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// The top-level members of a compact JSON object (as [`minify`] leaves it), in order. It
/// reads only as much structure as finding each member takes and stops at the first
/// thing that is not a member, so text that is not a compact object yields a prefix of
/// its members, never a panic; the ranges always lie within `text`.
pub fn top_level_members(text: &[u8]) -> impl Iterator<Item = Member> + '_ {
    let mut at = if text.first() == Some(&b'{') { 1 } else { text.len() };
    std::iter::from_fn(move || {
        if text.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(text, at);
        if text.get(key_end) != Some(&b':') {
            return None;
        }
        let key = at + 1..key_end - 1;
        let value_start = key_end + 1;
        let value_end = value_end(text, value_start)?;
        at = if text[value_end] == b',' { value_end + 1 } else { text.len() };
        Some(Member { key, value: value_start..value_end })
    })
}

/// Whether `text` can be written as a JSON string as it is, between quotes: it holds no
/// quote, backslash or control character.
pub fn needs_no_escape(text: &str) -> bool {
    check::next_special(text.as_bytes(), 0) == text.len()
}

/// Whether a value's text is a string written without escapes: the text between its
/// quotes is the string itself.
fn is_plain_string(value: &[u8]) -> bool {
    value.len() >= 2
        && value[0] == b'"'
        && value[value.len() - 1] == b'"'
        && !value[1..value.len() - 1].contains(&b'\\')
}

/// For each of `keys`, the value range of the first member of an object whose name is
/// written exactly so, if that value is a string written without escapes (quotes
/// included), as the object's members are seen in order.
pub struct FirstPlainStrings<'k, const N: usize> {
    keys: &'k [&'k str; N],
    seen: [bool; N],
    found: [Option<Range<usize>>; N],
}

impl<'k, const N: usize> FirstPlainStrings<'k, N> {
    pub fn new(keys: &'k [&'k str; N]) -> Self {
        FirstPlainStrings { keys, seen: [false; N], found: [const { None }; N] }
    }

    /// Takes in the next member of `text`, by the ranges of its name (between the quotes)
    /// and its value; returns whether every key has now been seen.
    pub fn see(&mut self, text: &[u8], key: Range<usize>, value: Range<usize>) -> bool {
        let key = &text[key];
        if let Some(index) = self.keys.iter().position(|wanted| wanted.as_bytes() == key)
            && !std::mem::replace(&mut self.seen[index], true)
            && is_plain_string(&text[value.clone()])
        {
            self.found[index] = Some(value);
        }
        self.seen.iter().all(|&seen| seen)
    }

    pub fn found(self) -> [Option<Range<usize>>; N] {
        self.found
    }
}

/// [`FirstPlainStrings`] of the top-level members of a compact object.
pub fn first_plain_strings<const N: usize>(text: &[u8], keys: &[&str; N]) -> [Option<Range<usize>>; N] {
    let mut first = FirstPlainStrings::new(keys);
    for member in top_level_members(text) {
        if first.see(text, member.key, member.value) {
            break;
        }
    }
    first.found()
}

/// The end of the compact JSON value starting at `start`: where the `,` or `}` that
/// follows it sits. `None` for text that is no value followed by one of those.
fn value_end(text: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        match *text.get(at)? {
            b'"' => at = string_end(text, at),
            b'{' | b'[' => {
                depth += 1;
                at += 1;
            }
            b',' | b'}' | b']' if depth == 0 => break,
            b'}' | b']' => {
                depth -= 1;
                at += 1;
            }
            _ => at += 1,
        }
        // A string, object or array ends where its depth returns to zero; a scalar runs
        // on to the delimiter.
        if depth == 0 && matches!(text[start], b'"' | b'{' | b'[') {
            break;
        }
    }
    (at > start && matches!(text.get(at), Some(b',' | b'}'))).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_compact_text_borrowed() {
        assert!(matches!(minify(br#"{"a":"b c"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn keeps_unterminated_strings_and_trailing_escapes() {
        assert_eq!(&*minify(b"{\"a\": \"b"), b"{\"a\":\"b");
        assert_eq!(&*minify(b"\"\\"), b"\"\\");
        assert_eq!(&*minify(b" \"x\\\" y\" "), b"\"x\\\" y\"");
    }

    #[test]
    fn drops_only_insignificant_whitespace() {
        let text = b"{ \"a b\" : [ 1 , \"x\\\" y\" ],\n\t\"c\":\"\\\\\" }";
        assert_eq!(&*minify(text), br#"{"a b":[1,"x\" y"],"c":"\\"}"#);
    }

    fn members(text: &str) -> Vec<(&str, &str)> {
        top_level_members(text.as_bytes()).map(|member| (&text[member.key], &text[member.value])).collect()
    }

    #[test]
    fn finds_top_level_members_as_written() {
        let text = r#"{"a":"x,}\"","b\"c":{"d":[1,{"e":"}"}]},"":[],"f":-1.5e3,"g":null}"#;
        assert_eq!(
            members(text),
            [("a", r#""x,}\"""#), (r#"b\"c"#, r#"{"d":[1,{"e":"}"}]}"#), ("", "[]"), ("f", "-1.5e3"), ("g", "null")]
        );
        assert_eq!(members("{}"), []);
    }

    #[test]
    fn stops_at_what_is_not_a_member() {
        assert_eq!(members(r#"{"a":1,"b""#), [("a", "1")]);
        assert_eq!(members(r#"{"a":"unterminated"#), []);
        assert_eq!(members(r#"{"a":[1}"#), []);
        assert_eq!(members(r#"{"a":1]"#), []);
        assert_eq!(members(r#"{"a"}"#), []);
        assert_eq!(members(r#"["a",1]"#), []);
        assert_eq!(members(""), []);
    }

    proptest! {
        #[test]
        fn minified_json_parses_to_the_same_value(value in arbitrary_json()) {
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            let compact = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(&*minify(&pretty), &compact[..]);
        }
    }

    proptest! {
        #[test]
        fn members_are_the_objects_own(map in prop::collection::btree_map(".{0,8}", arbitrary_json(), 0..6)) {
            let object = serde_json::Value::Object(map.clone().into_iter().collect());
            let text = serde_json::to_string(&object).unwrap();
            let found: Vec<(String, serde_json::Value)> = top_level_members(text.as_bytes())
                .map(|member| {
                    let key: String = serde_json::from_str(&format!("\"{}\"", &text[member.key])).unwrap();
                    (key, serde_json::from_str(&text[member.value]).unwrap())
                })
                .collect();
            prop_assert_eq!(found, map.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn any_text_gives_members_within_it(text in prop::collection::vec(any::<u8>(), 0..64)) {
            for member in top_level_members(&text) {
                prop_assert!(member.key.end <= member.value.start && member.value.end <= text.len());
            }
        }
    }

    pub(super) fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            ".{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }
}
