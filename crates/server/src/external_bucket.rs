//! Clients for the buckets that `[[buckets.external]]` maps to another S3-compatible service
//! (AWS S3, MinIO, Ceph RGW, …): write-once uploads of delivered log files, the bucket check
//! CreateTrail makes, and the reads and listings validate-logs needs.
//!
//! It is built on `object_store` (path-style requests, SigV4 with a signed payload). Its
//! HTTPS goes through the tree's one rustls, with the aws-lc-rs provider and the system's root
//! certificates. It never overwrites or deletes an object, and no secret reaches an error or a
//! log line. Retries inside a call are few and short: the delivery loop that calls it owns
//! the back-off, and an [`ExternalBucketError`] tells it what kind of failure it met.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::client::{HttpClient, HttpConnector, HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, RetryConfig,
};

use crate::config::ExternalBucket;

/// How long opening a TCP connection (and its TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one HTTP request may take from start to the end of its body. Log files are at
/// most a few megabytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// One quick retry covers a dropped pooled connection; anything longer is the caller's.
const MAX_RETRIES: usize = 1;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The prefix `check` lists: a name no one uses, so that the answer is an empty page.
const CHECK_PREFIX: &str = "trailkeeper-bucket-check";
/// How much of an underlying error's text is kept for logs.
const MAX_DETAIL_CHARS: usize = 600;

/// What kind of failure an external bucket reported, for callers to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalBucketErrorKind {
    /// The bucket or the key does not exist.
    NotFound,
    /// The service could not be reached, timed out or is failing (5xx): worth retrying later.
    Unreachable,
    /// The credentials were refused, or lack permission.
    Denied,
    /// Anything else: a bad request, a malformed answer, a bad configuration.
    Other,
}

/// A failure of an external bucket. [`ExternalBucketError::code`] is S3's own error code
/// (`NoSuchBucket`, `AccessDenied`, …), safe to show a user as a trail's
/// `LatestDeliveryError`; the `Display` form adds the underlying detail for logs. Neither
/// ever holds a secret: requests are signed in headers, and no header is ever quoted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("external bucket {bucket}: {code}: {detail}")]
pub struct ExternalBucketError {
    kind: ExternalBucketErrorKind,
    bucket: String,
    code: String,
    detail: String,
}

impl ExternalBucketError {
    fn new(kind: ExternalBucketErrorKind, bucket: &str, code: &str, detail: impl Into<String>) -> ExternalBucketError {
        let mut detail = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
            detail.truncate(cut);
            detail.push('…');
        }
        ExternalBucketError { kind, bucket: bucket.to_owned(), code: code.to_owned(), detail }
    }

    pub fn kind(&self) -> ExternalBucketErrorKind {
        self.kind
    }

    /// S3's error code, or the name of the transport failure (`EndpointConnectionError`,
    /// `RequestTimeout`): what GetTrailStatus shows as `LatestDeliveryError`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The local name of the bucket that failed.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// What a write-once upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the body.
    Created,
    /// An object with that key already existed; it was left as it was.
    AlreadyExists,
}

/// Every external bucket of the configuration, by its local name. Built once at startup.
pub struct ExternalBuckets {
    clients: HashMap<String, ExternalBucketClient>,
}

impl std::fmt::Debug for ExternalBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clients.values()).finish()
    }
}

impl ExternalBuckets {
    /// Builds one client per configured bucket. Nothing is contacted yet; a bucket that is
    /// down at startup only fails the calls made to it.
    pub fn new(config: &[ExternalBucket]) -> Result<ExternalBuckets, ExternalBucketError> {
        let mut clients = HashMap::with_capacity(config.len());
        if config.is_empty() {
            return Ok(ExternalBuckets { clients });
        }
        // One HTTP client for all buckets: its connection pool is keyed by host anyway.
        let connector = AwsLcConnector::new().map_err(|detail| {
            ExternalBucketError::new(ExternalBucketErrorKind::Other, &config[0].name, "InvalidConfiguration", detail)
        })?;
        for bucket in config {
            clients.insert(bucket.name.clone(), ExternalBucketClient::new(bucket, connector.clone())?);
        }
        Ok(ExternalBuckets { clients })
    }

