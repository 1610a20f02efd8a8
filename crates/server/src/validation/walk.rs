//! The walk over one trail's digests in one Region, step for step as the AWS CLI's
//! `DigestTraverser` takes it.
//!
//! List the digest keys in range once per bucket (standard and backfill apart). Start from
//! the newest; for each digest: read it, check it, report it, check its log files, then
//! follow `previousDigestS3Object` (and `previousDigestS3Bucket`, listing the new bucket).
//! A digest with no previous one ends its chain: the next older listed key starts another,
//! after a gap. A digest that is missing or invalid is reported and the walk goes on from
//! the next older listed key. It stops when a digest starts before the requested start.
//! Keys are taken from the listing by popping it, so a key is visited at most once even
//! when chains point at each other.

use std::collections::HashMap;
use std::io::Write;

use serde_json::Value;

use super::checks::{self, LogVerdict, REQUIRED_DIGEST_MEMBERS};
use super::keys::{DigestKeys, compact_date, display_date, is_backfill_key, key_date, parse_date};
use super::report::{DigestKind, LogProblem, Report};
use super::{DigestSource, Fetched, PublicKey, ValidationError, ValidationRequest};

const HOUR_MS: i64 = 3_600_000;

/// The digest keys of one listing, oldest first; the walk pops the newest.
#[derive(Debug, Default)]
struct Listing {
    standard: Vec<String>,
    backfill: Vec<String>,
}

impl Listing {
    fn keys(&mut self, kind: DigestKind) -> &mut Vec<String> {
        match kind {
            DigestKind::Standard => &mut self.standard,
            DigestKind::Backfill => &mut self.backfill,
        }
    }
}

/// Why a digest was not yielded.
enum Failure {
    Missing,
    /// What follows `INVALID: `.
    Invalid(String),
}

/// A digest that passed every check.
struct CheckedDigest {
    members: serde_json::Map<String, Value>,
    end_ms: i64,
}

pub(super) struct Walk<'a, S, O: Write, E: Write> {
    source: &'a mut S,
    request: &'a ValidationRequest,
    report: &'a mut Report<O, E>,
    /// Listings by (bucket, end of range), as the AWS CLI caches them: both walks share
    /// one listing of a bucket, and popping a key takes it out of the cached listing.
    listings: HashMap<(String, i64), Listing>,
}

impl<'a, S: DigestSource, O: Write, E: Write> Walk<'a, S, O, E> {
    pub fn new(source: &'a mut S, request: &'a ValidationRequest, report: &'a mut Report<O, E>) -> Self {
        Walk { source, request, report, listings: HashMap::new() }
    }

