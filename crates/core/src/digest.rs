//! CloudTrail's digest files: what a trail with log file validation writes every digest
//! period, per Region, to prove which log files it delivered.
//!
//! ```text
//! [<prefix>/]AWSLogs/<account>/CloudTrail-Digest/<region>/<YYYY>/<MM>/<DD>/
//!     <account>_CloudTrail-Digest_<region>_<trail name>_<home region>_<YYYYMMDDTHHMMSSZ>.json.gz
//! ```
//!
//! The time is the digest's end time to the second; validators read it back as the 16
//! characters before `.json.gz`. A digest is signed (RSA, PKCS#1 v1.5, SHA-256) over
//! [`string_to_sign`], and each digest's string includes the previous digest's signature,
//! which chains them.

use serde::{Deserialize, Serialize};

use crate::logfile::key_prefix;
use crate::time::{civil_from_days, format_event_time};

/// `digestSignatureAlgorithm` and the `x-amz-meta-signature-algorithm` metadata.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// `hashAlgorithm` of log files and `previousDigestHashAlgorithm`.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// Where one digest file goes inside its bucket.
#[derive(Debug, Clone, Copy)]
pub struct DigestFileName<'a> {
    /// The trail's `S3KeyPrefix`, if any.
    pub prefix: Option<&'a str>,
    pub account_id: &'a str,
    /// The Region whose log files the digest covers.
    pub region: &'a str,
    pub trail_name: &'a str,
    pub home_region: &'a str,
    /// The digest's end time; only whole seconds show in the name.
    pub end_ms: i64,
}

impl DigestFileName<'_> {
    pub fn key(&self) -> String {
        let days = self.end_ms.div_euclid(86_400_000);
        let second_of_day = self.end_ms.rem_euclid(86_400_000) / 1000;
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
        let (account, region) = (self.account_id, self.region);
        format!(
            "{}AWSLogs/{account}/CloudTrail-Digest/{region}/{year:04}/{month:02}/{day:02}/\
             {account}_CloudTrail-Digest_{region}_{}_{}_{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z.json.gz",
            key_prefix(self.prefix),
            self.trail_name,
            self.home_region,
        )
    }
}

/// The `YYYYMMDDTHHMMSSZ` end time in a digest key, where the AWS CLI reads it: the 16
/// characters before `.json.gz` (before `_backfill.json.gz` for backfill digests).
pub fn key_time(key: &str) -> Option<&str> {
    let stem = key.strip_suffix(".json.gz")?;
    let stem = stem.strip_suffix("_backfill").unwrap_or(stem);
    stem.get(stem.len().checked_sub(16)?..)
}

/// A digest file's JSON, with CloudTrail's member names and order. Members that may be
/// null are always written, as validators require some of them to be present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLogFile>,
}

/// One delivered log file as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    /// Lower-case hex SHA-256 of the file's uncompressed bytes.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// The digest a new one points back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousDigest {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the previous digest's uncompressed bytes.
    pub hash: String,
    /// The previous digest's hex signature.
    pub signature: String,
}

impl DigestFile {
    /// A digest of the log files delivered in `[start_ms, end_ms]`, chained to `previous`
    /// (none for the first digest after validation or logging starts).
    pub fn new(
        account_id: &str,
        (start_ms, end_ms): (i64, i64),
        (bucket, key): (&str, &str),
        fingerprint: &str,
        previous: Option<&PreviousDigest>,
        log_files: Vec<DigestLogFile>,
    ) -> DigestFile {
        // Event times are written as `YYYY-MM-DDTHH:MM:SSZ`, so text order is time order.
        let newest = log_files.iter().map(|file| &file.newest_event_time).max().cloned();
        let oldest = log_files.iter().map(|file| &file.oldest_event_time).min().cloned();
        DigestFile {
            aws_account_id: account_id.to_owned(),
            digest_start_time: format_event_time(start_ms),
            digest_end_time: format_event_time(end_ms),
            digest_s3_bucket: bucket.to_owned(),
            digest_s3_object: key.to_owned(),
            digest_public_key_fingerprint: fingerprint.to_owned(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
            newest_event_time: newest,
            oldest_event_time: oldest,
            previous_digest_s3_bucket: previous.map(|previous| previous.bucket.clone()),
            previous_digest_s3_object: previous.map(|previous| previous.key.clone()),
            previous_digest_hash_value: previous.map(|previous| previous.hash.clone()),
            previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.to_owned()),
            previous_digest_signature: previous.map(|previous| previous.signature.clone()),
            log_files,
        }
    }
}

