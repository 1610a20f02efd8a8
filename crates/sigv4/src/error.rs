//! Why a request failed authentication, with the code and message AWS itself returns.
//!
//! `Display` is the message a JSON-protocol service (CloudTrail) puts in its error body, word
//! for word where AWS's wording is known; [`SigV4Error::code`] is that service's `__type`.
//! The S3 REST protocol names the same failures differently: [`SigV4Error::s3_code`] and
//! [`SigV4Error::s3_message`]. No variant carries a secret access key: the only request data
//! echoed back is what the client itself sent (its Authorization header, its timestamps).

/// `__type` for a request with no Authorization header and no presigned query.
pub const MISSING_AUTHENTICATION_TOKEN_CODE: &str = "MissingAuthenticationTokenException";
pub const MISSING_AUTHENTICATION_TOKEN_MESSAGE: &str = "Missing Authentication Token";
/// `__type` when the access key id is unknown; the server decides that, not this crate.
pub const UNRECOGNIZED_CLIENT_CODE: &str = "UnrecognizedClientException";
pub const UNRECOGNIZED_CLIENT_MESSAGE: &str = "The security token included in the request is invalid.";
pub const SIGNATURE_DOES_NOT_MATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

const INCOMPLETE_SIGNATURE_CODE: &str = "IncompleteSignatureException";
const INVALID_SIGNATURE_CODE: &str = "InvalidSignatureException";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an Authorization header nor `X-Amz-Algorithm` in the query.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// Both an Authorization header and presigned query parameters: AWS refuses to guess.
    #[error("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")]
    AuthorizationHeaderAndQuery,

    /// The Authorization header or presigned query is malformed: a missing part, an unknown
    /// algorithm, a credential that is not five elements, `host` not signed, no usable date.
    #[error("{message}")]
    IncompleteSignature { message: String, presigned: bool },

    /// The credential scope names the wrong region, service, terminator or date. The message
    /// lists every mismatch, as AWS does.
    #[error("{message}")]
    CredentialScopeMismatch { message: String, presigned: bool },

    /// The request time is more than 15 minutes before the server's clock.
    #[error("Signature expired: {request_time} is now earlier than {earliest_allowed} ({now} - 15 min.)")]
    SignatureExpired { request_time: String, earliest_allowed: String, now: String },

    /// The request time is more than 15 minutes after the server's clock.
    #[error("Signature not yet current: {request_time} is still later than {latest_allowed} ({now} + 15 min.)")]
    SignatureNotYetCurrent { request_time: String, latest_allowed: String, now: String },

    /// A presigned URL used after `X-Amz-Date` + `X-Amz-Expires`.
    #[error("Request has expired")]
    PresignedUrlExpired { request_time: String, expires_seconds: i64, now: String },

    /// `x-amz-content-sha256` is neither `UNSIGNED-PAYLOAD`, a `STREAMING-*` mode, nor a
    /// SHA-256 in hex (or the header is repeated).
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
    )]
    InvalidContentSha256 { value: String },

    /// A streaming payload (`x-amz-content-sha256: STREAMING-...`) this verifier does not
    /// take: any streaming mode for a service other than S3, and the ECDSA (SigV4a) modes.
    #[error(
        "x-amz-content-sha256 '{value}' (a streaming, chunk-signed payload) is not supported; send the payload whole"
    )]
    StreamingPayloadNotSupported { value: String },

    /// A chunk of a signed streaming upload (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), or its
    /// trailer, does not carry the signature its bytes and the previous signature call for.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    ChunkSignatureDoesNotMatch { chunk_index: usize },

    /// An `aws-chunked` body that is cut short, malformed, or whose decoded length is not the
    /// `x-amz-decoded-content-length` the client declared.
    #[error("{detail}")]
    IncompleteBody { detail: String },

    /// `x-amz-content-sha256` is a SHA-256, but not the body's.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch { provided: String, computed: String },

    /// The signature does not match the one computed with the secret for this access key.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,

    /// The access key id is unknown. Built by the server after its lookup fails.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
}

