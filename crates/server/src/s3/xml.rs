//! S3's REST-XML on the wire: the response documents (bucket lists, object listings, the
//! bucket location, error bodies), the timestamp and key encodings they use, and a small
//! reader for the request documents S3 takes (`CreateBucketConfiguration`).
//!
//! Pure text in, text out: no IO, no store, no HTTP.

use trailkeeper_core::time::civil_from_days;

use super::error::S3Error;
use super::store::{BucketInfo, Listing, ObjectInfo};
use crate::xml::XmlWriter;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
/// The longest request document read (a `CreateBucketConfiguration` is a few hundred bytes).
pub const MAX_REQUEST_XML_BYTES: usize = 64 * 1024;

/// A document whose root element carries S3's namespace.
fn document(root: &str) -> XmlWriter {
    let mut xml = XmlWriter::new(escape_into);
    xml.raw(XML_DECLARATION).raw(&format!("<{root} xmlns=\"{S3_NAMESPACE}\">"));
    xml
}

/// A document whose root element has no namespace (error bodies).
fn plain_document(root: &str) -> XmlWriter {
    let mut xml = XmlWriter::new(escape_into);
    xml.raw(XML_DECLARATION).open(root);
    xml
}

fn finish(mut xml: XmlWriter, root: &str) -> String {
    xml.close(root);
    xml.finish()
}

/// Escapes text for element content. Characters XML 1.0 cannot carry at all (most control
/// characters) are written as character references; clients that list keys holding them
/// should ask for `encoding-type=url`, as S3 advises.
fn escape_into(text: &str, out: &mut String) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(character),
            control if (control as u32) < 0x20 || control == '\u{7f}' => {
                out.push_str(&format!("&#x{:X};", control as u32));
            }
            other => out.push(other),
        }
    }
}

/// S3's `encoding-type=url`: every byte outside `A-Za-z0-9-_.~` and `/` percent-encoded,
/// which botocore undoes with `unquote_plus` (so a space is `%20` and a plus `%2B`).
pub fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Timestamps in listings: ISO 8601 with milliseconds, `2026-11-21T13:48:06.000Z`.
pub fn iso8601_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// The error body S3 sends (nothing for HEAD requests, which carry no body).
pub fn error_body(error: &S3Error, request_id: &str) -> String {
    let mut xml = plain_document("Error");
    xml.element("Code", error.code()).element("Message", &error.to_string());
    for (name, value) in error.details() {
        xml.element(name, &value);
    }
    xml.element("RequestId", request_id).element("HostId", &host_id(request_id));
    finish(xml, "Error")
}

/// S3's `x-amz-id-2`, an opaque token beside the request ID; derived from it here.
pub fn host_id(request_id: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(request_id.as_bytes()))
}

/// The owner of an account's buckets and objects, as S3 names it: a 64-hex canonical user ID.
#[derive(Debug, Clone)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

impl Owner {
    pub fn of_account(account_id: &str) -> Owner {
        use sha2::Digest as _;
        Owner { id: hex::encode(sha2::Sha256::digest(account_id.as_bytes())), display_name: account_id.to_owned() }
    }

    fn write(&self, xml: &mut XmlWriter) {
        xml.open("Owner").element("ID", &self.id).element("DisplayName", &self.display_name).close("Owner");
    }
}

/// `ListAllMyBucketsResult`.
pub fn list_buckets(
    owner: &Owner,
    buckets: &[BucketInfo],
    prefix: Option<&str>,
    continuation_token: Option<&str>,
) -> String {
    let root = "ListAllMyBucketsResult";
    let mut xml = document(root);
    owner.write(&mut xml);
    xml.open("Buckets");
    for bucket in buckets {
        xml.open("Bucket")
            .element("Name", &bucket.name)
            .element("CreationDate", &iso8601_ms(bucket.created_ms))
            .element("BucketRegion", &bucket.region)
            .close("Bucket");
    }
    xml.close("Buckets");
    if let Some(token) = continuation_token {
        xml.element("ContinuationToken", token);
    }
    if let Some(prefix) = prefix {
        xml.element("Prefix", prefix);
    }
    finish(xml, root)
}

