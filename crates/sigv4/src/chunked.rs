//! S3 streaming uploads: bodies sent with `Content-Encoding: aws-chunked`, whose
//! `x-amz-content-sha256` names a `STREAMING-*` mode instead of the body's hash.
//!
//! The body is a series of chunks, `<hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n`, ended by
//! a zero-size chunk and, in the `-TRAILER` modes, trailing headers (such as
//! `x-amz-checksum-crc32:<base64>`) and an empty line. In the signed modes every chunk carries
//! a signature chained from the request's own (the seed): it signs
//! `AWS4-HMAC-SHA256-PAYLOAD\n<time>\n<scope>\n<previous signature>\n<sha256 of "">\n<sha256 of
//! the chunk>`, and the trailer, if any, is signed the same way under `AWS4-HMAC-SHA256-TRAILER`.
//!
//! [`crate::verify`] checks the seed signature, which covers the mode but not the body; a
//! server must then decode the body with [`decode_streaming_payload`], which checks every
//! chunk signature and the declared decoded length, before it trusts a single byte.

use crate::canonical::{header_values, signature_with_key, signatures_equal, signing_key};
use crate::{Authorization, RequestParts, SigV4Error, sha256_hex};

/// Every chunk signed, no trailer.
pub const STREAMING_SIGNED_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// Every chunk signed, then a signed trailer.
pub const STREAMING_SIGNED_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// Unsigned chunks and an unsigned trailer (botocore's uploads over HTTPS); the trailer
/// normally carries a checksum the server should check.
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The SHA-256 of nothing, the fixed line of every chunk's string to sign.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// A chunk header or trailer line longer than this is not one (a size, an extension with a
/// 64-character signature, or a checksum header).
const MAX_LINE_BYTES: usize = 4096;
const TRAILER_SIGNATURE_HEADER: &str = "x-amz-trailer-signature";

/// The streaming modes [`crate::verify`] accepts for S3, by their `x-amz-content-sha256` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamingMode {
    Signed { trailer: bool },
    UnsignedTrailer,
}

impl StreamingMode {
    pub(crate) fn from_content_sha256(value: &str) -> Option<StreamingMode> {
        match value {
            STREAMING_SIGNED_PAYLOAD => Some(StreamingMode::Signed { trailer: false }),
            STREAMING_SIGNED_PAYLOAD_TRAILER => Some(StreamingMode::Signed { trailer: true }),
            STREAMING_UNSIGNED_PAYLOAD_TRAILER => Some(StreamingMode::UnsignedTrailer),
            _ => None,
        }
    }

    fn has_trailer(self) -> bool {
        matches!(self, StreamingMode::Signed { trailer: true } | StreamingMode::UnsignedTrailer)
    }
}

/// A streaming upload's body with its framing removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPayload {
    /// The object's bytes.
    pub body: Vec<u8>,
    /// The trailing headers, names lowercase, in the order sent; the trailer signature is not
    /// among them (it has been checked).
    pub trailers: Vec<(String, String)>,
}

impl DecodedPayload {
    /// The value of a trailing header, by lowercase name.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(trailer_name, _)| trailer_name == name).map(|(_, value)| value.as_str())
    }
}

/// Decodes the `aws-chunked` body of a request whose signature [`crate::verify`] accepted.
///
/// Returns `None` when the request's `x-amz-content-sha256` is not a streaming mode (the body
/// is then the payload as it is). In the signed modes every chunk signature is checked
/// against the chain that starts at `authorization.signature`, so `secret_access_key` must be
/// the one that verified the request. `x-amz-decoded-content-length`, when present, must be
/// the decoded length; the signed modes require it, as S3 does.
pub fn decode_streaming_payload(
    request: &RequestParts<'_>,
    authorization: &Authorization,
    secret_access_key: &str,
) -> Result<Option<DecodedPayload>, SigV4Error> {
    let declared = header_values(request.headers, "x-amz-content-sha256");
    let [value] = declared.as_slice() else { return Ok(None) };
    let Some(mode) = StreamingMode::from_content_sha256(String::from_utf8_lossy(value).trim()) else {
        return Ok(None);
    };
    let decoded_length = declared_decoded_length(request)?;
    if decoded_length.is_none() && matches!(mode, StreamingMode::Signed { .. }) {
        return Err(incomplete("x-amz-decoded-content-length is required for a signed streaming upload"));
    }
    let mut signer = match mode {
        StreamingMode::Signed { .. } => Some(ChunkSigner {
            key: signing_key(
                secret_access_key,
                &authorization.date,
                &authorization.region,
                &authorization.service,
                &authorization.terminator,
            ),
            request_time: authorization.request_time.clone(),
            scope: authorization.credential_scope(),
            previous: authorization.signature.to_ascii_lowercase(),
        }),
        StreamingMode::UnsignedTrailer => None,
    };
    let decoded = decode_chunks(request.body, mode, signer.as_mut(), decoded_length)?;
    if let Some(expected) = decoded_length
        && decoded.body.len() as u64 != expected
    {
        return Err(incomplete(format!(
            "the decoded body is {} bytes, but x-amz-decoded-content-length says {expected}",
            decoded.body.len()
        )));
    }
    Ok(Some(decoded))
}

