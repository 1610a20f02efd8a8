//! Checking a parsed [`Authorization`] against the request and the secret: scope, clock,
//! payload hash, then the signature itself, compared in constant time.

use crate::canonical::{self, CanonicalInput, header_values};
use crate::chunked::StreamingMode;
use crate::time::format_iso8601_basic;
use crate::{
    Authorization, MAX_CLOCK_SKEW_SECONDS, RequestParts, SCOPE_TERMINATOR, SigV4Error, UNSIGNED_PAYLOAD,
    is_s3_style_service, sha256_hex,
};

/// The presigned query parameter that carries the signature, and so is not signed.
const SIGNATURE_QUERY_KEY: &str = "X-Amz-Signature";

/// Verifies that `request` was signed with `secret_access_key` as `authorization` claims, at a
/// time close enough to `now_unix_seconds`.
///
/// The checks run in AWS's order: the credential scope (terminator, and a date matching the
/// request time; region and service are the server's to check with
/// [`Authorization::check_scope`]), the clock (15 minutes either way, or a presigned URL's
/// `X-Amz-Expires`), the `x-amz-content-sha256` form, the signature, and last whether a hex
/// `x-amz-content-sha256` is really the body's hash.
///
/// `UNSIGNED-PAYLOAD` is accepted for every service, as AWS does; the body is then not
/// covered by the signature, which a server may want to refuse for its JSON API. For S3 the
/// streaming modes are accepted too: the body is then `aws-chunked`, and the server must
/// decode it with [`crate::decode_streaming_payload`], which checks the chunk signatures.
pub fn verify(
    request: &RequestParts<'_>,
    authorization: &Authorization,
    secret_access_key: &str,
    now_unix_seconds: i64,
) -> Result<(), SigV4Error> {
    check_scope(authorization, None)?;
    check_clock(authorization, now_unix_seconds)?;
    let payload = payload_hash(request, authorization)?;
    let canonical_request = canonical::canonical_request(&canonical_input(request, authorization, &payload.hash));
    let string_to_sign =
        canonical::string_to_sign(&authorization.request_time, &authorization.credential_scope(), &canonical_request);
    let expected = canonical::signature(
        secret_access_key,
        &authorization.date,
        &authorization.region,
        &authorization.service,
        &authorization.terminator,
        &string_to_sign,
    );
    if !canonical::signatures_equal(&expected, &authorization.signature) {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }
    if payload.must_match_body {
        let computed = sha256_hex(request.body);
        if !payload.hash.eq_ignore_ascii_case(&computed) {
            return Err(SigV4Error::ContentSha256Mismatch { provided: payload.hash, computed });
        }
    }
    Ok(())
}

/// What the server computed while verifying, for a `SignatureDoesNotMatch` response body or a
/// debug log line; it holds nothing derived from the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningDetails {
    /// The canonical request (bytes that are not UTF-8 shown as U+FFFD).
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// The canonical request and string to sign that [`verify`] computes for this request.
pub fn signing_details(
    request: &RequestParts<'_>,
    authorization: &Authorization,
) -> Result<SigningDetails, SigV4Error> {
    let payload = payload_hash(request, authorization)?;
    let canonical_request = canonical::canonical_request(&canonical_input(request, authorization, &payload.hash));
    let string_to_sign =
        canonical::string_to_sign(&authorization.request_time, &authorization.credential_scope(), &canonical_request);
    Ok(SigningDetails { canonical_request: String::from_utf8_lossy(&canonical_request).into_owned(), string_to_sign })
}

fn canonical_input<'a>(
    request: &'a RequestParts<'a>,
    authorization: &'a Authorization,
    payload_hash: &'a str,
) -> CanonicalInput<'a> {
    CanonicalInput {
        method: request.method,
        raw_path: request.path,
        raw_query: request.query,
        exclude_query_key: authorization.presigned.then_some(SIGNATURE_QUERY_KEY),
        headers: request.headers,
        signed_headers: &authorization.signed_headers,
        service: &authorization.service,
        payload_hash,
    }
}