    /// The client of the bucket with this local name, if the configuration maps it.
    pub fn get(&self, name: &str) -> Option<&ExternalBucketClient> {
        self.clients.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// One bucket on an external S3-compatible service.
pub struct ExternalBucketClient {
    name: String,
    endpoint: String,
    store: AmazonS3,
    /// Cleared the first time the service answers a conditional PUT with `NotImplemented`;
    /// from then on uploads check with HEAD before they PUT.
    conditional_put: AtomicBool,
}

impl std::fmt::Debug for ExternalBucketClient {
    // By hand, so that the credentials inside the store can never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBucketClient").field("name", &self.name).field("endpoint", &self.endpoint).finish()
    }
}

impl ExternalBucketClient {
    fn new(bucket: &ExternalBucket, connector: AwsLcConnector) -> Result<ExternalBucketClient, ExternalBucketError> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        };
        // `new()`, never `from_env()`: nothing of the process environment or of instance
        // metadata may slip in beside the configured credentials.
        let store = AmazonS3Builder::new()
            .with_endpoint(&bucket.endpoint)
            .with_region(&bucket.region)
            .with_bucket_name(&bucket.name)
            .with_access_key_id(&bucket.access_key_id)
            .with_secret_access_key(&bucket.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(bucket.endpoint.starts_with("http://"))
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(retry)
            .with_http_connector(connector)
            .build()
            .map_err(|error| {
                ExternalBucketError::new(
                    ExternalBucketErrorKind::Other,
                    &bucket.name,
                    "InvalidConfiguration",
                    error.to_string(),
                )
            })?;
        Ok(ExternalBucketClient {
            name: bucket.name.clone(),
            endpoint: bucket.endpoint.clone(),
            store,
            conditional_put: AtomicBool::new(true),
        })
    }

    /// The local name of the bucket.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Write-once upload: creates `key` unless it exists; an existing key is left untouched
    /// and reported as [`PutOutcome::AlreadyExists`] (a re-run after a crash writes the same
    /// key again). `metadata` becomes user metadata (`x-amz-meta-<name>`).
    pub async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Result<PutOutcome, ExternalBucketError> {
        let path = self.path(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        for (name, value) in metadata {
            attributes.insert(Attribute::Metadata(name.clone().into()), value.clone().into());
        }
        if self.conditional_put.load(Ordering::Relaxed) {
            // `PutMode::Create` sends `If-None-Match: *`: the service itself refuses to
            // replace an object, so two writers racing for one key cannot both win.
            let options = PutOptions { mode: PutMode::Create, attributes: attributes.clone(), ..PutOptions::default() };
            match self.store.put_opts(&path, body.clone().into(), options).await {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(object_store::Error::AlreadyExists { .. }) => return Ok(PutOutcome::AlreadyExists),
                Err(error) => {
                    let error = self.classify(&error, "NoSuchBucket");
                    if error.code != "NotImplemented" {
                        return Err(error);
                    }
                    tracing::warn!(
                        bucket = %self.name,
                        endpoint = %self.endpoint,
                        "the service does not support conditional writes (If-None-Match); checking with HEAD before each PUT"
                    );
                    self.conditional_put.store(false, Ordering::Relaxed);
                }
            }
        }
        // Fallback for services without conditional writes (older MinIO and Ceph RGW answer
        // `If-None-Match` with 501): HEAD, then PUT. It is not atomic: two writers racing for
        // one key may both PUT. Delivery writes the same bytes under the same key on a re-run,
        // so the loser of such a race replaces the file with an identical one.
        match self.store.head(&path).await {
            Ok(_) => return Ok(PutOutcome::AlreadyExists),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(self.classify(&error, "NoSuchBucket")),
        }
        let options = PutOptions { mode: PutMode::Overwrite, attributes, ..PutOptions::default() };
        self.store
            .put_opts(&path, body.into(), options)
            .await
            .map_err(|error| self.classify(&error, "NoSuchBucket"))?;
        Ok(PutOutcome::Created)
    }

    /// Reachability and existence check (CreateTrail validates the bucket): one listing of
    /// a prefix nobody uses, which answers `NoSuchBucket`, `AccessDenied` or an empty page.
    pub async fn check(&self) -> Result<(), ExternalBucketError> {
        self.store
            .list_with_delimiter(Some(&Path::from(CHECK_PREFIX)))
            .await
            .map(|_| ())
            .map_err(|error| self.classify(&error, "NoSuchBucket"))
    }

    /// The whole body of `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, ExternalBucketError> {
        let path = self.path(key)?;
        let result = self.store.get(&path).await.map_err(|error| self.classify(&error, "NoSuchKey"))?;
        result.bytes().await.map_err(|error| self.classify(&error, "NoSuchKey"))
    }