fn incomplete(detail: impl Into<String>) -> SigV4Error {
    SigV4Error::IncompleteBody { detail: detail.into() }
}

fn declared_decoded_length(request: &RequestParts<'_>) -> Result<Option<u64>, SigV4Error> {
    let values = header_values(request.headers, "x-amz-decoded-content-length");
    match values.as_slice() {
        [] => Ok(None),
        [value] => std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| incomplete("x-amz-decoded-content-length is not a whole number")),
        _ => Err(incomplete("x-amz-decoded-content-length is repeated")),
    }
}

/// The signature chain of a signed streaming upload.
struct ChunkSigner {
    key: [u8; 32],
    request_time: String,
    scope: String,
    previous: String,
}

impl ChunkSigner {
    fn check_chunk(&mut self, chunk: &[u8], provided: &str, chunk_index: usize) -> Result<(), SigV4Error> {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.request_time,
            self.scope,
            self.previous,
            sha256_hex(chunk)
        );
        self.advance(&string_to_sign, provided, chunk_index)
    }

    /// The trailer's headers are signed as `name:value\n` each, in the order sent.
    fn check_trailer(&mut self, trailers: &[(String, String)], provided: &str, index: usize) -> Result<(), SigV4Error> {
        let mut canonical = String::new();
        for (name, value) in trailers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.request_time,
            self.scope,
            self.previous,
            sha256_hex(canonical.as_bytes())
        );
        self.advance(&string_to_sign, provided, index)
    }

    fn advance(&mut self, string_to_sign: &str, provided: &str, chunk_index: usize) -> Result<(), SigV4Error> {
        let expected = signature_with_key(&self.key, string_to_sign);
        if !signatures_equal(&expected, provided) {
            return Err(SigV4Error::ChunkSignatureDoesNotMatch { chunk_index });
        }
        self.previous = expected;
        Ok(())
    }
}

/// A cursor over the raw body.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// The next line without its `\r\n`.
    fn line(&mut self) -> Result<&'a [u8], SigV4Error> {
        let rest = &self.bytes[self.position..];
        let window = &rest[..rest.len().min(MAX_LINE_BYTES + 2)];
        let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
            return Err(if rest.len() > MAX_LINE_BYTES {
                incomplete("a chunk header or trailer line is too long")
            } else {
                incomplete("the aws-chunked body ends in the middle of a line")
            });
        };
        self.position += end + 2;
        Ok(&rest[..end])
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], SigV4Error> {
        let rest = &self.bytes[self.position..];
        if rest.len() < count {
            return Err(incomplete(format!("a chunk announces {count} bytes but only {} follow", rest.len())));
        }
        self.position += count;
        Ok(&rest[..count])
    }

    fn at_end(&self) -> bool {
        self.position == self.bytes.len()
    }
}

/// A chunk header: the size in hex, then optional `;name=value` extensions.
fn parse_chunk_header(line: &[u8]) -> Result<(usize, Option<&str>), SigV4Error> {
    let text = std::str::from_utf8(line).map_err(|_| incomplete("a chunk header is not text"))?;
    let mut parts = text.split(';');
    let size_text = parts.next().unwrap_or_default().trim();
    if size_text.is_empty() || size_text.len() > 15 || !size_text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(incomplete(format!("{size_text:?} is not a chunk size")));
    }
    let size = usize::from_str_radix(size_text, 16).map_err(|_| incomplete("a chunk size is out of range"))?;
    let signature = parts.find_map(|extension| extension.trim().strip_prefix("chunk-signature="));
    Ok((size, signature))
}

