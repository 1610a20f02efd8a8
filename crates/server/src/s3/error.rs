//! [`S3Error`]: every way an S3 call fails, from the bucket store up to authentication, and
//! the one place that gives each its S3 error code, message, HTTP status and the extra
//! elements S3's XML error body carries (`BucketName`, `Key`, `ArgumentName`, ...).
//!
//! `Display` is the message the client sees, in S3's words. Causes that are the server's own
//! business (an IO error, a damaged file) stay inside the variant and go to the log, never
//! to the client.

use axum::http::StatusCode;
use trailkeeper_sigv4::SigV4Error;
use trailkeeper_store::{ErrorKind, StoreError};

use crate::api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("The specified bucket does not exist")]
    NoSuchBucket { bucket: String },
    #[error("The specified key does not exist.")]
    NoSuchKey { key: String },
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error(
        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
    )]
    BucketAlreadyExists { bucket: String },
    #[error("The specified bucket is not valid.")]
    InvalidBucketName { bucket: String },
    #[error("Your key is too long")]
    KeyTooLong { size: usize },
    /// The caller's role or account does not reach the bucket.
    #[error("Access Denied")]
    AccessDenied,
    /// An object under Object Lock (compliance mode) cannot be overwritten or deleted yet.
    #[error("Access Denied because object protected by object lock.")]
    ObjectLocked { key: String },
    #[error("{message}")]
    InvalidArgument { message: String, name: &'static str, value: String },
    #[error("The requested range is not satisfiable")]
    InvalidRange { requested: String, size: u64 },
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed { condition: &'static str },
    #[error("The XML you provided was not well-formed or did not validate against our published schema")]
    MalformedXml,
    #[error("The specified location-constraint is not valid")]
    InvalidLocationConstraint { constraint: String },
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge { size: usize },
    #[error("Your proposed upload exceeds the maximum allowed object size.")]
    EntityTooLarge { limit: usize },
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    #[error("The {algorithm} you specified did not match the calculated checksum.")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("A header or query you provided requires a functionality that is not implemented.")]
    NotImplemented { what: String },
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed { method: String, resource_type: &'static str },
    #[error("{message}")]
    InvalidRequest { message: String },
    #[error("Couldn't parse the specified URI.")]
    InvalidUri { uri: String },
    #[error("Please reduce your request rate.")]
    SlowDown,
    #[error("{}", .0.s3_message())]
    Auth(SigV4Error),
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId { access_key_id: String },
    #[error("We encountered an internal error. Please try again.")]
    Internal,
    #[error("We encountered an internal error. Please try again.")]
    Store(#[from] StoreError),
}

impl S3Error {
    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            S3Error::NoSuchBucket { .. } => "NoSuchBucket",
            S3Error::NoSuchKey { .. } => "NoSuchKey",
            S3Error::BucketNotEmpty { .. } => "BucketNotEmpty",
            S3Error::BucketAlreadyOwnedByYou { .. } => "BucketAlreadyOwnedByYou",
            S3Error::BucketAlreadyExists { .. } => "BucketAlreadyExists",
            S3Error::InvalidBucketName { .. } => "InvalidBucketName",
            S3Error::KeyTooLong { .. } => "KeyTooLongError",
            S3Error::AccessDenied | S3Error::ObjectLocked { .. } => "AccessDenied",
            S3Error::InvalidArgument { .. } => "InvalidArgument",
            S3Error::InvalidRange { .. } => "InvalidRange",
            S3Error::PreconditionFailed { .. } => "PreconditionFailed",
            S3Error::MalformedXml => "MalformedXML",
            S3Error::InvalidLocationConstraint { .. } => "InvalidLocationConstraint",
            S3Error::MetadataTooLarge { .. } => "MetadataTooLarge",
            S3Error::EntityTooLarge { .. } => "EntityTooLarge",
            S3Error::BadDigest | S3Error::ChecksumMismatch { .. } => "BadDigest",
            S3Error::InvalidDigest => "InvalidDigest",
            S3Error::NotImplemented { .. } => "NotImplemented",
            S3Error::MethodNotAllowed { .. } => "MethodNotAllowed",
            S3Error::InvalidRequest { .. } => "InvalidRequest",
            S3Error::InvalidUri { .. } => "InvalidURI",
            S3Error::SlowDown => "SlowDown",
            S3Error::Auth(error) => error.s3_code(),
            S3Error::InvalidAccessKeyId { .. } => "InvalidAccessKeyId",
            S3Error::Internal => "InternalError",
            S3Error::Store(error) => match error.kind() {
                ErrorKind::DiskFull | ErrorKind::Overloaded => "SlowDown",
                ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Closed => "InternalError",
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            S3Error::NoSuchBucket { .. } | S3Error::NoSuchKey { .. } => StatusCode::NOT_FOUND,
            S3Error::BucketNotEmpty { .. }
            | S3Error::BucketAlreadyOwnedByYou { .. }
            | S3Error::BucketAlreadyExists { .. } => StatusCode::CONFLICT,
            S3Error::AccessDenied | S3Error::ObjectLocked { .. } | S3Error::InvalidAccessKeyId { .. } => {
                StatusCode::FORBIDDEN
            }
            S3Error::InvalidRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            S3Error::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            S3Error::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            S3Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            S3Error::SlowDown => StatusCode::SERVICE_UNAVAILABLE,
            S3Error::Auth(error) => StatusCode::from_u16(error.s3_http_status()).unwrap_or(StatusCode::FORBIDDEN),
            S3Error::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            S3Error::Store(error) => match error.kind() {
                ErrorKind::DiskFull | ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Closed => StatusCode::INTERNAL_SERVER_ERROR,
            },
            S3Error::InvalidBucketName { .. }
            | S3Error::KeyTooLong { .. }
            | S3Error::InvalidArgument { .. }
            | S3Error::MalformedXml
            | S3Error::InvalidLocationConstraint { .. }
            | S3Error::MetadataTooLarge { .. }
            | S3Error::EntityTooLarge { .. }
            | S3Error::BadDigest
            | S3Error::InvalidDigest
            | S3Error::ChecksumMismatch { .. }
            | S3Error::InvalidRequest { .. }
            | S3Error::InvalidUri { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The elements S3 adds to the error body after `Code` and `Message`.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        match self {
            S3Error::NoSuchBucket { bucket }
            | S3Error::BucketNotEmpty { bucket }
            | S3Error::BucketAlreadyOwnedByYou { bucket }
            | S3Error::BucketAlreadyExists { bucket }
            | S3Error::InvalidBucketName { bucket } => vec![("BucketName", bucket.clone())],
            S3Error::NoSuchKey { key } => vec![("Key", key.clone())],
            S3Error::KeyTooLong { size } => {
                vec![("Size", size.to_string()), ("MaxSizeAllowed", super::store::MAX_KEY_BYTES.to_string())]
            }
            S3Error::InvalidArgument { name, value, .. } => {
                vec![("ArgumentName", (*name).to_owned()), ("ArgumentValue", value.clone())]
            }
            S3Error::InvalidRange { requested, size } => {
                vec![("RangeRequested", requested.clone()), ("ActualObjectSize", size.to_string())]
            }
            S3Error::PreconditionFailed { condition } => vec![("Condition", (*condition).to_owned())],
            S3Error::InvalidLocationConstraint { constraint } => vec![("LocationConstraint", constraint.clone())],
            S3Error::MetadataTooLarge { size } => {
                vec![("Size", size.to_string()), ("MaxSizeAllowed", super::MAX_USER_METADATA_BYTES.to_string())]
            }
            S3Error::EntityTooLarge { limit } => vec![("MaxSizeAllowed", limit.to_string())],
            S3Error::MethodNotAllowed { method, resource_type } => {
                vec![("Method", method.clone()), ("ResourceType", (*resource_type).to_owned())]
            }
            S3Error::InvalidUri { uri } => vec![("URI", uri.clone())],
            S3Error::InvalidAccessKeyId { access_key_id } => vec![("AWSAccessKeyId", access_key_id.clone())],
            _ => Vec::new(),
        }
    }

    /// Failures from the layers S3 shares with the JSON API (rate limit, audit append) in S3's
    /// words: back-pressure is `SlowDown`, anything else an internal error.
    pub fn from_api(error: &ApiError) -> S3Error {
        match error.code {
            "ThrottlingException" => S3Error::SlowDown,
            _ => S3Error::Internal,
        }
    }

    /// Logs what the client is not told: the cause of an internal failure.
    pub fn log_cause(&self) {
        if let S3Error::Store(error) = self {
            match error.kind() {
                ErrorKind::DiskFull | ErrorKind::Overloaded => tracing::warn!(%error, "bucket store refusing work"),
                _ => tracing::error!(%error, "bucket store failure"),
            }
        }
    }
}