/// What a digest's signature signs, exactly as CloudTrail and the AWS CLI build it:
/// the end time as written in the digest, `bucket/key`, the hex SHA-256 of the uncompressed
/// digest, and the previous digest's hex signature or the text `null`, joined by newlines.
pub fn string_to_sign(
    digest_end_time: &str,
    bucket: &str,
    key: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!("{digest_end_time}\n{bucket}/{key}\n{digest_sha256_hex}\n{}", previous_signature.unwrap_or("null"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_digests_as_cloudtrail_does() {
        let name = DigestFileName {
            prefix: None,
            account_id: "111122223333",
            region: "us-east-2",
            trail_name: "your-trail-name",
            home_region: "us-east-2",
            end_ms: 1_439_823_691_000,
        };
        let key = name.key();
        assert_eq!(
            key,
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/\
             111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
        );
        assert_eq!(key_time(&key), Some("20150817T150131Z"));
        assert_eq!(&key[key.len() - 24..key.len() - 8], "20150817T150131Z", "where the AWS CLI reads the time");
        let prefixed = DigestFileName { prefix: Some("logs/"), ..name }.key();
        assert!(prefixed.starts_with("logs/AWSLogs/"));
        assert_eq!(key_time("a_20150817T150131Z_backfill.json.gz"), Some("20150817T150131Z"));
        assert_eq!(key_time("short.json.gz"), None);
    }

    #[test]
    fn writes_every_member_in_cloudtrail_order() {
        let previous = PreviousDigest {
            bucket: "b".into(),
            key: "prev".into(),
            hash: "ab".repeat(32),
            signature: "cd".repeat(256),
        };
        let file = DigestLogFile {
            s3_bucket: "b".into(),
            s3_object: "log".into(),
            hash_value: "ef".repeat(32),
            hash_algorithm: HASH_ALGORITHM.into(),
            newest_event_time: "2015-08-17T14:52:27Z".into(),
            oldest_event_time: "2015-08-17T14:42:27Z".into(),
        };
        let digest = DigestFile::new(
            "111122223333",
            (1_439_820_091_000, 1_439_823_691_000),
            ("b", "key"),
            "31e8b5433410dfb61a9dc45cc65b22ff",
            Some(&previous),
            vec![file],
        );
        let text = serde_json::to_string(&digest).unwrap();
        let order: Vec<usize> = [
            "awsAccountId",
            "digestStartTime",
            "digestEndTime",
            "digestS3Bucket",
            "digestS3Object",
            "digestPublicKeyFingerprint",
            "digestSignatureAlgorithm",
            "newestEventTime",
            "oldestEventTime",
            "previousDigestS3Bucket",
            "previousDigestS3Object",
            "previousDigestHashValue",
            "previousDigestHashAlgorithm",
            "previousDigestSignature",
            "logFiles",
        ]
        .iter()
        .map(|member| text.find(&format!("\"{member}\"")).unwrap())
        .collect();
        assert!(order.is_sorted(), "{text}");
        assert!(text.contains("\"digestStartTime\":\"2015-08-17T14:01:31Z\""));
        assert_eq!(serde_json::from_str::<DigestFile>(&text).unwrap(), digest);

        let first = DigestFile::new("1", (0, 1000), ("b", "k"), "f", None, Vec::new());
        let text = serde_json::to_string(&first).unwrap();
        assert!(text.contains("\"previousDigestSignature\":null"), "present though null: {text}");
        assert!(text.contains("\"newestEventTime\":null"));
        assert!(text.contains("\"logFiles\":[]"));
    }

    #[test]
    fn builds_the_string_to_sign() {
        assert_eq!(
            string_to_sign("2015-08-17T15:01:31Z", "b", "k", "00ff", None),
            "2015-08-17T15:01:31Z\nb/k\n00ff\nnull"
        );
        assert_eq!(string_to_sign("t", "b", "k", "h", Some("sig")), "t\nb/k\nh\nsig");
    }
}
