//! Byte-level JSON helpers that keep text exactly as written.

use std::borrow::Cow;

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

    proptest! {
        #[test]
        fn minified_json_parses_to_the_same_value(value in arbitrary_json()) {
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            let compact = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(&*minify(&pretty), &compact[..]);
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
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
