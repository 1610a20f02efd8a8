//! The object operations: GetObject and HeadObject (ranges, conditional requests, metadata
//! headers), PutObject (Content-MD5 and checksum checks, user metadata) and DeleteObject.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::error::S3Error;
use super::store::{ObjectHead, ObjectMetadata, PutOutcome};
use super::{Call, MAX_USER_METADATA_BYTES, blocking, xml};

/// What S3 reports for an object stored without a Content-Type.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";
const USER_METADATA_PREFIX: &str = "x-amz-meta-";

/// GetObject, or HeadObject when `head_only` (same headers, no body, no MD5 check).
pub(super) async fn get_object(call: &Call<'_>, head_only: bool) -> Result<Response, S3Error> {
    let bucket = call.bucket_name().to_owned();
    let key = call.key().to_owned();
    let (head, body) = blocking(call.state, move |store| {
        if head_only {
            store.head_object(&bucket, &key).map(|head| (head, None))
        } else {
            store.get_object(&bucket, &key).map(|object| (object.head, Some(object.body)))
        }
    })
    .await?;
    if check_preconditions(call.headers, &head)? == Precondition::NotModified {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        insert_validators(response.headers_mut(), &head);
        return Ok(response);
    }
    let range = header_text(call.headers, header::RANGE.as_str());
    let slice = resolve_range(range, head.info.size)?;
    let (status, length) = match slice {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, last - first + 1),
        None => (StatusCode::OK, head.info.size),
    };
    let mut response = match body {
        Some(body) => {
            let bytes = match slice {
                // `resolve_range` keeps both ends inside the object, so these fit in memory.
                Some((first, last)) => body.get(first as usize..=last as usize).map(<[u8]>::to_vec).unwrap_or_default(),
                None => body,
            };
            (status, Body::from(bytes)).into_response()
        }
        None => {
            let mut response = status.into_response();
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            response
        }
    };
    let headers = response.headers_mut();
    insert_validators(headers, &head);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_type = head.metadata.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE)),
    );
    if let Some((first, last)) = slice {
        let content_range = format!("bytes {first}-{last}/{}", head.info.size);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    for (name, value) in &head.metadata.user_metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("{USER_METADATA_PREFIX}{name}").as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.insert(name, value);
        }
    }
    if let Some(until) = head.info.lock_until_ms {
        headers.insert("x-amz-object-lock-mode", HeaderValue::from_static("COMPLIANCE"));
        if let Ok(value) = HeaderValue::from_str(&xml::iso8601_ms(until)) {
            headers.insert("x-amz-object-lock-retain-until-date", value);
        }
    }
    // A presigned link may ask for other response headers (`response-content-type=...`).
    for (parameter, name) in [
        ("response-content-type", header::CONTENT_TYPE),
        ("response-content-disposition", header::CONTENT_DISPOSITION),
        ("response-content-encoding", header::CONTENT_ENCODING),
        ("response-content-language", header::CONTENT_LANGUAGE),
        ("response-cache-control", header::CACHE_CONTROL),
        ("response-expires", header::EXPIRES),
    ] {
        if let Some(value) = call.query.get(parameter).and_then(|value| HeaderValue::from_str(value).ok()) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

fn insert_validators(headers: &mut HeaderMap, head: &ObjectHead) {
    if let Ok(etag) = HeaderValue::from_str(&head.info.etag()) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(system_time(head.info.last_modified_ms))) {
        headers.insert(header::LAST_MODIFIED, date);
    }
}

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    NotModified,
}

