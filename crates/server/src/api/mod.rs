//! The wire: one HTTP endpoint that speaks each AWS protocol a client may use, turns every
//! request into a verified principal plus one operation, and every failure into AWS's
//! error shape.
//!
//! Protocols plug in here by how a request looks: `X-Amz-Target` means AWS JSON 1.1
//! ([`json_protocol`]); a form-encoded POST is the query protocol of SNS ([`crate::sns`]);
//! `/v1/records` is Trailkeeper's ingest API and `/v1/integrity/*` its integrity API
//! ([`crate::integrity::api`]); every other request is S3's REST protocol
//! ([`crate::s3`]), for the built-in bucket store. Nothing below this
//! layer knows about HTTP.

pub mod error;
pub mod json_protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use trailkeeper_sigv4::{
    DecodedPayload, RequestParts, SigV4Error, UNRECOGNIZED_CLIENT_CODE, UNRECOGNIZED_CLIENT_MESSAGE,
};

use crate::identity::Principal;
use crate::integrity::api as integrity;
use crate::state::AppState;
pub use error::ApiError;

/// What the transport knows about a connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub tls: Option<TlsInfo>,
}

/// CloudTrail's `tlsDetails` of a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher_suite: String,
}

/// A request that passed SigV4: who made it, where from, for which Region.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub region: String,
    pub request_id: String,
    pub source_ip: String,
    pub user_agent: String,
    pub host: Option<String>,
    pub tls: Option<TlsInfo>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/records", post(crate::ingest::handle))
        .route("/v1/integrity/checkpoint", get(integrity::get_checkpoint).post(integrity::sign_checkpoint))
        .route("/v1/integrity/inclusion-proof", get(integrity::inclusion_proof))
        .route("/v1/integrity/consistency-proof", get(integrity::consistency_proof))
        .route("/v1/integrity/trees", get(integrity::list_trees))
        .route("/v1/integrity/digest-chains", get(integrity::digest_chains))
        .fallback(dispatch)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.log.stats(), state.merkle.through_seq()),
    )
        .into_response()
}

/// Every request that is not a fixed route: picked by protocol.
async fn dispatch(
    State(state): State<AppState>,
    Extension(connection): Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    if request.headers().contains_key("x-amz-target") {
        return json_protocol::handle(state, connection, request).await;
    }
    if crate::sns::is_query_request(&request) {
        return crate::sns::handle(state, connection, request).await;
    }
    // Everything else is S3's REST protocol, where the path (or the Host) names a bucket and key.
    crate::s3::handle(state, connection, request).await
}

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A successful JSON answer: the body, its content type and the request ID header.
pub fn json_ok(body: String, content_type: &'static str, request_id: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Reads the whole body, refusing more than the configured limit.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            "RequestEntityTooLargeException",
            format!("The request body exceeds the limit of {limit} bytes."),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    })
}

/// Why SigV4 authentication failed, before a protocol puts it in its own words (the JSON
/// protocol's `__type`s here, S3's error codes in [`crate::s3`]).
#[derive(Debug)]
pub enum AuthFailure {
    SigV4(SigV4Error),
    /// No principal has this access key ID.
    UnknownAccessKey {
        access_key_id: String,
    },
    /// `UNSIGNED-PAYLOAD` sent to an API whose body must be signed.
    UnsignedPayload,
}

impl AuthFailure {
    /// The failure as an AWS JSON protocol error.
    pub fn into_api_error(self) -> ApiError {
        match self {
            AuthFailure::SigV4(error) => ApiError::from_sigv4(error),
            AuthFailure::UnknownAccessKey { .. } => {
                ApiError::new(UNRECOGNIZED_CLIENT_CODE, UNRECOGNIZED_CLIENT_MESSAGE, StatusCode::BAD_REQUEST)
            }
            AuthFailure::UnsignedPayload => ApiError::client(
                "InvalidSignatureException",
                "UNSIGNED-PAYLOAD is not accepted by this API; sign the request body.",
            ),
        }
    }
}

/// A request that passed SigV4.
#[derive(Debug)]
pub struct Authenticated {
    pub caller: Caller,
    /// An S3 streaming upload's payload, its `aws-chunked` framing removed and every chunk
    /// signature checked; `None` when the body is the payload as it is.
    pub streamed: Option<DecodedPayload>,
}

/// Verifies SigV4 for `service` and finds the principal behind the access key.
pub fn authenticate(
    state: &AppState,
    connection: &ConnectionInfo,
    parts: &axum::http::request::Parts,
    body: &[u8],
    service: &str,
    request_id: &str,
) -> Result<Caller, ApiError> {
    verify_request(state, connection, parts, body, service, request_id)
        .map(|authenticated| authenticated.caller)
        .map_err(AuthFailure::into_api_error)
}

/// [`authenticate`] with the failure left for the protocol to word, and an S3 streaming
/// upload's body decoded.
pub fn verify_request(
    state: &AppState,
    connection: &ConnectionInfo,
    parts: &axum::http::request::Parts,
    body: &[u8],
    service: &str,
    request_id: &str,
) -> Result<Authenticated, AuthFailure> {
    let headers: Vec<(&str, &[u8])> =
        parts.headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let authorization = trailkeeper_sigv4::parse_authorization(&request).map_err(AuthFailure::SigV4)?;
    let Some((principal, secret)) = state.identities.find(&authorization.access_key_id) else {
        return Err(AuthFailure::UnknownAccessKey { access_key_id: authorization.access_key_id });
    };
    // The Region is the caller's choice (it picks whose Event History is read); the service is not.
    authorization.check_scope(&authorization.region, service).map_err(AuthFailure::SigV4)?;
    trailkeeper_sigv4::verify(&request, &authorization, secret.expose(), now_ms() / 1000)
        .map_err(AuthFailure::SigV4)?;
    // An unsigned payload would leave the body (the records, the parameters) outside the
    // signature; only S3 object uploads may do that.
    let unsigned = parts
        .headers
        .get("x-amz-content-sha256")
        .is_some_and(|value| value.as_bytes().starts_with(b"UNSIGNED-PAYLOAD"));
    if unsigned && !trailkeeper_sigv4::is_s3_style_service(service) {
        return Err(AuthFailure::UnsignedPayload);
    }
    // `verify` accepts streaming modes for S3 only; their chunks are checked here, before
    // anything reads the body.
    let streamed = if trailkeeper_sigv4::is_s3_style_service(service) {
        trailkeeper_sigv4::decode_streaming_payload(&request, &authorization, secret.expose())
            .map_err(AuthFailure::SigV4)?
    } else {
        None
    };
    tracing::debug!(request_id, access_key_id = %authorization.access_key_id, region = %authorization.region, "authenticated");
    let caller = Caller {
        principal: Arc::clone(principal),
        region: authorization.region,
        request_id: request_id.to_owned(),
        source_ip: connection.peer.ip().to_string(),
        user_agent: header_text(&parts.headers, header::USER_AGENT.as_str()).unwrap_or_default(),
        host: header_text(&parts.headers, header::HOST.as_str()),
        tls: connection.tls.clone(),
    };
    Ok(Authenticated { caller, streamed })
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// CloudTrail's limit on `userAgent` in a record.
pub const MAX_USER_AGENT_BYTES: usize = 1024;