impl SigV4Error {
    /// The error code (`__type`) a JSON-protocol service such as CloudTrail returns.
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => MISSING_AUTHENTICATION_TOKEN_CODE,
            SigV4Error::IncompleteSignature { .. } => INCOMPLETE_SIGNATURE_CODE,
            SigV4Error::AuthorizationHeaderAndQuery
            | SigV4Error::CredentialScopeMismatch { .. }
            | SigV4Error::SignatureExpired { .. }
            | SigV4Error::SignatureNotYetCurrent { .. }
            | SigV4Error::PresignedUrlExpired { .. }
            | SigV4Error::InvalidContentSha256 { .. }
            | SigV4Error::ContentSha256Mismatch { .. }
            | SigV4Error::SignatureDoesNotMatch
            | SigV4Error::ChunkSignatureDoesNotMatch { .. } => INVALID_SIGNATURE_CODE,
            SigV4Error::IncompleteBody { .. } => "SerializationException",
            SigV4Error::StreamingPayloadNotSupported { .. } => "NotImplemented",
            SigV4Error::UnrecognizedClient => UNRECOGNIZED_CLIENT_CODE,
        }
    }

    /// The HTTP status a JSON-protocol service answers with. AWS's JSON services send these
    /// authentication errors as 400s.
    pub fn http_status(&self) -> u16 {
        match self {
            SigV4Error::StreamingPayloadNotSupported { .. } => 501,
            _ => 400,
        }
    }

    /// The error code S3's REST protocol returns for the same failure.
    pub fn s3_code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken | SigV4Error::PresignedUrlExpired { .. } => "AccessDenied",
            SigV4Error::AuthorizationHeaderAndQuery | SigV4Error::InvalidContentSha256 { .. } => "InvalidArgument",
            SigV4Error::IncompleteSignature { presigned: true, .. }
            | SigV4Error::CredentialScopeMismatch { presigned: true, .. } => "AuthorizationQueryParametersError",
            SigV4Error::IncompleteSignature { presigned: false, .. }
            | SigV4Error::CredentialScopeMismatch { presigned: false, .. } => "AuthorizationHeaderMalformed",
            SigV4Error::SignatureExpired { .. } | SigV4Error::SignatureNotYetCurrent { .. } => "RequestTimeTooSkewed",
            SigV4Error::StreamingPayloadNotSupported { .. } => "NotImplemented",
            SigV4Error::ContentSha256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            SigV4Error::SignatureDoesNotMatch | SigV4Error::ChunkSignatureDoesNotMatch { .. } => {
                "SignatureDoesNotMatch"
            }
            SigV4Error::IncompleteBody { .. } => "IncompleteBody",
            SigV4Error::UnrecognizedClient => "InvalidAccessKeyId",
        }
    }

    /// The message S3 puts beside [`SigV4Error::s3_code`].
    pub fn s3_message(&self) -> String {
        match self {
            SigV4Error::MissingAuthenticationToken => "Access Denied".to_owned(),
            SigV4Error::AuthorizationHeaderAndQuery => "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified".to_owned(),
            SigV4Error::SignatureExpired { .. } | SigV4Error::SignatureNotYetCurrent { .. } => {
                "The difference between the request time and the current time is too large.".to_owned()
            }
            SigV4Error::SignatureDoesNotMatch | SigV4Error::ChunkSignatureDoesNotMatch { .. } => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.".to_owned()
            }
            SigV4Error::UnrecognizedClient => "The AWS Access Key Id you provided does not exist in our records.".to_owned(),
            other => other.to_string(),
        }
    }

    /// The HTTP status S3 answers with.
    pub fn s3_http_status(&self) -> u16 {
        match self.s3_code() {
            "AuthorizationQueryParametersError"
            | "AuthorizationHeaderMalformed"
            | "InvalidArgument"
            | "IncompleteBody"
            | "XAmzContentSHA256Mismatch" => 400,
            "NotImplemented" => 501,
            _ => 403,
        }
    }
}
