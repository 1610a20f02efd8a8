//! `ExternalBucketClient` against a real S3-compatible server: s3s-fs (filesystem-backed,
//! with SigV4), installed into `<repo>/.tools` by `scripts/install-test-tools`. A missing
//! binary fails these tests; they never skip. One test uses a small fake service that
//! refuses conditional writes, to drive the HEAD-then-PUT fallback no real server here needs.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use trailkeeper_server::config::ExternalBucket;
use trailkeeper_server::external_bucket::{ExternalBucketErrorKind, ExternalBuckets, PutOutcome};

const ACCESS_KEY_ID: &str = "AKIAS3SFSTEST0000001";
const SECRET_ACCESS_KEY: &str = "s3s-fs-test-secret-key";

/// The s3s-fs binary: `$TRAILKEEPER_S3S_FS`, or the one `scripts/install-test-tools` puts
/// into `<repo>/.tools/bin`.
fn s3s_fs_binary() -> PathBuf {
    let path = std::env::var_os("TRAILKEEPER_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/s3s-fs"));
    assert!(
        path.is_file(),
        "s3s-fs is not installed at {}: run scripts/install-test-tools (scripts/test does it first)",
        path.display()
    );
    path
}

/// One s3s-fs process on 127.0.0.1 with a port of its choosing, killed on drop.
struct S3sFs {
    child: Child,
    endpoint: String,
    root: tempfile::TempDir,
    log: PathBuf,
}

impl S3sFs {
    fn start(buckets: &[&str]) -> S3sFs {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        for bucket in buckets {
            std::fs::create_dir_all(data.join(bucket)).unwrap();
        }
        let log = root.path().join("s3s-fs.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(s3s_fs_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--access-key",
                ACCESS_KEY_ID,
                "--secret-key",
                SECRET_ACCESS_KEY,
            ])
            .arg(&data)
            .env("RUST_LOG", "s3s_fs=info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        let mut server = S3sFs { child, endpoint: String::new(), root, log };
        server.endpoint = server.wait_for_address();
        server
    }

