//! A checking JSON scanner: one pass over a text that refuses anything RFC 8259's grammar
//! does not allow and reports an object's (or array's) own members (elements) as ranges of
//! the text, without building values. Ingest reads a record's dozen fields with it, so the
//! rest of a record is checked at the speed of a scan instead of being deserialized.
//!
//! It checks grammar only. Bytes from 0x80 up are taken as they come: the caller checks
//! the whole text is UTF-8 once, which is faster than string by string.

use std::fmt;
use std::ops::Range;

use super::is_json_whitespace;

/// How deeply arrays and objects may nest, the record itself counting as one: the most
/// serde_json reads, so that every stored record can be read again. Deeper text is
/// refused rather than scanned with unbounded recursion.
pub const MAX_DEPTH: usize = 127;

/// Where a text stops being JSON, and what should have been there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    pub expected: &'static str,
    /// Byte offset into the text.
    pub at: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

impl std::error::Error for SyntaxError {}

/// One member of an object, as [`object_members`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMember {
    /// The name's text between its quotes, escapes as written.
    pub key: Range<usize>,
    /// Whether the name holds an escape, so that its text is not the name itself.
    pub key_escaped: bool,
    /// The value's text.
    pub value: Range<usize>,
}

/// Checks that `text` is one JSON object, whitespace around its tokens allowed, and calls
/// `member` with each of its own members. Returns whether the text was compact, with no
/// whitespace outside strings at all.
pub fn object_members(text: &[u8], member: impl FnMut(CheckedMember)) -> Result<bool, SyntaxError> {
    visit_members(text, &mut EachMember(member))
}

/// What [`visit_members`] reports: an object's own members, and on request the members or
/// elements of some of their values, read in the same pass over the text.
pub trait MemberVisitor {
    /// Asked with each member's name (between its quotes, as written) before its value is
    /// read: a tag has the value's own members (an object) or elements (an array)
    /// reported under it, through [`MemberVisitor::inner_member`] or
    /// [`MemberVisitor::inner_element`].
    fn descend(&mut self, _key: &[u8], _key_escaped: bool) -> Option<u8> {
        None
    }

    /// A member of the object, once its value has been read.
    fn member(&mut self, member: CheckedMember);

    /// A member of the object value of a member `descend` tagged.
    fn inner_member(&mut self, _tag: u8, _member: CheckedMember) {}

    /// An element of the array value of a member `descend` tagged.
    fn inner_element(&mut self, _tag: u8, _element: Range<usize>) {}
}

/// [`object_members`] with a [`MemberVisitor`]: checks that `text` is one JSON object and
/// reports what the visitor asks for. Ranges are into `text`. Returns whether the text was
/// compact.
pub fn visit_members(text: &[u8], visitor: &mut impl MemberVisitor) -> Result<bool, SyntaxError> {
    whole(text, b'{', "a JSON object", |scanner| scanner.object(1, visitor))
}

/// Checks that `text` is one or more JSON objects back to back (whitespace around and
/// between them allowed) and reports each one's members to `visitor`, calling `each` once
/// an object has been read; `each` returning false stops the scan there. Returns whether
/// the scan reached the end of the text.
pub fn visit_objects<V: MemberVisitor>(
    text: &[u8],
    visitor: &mut V,
    mut each: impl FnMut(&mut V) -> bool,
) -> Result<bool, SyntaxError> {
    let mut scanner = Scanner { text, at: 0, spaced: false };
    scanner.skip_space();
    loop {
        if scanner.peek() != Some(b'{') {
            return Err(scanner.error("a JSON object"));
        }
        scanner.object(1, visitor)?;
        if !each(visitor) {
            return Ok(false);
        }
        scanner.skip_space();
        if scanner.at == text.len() {
            return Ok(true);
        }
    }
}

/// A visitor of an object's own members alone.
struct EachMember<F>(F);

impl<F: FnMut(CheckedMember)> MemberVisitor for EachMember<F> {
    fn member(&mut self, member: CheckedMember) {
        (self.0)(member);
    }
}

/// Checks that `text` is one JSON array, as [`object_members`] does an object, and calls
/// `element` with the range of each element's text.
pub fn array_elements(text: &[u8], mut element: impl FnMut(Range<usize>)) -> Result<bool, SyntaxError> {
    whole(text, b'[', "a JSON array", |scanner| scanner.array(1, &mut element))
}