/// Compares the scope with what it must be, collecting every mismatch into one message.
/// `expected` is the server's (region, service); without it only the terminator and date
/// are checked.
pub(crate) fn check_scope(authorization: &Authorization, expected: Option<(&str, &str)>) -> Result<(), SigV4Error> {
    let mut problems = Vec::new();
    if let Some((expected_region, expected_service)) = expected {
        if authorization.region != expected_region {
            problems.push(format!("Credential should be scoped to a valid region, not '{}'.", authorization.region));
        }
        if authorization.service != expected_service {
            problems.push(format!("Credential should be scoped to correct service: '{expected_service}'."));
        }
    }
    if authorization.terminator != SCOPE_TERMINATOR {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{}'.",
            authorization.terminator
        ));
    }
    let request_date = authorization.request_time.get(0..8).unwrap_or(&authorization.request_time);
    if authorization.date != request_date {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            authorization.date, request_date, authorization.request_time
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SigV4Error::CredentialScopeMismatch { message: problems.join(" "), presigned: authorization.presigned })
}

fn check_clock(authorization: &Authorization, now_unix_seconds: i64) -> Result<(), SigV4Error> {
    let request_unix_seconds = authorization.request_unix_seconds;
    let latest_allowed = now_unix_seconds.saturating_add(MAX_CLOCK_SKEW_SECONDS);
    if request_unix_seconds > latest_allowed {
        return Err(SigV4Error::SignatureNotYetCurrent {
            request_time: authorization.request_time.clone(),
            latest_allowed: format_iso8601_basic(latest_allowed),
            now: format_iso8601_basic(now_unix_seconds),
        });
    }
    if let Some(expires_seconds) = authorization.expires_seconds {
        if now_unix_seconds > request_unix_seconds.saturating_add(expires_seconds) {
            return Err(SigV4Error::PresignedUrlExpired {
                request_time: authorization.request_time.clone(),
                expires_seconds,
                now: format_iso8601_basic(now_unix_seconds),
            });
        }
        return Ok(());
    }
    let earliest_allowed = now_unix_seconds.saturating_sub(MAX_CLOCK_SKEW_SECONDS);
    if request_unix_seconds < earliest_allowed {
        return Err(SigV4Error::SignatureExpired {
            request_time: authorization.request_time.clone(),
            earliest_allowed: format_iso8601_basic(earliest_allowed),
            now: format_iso8601_basic(now_unix_seconds),
        });
    }
    Ok(())
}

/// The canonical request's last line, and whether it is a hash the body must then match.
struct PayloadHash {
    hash: String,
    must_match_body: bool,
}

/// Decides the payload line the way botocore does: the `x-amz-content-sha256` header's value
/// when there is one; otherwise `UNSIGNED-PAYLOAD` for an S3 presigned URL and the body's hash
/// for everything else.
fn payload_hash(request: &RequestParts<'_>, authorization: &Authorization) -> Result<PayloadHash, SigV4Error> {
    let declared = header_values(request.headers, "x-amz-content-sha256");
    let value = match declared.as_slice() {
        [] if authorization.presigned && is_s3_style_service(&authorization.service) => {
            return Ok(PayloadHash { hash: UNSIGNED_PAYLOAD.to_owned(), must_match_body: false });
        }
        [] => return Ok(PayloadHash { hash: sha256_hex(request.body), must_match_body: false }),
        [value] => String::from_utf8_lossy(value).trim().to_owned(),
        several => {
            let joined: Vec<String> = several.iter().map(|value| String::from_utf8_lossy(value).into_owned()).collect();
            return Err(SigV4Error::InvalidContentSha256 { value: joined.join(",") });
        }
    };
    if value == UNSIGNED_PAYLOAD {
        return Ok(PayloadHash { hash: value, must_match_body: false });
    }
    if value.starts_with("STREAMING-") {
        // The seed signature covers the mode's name; the chunks are checked as the body is
        // decoded (`decode_streaming_payload`). Only S3 takes streaming uploads.
        if is_s3_style_service(&authorization.service) && StreamingMode::from_content_sha256(&value).is_some() {
            return Ok(PayloadHash { hash: value, must_match_body: false });
        }
        return Err(SigV4Error::StreamingPayloadNotSupported { value });
    }
    if value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(PayloadHash { hash: value, must_match_body: true });
    }
    Err(SigV4Error::InvalidContentSha256 { value })
}
