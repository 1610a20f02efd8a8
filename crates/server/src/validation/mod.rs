//! Log file validation, as `aws cloudtrail validate-logs` does it, for
//! `trailkeeper validate-logs`: walk a trail's digest files in one Region from the newest
//! back along their chain, check each digest's signature and the hash of every log file it
//! lists, and report with the AWS CLI's own lines, verdicts and exit code.
//!
//! The walk ([`validate`]) does not know where the files come from. A [`DigestSource`]
//! lists keys, reads objects and finds public keys; [`DataDirSource`] reads a data
//! directory offline.
//!
//! Beyond the AWS CLI, the walk takes the newest digest the trail is known to have written
//! in the Region ([`ValidationRequest::newest_written`]; offline, from the trail's delivery
//! state). The AWS CLI starts from the newest digest it can list, so deleting the newest
//! digests leaves a shorter chain that still validates. When the known newest digest falls
//! in the requested range and is not listed, the walk lists it anyway, as S3 would have, and
//! so reports `INVALID: not found` for it, exactly as for a digest deleted from the middle
//! of the chain.
//!
//! It must never change the files it checks.

mod checks;
mod data_dir;
mod keys;
mod report;
mod walk;

use std::collections::BTreeMap;
use std::io::Write;

pub use data_dir::{DataDirError, DataDirSource, DataDirTrail};
pub use keys::parse_date;
pub use report::{DigestKind, LogProblem, Report};

pub use crate::delivery::DigestLocation;

/// Where a validation reads digests, log files and public keys from.
pub trait DigestSource {
    /// One page of the keys of `bucket` that start with `prefix` and sort after `after`, in
    /// S3's order (bytewise); an empty page when none is left.
    fn list_keys(&mut self, bucket: &str, prefix: &str, after: &str) -> Result<Vec<String>, SourceError>;

    /// An object's bytes and user metadata.
    fn get_object(&mut self, bucket: &str, key: &str) -> Result<Fetched, SourceError>;

    /// The public keys that sign digests in `region` and were valid at some time in
    /// `[start_ms, end_ms]` (CloudTrail's ListPublicKeys).
    fn public_keys(&mut self, region: &str, start_ms: i64, end_ms: i64) -> Result<Vec<PublicKey>, SourceError>;
}

/// What reading one object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Object(SourceObject),
    /// The key does not exist (S3's `NoSuchKey`).
    NotFound,
    /// The object exists but cannot be read whole: offline, its file fails its checksum.
    /// Reported as `INVALID: invalid format` (an S3 client would get an error instead).
    Damaged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    pub body: Vec<u8>,
    /// `x-amz-meta-*` metadata: names lowercase, without the prefix.
    pub metadata: BTreeMap<String, String>,
}

/// A public key as ListPublicKeys gives it: DER PKCS#1 `RSAPublicKey` and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub fingerprint: String,
    pub der: Vec<u8>,
}

/// A source failed in a way that stops the run (the AWS CLI's exceptions, exit code 255).
/// The message is what the AWS CLI would print for the same failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> SourceError {
        SourceError { message: message.into() }
    }
}

/// A run that stopped before its summary.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The AWS CLI's exception message (it exits with 255).
    #[error("{0}")]
    Aborted(String),
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl From<SourceError> for ValidationError {
    fn from(error: SourceError) -> ValidationError {
        ValidationError::Aborted(error.message)
    }
}

/// A trail ARN, read as the AWS CLI reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailArn {
    pub arn: String,
    /// The trail's home Region (the ARN's fourth field).
    pub home_region: String,
    /// Everything after the last `/`.
    pub name: String,
    /// The ARN's fifth field.
    pub account_id: String,
}

impl TrailArn {
    /// Checks the ARN against the AWS CLI's pattern `arn:.+:cloudtrail:.+:\d{12}:trail/.+`
    /// (anchored at the start only) and splits it as the AWS CLI does.
    pub fn parse(arn: &str) -> Result<TrailArn, String> {
        if !matches_trail_arn_pattern(arn) {
            return Err(format!("Invalid trail ARN provided: {arn}"));
        }
        let fields: Vec<&str> = arn.split(':').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or_default().to_owned();
        Ok(TrailArn {
            arn: arn.to_owned(),
            home_region: field(3),
            name: arn.rsplit('/').next().unwrap_or_default().to_owned(),
            account_id: field(4),
        })
    }
}

/// `re.match(r'arn:.+:cloudtrail:.+:\d{12}:trail/.+', arn)`: `.` is any character but a
/// newline, and the match need not reach the end.
fn matches_trail_arn_pattern(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:") else { return false };
    let line = rest.split('\n').next().unwrap_or_default();
    let service_at = line.match_indices(":cloudtrail:").map(|(at, _)| at).filter(|&at| at > 0);
    service_at.into_iter().any(|at| {
        let after_service = &line.as_bytes()[at + ":cloudtrail:".len()..];
        // At least one character before the account, and a colon can only start one.
        (1..after_service.len()).any(|at| {
            let tail = &after_service[at..];
            tail.len() > ":123456789012:trail/".len()
                && tail[0] == b':'
                && tail[1..13].iter().all(u8::is_ascii_digit)
                && tail[13..].starts_with(b":trail/")
        })
    })
}

/// One validation run: which trail, Region, bucket and time range.
#[derive(Debug, Clone)]
pub struct ValidationRequest {
    pub trail: TrailArn,
    /// The Region whose digests are walked (the AWS CLI's `--region`).
    pub source_region: String,
    /// The account in the keys: the ARN's, or `--account-id`.
    pub account_id: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The newest digest the trail wrote in `source_region`, when something records it.
    pub newest_written: Option<DigestLocation>,
}

/// Validates as `aws cloudtrail validate-logs` does, writing its report: the opening line,
/// the walk over standard digests, then the walk over backfill digests, then the summary.
pub fn validate<S: DigestSource, O: Write, E: Write>(
    source: &mut S,
    request: &ValidationRequest,
    report: &mut Report<O, E>,
) -> Result<(), ValidationError> {
    report.startup(&request.trail.arn)?;
    let mut walk = walk::Walk::new(source, request, report);
    walk.traverse(DigestKind::Standard)?;
    walk.traverse(DigestKind::Backfill)?;
    report.summary()?;
    Ok(())
}

#[cfg(test)]
mod tests;