fn whole(
    text: &[u8],
    open: u8,
    expected: &'static str,
    scan: impl FnOnce(&mut Scanner<'_>) -> Result<(), SyntaxError>,
) -> Result<bool, SyntaxError> {
    let mut scanner = Scanner { text, at: 0, spaced: false };
    scanner.skip_space();
    if scanner.peek() != Some(open) {
        return Err(scanner.error(expected));
    }
    scan(&mut scanner)?;
    scanner.skip_space();
    if scanner.at != text.len() {
        return Err(scanner.error("the end of the text"));
    }
    Ok(!scanner.spaced)
}

struct Scanner<'t> {
    text: &'t [u8],
    at: usize,
    /// Whether whitespace was skipped anywhere.
    spaced: bool,
}

impl Scanner<'_> {
    fn error(&self, expected: &'static str) -> SyntaxError {
        SyntaxError { expected, at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_json_whitespace) {
            self.at += 1;
            self.spaced = true;
        }
    }

    /// Steps over `byte`, or fails expecting it.
    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), SyntaxError> {
        if self.peek() != Some(byte) {
            return Err(self.error(expected));
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), SyntaxError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1, &mut EachMember(|_| {})),
            Some(b'[') => self.array(depth + 1, &mut |_| {}),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("a value")),
        }
    }

    /// The object at `{`: its members, then the `}`.
    fn object(&mut self, depth: usize, visitor: &mut impl MemberVisitor) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("at most 127 levels of nesting"));
        }
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("a member name"));
            }
            let (key, key_escaped) = self.string()?;
            self.skip_space();
            self.expect(b':', "':'")?;
            self.skip_space();
            let start = self.at;
            match visitor.descend(&self.text[key.clone()], key_escaped) {
                None => self.value(depth)?,
                Some(tag) => match self.peek() {
                    Some(b'{') => {
                        // Through `dyn`: one more visitor type for each visitor would have
                        // no end (the inner one can descend too, as far as types know).
                        let inner: &mut dyn FnMut(CheckedMember) = &mut |member| visitor.inner_member(tag, member);
                        self.object(depth + 1, &mut EachMember(inner))?;
                    }
                    Some(b'[') => self.array(depth + 1, &mut |element| visitor.inner_element(tag, element))?,
                    _ => self.value(depth)?,
                },
            }
            visitor.member(CheckedMember { key, key_escaped, value: start..self.at });
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_space();
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or '}'")),
            }
        }
    }

    /// The array at `[`: its elements, then the `]`. Written out beside `object` rather than
    /// sharing its loop: one loop calling each through a closure made parsing a generated
    /// record 11% slower (1,690 against 1,880 ns, `trailkeeper-bench parse`).
    fn array(&mut self, depth: usize, element: &mut dyn FnMut(Range<usize>)) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("at most 127 levels of nesting"));
        }
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let start = self.at;
            self.value(depth)?;
            element(start..self.at);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_space();
                }
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }

    /// The string at `"`; returns the range between its quotes and whether it holds an
    /// escape.
    fn string(&mut self) -> Result<(Range<usize>, bool), SyntaxError> {
        let start = self.at + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = next_special(self.text, at);
            match self.text.get(at) {
                Some(b'"') => {
                    self.at = at + 1;
                    return Ok((start..at, escaped));
                }
                Some(b'\\') => match self.text.get(at + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                        at += 2;
                        escaped = true;
                    }
                    Some(b'u')
                        if self.text.get(at + 2..at + 6).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
                    {
                        at += 6;
                        escaped = true;
                    }
                    _ => {
                        self.at = at;
                        return Err(self
                            .error("an escape: \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u and four hex digits"));
                    }
                },
                Some(_) => {
                    self.at = at;
                    return Err(self.error("no control character in a string"));
                }
                None => {
                    self.at = at;
                    return Err(self.error("'\"' to close the string"));
                }
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), SyntaxError> {
        if !self.text[self.at..].starts_with(word) {
            return Err(self.error("a value"));
        }
        self.at += word.len();
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn some_digits(&mut self) -> Result<(), SyntaxError> {
        if !self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            return Err(self.error("a digit"));
        }
        self.digits();
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

/// The first byte from `at` on that ends a run of plain string content: a quote, a
/// backslash or a control character (which JSON strings may hold only escaped), or the end
/// of the text. Sixteen bytes at a time where SSE2 is there (every x86-64), then eight:
/// most strings in a record are a few dozen bytes, too short for a call into memchr to
/// pay, and one pass finds all three kinds at once.
pub(super) fn next_special(text: &[u8], mut at: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        at = next_special_sse2(text, at);
        if at + 16 <= text.len() {
            return at;
        }
    }
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte below `limit` (below 0x80). Borrows can also mark bytes
    // after a marked one, never before, so the lowest mark is exact.
    let below = |word: u64, limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS;
    while let Some(chunk) = text.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let marks =
            below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, 0x20);
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    text[at..]
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map_or(text.len(), |found| at + found)
}