    fn digest_keys(&self) -> DigestKeys<'a> {
        let request = self.request;
        DigestKeys {
            prefix: request.prefix.as_deref(),
            account_id: &request.account_id,
            source_region: &request.source_region,
            home_region: &request.trail.home_region,
            trail_name: &request.trail.name,
        }
    }

    /// Walks every chain of one kind of digest, newest first.
    pub fn traverse(&mut self, kind: DigestKind) -> Result<(), ValidationError> {
        let (start_ms, end_ms) = (self.request.start_ms, self.request.end_ms);
        let mut bucket = self.request.bucket.clone();
        let mut listing = (bucket.clone(), end_ms);
        self.load_listing(&listing)?;
        let mut public_keys = match kind {
            DigestKind::Standard => self.load_public_keys(start_ms, end_ms + 2 * HOUR_MS)?,
            // Backfill digests fetch keys around the time each one was made.
            DigestKind::Backfill => HashMap::new(),
        };
        let Some((mut key, newest_end_ms)) = self.pop_newest(&listing, kind, None)? else { return Ok(()) };
        let mut last_start_ms = newest_end_ms;
        loop {
            if start_ms > last_start_ms {
                return Ok(());
            }
            let next = match self.load_and_check(&mut public_keys, &bucket, &key, kind)? {
                Ok(digest) => match digest.members.get("digestStartTime").map(parse_date_value) {
                    Some(Ok(start_of_digest)) => {
                        last_start_ms = start_of_digest;
                        self.yield_digest(kind, &digest, (&bucket, &key), start_of_digest)?;
                        match previous_digest(&digest.members)? {
                            None => {
                                let next = self.pop_newest(&listing, kind, Some(&key))?;
                                if let Some((_, next_end_ms)) = &next {
                                    self.report.gap(kind, *next_end_ms, last_start_ms)?;
                                }
                                next.map(|(next_key, _)| next_key)
                            }
                            Some((previous_bucket, previous_key)) => {
                                if previous_bucket != bucket {
                                    bucket = previous_bucket;
                                    listing = (bucket.clone(), digest.end_ms);
                                    self.load_listing(&listing)?;
                                }
                                // An empty key ends the walk: an empty string is false in Python.
                                (!previous_key.is_empty()).then_some(previous_key)
                            }
                        }
                    }
                    Some(Err(reason)) => {
                        self.report.digest_invalid(kind, (&bucket, &key), &reason)?;
                        self.pop_newest(&listing, kind, Some(&key))?.map(|(next_key, _)| next_key)
                    }
                    None => {
                        self.report.digest_invalid(kind, (&bucket, &key), "invalid format")?;
                        self.pop_newest(&listing, kind, Some(&key))?.map(|(next_key, _)| next_key)
                    }
                },
                Err(Failure::Missing) => {
                    self.report.digest_missing(kind, (&bucket, &key))?;
                    self.pop_newest(&listing, kind, Some(&key))?.map(|(next_key, _)| next_key)
                }
                Err(Failure::Invalid(reason)) => {
                    self.report.digest_invalid(kind, (&bucket, &key), &reason)?;
                    self.pop_newest(&listing, kind, Some(&key))?.map(|(next_key, _)| next_key)
                }
            };
            match next {
                Some(next) => key = next,
                None => return Ok(()),
            }
        }
    }

    /// Reports a valid digest, then checks the log files it lists.
    fn yield_digest(
        &mut self,
        kind: DigestKind,
        digest: &CheckedDigest,
        location: (&str, &str),
        start_of_digest: i64,
    ) -> Result<(), ValidationError> {
        self.report.digest_valid(kind, location, (start_of_digest, digest.end_ms))?;
        self.check_log_files(&digest.members)
    }

    /// Lists the digest keys of `bucket` in range once: the keys of this trail and Region
    /// dated from the start to an hour past the end (digests of the last hour's logs end
    /// after it), in listing order. The listing stops at the first key dated after that.
    fn load_listing(&mut self, id: &(String, i64)) -> Result<(), ValidationError> {
        if self.listings.contains_key(id) {
            return Ok(());
        }
        let (bucket, end_ms) = (&id.0, id.1);
        let names = self.digest_keys();
        let marker = names.marker(self.request.start_ms);
        let prefix = names.list_prefix();
        let first_date = compact_date(self.request.start_ms);
        let last_date = compact_date(end_ms + HOUR_MS);
        let mut listing = Listing::default();
        let mut after = marker.clone();
        'pages: loop {
            let page = self.source.list_keys(bucket, &prefix, &after)?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            for key in page {
                if !names.matches(&key) {
                    continue;
                }
                let date = key_date(&key);
                if date > last_date {
                    break 'pages;
                }
                if date < first_date {
                    continue;
                }
                if is_backfill_key(&key) { &mut listing.backfill } else { &mut listing.standard }.push(key);
            }
        }
        // The newest digest the trail wrote is listed even when the bucket no longer holds
        // it, so that its deletion is reported instead of shortening the chain unseen.
        if let Some(newest) = &self.request.newest_written {
            let date = key_date(&newest.key);
            let in_range = newest.bucket == *bucket
                && names.matches(&newest.key)
                && !is_backfill_key(&newest.key)
                && newest.key.starts_with(&prefix)
                && newest.key > marker
                && date >= first_date
                && date <= last_date;
            if in_range && let Err(at) = listing.standard.binary_search(&newest.key) {
                listing.standard.insert(at, newest.key.clone());
            }
        }
        self.listings.insert(id.clone(), listing);
        Ok(())
    }

    /// Takes the newest listed key, or the newest one dated before `before`'s date (those
    /// dated at or after it are dropped). `None` when none is left.
    fn pop_newest(
        &mut self,
        id: &(String, i64),
        kind: DigestKind,
        before: Option<&str>,
    ) -> Result<Option<(String, i64)>, ValidationError> {
        let before_ms = before.map(|key| parse_date(&key_date(key))).transpose().map_err(ValidationError::Aborted)?;
        let Some(listing) = self.listings.get_mut(id) else { return Ok(None) };
        let keys = listing.keys(kind);
        while let Some(key) = keys.pop() {
            let date_ms = parse_date(&key_date(&key)).map_err(ValidationError::Aborted)?;
            if before_ms.is_none_or(|before_ms| date_ms < before_ms) {
                return Ok(Some((key, date_ms)));
            }
        }
        Ok(None)
    }

    fn load_public_keys(&mut self, start_ms: i64, end_ms: i64) -> Result<HashMap<String, PublicKey>, ValidationError> {
        let keys = self.source.public_keys(&self.request.source_region, start_ms, end_ms)?;
        if keys.is_empty() {
            return Err(ValidationError::Aborted(no_public_keys(start_ms, end_ms)));
        }
        Ok(keys.into_iter().map(|key| (key.fingerprint.clone(), key)).collect())
    }

    /// Reads one digest and checks it, in the AWS CLI's order: inflate and parse, signature
    /// metadata, required members, location, public key, signature, end time.
    fn load_and_check(
        &mut self,
        public_keys: &mut HashMap<String, PublicKey>,
        bucket: &str,
        key: &str,
        kind: DigestKind,
    ) -> Result<Result<CheckedDigest, Failure>, ValidationError> {
        let invalid = |reason: &str| Ok(Err(Failure::Invalid(reason.to_owned())));
        let object = match self.source.get_object(bucket, key)? {
            Fetched::Object(object) => object,
            Fetched::NotFound => return Ok(Err(Failure::Missing)),
            Fetched::Damaged => return invalid("invalid format"),
        };
        let Some(inflated) = checks::inflate_digest(&object.body) else { return invalid("invalid format") };
        let Some(value) = checks::parse_digest_json(&inflated) else { return invalid("invalid format") };
        let (Some(signature), Some(_)) = (object.metadata.get("signature"), object.metadata.get("signature-algorithm"))
        else {
            return invalid("signature verification failed");
        };
        let members = match value {
            Value::Object(members) => members,
            other => return invalid(&checks::not_an_object_reason(&other)),
        };
        let backfill_timestamp = match kind {
            DigestKind::Standard => None,
            DigestKind::Backfill => match object.metadata.get("backfill-generation-timestamp") {
                Some(timestamp) => Some(timestamp.clone()),
                None => return invalid("invalid format"),
            },
        };
        if REQUIRED_DIGEST_MEMBERS.iter().any(|member| !members.contains_key(*member)) {
            return invalid("invalid format");
        }
        let is = |member: &str, expected: &str| members.get(member).and_then(Value::as_str) == Some(expected);
        if !is("digestS3Bucket", bucket) || !is("digestS3Object", key) {
            return invalid("has been moved from its original location");
        }
        let fingerprint_value = members.get("digestPublicKeyFingerprint").unwrap_or(&Value::Null);
        let fingerprint = match checks::fingerprint_lookup(fingerprint_value) {
            Ok(fingerprint) => fingerprint,
            Err(reason) => return invalid(&reason),
        };
        let known = |keys: &HashMap<String, PublicKey>| fingerprint.is_some_and(|print| keys.contains_key(print));
        if let (false, Some(timestamp)) = (known(public_keys), &backfill_timestamp) {
            let made_ms = match parse_date(timestamp) {
                Ok(made_ms) => made_ms,
                Err(reason) => return invalid(&reason),
            };
            let (from_ms, to_ms) = (made_ms - HOUR_MS, made_ms + HOUR_MS);
            let keys = self.source.public_keys(&self.request.source_region, from_ms, to_ms)?;
            if keys.is_empty() {
                return invalid(&no_public_keys(from_ms, to_ms));
            }
            public_keys.extend(keys.into_iter().map(|key| (key.fingerprint.clone(), key)));
        }
        let Some(public_key) = fingerprint.and_then(|print| public_keys.get(print)) else {
            return invalid(&format!(
                "public key not found in region {} for fingerprint {}",
                self.request.trail.home_region,
                checks::python_str(fingerprint_value)
            ));
        };
        if let Err(reason) = checks::verify_digest(&public_key.der, &members, &inflated, signature) {
            return invalid(&reason);
        }
        let end_ms = match members.get("digestEndTime").map(parse_date_value) {
            Some(Ok(end_ms)) => end_ms,
            Some(Err(reason)) => return invalid(&reason),
            None => return invalid("invalid format"),
        };
        Ok(Ok(CheckedDigest { members, end_ms }))
    }

    /// Checks every log file a valid digest lists.
    fn check_log_files(&mut self, digest: &serde_json::Map<String, Value>) -> Result<(), ValidationError> {
        let log_files = match digest.get("logFiles") {
            None => return Err(ValidationError::Aborted("'logFiles'".to_owned())),
            Some(Value::Array(files)) => files,
            Some(Value::Null | Value::Bool(false)) => return Ok(()),
            Some(_) => return Err(ValidationError::Aborted("logFiles is not a list".to_owned())),
        };
        for entry in log_files {
            let member = |name: &str| match entry.get(name) {
                Some(Value::String(text)) => Ok(text.as_str()),
                Some(other) => Err(ValidationError::Aborted(format!("{name} is not a string: {other}"))),
                None => Err(ValidationError::Aborted(format!("'{name}'"))),
            };
            let (bucket, key) = (member("s3Bucket")?, member("s3Object")?);
            let verdict = match self.source.get_object(bucket, key)? {
                Fetched::Object(object) => checks::check_log_file(&object.body, entry.get("hashValue")),
                Fetched::Damaged => LogVerdict::InvalidFormat,
                Fetched::NotFound => {
                    self.report.log_invalid(bucket, key, LogProblem::NotFound)?;
                    continue;
                }
            };
            match verdict {
                LogVerdict::Valid => self.report.log_valid(bucket, key)?,
                LogVerdict::HashMismatch => self.report.log_invalid(bucket, key, LogProblem::HashMismatch)?,
                LogVerdict::TrailingData => self.report.log_invalid(bucket, key, LogProblem::TrailingData)?,
                LogVerdict::InvalidFormat => self.report.log_invalid(bucket, key, LogProblem::InvalidFormat)?,
            }
        }
        Ok(())
    }
}

/// The previous digest a valid digest points to: `None` when either member is absent or
/// null (the chain starts here).
fn previous_digest(digest: &serde_json::Map<String, Value>) -> Result<Option<(String, String)>, ValidationError> {
    let member = |name: &str| match digest.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ValidationError::Aborted(format!("{name} is not a string: {other}"))),
    };
    Ok(member("previousDigestS3Bucket")?.zip(member("previousDigestS3Object")?))
}

fn parse_date_value(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(text) => parse_date(text),
        other => Err(format!("Unable to parse date value: {}", checks::python_str(other))),
    }
}

fn no_public_keys(start_ms: i64, end_ms: i64) -> String {
    format!("No public keys found between {} and {}", display_date(start_ms), display_date(end_ms))
}