/// RFC 7232's order: If-Match, else If-Unmodified-Since (412 when they fail); then
/// If-None-Match, else If-Modified-Since (304 when they hold). Dates have whole seconds.
fn check_preconditions(headers: &HeaderMap, head: &ObjectHead) -> Result<Precondition, S3Error> {
    let etag = head.info.etag();
    let modified_seconds = head.info.last_modified_ms.div_euclid(1000);
    let date_seconds = |name: &str| {
        header_text(headers, name)
            .and_then(|text| httpdate::parse_http_date(text).ok())
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map(|elapsed| elapsed.as_secs() as i64)
    };
    if let Some(if_match) = header_text(headers, "if-match") {
        if !etag_matches(if_match, &etag) {
            return Err(S3Error::PreconditionFailed { condition: "If-Match" });
        }
    } else if let Some(since) = date_seconds("if-unmodified-since")
        && modified_seconds > since
    {
        return Err(S3Error::PreconditionFailed { condition: "If-Unmodified-Since" });
    }
    if let Some(if_none_match) = header_text(headers, "if-none-match") {
        if etag_matches(if_none_match, &etag) {
            return Ok(Precondition::NotModified);
        }
    } else if let Some(since) = date_seconds("if-modified-since")
        && modified_seconds <= since
    {
        return Ok(Precondition::NotModified);
    }
    Ok(Precondition::Proceed)
}

/// Whether a list of entity tags (`"a", "b"`, `*`, quoted or not, weak or not) names `etag`.
fn etag_matches(list: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    list.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"') == bare
    })
}

/// The inclusive byte range a `Range` header asks for within an object of `size` bytes.
/// `None` means the whole object: no header, a unit other than bytes, several ranges (S3
/// serves the whole object then) or a malformed range (ignored, as HTTP says). A range that
/// starts past the end, or an empty suffix, is `InvalidRange` (416).
pub(super) fn resolve_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header.and_then(|text| text.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    let unsatisfiable = || S3Error::InvalidRange { requested: format!("bytes={spec}"), size };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => Ok(None),
        (true, false) => {
            let Some(suffix) = number(last) else { return Ok(None) };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            Ok(Some((size - suffix.min(size), size - 1)))
        }
        (false, true) => {
            let Some(start) = number(first) else { return Ok(None) };
            if start >= size {
                return Err(unsatisfiable());
            }
            Ok(Some((start, size - 1)))
        }
        (false, false) => {
            let (Some(start), Some(end)) = (number(first), number(last)) else { return Ok(None) };
            if start > end {
                return Ok(None);
            }
            if start >= size {
                return Err(unsatisfiable());
            }
            Ok(Some((start, end.min(size - 1))))
        }
    }
}