    /// s3s-fs binds port 0 and logs the address it got.
    fn wait_for_address(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut text = String::new();
            std::fs::File::open(&self.log).unwrap().read_to_string(&mut text).unwrap();
            if let Some((_, rest)) = text.split_once("server is running at ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("s3s-fs exited with {status} before listening:\n{text}");
            }
            assert!(Instant::now() < deadline, "s3s-fs did not report its address within 20 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn bucket(&self, name: &str) -> ExternalBucket {
        external(name, &self.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn external(name: &str, endpoint: &str, access_key_id: &str, secret_access_key: &str) -> ExternalBucket {
    ExternalBucket {
        name: name.to_owned(),
        endpoint: endpoint.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: access_key_id.to_owned(),
        secret_access_key: secret_access_key.to_owned(),
    }
}

const LOG_KEY: &str =
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/123456789012_CloudTrail_us-east-1_20260102T0305Z_abc.json.gz";

#[tokio::test]
async fn write_once_upload_keeps_the_first_body_and_its_metadata() {
    let server = S3sFs::start(&["trail-logs"]);
    let buckets = ExternalBuckets::new(&[server.bucket("trail-logs")]).unwrap();
    let client = buckets.get("trail-logs").unwrap();
    client.check().await.unwrap();

    let metadata = [("trail-arn".to_owned(), "arn:aws:cloudtrail:us-east-1:123456789012:trail/t".to_owned())];
    let first = Bytes::from_static(b"\x1f\x8bfirst body");
    let outcome = client.put_if_absent(LOG_KEY, first.clone(), "application/x-gzip", &metadata).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    let again = client.put_if_absent(LOG_KEY, Bytes::from_static(b"second body"), "application/x-gzip", &[]).await;
    assert_eq!(again.unwrap(), PutOutcome::AlreadyExists);
    assert_eq!(client.get(LOG_KEY).await.unwrap(), first);

    // Read back with a plain object_store client: the content type and user metadata
    // (x-amz-meta-trail-arn) arrived as sent.
    let store = AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_region("us-east-1")
        .with_bucket_name("trail-logs")
        .with_access_key_id(ACCESS_KEY_ID)
        .with_secret_access_key(SECRET_ACCESS_KEY)
        .with_allow_http(true)
        .build()
        .unwrap();
    let got = store.get(&object_store::path::Path::parse(LOG_KEY).unwrap()).await.unwrap();
    let attributes = got.attributes.clone();
    assert_eq!(attributes.get(&object_store::Attribute::ContentType).map(|v| v.as_ref()), Some("application/x-gzip"));
    assert_eq!(
        attributes.get(&object_store::Attribute::Metadata("trail-arn".into())).map(|v| v.as_ref()),
        Some("arn:aws:cloudtrail:us-east-1:123456789012:trail/t")
    );
    // The bytes on disk under the server's root are the first body.
    let on_disk = std::fs::read(server.root.path().join("data/trail-logs").join(LOG_KEY)).unwrap();
    assert_eq!(on_disk, first);
}

#[tokio::test]
async fn list_returns_every_key_under_a_folder_prefix() {
    let server = S3sFs::start(&["trail-logs"]);
    let buckets = ExternalBuckets::new(&[server.bucket("trail-logs")]).unwrap();
    let client = buckets.get("trail-logs").unwrap();
    let keys = [
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/a.json.gz",
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/03/b.json.gz",
        "AWSLogs/1234567890123/CloudTrail/us-east-1/2026/01/02/c.json.gz",
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d.json.gz",
    ];
    for key in keys {
        let outcome = client.put_if_absent(key, Bytes::from(key.as_bytes().to_vec()), "application/json", &[]).await;
        assert_eq!(outcome.unwrap(), PutOutcome::Created);
    }
    let mut listed = client.list("AWSLogs/123456789012/CloudTrail/").await.unwrap();
    listed.sort();
    assert_eq!(listed, [keys[0], keys[1]]);
    let mut all = client.list("").await.unwrap();
    all.sort();
    let mut expected = keys.to_vec();
    expected.sort();
    assert_eq!(all, expected);
    assert!(client.list("AWSLogs/999999999999").await.unwrap().is_empty());
}

#[tokio::test]
async fn failures_carry_s3_codes_and_kinds() {
    let server = S3sFs::start(&["trail-logs"]);
    let buckets = ExternalBuckets::new(&[
        server.bucket("trail-logs"),
        server.bucket("missing-bucket"),
        external("wrong-secret", &server.endpoint, ACCESS_KEY_ID, "not-the-secret"),
        external("unknown-key", &server.endpoint, "AKIANOBODY0000000001", SECRET_ACCESS_KEY),
    ])
    .unwrap();

    let error = buckets.get("trail-logs").unwrap().get("AWSLogs/none.json.gz").await.unwrap_err();
    assert_eq!((error.kind(), error.code()), (ExternalBucketErrorKind::NotFound, "NoSuchKey"), "{error}");

    let missing = buckets.get("missing-bucket").unwrap();
    let error = missing.check().await.unwrap_err();
    assert_eq!((error.kind(), error.code()), (ExternalBucketErrorKind::NotFound, "NoSuchBucket"), "{error}");
    // (s3s-fs 0.14 accepts a PutObject into a missing bucket and creates its folder, where
    // AWS S3 answers NoSuchBucket; so an upload is not tried here.)

    for name in ["wrong-secret", "unknown-key"] {
        let client = buckets.get(name).unwrap();
        let error = client.check().await.unwrap_err();
        assert_eq!(error.kind(), ExternalBucketErrorKind::Denied, "{name}: {error}");
        let error = client.put_if_absent(LOG_KEY, Bytes::from_static(b"x"), "application/json", &[]).await.unwrap_err();
        assert_eq!(error.kind(), ExternalBucketErrorKind::Denied, "{name}: {error}");
        // Neither the code nor the logged text quotes a secret.
        assert!(!error.to_string().contains(SECRET_ACCESS_KEY) && !error.to_string().contains("not-the-secret"));
    }
    // Nothing was written by the refused uploads.
    assert!(buckets.get("trail-logs").unwrap().list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // A socket bound but never listening holds the port, so connections to it are refused
    // and no other test's server can take it while this one runs (a dropped listener's
    // port could be handed to the next server started).
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let buckets = ExternalBuckets::new(&[external("trail-logs", &endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)]).unwrap();
    let client = buckets.get("trail-logs").unwrap();
    let started = Instant::now();
    let error = client.check().await.unwrap_err();
    assert_eq!((error.kind(), error.code()), (ExternalBucketErrorKind::Unreachable, "EndpointConnectionError"));
    let error = client.put_if_absent(LOG_KEY, Bytes::from_static(b"x"), "application/json", &[]).await.unwrap_err();
    assert_eq!(error.kind(), ExternalBucketErrorKind::Unreachable, "{error}");
    // One short retry at most: the caller's back-off decides what happens next.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// A fake S3 service that answers conditional PUTs with 501 NotImplemented, as older MinIO
/// and Ceph RGW releases do, and stores plain PUTs. It checks no signature.
async fn start_service_without_conditional_writes() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    let objects: Arc<Mutex<std::collections::HashMap<String, Bytes>>> = Arc::default();
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = requests.clone();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let objects = objects.clone();
        let seen = seen.clone();
        async move {
            let key = uri.path().to_owned();
            let conditional = headers.contains_key("if-none-match");
            seen.lock().unwrap().push(format!("{method}{}", if conditional { " If-None-Match" } else { "" }));
            let stored = objects.lock().unwrap().get(&key).cloned();
            let found = |body: &Bytes| {
                [
                    ("content-length", body.len().to_string()),
                    ("etag", "\"0123456789abcdef\"".to_owned()),
                    ("last-modified", "Fri, 02 Jan 2026 03:05:00 GMT".to_owned()),
                ]
            };
            match (method, stored) {
                (Method::PUT, _) if conditional => (
                    StatusCode::NOT_IMPLEMENTED,
                    "<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>",
                )
                    .into_response(),
                (Method::PUT, _) => {
                    objects.lock().unwrap().insert(key, body);
                    (StatusCode::OK, [("etag", "\"0123456789abcdef\"")]).into_response()
                }
                (Method::HEAD, Some(body)) => (StatusCode::OK, found(&body)).into_response(),
                (Method::GET, Some(body)) => (StatusCode::OK, found(&body), body).into_response(),
                (_, None) => StatusCode::NOT_FOUND.into_response(),
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (endpoint, requests)
}

#[tokio::test]
async fn without_conditional_writes_uploads_check_with_head_first() {
    let (endpoint, requests) = start_service_without_conditional_writes().await;
    let buckets = ExternalBuckets::new(&[external("trail-logs", &endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)]).unwrap();
    let client = buckets.get("trail-logs").unwrap();
    let first = Bytes::from_static(b"first");
    assert_eq!(
        client.put_if_absent(LOG_KEY, first.clone(), "application/json", &[]).await.unwrap(),
        PutOutcome::Created
    );
    let again = client.put_if_absent(LOG_KEY, Bytes::from_static(b"second"), "application/json", &[]).await;
    assert_eq!(again.unwrap(), PutOutcome::AlreadyExists);
    assert_eq!(client.get(LOG_KEY).await.unwrap(), first);
    let requests = requests.lock().unwrap().clone();
    // The 501 is retried once by object_store, then the client stops asking for conditional
    // writes: the second upload goes straight to HEAD.
    assert_eq!(requests, ["PUT If-None-Match", "PUT If-None-Match", "HEAD", "PUT", "HEAD", "GET"]);
}