/// [`next_special`] over whole 16-byte blocks: the special byte's offset, or where fewer
/// than 16 bytes are left.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn next_special_sse2(text: &[u8], mut at: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline), and each load reads
    // the 16 bytes from `at`, which the loop condition keeps inside `text`; unaligned loads
    // are allowed.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let last_control = _mm_set1_epi8(0x1f);
        while at + 16 <= text.len() {
            let bytes = _mm_loadu_si128(text.as_ptr().add(at).cast::<__m128i>());
            // A control character is its own minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, last_control), bytes);
            let specials = _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash));
            let mask = _mm_movemask_epi8(_mm_or_si128(specials, control)) as u32;
            if mask != 0 {
                return at + mask.trailing_zeros() as usize;
            }
            at += 16;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::tests::arbitrary_json;
    use proptest::prelude::*;

    fn members(text: &str) -> Result<Vec<(&str, &str)>, SyntaxError> {
        let mut found = Vec::new();
        object_members(text.as_bytes(), |member| found.push((&text[member.key], &text[member.value])))?;
        Ok(found)
    }

    #[test]
    fn reports_an_objects_own_members_as_written() {
        let text = r#"{"a":"x,}\"","b\"c":{"d":[1,{"e":"}"}]},"":[],"f":-1.5e3,"g":null,"h":true}"#;
        assert_eq!(
            members(text).unwrap(),
            [
                ("a", r#""x,}\"""#),
                (r#"b\"c"#, r#"{"d":[1,{"e":"}"}]}"#),
                ("", "[]"),
                ("f", "-1.5e3"),
                ("g", "null"),
                ("h", "true")
            ]
        );
        assert_eq!(members(" { \"a\" : [ 1 , 2 ] }\n").unwrap(), [("a", "[ 1 , 2 ]")]);
    }

    #[test]
    fn tells_compact_text_from_spaced() {
        assert_eq!(object_members(br#"{"a":"b c","d":[1,{}]}"#, |_| {}), Ok(true));
        assert_eq!(object_members(br#"{"a": 1}"#, |_| {}), Ok(false));
        assert_eq!(object_members(b"{}\n", |_| {}), Ok(false));
    }

    #[test]
    fn lists_an_arrays_elements() {
        let text = r#"[1,"a",{"b":[2]},[],null]"#;
        let mut found = Vec::new();
        array_elements(text.as_bytes(), |element| found.push(&text[element])).unwrap();
        assert_eq!(found, ["1", r#""a""#, r#"{"b":[2]}"#, "[]", "null"]);
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow_and_says_where() {
        let refused = |text: &str| object_members(text.as_bytes(), |_| {}).unwrap_err();
        assert_eq!(refused("[1]"), SyntaxError { expected: "a JSON object", at: 0 });
        assert_eq!(refused(r#"{"a":1 2}"#), SyntaxError { expected: "',' or '}'", at: 7 });
        assert_eq!(refused(r#"{"a":tru e}"#).at, 5);
        assert_eq!(refused(r#"{"a":01}"#).at, 6);
        assert_eq!(refused(r#"{"a":1.}"#).at, 7);
        assert_eq!(refused(r#"{"a":1e}"#).at, 7);
        assert_eq!(refused(r#"{"a":-}"#).at, 6);
        assert_eq!(refused(r#"{"a":+1}"#).at, 5);
        assert_eq!(refused(r#"{"a":"\x"}"#).at, 6);
        assert_eq!(refused(r#"{"a":"\u12g4"}"#).at, 6);
        assert_eq!(refused("{\"a\":\"x\ty\"}").at, 7);
        assert_eq!(refused(r#"{"a":"open}"#).at, 11);
        assert_eq!(refused(r#"{"a":1,}"#).at, 7);
        assert_eq!(refused(r#"{"a" 1}"#).at, 5);
        assert_eq!(refused(r#"{a:1}"#).at, 1);
        assert_eq!(refused(r#"{"a":[1,]}"#).at, 8);
        assert_eq!(refused(r#"{"a":1}x"#), SyntaxError { expected: "the end of the text", at: 7 });
        assert_eq!(refused(r#"{"a":1"#).at, 6);
        assert_eq!(refused("").at, 0);
    }

    #[test]
    fn a_visitor_reads_the_members_and_elements_it_descends_into_in_the_same_pass() {
        struct Seen<'t> {
            text: &'t [u8],
            parts: Vec<String>,
        }
        impl Seen<'_> {
            fn text(&self, range: Range<usize>) -> String {
                String::from_utf8_lossy(&self.text[range]).into_owned()
            }
        }
        impl MemberVisitor for Seen<'_> {
            fn descend(&mut self, key: &[u8], _key_escaped: bool) -> Option<u8> {
                match key {
                    b"o" => Some(1),
                    b"a" => Some(2),
                    b"s" => Some(3),
                    _ => None,
                }
            }
            fn member(&mut self, member: CheckedMember) {
                let part = format!("{}={}", self.text(member.key), self.text(member.value));
                self.parts.push(part);
            }
            fn inner_member(&mut self, tag: u8, member: CheckedMember) {
                let part = format!("{tag}: {}={}", self.text(member.key), self.text(member.value));
                self.parts.push(part);
            }
            fn inner_element(&mut self, tag: u8, element: Range<usize>) {
                let part = format!("{tag}: {}", self.text(element));
                self.parts.push(part);
            }
        }
        let text = br#"{"o":{"x":{"y":1},"z":[2]},"a":[{"b":3},4],"s":"t","n":{"m":5}}"#;
        let mut seen = Seen { text, parts: Vec::new() };
        assert_eq!(visit_members(text, &mut seen), Ok(true));
        // The members of `o` and the elements of `a`, each before the member holding them;
        // nothing deeper, and nothing of `s` (no object or array) or `n` (not asked for).
        assert_eq!(
            seen.parts,
            [
                r#"1: x={"y":1}"#,
                "1: z=[2]",
                r#"o={"x":{"y":1},"z":[2]}"#,
                r#"2: {"b":3}"#,
                "2: 4",
                r#"a=[{"b":3},4]"#,
                r#"s="t""#,
                r#"n={"m":5}"#,
            ]
        );
        let broken = br#"{"o":{"x":1,}}"#;
        let refused = visit_members(broken, &mut Seen { text: broken, parts: Vec::new() });
        assert!(refused.is_err(), "what it descends into is checked too");
    }

    #[test]
    fn refuses_nesting_deeper_than_the_limit() {
        let nested = |depth: usize| format!("{{\"a\":{}1{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        assert!(object_members(nested(MAX_DEPTH).as_bytes(), |_| {}).is_ok());
        let error = object_members(nested(MAX_DEPTH + 1).as_bytes(), |_| {}).unwrap_err();
        assert_eq!(error.expected, "at most 127 levels of nesting");
    }

    proptest! {
        #[test]
        fn accepts_what_serde_json_writes_and_finds_its_members(
            map in prop::collection::btree_map(".{0,8}", arbitrary_json(), 0..6),
            pretty in any::<bool>(),
        ) {
            let object = serde_json::Value::Object(map.clone().into_iter().collect());
            let text = if pretty { serde_json::to_string_pretty(&object) } else { serde_json::to_string(&object) }.unwrap();
            let mut found = Vec::new();
            let mut escapes_told = true;
            let compact = object_members(text.as_bytes(), |member| {
                let written = &text[member.key];
                let key: String = serde_json::from_str(&format!("\"{written}\"")).unwrap();
                escapes_told &= member.key_escaped == (key != written);
                found.push((key, serde_json::from_str::<serde_json::Value>(&text[member.value]).unwrap()));
            });
            prop_assert!(escapes_told);
            prop_assert_eq!(compact, Ok(!pretty || map.is_empty()));
            prop_assert_eq!(found, map.into_iter().collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn next_special_finds_the_first_quote_backslash_or_control_character(
            text in prop::collection::vec(prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()], 0..80),
            at in 0usize..80,
        ) {
            let at = at.min(text.len());
            let plain = text[at..]
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
                .map_or(text.len(), |found| at + found);
            prop_assert_eq!(next_special(&text, at), plain);
        }

        #[test]
        fn agrees_with_serde_json_on_any_text(text in "[{}\\[\\]\"a:,0-9.eE+\\- \\\\u\t]{0,24}") {
            let ours = object_members(text.as_bytes(), |_| {}).is_ok();
            // IgnoredAny: serde_json checks the grammar without reading numbers into floats.
            let theirs = text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            prop_assert_eq!(ours, theirs, "{:?}", text);
        }
    }
}
