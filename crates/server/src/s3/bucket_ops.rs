//! The bucket-level operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket and the
//! two versions of ListObjects. (GetBucketLocation is one line in `mod.rs`.)
//!
//! Each takes the authenticated [`Call`] after the role and account checks and answers in
//! S3's words; the store does the work.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::S3Error;
use super::store::{BucketInfo, ListQuery};
use super::xml::{self, ListEcho, Owner, V2Echo};
use super::{Call, blocking, xml_response};

/// The most keys (or buckets) one listing page holds, S3's default and ceiling.
const MAX_KEYS: usize = 1000;
/// The most buckets one ListBuckets page may ask for.
const MAX_BUCKETS: usize = 10_000;

/// ListBuckets: the caller's own account's buckets, by name, optionally filtered by prefix
/// and Region and paged with `max-buckets`.
pub(super) fn list_buckets(call: &Call<'_>) -> Result<Response, S3Error> {
    let account_id = &call.caller.principal.account_id;
    let prefix = call.query.get("prefix");
    let region = call.query.get("bucket-region");
    let max_buckets = match call.query.get("max-buckets") {
        None => usize::MAX,
        Some(text) => {
            text.parse::<usize>().ok().filter(|count| (1..=MAX_BUCKETS).contains(count)).ok_or_else(|| {
                S3Error::InvalidArgument {
                    message: format!("Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}"),
                    name: "max-buckets",
                    value: text.to_owned(),
                }
            })?
        }
    };
    let after = match call.query.get("continuation-token") {
        None => None,
        Some(token) => Some(decode_token(token, "continuation-token")?),
    };
    let mut buckets: Vec<BucketInfo> = call
        .state
        .buckets
        .list_buckets(account_id)
        .into_iter()
        .filter(|bucket| prefix.is_none_or(|prefix| bucket.name.starts_with(prefix)))
        .filter(|bucket| region.is_none_or(|region| bucket.region == region))
        .filter(|bucket| after.as_deref().is_none_or(|after| bucket.name.as_str() > after))
        .collect();
    let next_token = (buckets.len() > max_buckets).then(|| {
        buckets.truncate(max_buckets);
        buckets.last().map(|bucket| encode_token(&bucket.name)).unwrap_or_default()
    });
    let document = xml::list_buckets(&Owner::of_account(account_id), &buckets, prefix, next_token.as_deref());
    Ok(xml_response(StatusCode::OK, document))
}

/// The Region a CreateBucket asks for, from its `CreateBucketConfiguration`; `None` when the
/// body names none. `EU` is S3's old name for eu-west-1.
pub(super) fn location_constraint(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if body.len() > xml::MAX_REQUEST_XML_BYTES {
        return Err(S3Error::MalformedXml);
    }
    let elements = xml::read_elements(body)?;
    if elements.last().is_none_or(|(root, _)| root != "CreateBucketConfiguration") {
        return Err(S3Error::MalformedXml);
    }
    let constraint = elements
        .iter()
        .find(|(path, _)| path == "CreateBucketConfiguration/LocationConstraint")
        .map(|(_, text)| text.clone())
        .filter(|text| !text.is_empty());
    Ok(constraint.map(|constraint| if constraint == "EU" { "eu-west-1".to_owned() } else { constraint }))
}

/// A Region name such as `us-east-1` or `us-gov-west-1`.
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && name.len() <= 32
        && parts[..parts.len() - 1].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// CreateBucket: in the Region its configuration names, else the Region the request was