    /// Every key under the folder `prefix`, in the service's order (lexicographic on S3).
    /// The prefix is taken as whole path segments: `AWSLogs/1234` lists
    /// `AWSLogs/1234/…`, not `AWSLogs/12345/…`. An empty prefix lists the whole bucket.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ExternalBucketError> {
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() { None } else { Some(self.path(prefix)?) };
        self.store
            .list(prefix.as_ref())
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|error| self.classify(&error, "NoSuchBucket"))
    }

    /// An object key as `object_store` takes it. Keys with empty segments (`a//b`, a leading
    /// or trailing `/`) or `.`/`..` segments are refused rather than silently changed.
    fn path(&self, key: &str) -> Result<Path, ExternalBucketError> {
        if key.is_empty() || key.len() > 1024 {
            return Err(ExternalBucketError::new(
                ExternalBucketErrorKind::Other,
                &self.name,
                "InvalidArgument",
                format!("object keys are 1 to 1024 bytes long, not {}", key.len()),
            ));
        }
        let invalid = |detail: String| {
            ExternalBucketError::new(ExternalBucketErrorKind::Other, &self.name, "InvalidArgument", detail)
        };
        // `Path::parse` would drop a leading or trailing `/`, and so write another key.
        if key.starts_with('/') || key.ends_with('/') {
            return Err(invalid(format!("object key {key:?} begins or ends with /")));
        }
        Path::parse(key).map_err(|error| invalid(error.to_string()))
    }

    /// Turns an `object_store` error into a kind and S3's error code. `missing` is the code
    /// for a bare 404 without a body (HEAD requests): `NoSuchKey` or `NoSuchBucket`.
    fn classify(&self, error: &object_store::Error, missing: &str) -> ExternalBucketError {
        let detail = error.to_string();
        let (kind, code) = classify(error, &detail, missing);
        ExternalBucketError::new(kind, &self.name, &code, detail)
    }
}

/// S3 error codes that mean the credentials were refused or lack permission.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "InvalidSecurity",
    "InvalidToken",
    "ExpiredToken",
    "SignatureDoesNotMatch",
    "RequestTimeTooSkewed",
    "NotSignedUp",
];
/// S3 error codes that mean the service is failing for now.
const TRANSIENT_CODES: &[&str] = &["InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"];

