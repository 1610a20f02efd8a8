//! [`ApiError`]: the one error type every operation returns, and the one place that maps
//! the store's error kinds to AWS error codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use trailkeeper_core::body::BodyError;
use trailkeeper_sigv4::SigV4Error;
use trailkeeper_store::merkle::{MerkleError, MerkleErrorKind};
use trailkeeper_store::{ErrorKind, StoreError};

/// An error as the client sees it: AWS's code, a message, an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: StatusCode,
}

/// A request body that is not records (`POST /v1/records`) is malformed input.
impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        ApiError::serialization(error.to_string())
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>, status: StatusCode) -> ApiError {
        ApiError { code, message: message.into(), status }
    }

    /// A client error (HTTP 400), the status of every modelled CloudTrail exception.
    pub fn client(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(code, message, StatusCode::BAD_REQUEST)
    }

    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::client("SerializationException", message)
    }

    /// The caller's role does not allow the CloudTrail operation `action`.
    pub fn not_authorized(principal_arn: &str, action: &str) -> ApiError {
        ApiError::client(
            "AccessDeniedException",
            format!("User: {principal_arn} is not authorized to perform: cloudtrail:{action}"),
        )
    }

    pub fn throttling() -> ApiError {
        ApiError::client("ThrottlingException", "Rate exceeded")
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    }

    pub fn from_sigv4(error: SigV4Error) -> ApiError {
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(error.code(), error.to_string(), status)
    }

    /// The store's failures as AWS would report them: overload and a full disk are
    /// throttling (retryable), anything else an internal failure whose cause goes to the log.
    pub fn from_store(error: &StoreError) -> ApiError {
        match error.kind() {
            ErrorKind::Overloaded | ErrorKind::DiskFull => {
                tracing::warn!(%error, "refusing work: back-pressure");
                ApiError::client("ThrottlingException", "Rate exceeded: the event log is busy, retry later")
            }
            ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Closed => {
                tracing::error!(%error, "store failure");
                ApiError::new(
                    "ServiceUnavailableException",
                    "The service is unavailable. Retry the request later.",
                    StatusCode::SERVICE_UNAVAILABLE,
                )
            }
        }
    }

    /// The Merkle trees' failures: the store's as [`ApiError::from_store`]; a tree or leaf
    /// that is not there as `ResourceNotFoundException`; an event the trees have not taken
    /// in yet as the retryable `EventNotYetInTreeException` (HTTP 503); sizes that do not
    /// fit the tree as `InvalidParameterException`.
    pub fn from_merkle(error: &MerkleError) -> ApiError {
        match error.kind() {
            MerkleErrorKind::Store(_) => match error {
                MerkleError::Store(store) => ApiError::from_store(store),
                _ => ApiError::internal(),
            },
            MerkleErrorKind::NotFound => ApiError::client("ResourceNotFoundException", error.to_string()),
            MerkleErrorKind::NotYet => ApiError::new(
                "EventNotYetInTreeException",
                format!("{error}. Retry in a few seconds."),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            MerkleErrorKind::OutOfRange => ApiError::client("InvalidParameterException", error.to_string()),
        }
    }

    /// The AWS JSON 1.1 error response, with the request ID AWS clients log.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", value);
        }
        if let Ok(value) = HeaderValue::from_str(&format!("{}:", self.code)) {
            headers.insert("x-amzn-errortype", value);
        }
        response
    }
}
