//! The canonical request and the string to sign, shared by signing and verifying so that the
//! two can never disagree. Every rule here mirrors botocore's `SigV4Auth`; the comments say
//! where botocore does something a reader might not expect.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{ALGORITHM, is_s3_style_service, sha256_hex};

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte but the unreserved ones (and `/` when `keep_slash`), with
/// uppercase hex, like Python's `quote(value, safe='-_.~')` or `quote(path, safe='/~')`.
pub(crate) fn aws_percent_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes. A `%` not followed by two hex digits stays a literal `%`, and `+`
/// stays a plus: SigV4 query strings are RFC 3986, not HTML forms.
pub(crate) fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) =
                (bytes.get(index + 1).copied().and_then(hex_value), bytes.get(index + 2).copied().and_then(hex_value))
        {
            decoded.push(high << 4 | low);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    decoded
}

/// botocore's `remove_dot_segments`: drops empty and `.` segments (so `//` collapses), applies
/// `..`, keeps a leading `/`, and keeps a trailing `/` only when some segment is left. It runs
/// on the still-encoded path, so `%2E%2E` is not a dot segment.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            _ => kept.push(segment),
        }
    }
    let leading = if path.starts_with('/') { "/" } else { "" };
    let trailing = if path.ends_with('/') && !kept.is_empty() { "/" } else { "" };
    format!("{leading}{}{trailing}", kept.join("/"))
}

/// The canonical URI for `raw_path` as it travels on the wire.
///
/// For S3 botocore signs the path as sent. For every other service it normalises the path
/// and percent-encodes the result again with `/` and `~` safe, which double-encodes: the wire
/// path `/a%20b` is signed as `/a%2520b`. An empty path is `/` either way, since that is what
/// an HTTP request line carries.
pub(crate) fn canonical_uri(raw_path: &str, service: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    if is_s3_style_service(service) {
        return raw_path.to_owned();
    }
    let normalized = remove_dot_segments(raw_path);
    let mut encoded = String::with_capacity(normalized.len());
    aws_percent_encode(normalized.as_bytes(), true, &mut encoded);
    encoded
}

/// The query parameters of `raw_query`, percent-decoded, in the order they appear. A
/// parameter without `=` has an empty value; empty segments (`a=1&&b=2`) are skipped.
pub(crate) fn decoded_query_pairs(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// The canonical query string: each key and value decoded then AWS-encoded, sorted by
/// encoded key then encoded value, `key=` for an empty value. `exclude_key` (a presigned URL's
/// `X-Amz-Signature`) is left out, as it cannot sign itself.
///
/// botocore copies the query from the URL it built without decoding it, but it built that URL
/// with this same encoding, so decoding and re-encoding gives its bytes back while also
/// accepting clients that encode a little differently (lowercase hex, a bare `*`).
pub(crate) fn canonical_query(raw_query: &str, exclude_key: Option<&str>) -> String {
    let mut encoded_pairs: Vec<(String, String)> = decoded_query_pairs(raw_query)
        .into_iter()
        .filter(|(key, _)| exclude_key.is_none_or(|excluded| key.as_slice() != excluded.as_bytes()))
        .map(|(key, value)| {
            let mut encoded_key = String::new();
            aws_percent_encode(&key, false, &mut encoded_key);
            let mut encoded_value = String::new();
            aws_percent_encode(&value, false, &mut encoded_value);
            (encoded_key, encoded_value)
        })
        .collect();
    encoded_pairs.sort();
    let mut canonical = String::new();
    for (index, (key, value)) in encoded_pairs.iter().enumerate() {
        if index > 0 {
            canonical.push('&');
        }
        canonical.push_str(key);
        canonical.push('=');
        canonical.push_str(value);
    }
    canonical
}

/// Python's `str.isspace()`, which botocore's `' '.join(value.split())` splits on: Unicode
/// whitespace plus the ASCII separators U+001C..U+001F.
fn is_python_whitespace(character: char) -> bool {
    character.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&character)
}

/// botocore's Trimall: strips the value and collapses every run of whitespace (spaces, tabs,
/// and anything else Python calls whitespace) into one space. A value that is not UTF-8 is
/// treated byte by byte with ASCII whitespace only.
pub(crate) fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    if let Ok(text) = std::str::from_utf8(value) {
        for (index, word) in text.split(is_python_whitespace).filter(|word| !word.is_empty()).enumerate() {
            if index > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(word.as_bytes());
        }
        return;
    }
    let is_space = |byte: &u8| byte.is_ascii_whitespace() || matches!(byte, 0x0b | 0x1c..=0x1f);
    for (index, word) in value.split(is_space).filter(|word| !word.is_empty()).enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

/// Every value of the header `name` (any case), in the order received.
pub(crate) fn header_values<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|(header_name, _)| header_name.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
        .collect()
}

/// Everything the canonical request is made of, already decided by the caller.
pub(crate) struct CanonicalInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// A presigned URL's signature parameter, left out of the canonical query.
    pub exclude_query_key: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The names in the `SignedHeaders` list, in the order they are listed.
    pub signed_headers: &'a [String],
    pub service: &'a str,
    /// The last line: the body's hash, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
}