fn decode_chunks(
    raw: &[u8],
    mode: StreamingMode,
    mut signer: Option<&mut ChunkSigner>,
    decoded_length: Option<u64>,
) -> Result<DecodedPayload, SigV4Error> {
    let mut reader = Reader { bytes: raw, position: 0 };
    // The declared length is only a hint for the allocation; it never exceeds what was sent.
    let capacity = decoded_length.map_or(0, |length| usize::try_from(length).unwrap_or(0).min(raw.len()));
    let mut body = Vec::with_capacity(capacity);
    let mut chunk_index = 0;
    loop {
        let (size, signature) = parse_chunk_header(reader.line()?)?;
        let chunk = reader.take(size)?;
        if let Some(signer) = signer.as_deref_mut() {
            let Some(signature) = signature else {
                return Err(incomplete(format!("chunk {chunk_index} has no chunk-signature")));
            };
            signer.check_chunk(chunk, signature, chunk_index)?;
        }
        body.extend_from_slice(chunk);
        chunk_index += 1;
        if size == 0 {
            break;
        }
        if !reader.line()?.is_empty() {
            return Err(incomplete(format!("chunk {} is longer than its announced {size} bytes", chunk_index - 1)));
        }
    }
    let mut trailers = Vec::new();
    let mut trailer_signature = None;
    loop {
        let line = reader.line()?;
        if line.is_empty() {
            break;
        }
        let text = std::str::from_utf8(line).map_err(|_| incomplete("a trailing header is not text"))?;
        let Some((name, value)) = text.split_once(':') else {
            return Err(incomplete(format!("{text:?} is not a trailing header")));
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == TRAILER_SIGNATURE_HEADER {
            trailer_signature = Some(value);
        } else {
            trailers.push((name, value));
        }
    }
    if !reader.at_end() {
        return Err(incomplete("data follows the end of the aws-chunked body"));
    }
    if !mode.has_trailer() && (!trailers.is_empty() || trailer_signature.is_some()) {
        return Err(incomplete("trailing headers sent without a -TRAILER content mode"));
    }
    if let (StreamingMode::Signed { trailer: true }, Some(signer)) = (mode, signer) {
        let Some(signature) = trailer_signature else {
            return Err(incomplete("the trailer has no x-amz-trailer-signature"));
        };
        signer.check_trailer(&trailers, &signature, chunk_index)?;
    }
    Ok(DecodedPayload { body, trailers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(raw: &[u8]) -> Result<DecodedPayload, SigV4Error> {
        decode_chunks(raw, StreamingMode::UnsignedTrailer, None, None)
    }

    #[test]
    fn decodes_botocore_unsigned_trailer_bodies() {
        let decoded = unsigned(b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n").unwrap();
        assert_eq!(decoded.body, b"hello world");
        assert_eq!(decoded.trailer("x-amz-checksum-crc32"), Some("DUoRhQ=="));
        let empty = unsigned(b"0\r\n\r\n").unwrap();
        assert!(empty.body.is_empty() && empty.trailers.is_empty());
    }

    #[test]
    fn refuses_malformed_framing() {
        for raw in [
            &b""[..],
            b"5\r\nhell",
            b"5\r\nhello world\r\n0\r\n\r\n",
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\n\r\nextra",
            b"0\r\nnot a header\r\n\r\n",
            b"ffffffffffffffffffff\r\n",
        ] {
            let error = unsigned(raw).unwrap_err();
            assert!(matches!(error, SigV4Error::IncompleteBody { .. }), "{raw:?}: {error:?}");
            assert_eq!(error.s3_code(), "IncompleteBody");
        }
        let long_line = [b'1'; MAX_LINE_BYTES + 10];
        assert!(matches!(unsigned(&long_line).unwrap_err(), SigV4Error::IncompleteBody { .. }));
    }

    #[test]
    fn signed_chunks_need_their_signatures() {
        let mut signer = ChunkSigner {
            key: [7; 32],
            request_time: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            previous: "0".repeat(64),
        };
        let error =
            decode_chunks(b"3\r\nabc\r\n0\r\n\r\n", StreamingMode::Signed { trailer: false }, Some(&mut signer), None)
                .unwrap_err();
        assert!(matches!(error, SigV4Error::IncompleteBody { .. }), "{error:?}");
    }
}
