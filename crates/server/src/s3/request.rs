//! What an S3 request asks for: the bucket and key it addresses (path-style `/<bucket>/<key>`
//! or virtual-hosted `<bucket>.<domain>`), its query parameters, and the one [`Operation`]
//! its method, target and sub-resources pick.

use axum::http::{HeaderMap, Method, header};

use super::error::S3Error;
use crate::identity::Access;

/// The bucket and key a request addresses, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
}

impl Target {
    /// Reads the target from the Host header and the raw path. With `domain` configured, a
    /// host `<bucket>.<domain>` (any port) addresses that bucket and the whole path is the
    /// key; any other host is path-style.
    pub fn parse(raw_path: &str, host: Option<&str>, domain: Option<&str>) -> Result<Target, S3Error> {
        let invalid = || S3Error::InvalidUri { uri: raw_path.to_owned() };
        let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
        if let Some(bucket) = virtual_host_bucket(host, domain) {
            let key = decode(path).ok_or_else(invalid)?;
            return Ok(Target { bucket: Some(bucket), key: (!key.is_empty()).then_some(key) });
        }
        if path.is_empty() {
            return Ok(Target { bucket: None, key: None });
        }
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let bucket = decode(bucket).ok_or_else(invalid)?;
        let key = decode(key).ok_or_else(invalid)?;
        Ok(Target { bucket: Some(bucket), key: (!key.is_empty()).then_some(key) })
    }
}

fn virtual_host_bucket(host: Option<&str>, domain: Option<&str>) -> Option<String> {
    let domain = domain?.trim_end_matches('.');
    let host = host?;
    // Drop the port. An IPv6 literal keeps its brackets, so it never ends in the domain.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let bucket = name.strip_suffix(&domain.to_ascii_lowercase())?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_owned())
}

/// Percent-decodes a path or query component into UTF-8; `None` if the bytes are not UTF-8.
/// A `%` not followed by two hex digits stays as it is; `+` is a plus.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index + 1).and_then(|byte| char::from(*byte).to_digit(16)),
                bytes.get(index + 2).and_then(|byte| char::from(*byte).to_digit(16)),
            )
        {
            decoded.push((high * 16 + low) as u8);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// The decoded query parameters, in order. SigV4's own (`X-Amz-Signature`, ...) are kept:
/// callers skip them where they do not belong.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, S3Error> {
        let raw = raw.unwrap_or("");
        let mut pairs = Vec::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let invalid = || S3Error::InvalidUri { uri: format!("?{raw}") };
            pairs.push((decode(name).ok_or_else(invalid)?, decode(value).ok_or_else(invalid)?));
        }
        Ok(Query { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(key, _)| key == name)
    }

    /// The parameters as a client set them, without SigV4's presigning ones.
    pub fn client_parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .filter(|(key, _)| !key.starts_with("X-Amz-") && !key.starts_with("x-amz-"))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

/// Sub-resources of S3's API this store does not offer; a request naming one gets
/// `NotImplemented` instead of being mistaken for a plain object or bucket call.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versionId",
    "versions",
    "website",
];

/// Every S3 operation this store answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    ListObjects,
    ListObjectsV2,
    GetObject,
    HeadObject,
    PutObject,
    DeleteObject,
}