/// signed for (one endpoint serves every Region, so there is no Region-specific endpoint to
/// disagree with).
pub(super) async fn create_bucket(call: &Call<'_>) -> Result<Response, S3Error> {
    let name = call.bucket_name().to_owned();
    let region = match location_constraint(&call.payload)? {
        Some(constraint) if is_region_name(&constraint) => constraint,
        Some(constraint) => return Err(S3Error::InvalidLocationConstraint { constraint }),
        None => call.caller.region.clone(),
    };
    if call.headers.get("x-amz-bucket-object-lock-enabled").is_some_and(|value| value.as_bytes() == b"true") {
        return Err(S3Error::NotImplemented { what: "Object Lock configured by clients".to_owned() });
    }
    // A name that belongs to a configured external bucket is taken.
    if call.state.config.buckets.external.iter().any(|external| external.name == name) {
        return Err(S3Error::BucketAlreadyExists { bucket: name });
    }
    let owner = call.caller.principal.account_id.clone();
    let location = format!("/{name}");
    blocking(call.state, move |store| store.create_bucket(&name, &owner, &region)).await?;
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub(super) async fn delete_bucket(call: &Call<'_>) -> Result<Response, S3Error> {
    let name = call.bucket_name().to_owned();
    blocking(call.state, move |store| store.delete_bucket(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn head_bucket(bucket: &BucketInfo) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(region) = HeaderValue::from_str(&bucket.region) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    response.headers_mut().insert("x-amz-access-point-alias", HeaderValue::from_static("false"));
    response
}

/// ListObjects, version 1 (`marker`) or 2 (`continuation-token`, `start-after`).
pub(super) fn list_objects(call: &Call<'_>, bucket: &BucketInfo, version_2: bool) -> Result<Response, S3Error> {
    let query = call.query;
    let prefix = query.get("prefix").unwrap_or("");
    let delimiter = query.get("delimiter").filter(|delimiter| !delimiter.is_empty());
    let max_keys = parse_max_keys(query.get("max-keys"))?;
    let url_encoded = match query.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::InvalidArgument {
                message: "Invalid Encoding Method specified in Request".to_owned(),
                name: "encoding-type",
                value: other.to_owned(),
            });
        }
    };
    let continuation_key = match query.get("continuation-token").filter(|_| version_2) {
        None => None,
        Some(token) => Some(decode_token(token, "continuation-token")?),
    };
    let marker = query.get("marker").filter(|_| !version_2).unwrap_or("");
    let start_after = query.get("start-after").filter(|_| version_2);
    let after = if version_2 { continuation_key.as_deref().or(start_after).unwrap_or("") } else { marker };
    let listing = call.state.buckets.list_objects(&bucket.name, &ListQuery { prefix, after, delimiter, max_keys })?;
    let echo = ListEcho { bucket: &bucket.name, prefix, delimiter, max_keys, url_encoded };
    let owner = Owner::of_account(&bucket.owner_account_id);
    let document = if version_2 {
        let v2 = V2Echo {
            continuation_token: query.get("continuation-token"),
            next_continuation_token: listing.next_marker.as_deref().filter(|_| listing.is_truncated).map(encode_token),
            start_after,
            owner: (query.get("fetch-owner") == Some("true")).then_some(owner),
        };
        xml::list_objects_v2(&echo, &v2, &listing)
    } else {
        xml::list_objects_v1(&echo, marker, &listing, &owner)
    };
    Ok(xml_response(StatusCode::OK, document))
}

/// `max-keys`: a whole number, at most 1000 kept (S3 silently caps larger ones).
fn parse_max_keys(value: Option<&str>) -> Result<usize, S3Error> {
    let Some(text) = value else { return Ok(MAX_KEYS) };
    let count =
        text.trim().parse::<i64>().ok().filter(|count| *count >= 0).ok_or_else(|| S3Error::InvalidArgument {
            message: "Provided max-keys not an integer or within integer range".to_owned(),
            name: "max-keys",
            value: text.to_owned(),
        })?;
    Ok(usize::try_from(count).unwrap_or(MAX_KEYS).min(MAX_KEYS))
}

/// Continuation tokens are opaque to clients: the key (or bucket name) to continue after,
/// base64url-encoded.
fn encode_token(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(after.as_bytes())
}

fn decode_token(token: &str, name: &'static str) -> Result<String, S3Error> {
    URL_SAFE_NO_PAD.decode(token.as_bytes()).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
        S3Error::InvalidArgument {
            message: "The continuation token provided is incorrect".to_owned(),
            name,
            value: token.to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_keys_is_a_capped_whole_number() {
        assert_eq!(parse_max_keys(None).unwrap(), 1000);
        assert_eq!(parse_max_keys(Some("7")).unwrap(), 7);
        assert_eq!(parse_max_keys(Some("0")).unwrap(), 0);
        assert_eq!(parse_max_keys(Some("5000")).unwrap(), 1000);
        for bad in ["-1", "ten", "1.5", ""] {
            let error = parse_max_keys(Some(bad)).unwrap_err();
            assert_eq!(error.code(), "InvalidArgument", "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let key = "AWSLogs/123/CloudTrail/us-east-1/2026/11/21/x.json.gz";
        assert_eq!(decode_token(&encode_token(key), "continuation-token").unwrap(), key);
        assert_eq!(decode_token("!!!", "continuation-token").unwrap_err().code(), "InvalidArgument");
    }

    #[test]
    fn location_constraints_are_read_from_the_configuration() {
        let body = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-central-1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(location_constraint(body).unwrap().as_deref(), Some("eu-central-1"));
        assert_eq!(location_constraint(b"").unwrap(), None);
        assert_eq!(
            location_constraint(
                b"<CreateBucketConfiguration><LocationConstraint>EU</LocationConstraint></CreateBucketConfiguration>"
            )
            .unwrap()
            .as_deref(),
            Some("eu-west-1")
        );
        assert!(matches!(location_constraint(b"<Other/>"), Err(S3Error::MalformedXml)));
        assert!(matches!(location_constraint(b"<CreateBucketConfiguration>"), Err(S3Error::MalformedXml)));
        assert!(is_region_name("us-east-1") && is_region_name("us-gov-west-1") && is_region_name("ap-southeast-2"));
        assert!(!is_region_name("mars") && !is_region_name("us-east") && !is_region_name("US-EAST-1"));
    }
}
