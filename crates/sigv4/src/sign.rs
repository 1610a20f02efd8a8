//! Signing on the client side: the headers to add to a request ([`sign`]), or the query
//! string of a presigned URL ([`presign`]). Both build the canonical request with the same
//! code the verifier uses.

use crate::canonical::{self, CanonicalInput, aws_percent_encode, header_values};
use crate::time::format_iso8601_basic;
use crate::{ALGORITHM, SCOPE_TERMINATOR, SigningParams, UNSIGNED_PAYLOAD, is_s3_style_service, sha256_hex};

/// Signs a request and returns the headers to add to it: `x-amz-date`, `x-amz-content-sha256`
/// when [`SigningParams::include_content_sha256`] asks for it, and `authorization`.
///
/// `path` and `query` are exactly what will be sent (percent-encoded, query without `?`).
/// Every header in `headers` is signed, so pass the ones the server will see unchanged and
/// leave out hop-by-hop ones a proxy may rewrite (`connection`, `user-agent`, ...). They must
/// include `host`, which the server insists is signed. Any `authorization` or `x-amz-date`
/// passed in is replaced, as is `x-amz-content-sha256` when it is added here; an
/// `x-amz-content-sha256` the caller passes (such as `UNSIGNED-PAYLOAD`) is otherwise signed
/// as the payload hash, as botocore does.
pub fn sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    params: &SigningParams<'_>,
) -> Vec<(&'static str, String)> {
    let request_time = format_iso8601_basic(params.now_unix_seconds);
    let body_hash = sha256_hex(body);

    let replaced = |name: &str| {
        name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("x-amz-date")
            || (params.include_content_sha256 && name.eq_ignore_ascii_case("x-amz-content-sha256"))
    };
    let mut signed_request_headers: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(name, _)| !replaced(name.trim()))
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    signed_request_headers.push(("x-amz-date", request_time.as_bytes()));
    if params.include_content_sha256 {
        signed_request_headers.push(("x-amz-content-sha256", body_hash.as_bytes()));
    }

    let payload_hash = match header_values(&signed_request_headers, "x-amz-content-sha256").first() {
        Some(declared) => String::from_utf8_lossy(declared).trim().to_owned(),
        None => body_hash.clone(),
    };
    let signed_headers = signed_header_names(&signed_request_headers);
    let signature = signature_for(
        &CanonicalInput {
            method,
            raw_path: path,
            raw_query: query,
            exclude_query_key: None,
            headers: &signed_request_headers,
            signed_headers: &signed_headers,
            service: params.service,
            payload_hash: &payload_hash,
        },
        &request_time,
        params,
    );

    let mut added = vec![("x-amz-date", request_time.clone())];
    if params.include_content_sha256 {
        added.push(("x-amz-content-sha256", body_hash));
    }
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
            params.access_key_id,
            credential_scope(&request_time, params),
            signed_headers.join(";")
        ),
    ));
    added
}

/// Presigns a request and returns the query string to send (without `?`): `query` followed by
/// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders` and `X-Amz-Signature`, in botocore's order.
///
/// `headers` must include `host` and are signed as in [`sign`]. S3 presigned URLs sign
/// `UNSIGNED-PAYLOAD`; other services sign the hash of an empty body. AWS refuses an
/// `expires_seconds` above 604800 (seven days), and so does [`crate::verify`].
pub fn presign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    params: &SigningParams<'_>,
    expires_seconds: u32,
) -> String {
    let request_time = format_iso8601_basic(params.now_unix_seconds);
    let request_headers: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(name, _)| !name.trim().eq_ignore_ascii_case("authorization"))
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    let signed_headers = signed_header_names(&request_headers);

    let credential = format!("{}/{}", params.access_key_id, credential_scope(&request_time, params));
    let mut presigned_query = String::from(query);
    let expires = expires_seconds.to_string();
    let signed_headers_list = signed_headers.join(";");
    for (key, value) in [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", request_time.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", signed_headers_list.as_str()),
    ] {
        if !presigned_query.is_empty() {
            presigned_query.push('&');
        }
        presigned_query.push_str(key);
        presigned_query.push('=');
        aws_percent_encode(value.as_bytes(), false, &mut presigned_query);
    }

    let payload_hash = match header_values(&request_headers, "x-amz-content-sha256").first() {
        Some(declared) => String::from_utf8_lossy(declared).trim().to_owned(),
        None if is_s3_style_service(params.service) => UNSIGNED_PAYLOAD.to_owned(),
        None => sha256_hex(b""),
    };
    let signature = signature_for(
        &CanonicalInput {
            method,
            raw_path: path,
            raw_query: &presigned_query,
            exclude_query_key: None,
            headers: &request_headers,
            signed_headers: &signed_headers,
            service: params.service,
            payload_hash: &payload_hash,
        },
        &request_time,
        params,
    );
    presigned_query.push_str("&X-Amz-Signature=");
    presigned_query.push_str(&signature);
    presigned_query
}

/// Lowercase, trimmed, deduplicated and sorted, as botocore lists them.
fn signed_header_names(headers: &[(&str, &[u8])]) -> Vec<String> {
    let mut names: Vec<String> = headers.iter().map(|(name, _)| name.trim().to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    names
}

fn credential_scope(request_time: &str, params: &SigningParams<'_>) -> String {
    let date = request_time.get(0..8).unwrap_or(request_time);
    format!("{date}/{}/{}/{SCOPE_TERMINATOR}", params.region, params.service)
}

fn signature_for(input: &CanonicalInput<'_>, request_time: &str, params: &SigningParams<'_>) -> String {
    let canonical_request = canonical::canonical_request(input);
    let string_to_sign =
        canonical::string_to_sign(request_time, &credential_scope(request_time, params), &canonical_request);
    let date = request_time.get(0..8).unwrap_or(request_time);
    canonical::signature(
        params.secret_access_key,
        date,
        params.region,
        params.service,
        SCOPE_TERMINATOR,
        &string_to_sign,
    )
}