impl Operation {
    /// Picks the operation, or says why none fits.
    pub fn select(method: &Method, target: &Target, query: &Query, headers: &HeaderMap) -> Result<Operation, S3Error> {
        if let Some(subresource) = UNSUPPORTED_SUBRESOURCES.iter().find(|name| query.has(name)) {
            return Err(S3Error::NotImplemented { what: format!("the {subresource} sub-resource") });
        }
        let not_allowed = |resource_type: &'static str| S3Error::MethodNotAllowed {
            method: method.as_str().to_owned(),
            resource_type,
        };
        match (&target.bucket, &target.key) {
            (None, _) => match *method {
                Method::GET => Ok(Operation::ListBuckets),
                _ => Err(not_allowed("SERVICE")),
            },
            (Some(_), None) => match *method {
                Method::GET if query.has("location") => Ok(Operation::GetBucketLocation),
                Method::GET => match query.get("list-type") {
                    None => Ok(Operation::ListObjects),
                    Some("2") => Ok(Operation::ListObjectsV2),
                    Some(other) => Err(S3Error::InvalidArgument {
                        message: "Invalid List Type specified in Request".to_owned(),
                        name: "list-type",
                        value: other.to_owned(),
                    }),
                },
                Method::PUT => Ok(Operation::CreateBucket),
                Method::DELETE => Ok(Operation::DeleteBucket),
                Method::HEAD => Ok(Operation::HeadBucket),
                Method::POST => Err(S3Error::NotImplemented { what: "POST on a bucket".to_owned() }),
                _ => Err(not_allowed("BUCKET")),
            },
            (Some(_), Some(_)) => match *method {
                Method::GET => Ok(Operation::GetObject),
                Method::HEAD => Ok(Operation::HeadObject),
                Method::PUT if headers.contains_key("x-amz-copy-source") => {
                    Err(S3Error::NotImplemented { what: "CopyObject".to_owned() })
                }
                Method::PUT => Ok(Operation::PutObject),
                Method::DELETE => Ok(Operation::DeleteObject),
                Method::POST => Err(S3Error::NotImplemented { what: "POST on an object".to_owned() }),
                _ => Err(not_allowed("OBJECT")),
            },
        }
    }

    /// The API's own name (metrics, logs).
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket => "CreateBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::HeadBucket => "HeadBucket",
            Operation::GetBucketLocation => "GetBucketLocation",
            Operation::ListObjects => "ListObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::PutObject => "PutObject",
            Operation::DeleteObject => "DeleteObject",
        }
    }

    /// The `eventName` CloudTrail records: both listing versions are `ListObjects` (version 2
    /// shows as `"list-type": "2"` among the request parameters).
    pub fn event_name(self) -> &'static str {
        match self {
            Operation::ListObjectsV2 => "ListObjects",
            other => other.name(),
        }
    }

    pub fn access(self) -> Access {
        if self.read_only() { Access::Read } else { Access::Manage }
    }

    pub fn read_only(self) -> bool {
        !matches!(
            self,
            Operation::CreateBucket | Operation::DeleteBucket | Operation::PutObject | Operation::DeleteObject
        )
    }

    /// CloudTrail logs bucket-level calls as management events; object reads and writes,
    /// listings and HeadBucket are data events.
    pub fn management(self) -> bool {
        matches!(
            self,
            Operation::ListBuckets | Operation::CreateBucket | Operation::DeleteBucket | Operation::GetBucketLocation
        )
    }

    /// The operations on one object (their audit record names it).
    pub fn is_object_level(self) -> bool {
        matches!(self, Operation::GetObject | Operation::HeadObject | Operation::PutObject | Operation::DeleteObject)
    }
}