/// `LocationConstraint`: empty for us-east-1, as S3 answers.
pub fn location(region: &str) -> String {
    let mut out = String::from(XML_DECLARATION);
    if region == "us-east-1" {
        out.push_str(&format!("<LocationConstraint xmlns=\"{S3_NAMESPACE}\"/>"));
    } else {
        out.push_str(&format!("<LocationConstraint xmlns=\"{S3_NAMESPACE}\">"));
        escape_into(region, &mut out);
        out.push_str("</LocationConstraint>");
    }
    out
}

/// What a listing response echoes of its request.
#[derive(Debug, Clone)]
pub struct ListEcho<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
    pub url_encoded: bool,
}

impl ListEcho<'_> {
    fn text(&self, value: &str) -> String {
        if self.url_encoded { url_encode(value) } else { value.to_owned() }
    }
}

fn write_entries(xml: &mut XmlWriter, echo: &ListEcho<'_>, listing: &Listing, owner: Option<&Owner>) {
    for (key, info) in &listing.objects {
        write_object(xml, &echo.text(key), info, owner);
    }
    for common_prefix in &listing.common_prefixes {
        xml.open("CommonPrefixes").element("Prefix", &echo.text(common_prefix)).close("CommonPrefixes");
    }
}

fn write_object(xml: &mut XmlWriter, key: &str, info: &ObjectInfo, owner: Option<&Owner>) {
    xml.open("Contents")
        .element("Key", key)
        .element("LastModified", &iso8601_ms(info.last_modified_ms))
        .element("ETag", &info.etag())
        .element("Size", &info.size.to_string());
    if let Some(owner) = owner {
        owner.write(xml);
    }
    xml.element("StorageClass", "STANDARD").close("Contents");
}

/// ListObjects (version 1): `NextMarker` only when a delimiter was given, as S3 does
/// (clients otherwise continue from the last key).
pub fn list_objects_v1(echo: &ListEcho<'_>, marker: &str, listing: &Listing, owner: &Owner) -> String {
    let root = "ListBucketResult";
    let mut xml = document(root);
    xml.element("Name", echo.bucket).element("Prefix", &echo.text(echo.prefix)).element("Marker", &echo.text(marker));
    if listing.is_truncated
        && echo.delimiter.is_some()
        && let Some(next) = &listing.next_marker
    {
        xml.element("NextMarker", &echo.text(next));
    }
    xml.element("MaxKeys", &echo.max_keys.to_string());
    if let Some(delimiter) = echo.delimiter {
        xml.element("Delimiter", &echo.text(delimiter));
    }
    if echo.url_encoded {
        xml.element("EncodingType", "url");
    }
    xml.element("IsTruncated", if listing.is_truncated { "true" } else { "false" });
    write_entries(&mut xml, echo, listing, Some(owner));
    finish(xml, root)
}

/// What only ListObjectsV2 echoes.
#[derive(Debug, Clone)]
pub struct V2Echo<'a> {
    pub continuation_token: Option<&'a str>,
    pub next_continuation_token: Option<String>,
    pub start_after: Option<&'a str>,
    /// `fetch-owner=true`: version 2 leaves the owner out unless asked.
    pub owner: Option<Owner>,
}

pub fn list_objects_v2(echo: &ListEcho<'_>, v2: &V2Echo<'_>, listing: &Listing) -> String {
    let root = "ListBucketResult";
    let mut xml = document(root);
    xml.element("Name", echo.bucket).element("Prefix", &echo.text(echo.prefix));
    if let Some(token) = v2.continuation_token {
        xml.element("ContinuationToken", token);
    }
    if let Some(token) = &v2.next_continuation_token {
        xml.element("NextContinuationToken", token);
    }
    let key_count = listing.objects.len() + listing.common_prefixes.len();
    xml.element("KeyCount", &key_count.to_string()).element("MaxKeys", &echo.max_keys.to_string());
    if let Some(delimiter) = echo.delimiter {
        xml.element("Delimiter", &echo.text(delimiter));
    }
    if echo.url_encoded {
        xml.element("EncodingType", "url");
    }
    xml.element("IsTruncated", if listing.is_truncated { "true" } else { "false" });
    if let Some(start_after) = v2.start_after {
        xml.element("StartAfter", &echo.text(start_after));
    }
    write_entries(&mut xml, echo, listing, v2.owner.as_ref());
    finish(xml, root)
}

