//! The built-in S3-compatible bucket store, served on Trailkeeper's own endpoint: trails
//! deliver log files into its buckets, and users read them with `aws s3`, `aws s3api` and
//! boto3 pointed at `--endpoint-url`.
//!
//! A request goes through one pipeline, like the JSON API's: read the body → find the
//! bucket and key (path-style, or virtual-hosted under `buckets.domain`) → SigV4 for
//! service `s3` (an `aws-chunked` upload decoded, chunk signatures checked) → pick the
//! [`request::Operation`] → rate limit → role and account checks → run it against the
//! [`BucketStore`] on the blocking pool → record it in the caller's history (self-audit) →
//! answer in S3's REST-XML, errors as S3's `<Error>` documents.
//!
//! - `store` / `object_file`: the on-disk store (crash-safe, write-once objects).
//! - `request`: addressing, query parameters, operation selection.
//! - `bucket_ops` / `object_ops`: the operations, one function each.
//! - `xml`: the documents on the wire. `error`: every failure in S3's words.
//!
//! It must never answer a call it did not record, show one account's buckets to another,
//! or overwrite or delete a locked object.

mod bucket_ops;
mod error;
mod object_file;
mod object_ops;
mod request;
mod store;
mod xml;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub use error::S3Error;
pub use store::{
    BucketInfo, BucketStore, ListQuery, Listing, MAX_KEY_BYTES, ObjectHead, ObjectInfo, ObjectMetadata, PutOutcome,
    StoredObject, is_valid_bucket_name,
};

use crate::api::{AuthFailure, Caller, ConnectionInfo, new_request_id, verify_request};
use crate::audit::{self, AuditResource, CallEvent};
use crate::state::AppState;
use request::{Operation, Query, Target};

/// S3's limit on the `x-amz-meta-*` headers of one object, names and values together.
pub const MAX_USER_METADATA_BYTES: usize = 2048;
pub const EVENT_SOURCE: &str = "s3.amazonaws.com";

/// One authenticated call, as the operations see it.
pub(crate) struct Call<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    operation: Operation,
    target: &'a Target,
    query: &'a Query,
    headers: &'a HeaderMap,
    /// The payload: the body as sent, or an `aws-chunked` upload's decoded bytes.
    payload: Bytes,
    /// An `aws-chunked` upload's trailing headers (checksums).
    trailers: Vec<(String, String)>,
}

impl Call<'_> {
    /// The bucket an operation on a bucket or object names; the selection guarantees one.
    fn bucket_name(&self) -> &str {
        self.target.bucket.as_deref().unwrap_or_default()
    }

    fn key(&self) -> &str {
        self.target.key.as_deref().unwrap_or_default()
    }
}

/// Serves one S3 request. HEAD answers carry no body, errors included.
pub async fn handle(state: AppState, connection: ConnectionInfo, request: Request) -> Response {
    let request_id = new_request_id();
    let is_head = request.method() == Method::HEAD;
    let mut response = match serve(&state, &connection, request, &request_id).await {
        Ok(response) => response,
        Err(error) => error_response(&error, is_head, &request_id),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&xml::host_id(&request_id)) {
        headers.insert("x-amz-id-2", value);
    }
    response
}

fn error_response(error: &S3Error, is_head: bool, request_id: &str) -> Response {
    error.log_cause();
    if is_head {
        return error.status().into_response();
    }
    xml_response(error.status(), xml::error_body(error, request_id))
}

pub(crate) fn xml_response(status: StatusCode, document: String) -> Response {
    let mut response = (status, document).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

async fn serve(
    state: &AppState,
    connection: &ConnectionInfo,
    request: Request,
    request_id: &str,
) -> Result<Response, S3Error> {
    let (parts, body) = request.into_parts();
    let limit = state.config.max_request_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| S3Error::EntityTooLarge { limit })?;
    let host = request::host(&parts.headers, parts.uri.authority().map(|authority| authority.as_str()));
    let target = Target::parse(parts.uri.path(), host.as_deref(), state.config.buckets.domain.as_deref())?;
    let query = Query::parse(parts.uri.query())?;
    if is_signature_version_2(&parts.headers, &query) {
        return Err(S3Error::InvalidRequest {
            message: "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
                .to_owned(),
        });
    }
    let authenticated =
        verify_request(state, connection, &parts, &body, "s3", request_id).map_err(|failure| match failure {
            AuthFailure::SigV4(error) => S3Error::Auth(error),
            AuthFailure::UnknownAccessKey { access_key_id } => S3Error::InvalidAccessKeyId { access_key_id },
            AuthFailure::UnsignedPayload => S3Error::Internal,
        })?;
    let caller = authenticated.caller;
    let operation = Operation::select(&parts.method, &target, &query, &parts.headers)?;
    if !state.limiter.try_acquire(&caller.principal.access_key_id) {
        return Err(S3Error::SlowDown);
    }
    let (payload, trailers) = match authenticated.streamed {
        Some(decoded) => (Bytes::from(decoded.body), decoded.trailers),
        None => (body, Vec::new()),
    };
    let call = Call {
        state,
        caller: &caller,
        operation,
        target: &target,
        query: &query,
        headers: &parts.headers,
        payload,
        trailers,
    };
    let (outcome, bucket) = run(&call).await;
    let message = outcome.as_ref().err().map(ToString::to_string);
    let error = outcome.as_ref().err().map(S3Error::code).zip(message.as_deref());
    let mut audited = caller.clone();
    if let Some(bucket) = &bucket {
        // S3 records a call in the Region of the bucket it touched.
        audited.region = bucket.region.clone();
    }
    audit::record(state, &audited, audit_event(&call, bucket.as_ref(), host.as_deref(), error))
        .await
        .map_err(|failure| S3Error::from_api(&failure))?;
    state.metrics.count_operation(operation.name(), outcome.is_ok());
    outcome
}