/// The Host the client addressed, for virtual-hosted requests and audit records.
pub fn host(headers: &HeaderMap, uri_authority: Option<&str>) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri_authority.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str, host: Option<&str>, domain: Option<&str>) -> Target {
        Target::parse(path, host, domain).unwrap()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn path_style_addresses_bucket_then_key() {
        assert_eq!(target("/", None, None), Target { bucket: None, key: None });
        assert_eq!(target("/b", None, None), Target { bucket: some("b"), key: None });
        assert_eq!(target("/b/", None, None), Target { bucket: some("b"), key: None });
        assert_eq!(target("/b/a/b%20c", None, None), Target { bucket: some("b"), key: some("a/b c") });
        assert_eq!(target("/b//", None, None), Target { bucket: some("b"), key: some("/") });
        assert_eq!(target("/b/%E2%82%AC+x", None, None), Target { bucket: some("b"), key: some("€+x") });
        assert!(matches!(Target::parse("/b/%FF", None, None), Err(S3Error::InvalidUri { .. })));
    }

    #[test]
    fn virtual_hosts_under_the_domain_name_the_bucket() {
        let domain = Some("s3.localhost");
        assert_eq!(
            target("/k/x", Some("logs.s3.localhost:4600"), domain),
            Target { bucket: some("logs"), key: some("k/x") }
        );
        assert_eq!(
            target("/", Some("my.dotted.bucket.S3.localhost"), domain),
            Target { bucket: some("my.dotted.bucket"), key: None }
        );
        // The domain itself, another host, or no domain configured: path-style.
        assert_eq!(target("/b/k", Some("s3.localhost:4600"), domain), Target { bucket: some("b"), key: some("k") });
        assert_eq!(target("/b/k", Some("127.0.0.1:4600"), domain), Target { bucket: some("b"), key: some("k") });
        assert_eq!(target("/b/k", Some("logs.s3.localhost"), None), Target { bucket: some("b"), key: some("k") });
        assert_eq!(target("/b", Some("[::1]:4600"), domain), Target { bucket: some("b"), key: None });
    }

    #[test]
    fn operations_follow_method_target_and_subresource() {
        let select = |method: Method, path: &str, query: &str| {
            let target = Target::parse(path, None, None).unwrap();
            let query = Query::parse(Some(query)).unwrap();
            Operation::select(&method, &target, &query, &HeaderMap::new())
        };
        assert_eq!(select(Method::GET, "/", "").unwrap(), Operation::ListBuckets);
        assert_eq!(select(Method::GET, "/b", "location").unwrap(), Operation::GetBucketLocation);
        assert_eq!(select(Method::GET, "/b", "list-type=2&prefix=a").unwrap(), Operation::ListObjectsV2);
        assert_eq!(select(Method::GET, "/b", "prefix=a&encoding-type=url").unwrap(), Operation::ListObjects);
        assert_eq!(select(Method::HEAD, "/b", "").unwrap(), Operation::HeadBucket);
        assert_eq!(select(Method::PUT, "/b/k", "x-id=PutObject").unwrap(), Operation::PutObject);
        assert_eq!(select(Method::DELETE, "/b/k", "").unwrap(), Operation::DeleteObject);
        assert!(matches!(select(Method::GET, "/b", "versioning"), Err(S3Error::NotImplemented { .. })));
        assert!(matches!(select(Method::POST, "/b", "delete"), Err(S3Error::NotImplemented { .. })));
        assert!(matches!(select(Method::PATCH, "/b/k", ""), Err(S3Error::MethodNotAllowed { .. })));
        assert!(matches!(select(Method::GET, "/b", "list-type=3"), Err(S3Error::InvalidArgument { .. })));
        let mut copy = HeaderMap::new();
        copy.insert("x-amz-copy-source", "/b/other".parse().unwrap());
        let target = Target::parse("/b/k", None, None).unwrap();
        assert!(matches!(
            Operation::select(&Method::PUT, &target, &Query::default(), &copy),
            Err(S3Error::NotImplemented { .. })
        ));
    }

    #[test]
    fn only_bucket_level_calls_are_management_events() {
        assert!(Operation::CreateBucket.management() && !Operation::CreateBucket.read_only());
        assert!(Operation::GetBucketLocation.management() && Operation::GetBucketLocation.read_only());
        assert!(!Operation::ListObjectsV2.management() && Operation::ListObjectsV2.event_name() == "ListObjects");
        assert!(!Operation::HeadBucket.management());
        assert_eq!(Operation::PutObject.access(), Access::Manage);
        assert_eq!(Operation::GetObject.access(), Access::Read);
    }

    #[test]
    fn query_parameters_are_decoded_and_presigning_ones_left_out() {
        let query = Query::parse(Some("prefix=a%2Fb&delimiter=%2F&X-Amz-Signature=00&location")).unwrap();
        assert_eq!(query.get("prefix"), Some("a/b"));
        assert!(query.has("location"));
        let kept: Vec<_> = query.client_parameters().collect();
        assert_eq!(kept, vec![("prefix", "a/b"), ("delimiter", "/"), ("location", "")]);
    }
}
