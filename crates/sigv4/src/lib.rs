//! AWS Signature Version 4, the way AWS and botocore compute it.
//!
//! Trailkeeper's server uses this crate to authenticate every request a real AWS client
//! (AWS CLI, boto3, the SDKs) sends it: [`parse_authorization`] reads the `Authorization`
//! header (or a presigned URL's `X-Amz-*` query parameters) into an [`Authorization`], the
//! server looks the secret up by [`Authorization::access_key_id`] (and may check the scope's
//! region and service with [`Authorization::check_scope`]), then [`verify`] recomputes the
//! signature. An S3 streaming upload's `aws-chunked` body is then decoded, and its chunk
//! signatures checked, by [`decode_streaming_payload`]. Trailkeeper's own clients (the ingest
//! CLI, the benchmark) use [`sign`] and [`presign`] to produce requests the server, or AWS,
//! accepts.
//!
//! The canonicalisation follows botocore byte for byte (`tests/vectors/` holds requests signed
//! by botocore itself): for every service but S3 the path is normalised (empty and `.`
//! segments dropped, `..` applied) and then percent-encoded again, so a `%20` received on the
//! wire is signed as `%2520`; S3 signs the path exactly as sent. Query keys and values are
//! percent-decoded and re-encoded with only `A-Za-z0-9-_.~` left bare (a literal `+` is a
//! plus, not a space), sorted by key then value. Header values are trimmed and every run of
//! whitespace collapsed to one space, repeated headers joined with `,`.
//!
//! The crate is pure: no IO, no clock (callers pass `now`), no global state.
//!
//! **It must never log or return a secret access key.** Secrets are taken as arguments, used
//! to derive the signing key and dropped; no error message, `Debug` output or return value
//! carries one (see [`SigningParams`]'s hand-written `Debug`). Signatures are compared in
//! constant time.

mod canonical;
mod chunked;
mod error;
mod parse;
mod sign;
mod time;
mod verify;

pub use chunked::{
    DecodedPayload, STREAMING_SIGNED_PAYLOAD, STREAMING_SIGNED_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    decode_streaming_payload,
};
pub use error::{
    MISSING_AUTHENTICATION_TOKEN_CODE, MISSING_AUTHENTICATION_TOKEN_MESSAGE, SIGNATURE_DOES_NOT_MATCH_MESSAGE,
    SigV4Error, UNRECOGNIZED_CLIENT_CODE, UNRECOGNIZED_CLIENT_MESSAGE,
};
pub use parse::parse_authorization;
pub use sign::{presign, sign};
pub use verify::{SigningDetails, signing_details, verify};

use sha2::{Digest, Sha256};

/// The only signing algorithm this crate speaks.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";
/// How far a request's time may be from the server's clock, either way (AWS's 15 minutes).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 15 * 60;
/// The longest validity a presigned URL may ask for (`X-Amz-Expires`): seven days.
pub const MAX_PRESIGNED_EXPIRES_SECONDS: i64 = 604_800;
/// The `x-amz-content-sha256` value that says the body is not part of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What a request looks like to the verifier.
///
/// `path` is the raw path as received, still percent-encoded; `query` is the raw query string
/// without the `?`; `headers` are every header as received, names in any case, repeated
/// headers as separate pairs, in the order they arrived.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// The credentials, scope and signature a request claims, parsed from its `Authorization`
/// header or from a presigned URL's query parameters. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`, as the client wrote it.
    pub date: String,
    pub region: String,
    pub service: String,
    /// The credential scope's last element; anything but `aws4_request` fails [`verify`].
    pub terminator: String,
    /// The signed header names exactly as listed (botocore lists them lowercase and sorted).
    pub signed_headers: Vec<String>,
    /// The signature the client sent, hex.
    pub signature: String,
    /// True when the request carried its signature in the query string (a presigned URL).
    pub presigned: bool,
    /// The request time the signature covers, `YYYYMMDDTHHMMSSZ`, from `X-Amz-Date` (or
    /// converted from the `Date` header when that is all the request has).
    pub request_time: String,
    /// [`Authorization::request_time`] as Unix seconds.
    pub request_unix_seconds: i64,
    /// A presigned URL's `X-Amz-Expires`, in seconds; `None` for header authorization, and for
    /// a presigned URL without one (which is then held to the 15 minute clock skew).
    pub expires_seconds: Option<i64>,
}

impl Authorization {
    /// The credential scope as it appears in the string to sign: `date/region/service/terminator`.
    pub fn credential_scope(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }

    /// Checks the credential scope against the region and service this server answers for,
    /// together with the terminator and date, and reports every problem in one message the
    /// way AWS does (`InvalidSignatureException`).
    pub fn check_scope(&self, expected_region: &str, expected_service: &str) -> Result<(), SigV4Error> {
        verify::check_scope(self, Some((expected_region, expected_service)))
    }
}

/// What a client needs to sign a request. `Debug` never shows the secret.
#[derive(Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub now_unix_seconds: i64,
    /// Add an `x-amz-content-sha256` header with the body's hash (S3 requires it; other
    /// services accept it).
    pub include_content_sha256: bool,
}

impl std::fmt::Debug for SigningParams<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningParams")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("now_unix_seconds", &self.now_unix_seconds)
            .field("include_content_sha256", &self.include_content_sha256)
            .finish()
    }
}

/// Lowercase hex SHA-256 of `bytes`, the form SigV4 uses for payload hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True for the services botocore signs with its S3 signer: the path is signed exactly as
/// sent (neither normalised nor encoded again) and presigned URLs carry `UNSIGNED-PAYLOAD`.
pub fn is_s3_style_service(service: &str) -> bool {
    matches!(service, "s3" | "s3-object-lambda")
}