/// The kind and code of an error: a transport failure first, then S3's `<Code>` from the
/// error body, then `object_store`'s own variant, then the HTTP status.
fn classify(error: &object_store::Error, detail: &str, missing: &str) -> (ExternalBucketErrorKind, String) {
    use ExternalBucketErrorKind::{Denied, NotFound, Other, Unreachable};
    if let Some(kind) = transport_failure(error) {
        return match kind {
            HttpErrorKind::Timeout => (Unreachable, "RequestTimeout".to_owned()),
            HttpErrorKind::Decode => (Other, "InvalidResponse".to_owned()),
            // Connect, Request, Interrupted: refused, reset or closed connections, DNS and
            // TLS handshake failures. botocore calls these EndpointConnectionError.
            _ => (Unreachable, "EndpointConnectionError".to_owned()),
        };
    }
    let status = http_status(detail);
    if let Some(code) = s3_error_code(detail) {
        let kind = match code {
            "NoSuchBucket" | "NoSuchKey" => NotFound,
            _ if DENIED_CODES.contains(&code) => Denied,
            _ if TRANSIENT_CODES.contains(&code) => Unreachable,
            // Services name refusals their own way (s3s: NotSignedUp for an unknown key).
            _ if matches!(status, Some(401 | 403)) => Denied,
            _ if status.is_some_and(|status| status >= 500 && status != 501) => Unreachable,
            _ => Other,
        };
        return (kind, code.to_owned());
    }
    match error {
        object_store::Error::NotFound { .. } => return (NotFound, missing.to_owned()),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            return (Denied, "AccessDenied".to_owned());
        }
        _ => {}
    }
    match status {
        Some(404) => (NotFound, missing.to_owned()),
        Some(401 | 403) => (Denied, "AccessDenied".to_owned()),
        Some(501) => (Other, "NotImplemented".to_owned()),
        Some(503) => (Unreachable, "ServiceUnavailable".to_owned()),
        Some(status) if status >= 500 => (Unreachable, "InternalError".to_owned()),
        _ => (Other, "InternalError".to_owned()),
    }
}

/// The kind of the transport error under `error`, if the request never got an HTTP answer.
fn transport_failure(error: &object_store::Error) -> Option<HttpErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(http) = current.downcast_ref::<HttpError>() {
            return Some(http.kind());
        }
        source = current.source();
    }
    None
}

