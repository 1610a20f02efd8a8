//! Byte-level JSON helpers that keep text exactly as written.

use std::borrow::Cow;

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Drops the whitespace between JSON tokens and nothing else: strings, numbers and key
/// order stay exactly as written. Returns the input itself when it is already compact.
/// The input need not be valid JSON; invalid input is left for the parser to refuse.
pub fn minify(text: &[u8]) -> Cow<'_, [u8]> {
    let mut in_string = false;
    let mut escaped = false;
    let first_space = text.iter().position(|&byte| {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            false
        } else if byte == b'"' {
            in_string = true;
            false
        } else {
            is_json_whitespace(byte)
        }
    });
    let Some(first_space) = first_space else {
        return Cow::Borrowed(text);
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&text[..first_space]);
    // `in_string` is false here: the scan stopped on whitespace outside a string.
    for &byte in &text[first_space..] {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !is_json_whitespace(byte) {
            in_string = byte == b'"';
            out.push(byte);
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