/// The text of every element of a small request document, by its path from the root
/// (`CreateBucketConfiguration/LocationConstraint`), namespace prefixes and attributes
/// dropped. Anything that is not well-formed is `MalformedXML`; DTDs and CDATA sections,
/// which no S3 request document needs, are refused.
pub fn read_elements(document: &[u8]) -> Result<Vec<(String, String)>, S3Error> {
    let text = std::str::from_utf8(document).map_err(|_| S3Error::MalformedXml)?;
    let mut rest = text.trim_start_matches('\u{feff}');
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = Vec::new();
    let mut current_text = String::new();
    let mut seen_root = false;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            if !stack.is_empty() || !rest.trim().is_empty() {
                return Err(S3Error::MalformedXml);
            }
            break;
        };
        let (before, after) = rest.split_at(open);
        if stack.is_empty() {
            if !before.trim().is_empty() {
                return Err(S3Error::MalformedXml);
            }
        } else {
            current_text.push_str(&unescape(before)?);
        }
        if let Some(declaration) = after.strip_prefix("<?") {
            let end = declaration.find("?>").ok_or(S3Error::MalformedXml)?;
            rest = &declaration[end + 2..];
            continue;
        }
        if let Some(comment) = after.strip_prefix("<!--") {
            let end = comment.find("-->").ok_or(S3Error::MalformedXml)?;
            rest = &comment[end + 3..];
            continue;
        }
        if after.starts_with("<!") {
            return Err(S3Error::MalformedXml);
        }
        let end = tag_end(after).ok_or(S3Error::MalformedXml)?;
        let tag = &after[1..end];
        rest = &after[end + 1..];
        if let Some(closing) = tag.strip_prefix('/') {
            let name = local_name(closing.trim());
            if stack.pop() != Some(name) {
                return Err(S3Error::MalformedXml);
            }
            let mut path = stack.join("/");
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(name);
            elements.push((path, std::mem::take(&mut current_text).trim().to_owned()));
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = local_name(tag.split(|c: char| c.is_whitespace()).next().unwrap_or_default());
        if name.is_empty() || (stack.is_empty() && seen_root) {
            return Err(S3Error::MalformedXml);
        }
        seen_root = true;
        current_text.clear();
        if self_closing {
            let mut path = stack.join("/");
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(name);
            elements.push((path, String::new()));
        } else {
            stack.push(name);
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err(S3Error::MalformedXml);
    }
    Ok(elements)
}

