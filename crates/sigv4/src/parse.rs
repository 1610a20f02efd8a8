//! Reading what a request claims: the Authorization header, or a presigned URL's `X-Amz-*`
//! query parameters, into an [`Authorization`]. Only the shape is checked here; whether the
//! claim is true is [`crate::verify`]'s job, once the server has found the secret.

use crate::canonical::{decoded_query_pairs, header_values};
use crate::time::{format_iso8601_basic, parse_http_date, parse_iso8601_basic};
use crate::{ALGORITHM, Authorization, MAX_PRESIGNED_EXPIRES_SECONDS, RequestParts, SigV4Error};

/// Parses the request's SigV4 credentials, from the Authorization header or, when the query
/// carries `X-Amz-Algorithm`, from the presigned query parameters.
pub fn parse_authorization(request: &RequestParts<'_>) -> Result<Authorization, SigV4Error> {
    let authorization_header = header_values(request.headers, "authorization")
        .into_iter()
        .find(|value| !value.iter().all(u8::is_ascii_whitespace));
    let query_pairs: Vec<(String, String)> = decoded_query_pairs(request.query)
        .into_iter()
        .map(|(key, value)| (String::from_utf8_lossy(&key).into_owned(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let presigned = query_pairs.iter().any(|(key, _)| key == "X-Amz-Algorithm");
    match (authorization_header, presigned) {
        (Some(_), true) => Err(SigV4Error::AuthorizationHeaderAndQuery),
        (None, false) => Err(SigV4Error::MissingAuthenticationToken),
        (Some(header), false) => parse_header(&String::from_utf8_lossy(header), request),
        (None, true) => parse_presigned_query(&query_pairs),
    }
}

fn incomplete(message: impl Into<String>, presigned: bool) -> SigV4Error {
    SigV4Error::IncompleteSignature { message: message.into(), presigned }
}

/// `Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date,
/// Signature=...` after the algorithm. Parameters may be separated by commas, spaces or both.
fn parse_header(header: &str, request: &RequestParts<'_>) -> Result<Authorization, SigV4Error> {
    let header = header.trim();
    let (algorithm, parameters) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for token in parameters.split(|character: char| character == ',' || character.is_whitespace()) {
        let Some((name, value)) = token.split_once('=') else { continue };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }

    let amz_date = first_header_text(request, "x-amz-date");
    let http_date = first_header_text(request, "date");
    let mut problems = String::new();
    for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if value.is_none() {
            problems.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if amz_date.is_none() && http_date.is_none() {
        problems.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, problems.is_empty())
    else {
        return Err(incomplete(format!("{problems}Authorization={header}"), false));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'"), false));
    }

    let (request_time, request_unix_seconds) = match (amz_date, http_date) {
        (Some(amz_date), _) => {
            let unix = parse_iso8601_basic(&amz_date).ok_or_else(|| not_iso8601(&amz_date, false))?;
            (amz_date, unix)
        }
        (None, Some(http_date)) => {
            let unix = parse_http_date(&http_date).ok_or_else(|| not_iso8601(&http_date, false))?;
            (format_iso8601_basic(unix), unix)
        }
        (None, None) => return Err(incomplete(format!("{problems}Authorization={header}"), false)),
    };
    build(credential, signed_headers, signature, false, request_time, request_unix_seconds, None)
}

fn first_header_text(request: &RequestParts<'_>, name: &str) -> Option<String> {
    header_values(request.headers, name).first().map(|value| String::from_utf8_lossy(value).trim().to_owned())
}

fn not_iso8601(value: &str, presigned: bool) -> SigV4Error {
    incomplete(
        format!("Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"),
        presigned,
    )
}

fn parse_presigned_query(pairs: &[(String, String)]) -> Result<Authorization, SigV4Error> {
    let parameter = |name: &str| {
        pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
    };
    let required = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"];
    let mut problems = String::new();
    for name in required {
        if parameter(name).is_none() {
            problems.push_str(&format!("AWS query-string parameters must include '{name}'. "));
        }
    }
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) = (
        parameter("X-Amz-Algorithm"),
        parameter("X-Amz-Credential"),
        parameter("X-Amz-Signature"),
        parameter("X-Amz-SignedHeaders"),
        parameter("X-Amz-Date"),
    ) else {
        return Err(incomplete(format!("{problems}Re-examine the query-string parameters."), true));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'"), true));
    }
    let request_unix_seconds = parse_iso8601_basic(date).ok_or_else(|| not_iso8601(date, true))?;
    let expires_seconds = match pairs.iter().find(|(key, _)| key == "X-Amz-Expires") {
        None => None,
        Some((_, value)) => Some(parse_expires(value)?),
    };
    build(credential, signed_headers, signature, true, date.to_owned(), request_unix_seconds, expires_seconds)
}

fn parse_expires(value: &str) -> Result<i64, SigV4Error> {
    let seconds: i64 = value.trim().parse().map_err(|_| incomplete("X-Amz-Expires should be a number", true))?;
    if seconds < 0 {
        return Err(incomplete("X-Amz-Expires must be non-negative", true));
    }
    if seconds > MAX_PRESIGNED_EXPIRES_SECONDS {
        return Err(incomplete(
            format!("X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECONDS}"),
            true,
        ));
    }
    Ok(seconds)
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    presigned: bool,
    request_time: String,
    request_unix_seconds: i64,
    expires_seconds: Option<i64>,
) -> Result<Authorization, SigV4Error> {
    let elements: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = elements.as_slice() else {
        return Err(incomplete(
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
            presigned,
        ));
    };
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if !signed_headers.iter().any(|name| name.trim().eq_ignore_ascii_case("host")) {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", presigned));
    }
    Ok(Authorization {
        access_key_id: (*access_key_id).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        terminator: (*terminator).to_owned(),
        signed_headers,
        signature: signature.to_owned(),
        presigned,
        request_time,
        request_unix_seconds,
        expires_seconds,
    })
}