/// PutObject: the body checked against any Content-MD5 and `x-amz-checksum-*` the client
/// sent (in headers, or in an `aws-chunked` trailer), stored with its metadata.
pub(super) async fn put_object(call: &Call<'_>) -> Result<Response, S3Error> {
    if ["x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold"]
        .iter()
        .any(|name| call.headers.contains_key(*name))
    {
        return Err(S3Error::InvalidRequest { message: "Bucket is missing Object Lock Configuration".to_owned() });
    }
    let body = call.payload.clone();
    check_content_md5(call.headers, &body)?;
    check_checksums(call.headers, &call.trailers, &body)?;
    let metadata = metadata_from_headers(call.headers)?;
    let bucket = call.bucket_name().to_owned();
    let key = call.key().to_owned();
    let outcome = blocking(call.state, move |store| store.put_object(&bucket, &key, &body, &metadata, None)).await?;
    let info = match outcome {
        PutOutcome::Written(info) | PutOutcome::AlreadyExists(info) => info,
    };
    let mut response = StatusCode::OK.into_response();
    if let Ok(etag) = HeaderValue::from_str(&info.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

pub(super) async fn delete_object(call: &Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.bucket_name().to_owned();
    let key = call.key().to_owned();
    blocking(call.state, move |store| store.delete_object(&bucket, &key)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn check_content_md5(headers: &HeaderMap, body: &[u8]) -> Result<(), S3Error> {
    let Some(value) = headers.get("content-md5") else { return Ok(()) };
    let declared =
        STANDARD.decode(value.as_bytes()).ok().filter(|digest| digest.len() == 16).ok_or(S3Error::InvalidDigest)?;
    if declared != super::object_file::md5_of(body) {
        return Err(S3Error::BadDigest);
    }
    Ok(())
}

/// Checks the flexible checksums S3 verifies that can be computed here: CRC32 (what
/// botocore sends by default), CRC32C and SHA-256. Others (SHA-1, CRC64NVME) are not checked.
fn check_checksums(headers: &HeaderMap, trailers: &[(String, String)], body: &[u8]) -> Result<(), S3Error> {
    for (name, algorithm) in
        [("x-amz-checksum-crc32", "CRC32"), ("x-amz-checksum-crc32c", "CRC32C"), ("x-amz-checksum-sha256", "SHA256")]
    {
        let declared = header_text(headers, name)
            .or_else(|| trailers.iter().find(|(trailer, _)| trailer == name).map(|(_, value)| value.as_str()));
        let Some(declared) = declared else { continue };
        let invalid = || S3Error::InvalidRequest { message: format!("Value for {name} header is invalid.") };
        let declared = STANDARD.decode(declared.trim().as_bytes()).map_err(|_| invalid())?;
        let computed = match algorithm {
            "CRC32" => {
                let mut crc = flate2::Crc::new();
                crc.update(body);
                crc.sum().to_be_bytes().to_vec()
            }
            "CRC32C" => crc32c::crc32c(body).to_be_bytes().to_vec(),
            _ => Sha256::digest(body).to_vec(),
        };
        if declared.len() != computed.len() {
            return Err(invalid());
        }
        if declared != computed {
            return Err(S3Error::ChecksumMismatch { algorithm });
        }
    }
    Ok(())
}

/// `Content-Type` and the `x-amz-meta-*` headers (S3 joins repeated ones with commas).
fn metadata_from_headers(headers: &HeaderMap) -> Result<ObjectMetadata, S3Error> {
    let mut metadata = ObjectMetadata {
        content_type: header_text(headers, header::CONTENT_TYPE.as_str()).map(str::to_owned),
        ..ObjectMetadata::default()
    };
    for (name, value) in headers {
        let Some(meta_name) = name.as_str().strip_prefix(USER_METADATA_PREFIX) else { continue };
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        metadata
            .user_metadata
            .entry(meta_name.to_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let size: usize = metadata.user_metadata.iter().map(|(name, value)| name.len() + value.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::MetadataTooLarge { size });
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::store::ObjectInfo;

    #[test]
    fn ranges_follow_http_and_s3() {
        let range = |text: &str, size: u64| resolve_range(Some(text), size);
        assert_eq!(range("bytes=0-4", 10).unwrap(), Some((0, 4)));
        assert_eq!(range("bytes=5-", 10).unwrap(), Some((5, 9)));
        assert_eq!(range("bytes=-3", 10).unwrap(), Some((7, 9)));
        assert_eq!(range("bytes=-30", 10).unwrap(), Some((0, 9)));
        assert_eq!(range("bytes=8-100", 10).unwrap(), Some((8, 9)));
        assert_eq!(range("bytes=9-9", 10).unwrap(), Some((9, 9)));
        // Ignored: several ranges, another unit, malformed, reversed.
        for ignored in ["bytes=0-1,3-4", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes=-", "bytes=3"] {
            assert_eq!(range(ignored, 10).unwrap(), None, "{ignored}");
        }
        assert_eq!(resolve_range(None, 10).unwrap(), None);
        for unsatisfiable in
            [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0)]
        {
            let error = range(unsatisfiable.0, unsatisfiable.1).unwrap_err();
            assert_eq!((error.code(), error.status()), ("InvalidRange", StatusCode::RANGE_NOT_SATISFIABLE));
        }
    }

    fn head(md5: [u8; 16], last_modified_ms: i64) -> ObjectHead {
        ObjectHead {
            key: "k".into(),
            info: ObjectInfo { size: 1, md5, last_modified_ms, lock_until_ms: None },
            metadata: ObjectMetadata::default(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn preconditions_compare_etags_and_dates() {
        let object = head([0x11; 16], 1_700_000_000_500);
        let etag = object.info.etag();
        let check = |pairs: &[(&'static str, &str)]| check_preconditions(&headers(pairs), &object);
        assert_eq!(check(&[]).unwrap(), Precondition::Proceed);
        assert_eq!(check(&[("if-match", &etag)]).unwrap(), Precondition::Proceed);
        assert_eq!(check(&[("if-match", "\"other\", *")]).unwrap(), Precondition::Proceed);
        assert_eq!(check(&[("if-match", "\"other\"")]).unwrap_err().code(), "PreconditionFailed");
        assert_eq!(check(&[("if-none-match", &etag)]).unwrap(), Precondition::NotModified);
        assert_eq!(check(&[("if-none-match", "\"other\"")]).unwrap(), Precondition::Proceed);
        let at = httpdate::fmt_http_date(system_time(1_700_000_000_000));
        let before = httpdate::fmt_http_date(system_time(1_699_999_999_000));
        assert_eq!(check(&[("if-modified-since", &at)]).unwrap(), Precondition::NotModified);
        assert_eq!(check(&[("if-modified-since", &before)]).unwrap(), Precondition::Proceed);
        assert_eq!(check(&[("if-unmodified-since", &before)]).unwrap_err().code(), "PreconditionFailed");
        // If-Match wins over If-Unmodified-Since, as S3 documents.
        assert_eq!(check(&[("if-match", &etag), ("if-unmodified-since", &before)]).unwrap(), Precondition::Proceed);
    }

    #[test]
    fn checksums_and_content_md5_are_verified() {
        let body = b"hello world";
        let crc32 = headers(&[("x-amz-checksum-crc32", "DUoRhQ==")]);
        check_checksums(&crc32, &[], body).unwrap();
        assert_eq!(check_checksums(&crc32, &[], b"hello there").unwrap_err().code(), "BadDigest");
        let trailer = vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())];
        check_checksums(&HeaderMap::new(), &trailer, body).unwrap();
        let sha256 = STANDARD.encode(Sha256::digest(body));
        check_checksums(&headers(&[("x-amz-checksum-sha256", &sha256)]), &[], body).unwrap();
        let crc32c = STANDARD.encode(crc32c::crc32c(body).to_be_bytes());
        check_checksums(&headers(&[("x-amz-checksum-crc32c", &crc32c)]), &[], body).unwrap();
        let garbage = headers(&[("x-amz-checksum-crc32", "not base64!")]);
        assert_eq!(check_checksums(&garbage, &[], body).unwrap_err().code(), "InvalidRequest");

        let md5 = STANDARD.encode(super::super::object_file::md5_of(body));
        check_content_md5(&headers(&[("content-md5", &md5)]), body).unwrap();
        assert_eq!(check_content_md5(&headers(&[("content-md5", &md5)]), b"x").unwrap_err().code(), "BadDigest");
        assert_eq!(check_content_md5(&headers(&[("content-md5", "AAAA")]), body).unwrap_err().code(), "InvalidDigest");
    }

    #[test]
    fn user_metadata_comes_from_x_amz_meta_headers_within_the_limit() {
        let metadata = metadata_from_headers(&headers(&[
            ("content-type", "application/json"),
            ("x-amz-meta-signature", "abcd"),
            ("x-amz-meta-signature-algorithm", "SHA256withRSA"),
            ("x-amz-date", "20260101T000000Z"),
        ]))
        .unwrap();
        assert_eq!(metadata.content_type.as_deref(), Some("application/json"));
        assert_eq!(metadata.user_metadata.len(), 2);
        assert_eq!(metadata.user_metadata["signature-algorithm"], "SHA256withRSA");
        let big = "x".repeat(MAX_USER_METADATA_BYTES);
        let error = metadata_from_headers(&headers(&[("x-amz-meta-big", &big)])).unwrap_err();
        assert_eq!(error.code(), "MetadataTooLarge");
    }
}