/// Where a tag ends, skipping `>` inside quoted attribute values.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (index, character) in tag.char_indices().skip(1) {
        match (quote, character) {
            (None, '"' | '\'') => quote = Some(character),
            (Some(open), close) if open == close => quote = None,
            (None, '>') => return Some(index),
            _ => {}
        }
    }
    None
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn unescape(text: &str) -> Result<String, S3Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let entity_end = rest[at..].find(';').ok_or(S3Error::MalformedXml)? + at;
        let entity = &rest[at + 1..entity_end];
        let character = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            numeric => {
                let code = if let Some(hex) = numeric.strip_prefix("#x").or_else(|| numeric.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    numeric.strip_prefix('#').and_then(|decimal| decimal.parse().ok())
                };
                code.and_then(char::from_u32).ok_or(S3Error::MalformedXml)?
            }
        };
        out.push(character);
        rest = &rest[entity_end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_control_characters() {
        let mut out = String::new();
        escape_into("a<b>&\"c'\u{1}\t", &mut out);
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&apos;&#x1;\t");
    }

    #[test]
    fn url_encoding_is_undone_by_unquote_plus() {
        assert_eq!(url_encode("logs/a b+c%/é"), "logs/a%20b%2Bc%25/%C3%A9");
        assert_eq!(url_encode("AWSLogs/123/CloudTrail/x.json.gz"), "AWSLogs/123/CloudTrail/x.json.gz");
    }

    #[test]
    fn formats_timestamps_with_milliseconds() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_795_787_286_123), "2026-11-27T13:48:06.123Z");
    }

    #[test]
    fn error_bodies_carry_code_message_and_details() {
        let body = error_body(&S3Error::NoSuchBucket { bucket: "a&b".into() }, "req-1");
        assert!(body.starts_with(XML_DECLARATION), "{body}");
        assert!(body.contains("<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>a&amp;b</BucketName><RequestId>req-1</RequestId><HostId>"), "{body}");
        assert!(body.ends_with("</HostId></Error>"), "{body}");
        let body = error_body(&S3Error::InvalidRange { requested: "bytes=9-".into(), size: 3 }, "r");
        assert!(body.contains("<RangeRequested>bytes=9-</RangeRequested><ActualObjectSize>3</ActualObjectSize>"));
    }

    #[test]
    fn location_is_empty_for_us_east_1() {
        assert!(location("us-east-1").ends_with(&format!("<LocationConstraint xmlns=\"{S3_NAMESPACE}\"/>")));
        assert!(location("eu-west-1").ends_with(">eu-west-1</LocationConstraint>"));
    }

    #[test]
    fn listings_echo_their_request_and_encode_keys_when_asked() {
        let info = ObjectInfo { size: 3, md5: [0xab; 16], last_modified_ms: 0, lock_until_ms: None };
        let listing = Listing {
            objects: vec![("a b".into(), info)],
            common_prefixes: vec!["dir/".into()],
            is_truncated: true,
            next_marker: Some("dir/".into()),
        };
        let echo = ListEcho { bucket: "b", prefix: "", delimiter: Some("/"), max_keys: 2, url_encoded: true };
        let owner = Owner::of_account("123456789012");
        let v1 = list_objects_v1(&echo, "", &listing, &owner);
        assert!(v1.contains("<Marker></Marker><NextMarker>dir/</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"), "{v1}");
        assert!(v1.contains("<Key>a%20b</Key>"), "{v1}");
        assert!(v1.contains(&format!("<ETag>&quot;{}&quot;</ETag>", "ab".repeat(16))), "{v1}");
        assert!(v1.contains("<DisplayName>123456789012</DisplayName>"), "{v1}");
        assert!(v1.contains("<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"), "{v1}");

        let v2 = list_objects_v2(
            &ListEcho { url_encoded: false, ..echo },
            &V2Echo {
                continuation_token: None,
                next_continuation_token: Some("tok".into()),
                start_after: None,
                owner: None,
            },
            &listing,
        );
        assert!(v2.contains("<NextContinuationToken>tok</NextContinuationToken><KeyCount>2</KeyCount>"), "{v2}");
        assert!(v2.contains("<Key>a b</Key>") && !v2.contains("<Owner>"), "{v2}");
    }

    #[test]
    fn reads_request_documents() {
        let document = br#"<?xml version="1.0" encoding="UTF-8"?>
            <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <!-- a comment --><LocationConstraint>eu-west-1</LocationConstraint>
            </CreateBucketConfiguration>"#;
        let elements = read_elements(document).unwrap();
        assert_eq!(
            elements,
            vec![
                ("CreateBucketConfiguration/LocationConstraint".to_owned(), "eu-west-1".to_owned()),
                ("CreateBucketConfiguration".to_owned(), String::new()),
            ]
        );
        let empty = read_elements(b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>");
        assert_eq!(empty.unwrap()[0], ("CreateBucketConfiguration/LocationConstraint".to_owned(), String::new()));
        assert_eq!(read_elements(b"<a>x &amp; &#x41;&#66;</a>").unwrap()[0].1, "x & AB");
        for bad in [
            &b"<a><b></a></b>"[..],
            b"<a>",
            b"text",
            b"<a></a><b></b>",
            b"<a>&bogus;</a>",
            b"<!DOCTYPE a><a/>",
            b"",
            b"\xff",
        ] {
            assert!(matches!(read_elements(bad), Err(S3Error::MalformedXml)), "{bad:?}");
        }
    }
}