/// The status `object_store` quotes in its error text ("… status code: 404 Not Found: …").
/// Its retry error type, which holds the status, is private to the crate.
fn http_status(detail: &str) -> Option<u16> {
    let (_, rest) = detail.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// The `<Code>` of an S3 error body quoted in the error text.
fn s3_error_code(detail: &str) -> Option<&str> {
    let (_, rest) = detail.split_once("<Code>")?;
    let (code, _) = rest.split_once("</Code>")?;
    let code = code.trim();
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

/// Builds `object_store`'s HTTP client: reqwest over the tree's rustls with the aws-lc-rs
/// provider and the system's root certificates. `object_store`'s own connector would pick
/// rustls' process-wide default provider, or ring when none is installed.
#[derive(Debug, Clone)]
struct AwsLcConnector {
    client: reqwest::Client,
}

impl AwsLcConnector {
    fn new() -> Result<AwsLcConnector, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        // Unparsable entries in the system store are skipped, as every rustls client does.
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::warn!(
                errors = ?native.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "no system root certificates found; https:// external buckets will fail their TLS handshake"
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("cannot set up TLS: {error}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // S3 is spoken over HTTP/1.1, as `object_store` does by default.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .http1_only()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            // The content length of an object must be what was stored, never decoded.
            .no_gzip()
            .user_agent(concat!("trailkeeper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(AwsLcConnector { client })
    }
}

impl HttpConnector for AwsLcConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.client.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s3_error_code_is_read_from_the_quoted_body() {
        let detail = "Generic S3 error: Error performing GET http://127.0.0.1:9000/logs?list-type=2 in 2ms - \
                      Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                      <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(s3_error_code(detail), Some("NoSuchBucket"));
        assert_eq!(http_status(detail), Some(404));
    }

    #[test]
    fn odd_text_in_place_of_a_code_is_ignored() {
        assert_eq!(s3_error_code("<Code>not a code</Code>"), None);
        assert_eq!(s3_error_code("<Code></Code>"), None);
        assert_eq!(s3_error_code("<Code>NoEnd"), None);
        assert_eq!(http_status("status code: 4"), None);
        assert_eq!(http_status("no status here"), None);
    }

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: text.to_owned().into() }
    }

    #[test]
    fn codes_decide_the_kind() {
        let cases = [
            ("status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>", ExternalBucketErrorKind::NotFound),
            ("status code: 403 Forbidden: <Error><Code>AccessDenied</Code></Error>", ExternalBucketErrorKind::Denied),
            (
                "status code: 403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code></Error>",
                ExternalBucketErrorKind::Denied,
            ),
            (
                "status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>",
                ExternalBucketErrorKind::Unreachable,
            ),
            (
                "status code: 502 Bad Gateway: <Error><Code>BadGateway</Code></Error>",
                ExternalBucketErrorKind::Unreachable,
            ),
            (
                "status code: 501 Not Implemented: <Error><Code>NotImplemented</Code></Error>",
                ExternalBucketErrorKind::Other,
            ),
            (
                "status code: 400 Bad Request: <Error><Code>InvalidArgument</Code></Error>",
                ExternalBucketErrorKind::Other,
            ),
        ];
        for (text, kind) in cases {
            let error = generic(text);
            assert_eq!(classify(&error, &error.to_string(), "NoSuchKey").0, kind, "{text}");
        }
    }

    #[test]
    fn a_bare_status_falls_back_to_the_variant_or_the_status() {
        let not_found = object_store::Error::NotFound { path: "a/b".to_owned(), source: "404".into() };
        assert_eq!(
            classify(&not_found, &not_found.to_string(), "NoSuchKey"),
            (ExternalBucketErrorKind::NotFound, "NoSuchKey".to_owned())
        );
        let denied = object_store::Error::PermissionDenied { path: "a/b".to_owned(), source: "403".into() };
        assert_eq!(
            classify(&denied, &denied.to_string(), "NoSuchKey"),
            (ExternalBucketErrorKind::Denied, "AccessDenied".to_owned())
        );
        let failing = generic("Server returned non-2xx status code: 500 Internal Server Error: ");
        assert_eq!(
            classify(&failing, &failing.to_string(), "NoSuchKey"),
            (ExternalBucketErrorKind::Unreachable, "InternalError".to_owned())
        );
    }

    #[test]
    fn transport_failures_are_unreachable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(HttpErrorKind::Connect, refused)),
        };
        assert_eq!(
            classify(&error, &error.to_string(), "NoSuchKey"),
            (ExternalBucketErrorKind::Unreachable, "EndpointConnectionError".to_owned())
        );
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let error = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(HttpErrorKind::Timeout, slow)),
        };
        assert_eq!(classify(&error, &error.to_string(), "NoSuchKey").1, "RequestTimeout");
    }

    #[test]
    fn long_details_are_cut_and_debug_shows_no_secret() {
        let error = ExternalBucketError::new(ExternalBucketErrorKind::Other, "logs", "InternalError", "x".repeat(5000));
        assert!(error.to_string().len() < 700);
        let bucket = ExternalBucket {
            name: "logs".to_owned(),
            endpoint: "http://127.0.0.1:1".to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "very-secret-key-value".to_owned(),
        };
        let buckets = ExternalBuckets::new(std::slice::from_ref(&bucket)).unwrap();
        let shown = format!("{buckets:?} {bucket:?}");
        assert!(shown.contains("logs") && !shown.contains("very-secret-key-value"), "{shown}");
    }

    #[test]
    fn keys_that_object_store_would_rewrite_are_refused() {
        let bucket = ExternalBucket {
            name: "logs".to_owned(),
            endpoint: "http://127.0.0.1:1".to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "secret".to_owned(),
        };
        let buckets = ExternalBuckets::new(&[bucket]).unwrap();
        let client = buckets.get("logs").unwrap();
        for key in ["", "/a", "a/", "a//b", "a/../b", "a/./b"] {
            let error = client.path(key).unwrap_err();
            assert_eq!((error.kind(), error.code()), (ExternalBucketErrorKind::Other, "InvalidArgument"), "{key:?}");
        }
        assert!(client.path("AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/x.json.gz").is_ok());
        assert!(buckets.get("other").is_none());
    }
}