/// Signature Version 2 (`Authorization: AWS key:signature`, or the `AWSAccessKeyId` and
/// `Signature` query parameters that AWS CLI v1's `s3 presign` writes), which S3 has retired.
fn is_signature_version_2(headers: &HeaderMap, query: &Query) -> bool {
    let header = headers.get(header::AUTHORIZATION).is_some_and(|value| value.as_bytes().starts_with(b"AWS "));
    header || (query.has("AWSAccessKeyId") && query.has("Signature"))
}

/// Checks the caller's role and reach, then runs the operation. Also returns the bucket the
/// call touched, when the caller may know it, for the audit record.
async fn run(call: &Call<'_>) -> (Result<Response, S3Error>, Option<BucketInfo>) {
    let principal = &call.caller.principal;
    if !principal.role.allows(call.operation.access()) {
        return (Err(S3Error::AccessDenied), None);
    }
    match call.operation {
        Operation::ListBuckets => return (bucket_ops::list_buckets(call), None),
        Operation::CreateBucket => {
            let outcome = bucket_ops::create_bucket(call).await;
            let bucket = outcome.as_ref().ok().and_then(|_| call.state.buckets.bucket(call.bucket_name()));
            return (outcome, bucket);
        }
        _ => {}
    }
    let Some(bucket) = call.state.buckets.bucket(call.bucket_name()) else {
        return (Err(S3Error::NoSuchBucket { bucket: call.bucket_name().to_owned() }), None);
    };
    if !principal.reaches(&bucket.owner_account_id) {
        return (Err(S3Error::AccessDenied), None);
    }
    let outcome = match call.operation {
        Operation::DeleteBucket => bucket_ops::delete_bucket(call).await,
        Operation::HeadBucket => Ok(bucket_ops::head_bucket(&bucket)),
        Operation::GetBucketLocation => Ok(xml_response(StatusCode::OK, xml::location(&bucket.region))),
        Operation::ListObjects => bucket_ops::list_objects(call, &bucket, false),
        Operation::ListObjectsV2 => bucket_ops::list_objects(call, &bucket, true),
        Operation::GetObject => object_ops::get_object(call, false).await,
        Operation::HeadObject => object_ops::get_object(call, true).await,
        Operation::PutObject => object_ops::put_object(call).await,
        Operation::DeleteObject => object_ops::delete_object(call).await,
        Operation::ListBuckets | Operation::CreateBucket => Err(S3Error::Internal),
    };
    (outcome, Some(bucket))
}

/// Runs store work on the blocking pool (it syncs files).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&BucketStore) -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state.buckets)).await.map_err(|_| S3Error::Internal)?
}

/// The call as CloudTrail records an S3 call: `requestParameters` with `bucketName`, `Host`,
/// the key and the listing parameters; the bucket (and object) as resources.
fn audit_event<'a>(
    call: &Call<'_>,
    bucket: Option<&BucketInfo>,
    host: Option<&str>,
    error: Option<(&'a str, &'a str)>,
) -> CallEvent<'a> {
    let operation = call.operation;
    let mut parameters = Map::new();
    if let Some(name) = &call.target.bucket {
        parameters.insert("bucketName".to_owned(), Value::String(name.clone()));
    }
    parameters.insert("Host".to_owned(), Value::String(host.unwrap_or_default().to_owned()));
    match operation {
        Operation::ListObjects | Operation::ListObjectsV2 => {
            for (name, value) in call.query.client_parameters() {
                parameters.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        Operation::GetBucketLocation => {
            parameters.insert("location".to_owned(), Value::String(String::new()));
        }
        Operation::CreateBucket => {
            if let Ok(Some(constraint)) = bucket_ops::location_constraint(&call.payload) {
                parameters.insert(
                    "CreateBucketConfiguration".to_owned(),
                    json!({"LocationConstraint": constraint, "xmlns": xml::S3_NAMESPACE}),
                );
            }
        }
        _ if operation.is_object_level() => {
            parameters.insert("key".to_owned(), Value::String(call.key().to_owned()));
        }
        _ => {}
    }
    let mut resources = Vec::new();
    if let Some(name) = &call.target.bucket {
        if operation.is_object_level() {
            resources.push(AuditResource {
                account_id: None,
                resource_type: "AWS::S3::Object".to_owned(),
                arn: format!("arn:aws:s3:::{name}/{}", call.key()),
            });
        }
        resources.push(AuditResource {
            account_id: bucket.map(|bucket| bucket.owner_account_id.clone()),
            resource_type: "AWS::S3::Bucket".to_owned(),
            arn: format!("arn:aws:s3:::{name}"),
        });
    }
    CallEvent {
        event_source: EVENT_SOURCE,
        event_name: operation.event_name(),
        read_only: operation.read_only(),
        management: operation.management(),
        resources,
        request_parameters: Value::Object(parameters),
        response_elements: Value::Null,
        error,
    }
}