/// The canonical request, as bytes because a header value need not be UTF-8.
pub(crate) fn canonical_request(input: &CanonicalInput<'_>) -> Vec<u8> {
    let mut request = Vec::with_capacity(512);
    request.extend_from_slice(input.method.to_ascii_uppercase().as_bytes());
    request.push(b'\n');
    request.extend_from_slice(canonical_uri(input.raw_path, input.service).as_bytes());
    request.push(b'\n');
    request.extend_from_slice(canonical_query(input.raw_query, input.exclude_query_key).as_bytes());
    request.push(b'\n');
    for name in input.signed_headers {
        let lowercase_name = name.trim().to_ascii_lowercase();
        request.extend_from_slice(lowercase_name.as_bytes());
        request.push(b':');
        for (index, value) in header_values(input.headers, &lowercase_name).into_iter().enumerate() {
            if index > 0 {
                request.push(b',');
            }
            trim_all(value, &mut request);
        }
        request.push(b'\n');
    }
    request.push(b'\n');
    request.extend_from_slice(input.signed_headers.join(";").as_bytes());
    request.push(b'\n');
    request.extend_from_slice(input.payload_hash.as_bytes());
    request
}

/// `AWS4-HMAC-SHA256\n<request time>\n<credential scope>\n<hex sha256 of canonical request>`.
pub(crate) fn string_to_sign(request_time: &str, credential_scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{request_time}\n{credential_scope}\n{}", sha256_hex(canonical_request))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this constructor cannot fail; the fallback keeps the
    // function total without an `expect`.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The hex signature of `string_to_sign` under the key derived from the secret and the scope.
/// The derived keys live only on this stack frame.
pub(crate) fn signature(
    secret_access_key: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    terminator: &str,
    string_to_sign: &str,
) -> String {
    let signing_key = signing_key(secret_access_key, scope_date, region, service, terminator);
    signature_with_key(&signing_key, string_to_sign)
}

/// The key SigV4 derives from the secret and the credential scope. Callers keep it only as
/// long as they sign with it (the chunks of one streaming upload).
pub(crate) fn signing_key(
    secret_access_key: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    terminator: &str,
) -> [u8; 32] {
    let mut date_key_material = Vec::with_capacity(4 + secret_access_key.len());
    date_key_material.extend_from_slice(b"AWS4");
    date_key_material.extend_from_slice(secret_access_key.as_bytes());
    let date_key = hmac_sha256(&date_key_material, scope_date.as_bytes());
    date_key_material.fill(0);
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, terminator.as_bytes())
}

/// The hex signature of `string_to_sign` under an already derived signing key.
pub(crate) fn signature_with_key(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// Compares two signatures without stopping at the first difference, so the time taken does
/// not tell an attacker how many leading characters were right. Hex case is ignored. The
/// length is not secret (every SigV4 signature is 64 characters), so a length mismatch
/// returns early.
pub(crate) fn signatures_equal(computed: &str, provided: &str) -> bool {
    if computed.len() != provided.len() {
        return false;
    }
    let difference = computed
        .bytes()
        .zip(provided.bytes())
        .fold(0u8, |accumulated, (left, right)| accumulated | (left.to_ascii_lowercase() ^ right.to_ascii_lowercase()));
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_removed_like_botocore() {
        assert_eq!(remove_dot_segments("/"), "/");
        assert_eq!(remove_dot_segments(""), "/");
        assert_eq!(remove_dot_segments("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(remove_dot_segments("/../.."), "/");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/a/%2E%2E/b"), "/a/%2E%2E/b");
        assert_eq!(remove_dot_segments("a/b"), "a/b");
    }

    #[test]
    fn non_s3_paths_are_double_encoded_and_s3_paths_are_not() {
        assert_eq!(canonical_uri("/a%20b/c~d", "cloudtrail"), "/a%2520b/c~d");
        assert_eq!(canonical_uri("/a%20b//./c", "s3"), "/a%20b//./c");
        assert_eq!(canonical_uri("/caf\u{e9}", "cloudtrail"), "/caf%C3%A9");
        assert_eq!(canonical_uri("/a:b@c", "execute-api"), "/a%3Ab%40c");
        assert_eq!(canonical_uri("", "s3"), "/");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=1&a=0&c", None), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query("k=a+b%20c%2a*&%7e=%7E", None), "k=a%2Bb%20c%2A%2A&~=~");
        assert_eq!(canonical_query("x=1&&y=2&", None), "x=1&y=2");
        assert_eq!(canonical_query("p=%zz%4", None), "p=%25zz%254");
        assert_eq!(canonical_query("Z=1&a=1&X-Amz-Signature=abc", Some("X-Amz-Signature")), "Z=1&a=1");
        assert_eq!(canonical_query("", None), "");
    }

    #[test]
    fn trim_all_collapses_every_kind_of_whitespace() {
        let trimmed = |value: &[u8]| {
            let mut out = Vec::new();
            trim_all(value, &mut out);
            out
        };
        assert_eq!(trimmed(b"  a   b \t c  "), b"a b c");
        assert_eq!(trimmed(b"\x1ca\x1fb\x0bc"), b"a b c");
        assert_eq!(trimmed("a\u{a0}\u{3000}b".as_bytes()), b"a b");
        assert_eq!(trimmed(b"\xff  \xfe"), b"\xff \xfe");
        assert_eq!(trimmed(b"   "), b"");
    }

    #[test]
    fn signatures_compare_in_full_and_ignore_hex_case() {
        assert!(signatures_equal("ab01", "AB01"));
        assert!(!signatures_equal("ab01", "ab02"));
        assert!(!signatures_equal("ab01", "ab0"));
    }
}
