//! The walk against an in-memory source: a valid chain, every kind of tampering the AWS
//! CLI reports, gaps, backfill digests, a chain across buckets, and the deletion of the
//! newest digests, which only the recorded newest digest reveals. Expected output is the
//! AWS CLI's, byte for byte.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use trailkeeper_core::digest::{
    DigestFile, DigestFileName, DigestLogFile, HASH_ALGORITHM, PreviousDigest, SIGNATURE_ALGORITHM, string_to_sign,
};
use trailkeeper_core::time::format_event_time;

use super::*;
use crate::signing::{SigningKey, SigningKeys};

const ARN: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const BUCKET: &str = "trail-bucket";
/// 2026-11-20T00:00:00Z
const T0: i64 = 1_795_132_800_000;
const HOUR: i64 = 3_600_000;

/// Buckets and public keys in memory, listed a few keys per page.
#[derive(Default)]
struct MemorySource {
    objects: BTreeMap<(String, String), SourceObject>,
    damaged: Vec<(String, String)>,
    keys: Vec<(PublicKey, i64, i64)>,
    page_size: usize,
}

impl DigestSource for MemorySource {
    fn list_keys(&mut self, bucket: &str, prefix: &str, after: &str) -> Result<Vec<String>, SourceError> {
        if !self.objects.keys().any(|(name, _)| name == bucket) {
            return Err(SourceError::new(format!("no bucket {bucket}")));
        }
        Ok(self
            .objects
            .keys()
            .filter(|(name, key)| name == bucket && key.starts_with(prefix) && key.as_str() > after)
            .take(self.page_size.max(1))
            .map(|(_, key)| key.clone())
            .collect())
    }

    fn get_object(&mut self, bucket: &str, key: &str) -> Result<Fetched, SourceError> {
        let id = (bucket.to_owned(), key.to_owned());
        if self.damaged.contains(&id) {
            return Ok(Fetched::Damaged);
        }
        Ok(self.objects.get(&id).cloned().map_or(Fetched::NotFound, Fetched::Object))
    }

    fn public_keys(&mut self, region: &str, start_ms: i64, end_ms: i64) -> Result<Vec<PublicKey>, SourceError> {
        assert_eq!(region, REGION, "keys of the source Region");
        Ok(self
            .keys
            .iter()
            .filter(|(_, from, until)| *from <= end_ms && start_ms <= *until)
            .map(|(key, _, _)| key.clone())
            .collect())
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A trail's bucket with digests written the way the delivery worker writes them.
struct Fixture {
    source: MemorySource,
    signer: Arc<SigningKey>,
    _keys_dir: tempfile::TempDir,
    previous: Option<PreviousDigest>,
    log_count: usize,
}

impl Fixture {
    fn new() -> Fixture {
        let keys_dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::open(keys_dir.path(), Duration::from_secs(3600)).unwrap();
        let signer = keys.current(REGION, T0).unwrap();
        let public = PublicKey { fingerprint: signer.fingerprint().to_owned(), der: signer.public_key_der().to_vec() };
        let source =
            MemorySource { keys: vec![(public, T0 - 24 * HOUR, i64::MAX)], page_size: 2, ..Default::default() };
        Fixture { source, signer, _keys_dir: keys_dir, previous: None, log_count: 0 }
    }

    fn put(&mut self, bucket: &str, key: &str, body: Vec<u8>, metadata: BTreeMap<String, String>) {
        self.source.objects.insert((bucket.to_owned(), key.to_owned()), SourceObject { body, metadata });
    }

    fn object(&mut self, bucket: &str, key: &str) -> &mut SourceObject {
        self.source.objects.get_mut(&(bucket.to_owned(), key.to_owned())).unwrap()
    }

    fn remove(&mut self, bucket: &str, key: &str) {
        self.source.objects.remove(&(bucket.to_owned(), key.to_owned())).unwrap();
    }

    /// Delivers one log file in the middle of `[start_ms, end_ms]`, then writes and signs
    /// the period's digest in `bucket`, chained to the previous digest unless `new_chain`.
    /// Returns the digest's key and the log file's key.
    fn digest(&mut self, bucket: &str, (start_ms, end_ms): (i64, i64), new_chain: bool) -> (String, String) {
        self.log_count += 1;
        let delivered = start_ms + (end_ms - start_ms) / 2;
        let log_key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/20/{ACCOUNT}_CloudTrail_{REGION}_{}_{:016}.json.gz",
            &keys::compact_date(delivered)[..13],
            self.log_count
        );
        let records = format!("{{\"Records\":[{{\"eventID\":\"{}\"}}]}}", self.log_count);
        self.put(bucket, &log_key, gzip(records.as_bytes()), BTreeMap::new());
        let log_file = DigestLogFile {
            s3_bucket: bucket.to_owned(),
            s3_object: log_key.clone(),
            hash_value: hex::encode(Sha256::digest(records.as_bytes())),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            newest_event_time: format_event_time(delivered),
            oldest_event_time: format_event_time(delivered),
        };
        let key = DigestFileName {
            prefix: None,
            account_id: ACCOUNT,
            region: REGION,
            trail_name: "org-trail",
            home_region: REGION,
            end_ms,
        }
        .key();
        let previous = if new_chain { None } else { self.previous.clone() };
        let digest = DigestFile::new(
            ACCOUNT,
            (start_ms, end_ms),
            (bucket, &key),
            self.signer.fingerprint(),
            previous.as_ref(),
            vec![log_file],
        );
        let (body, signature) = self.sign(&digest);
        self.put(bucket, &key, gzip(&body), signature_metadata(&signature));
        self.previous = Some(PreviousDigest {
            bucket: bucket.to_owned(),
            key: key.clone(),
            hash: hex::encode(Sha256::digest(&body)),
            signature,
        });
        (key, log_key)
    }

    fn sign(&self, digest: &DigestFile) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(digest).unwrap();
        let to_sign = string_to_sign(
            &digest.digest_end_time,
            &digest.digest_s3_bucket,
            &digest.digest_s3_object,
            &hex::encode(Sha256::digest(&body)),
            digest.previous_digest_signature.as_deref(),
        );
        (body, hex::encode(self.signer.sign(to_sign.as_bytes()).unwrap()))
    }

    /// Three hourly digests of one chain, from T0 to T0 + 3 h.
    fn chain() -> (Fixture, Vec<(String, String)>) {
        let mut fixture = Fixture::new();
        let files =
            (0..3).map(|hour| fixture.digest(BUCKET, (T0 + hour * HOUR, T0 + (hour + 1) * HOUR), hour == 0)).collect();
        (fixture, files)
    }
}

fn signature_metadata(signature: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("signature".to_owned(), signature.to_owned()),
        ("signature-algorithm".to_owned(), SIGNATURE_ALGORITHM.to_owned()),
    ])
}

fn request() -> ValidationRequest {
    ValidationRequest {
        trail: TrailArn::parse(ARN).unwrap(),
        source_region: REGION.to_owned(),
        account_id: ACCOUNT.to_owned(),
        bucket: BUCKET.to_owned(),
        prefix: None,
        start_ms: T0,
        end_ms: T0 + 4 * HOUR,
        newest_written: None,
    }
}

struct Run {
    out: String,
    err: String,
    invalid: bool,
}

fn run(source: &mut MemorySource, request: &ValidationRequest, verbose: bool) -> Run {
    let mut report = Report::new(Vec::new(), Vec::new(), verbose, (request.start_ms, request.end_ms));
    validate(source, request, &mut report).unwrap();
    let invalid = report.found_invalid();
    let (out, err) = report.into_writers();
    Run { out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap(), invalid }
}

const OPENING: &str = "Validating log files for trail arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail \
                       between 2026-11-20T00:00:00Z and 2026-11-20T04:00:00Z\n\n";
const REQUESTED: &str = "Results requested for 2026-11-20T00:00:00Z to 2026-11-20T04:00:00Z\n";

#[test]
fn a_valid_chain_prints_what_the_aws_cli_prints() {
    let (mut fixture, files) = Fixture::chain();
    let quiet = run(&mut fixture.source, &request(), false);
    assert_eq!(
        quiet.out,
        format!(
            "{OPENING}{REQUESTED}Results found for 2026-11-20T00:00:00Z to 2026-11-20T03:00:00Z:\n\n\
             3/3 digest files valid\n3/3 log files valid\n"
        )
    );
    assert_eq!(quiet.err, "");
    assert!(!quiet.invalid);

    let verbose = run(&mut fixture.source, &request(), true);
    let mut lines = String::new();
    for (digest, log) in files.iter().rev() {
        lines += &format!("Digest file\ts3://{BUCKET}/{digest}\tvalid\nLog file\ts3://{BUCKET}/{log}\tvalid\n");
    }
    assert_eq!(
        verbose.out,
        format!(
            "{OPENING}{lines}\n{REQUESTED}Results found for 2026-11-20T00:00:00Z to 2026-11-20T03:00:00Z:\n\n\
             3/3 digest files valid\n3/3 log files valid\n"
        )
    );
}

#[test]
fn tampered_log_files_are_reported_each_in_its_own_words() {
    let (mut fixture, files) = Fixture::chain();
    let [(_, log1), (_, log2), (_, log3)] = <[_; 3]>::try_from(files).unwrap();
    fixture.object(BUCKET, &log3).body = gzip(b"{\"Records\":[{\"eventID\":\"forged\"}]}");
    let mut trailing = fixture.object(BUCKET, &log2).body.clone();
    trailing.extend_from_slice(b"appended");
    fixture.object(BUCKET, &log2).body = trailing;
    fixture.remove(BUCKET, &log1);

    let result = run(&mut fixture.source, &request(), false);
    assert_eq!(
        result.err,
        format!(
            "Log file\ts3://{BUCKET}/{log3}\tINVALID: hash value doesn't match\n\n\
             Log file\ts3://{BUCKET}/{log2}\tINVALID: unexpected data after end of compressed stream\n\n\
             Log file\ts3://{BUCKET}/{log1}\tINVALID: not found\n\n"
        )
    );
    assert!(
        result.out.ends_with("\n3/3 digest files valid\n0/3 log files valid, 3/3 log files INVALID\n"),
        "{}",
        result.out
    );
    assert!(result.invalid);

    fixture.object(BUCKET, &log3).body = b"not gzip".to_vec();
    fixture.source.damaged.push((BUCKET.to_owned(), log2.clone()));
    let result = run(&mut fixture.source, &request(), false);
    assert!(result.err.starts_with(&format!(
        "Log file\ts3://{BUCKET}/{log3}\tINVALID: invalid format\n\n\
         Log file\ts3://{BUCKET}/{log2}\tINVALID: invalid format\n\n"
    )));
}

#[test]
fn a_deleted_digest_in_the_middle_is_not_found_and_the_walk_goes_on() {
    let (mut fixture, files) = Fixture::chain();
    fixture.remove(BUCKET, &files[1].0);
    let result = run(&mut fixture.source, &request(), true);
    assert_eq!(result.err, format!("\nDigest file\ts3://{BUCKET}/{}\tINVALID: not found\n\n", files[1].0));
    assert!(result.out.contains(&format!("Digest file\ts3://{BUCKET}/{}\tvalid\n", files[0].0)));
    assert!(result.out.ends_with(
        "Results found for 2026-11-20T00:00:00Z to 2026-11-20T03:00:00Z:\n\n\
         2/3 digest files valid, 1/3 digest files INVALID\n2/2 log files valid\n"
    ));
    assert!(result.invalid);
}

#[test]
fn tampered_digests_are_reported_each_in_its_own_words() {
    type Tamper = fn(&mut Fixture, &str);
    let cases: [(&str, Tamper); 6] = [
        ("signature verification failed", |fixture, key| {
            let object = fixture.object(BUCKET, key);
            let mut text = String::from_utf8(checks::inflate_digest(&object.body).unwrap()).unwrap();
            text = text.replace("\"logFiles\":[{", "\"logFiles\":[],\"x\":[{");
            object.body = gzip(text.as_bytes());
        }),
        ("signature verification failed", |fixture, key| {
            fixture.object(BUCKET, key).metadata.remove("signature");
        }),
        ("invalid format", |fixture, key| fixture.object(BUCKET, key).body = gzip(b"{\"digestS3Bucket\":")),
        ("invalid format", |fixture, key| fixture.object(BUCKET, key).body = b"plain text".to_vec()),
        ("has been moved from its original location", |fixture, key| {
            // The oldest digest, copied over this one's key.
            let oldest =
                fixture.source.objects.iter().find(|((_, name), _)| name.contains("T010000Z")).unwrap().1.clone();
            *fixture.object(BUCKET, key) = oldest;
        }),
        ("'str' object does not support item assignment", |fixture, key| {
            fixture.object(BUCKET, key).body = gzip(b"\"just a string\"");
        }),
    ];
    for (reason, tamper) in cases {
        let (mut fixture, files) = Fixture::chain();
        tamper(&mut fixture, &files[1].0);
        let result = run(&mut fixture.source, &request(), false);
        assert_eq!(result.err, format!("Digest file\ts3://{BUCKET}/{}\tINVALID: {reason}\n\n", files[1].0));
        assert!(
            result.out.contains("\n2/3 digest files valid, 1/3 digest files INVALID\n2/2 log files valid\n"),
            "{reason}"
        );
        assert!(result.invalid);
    }
}

#[test]
fn a_digest_signed_by_an_unknown_key_names_the_fingerprint() {
    let (mut fixture, files) = Fixture::chain();
    let other_dir = tempfile::tempdir().unwrap();
    let other = SigningKeys::open(other_dir.path(), Duration::from_secs(3600)).unwrap().current(REGION, T0).unwrap();
    fixture.source.keys = vec![(
        PublicKey { fingerprint: other.fingerprint().to_owned(), der: other.public_key_der().to_vec() },
        0,
        i64::MAX,
    )];
    let result = run(&mut fixture.source, &request(), false);
    let fingerprint = fixture.signer.fingerprint();
    let expected: String = files
        .iter()
        .rev()
        .map(|(key, _)| {
            format!("Digest file\ts3://{BUCKET}/{key}\tINVALID: public key not found in region us-east-1 for fingerprint {fingerprint}\n\n")
        })
        .collect();
    assert_eq!(result.err, expected);
    assert_eq!(
        result.out,
        format!(
            "{OPENING}{REQUESTED}No valid digests found in range\n\n0/3 digest files valid, 3/3 digest files INVALID\n"
        )
    );
}

#[test]
fn a_new_chain_after_a_stop_is_a_gap_not_an_error() {
    let mut fixture = Fixture::new();
    let first = fixture.digest(BUCKET, (T0, T0 + HOUR), true);
    let second = fixture.digest(BUCKET, (T0 + HOUR, T0 + 2 * HOUR), false);
    let restarted = fixture.digest(BUCKET, (T0 + 2 * HOUR + 30 * 60_000, T0 + 3 * HOUR), true);
    let result = run(&mut fixture.source, &request(), true);
    assert_eq!(
        result.err,
        "\nNo log files were delivered by CloudTrail between 2026-11-20T02:00:00Z and 2026-11-20T02:30:00Z\n\n"
    );
    for (key, _) in [&first, &second, &restarted] {
        assert!(result.out.contains(&format!("Digest file\ts3://{BUCKET}/{key}\tvalid\n")));
    }
    assert!(result.out.ends_with("\n3/3 digest files valid\n3/3 log files valid\n"));
    assert!(!result.invalid, "a gap is not invalid");
}

#[test]
fn a_deleted_newest_digest_passes_the_aws_walk_and_fails_against_the_record() {
    let (mut fixture, files) = Fixture::chain();
    let newest = files[2].0.clone();
    fixture.remove(BUCKET, &newest);

    // What the AWS CLI sees: a shorter chain, valid.
    let blind = run(&mut fixture.source, &request(), false);
    assert_eq!(blind.err, "");
    assert!(blind.out.ends_with("Results found for 2026-11-20T00:00:00Z to 2026-11-20T02:00:00Z:\n\n2/2 digest files valid\n2/2 log files valid\n"));
    assert!(!blind.invalid);

    // With the trail's record of its newest digest, the deletion shows.
    let recorded = ValidationRequest {
        newest_written: Some(DigestLocation { bucket: BUCKET.to_owned(), key: newest.clone() }),
        ..request()
    };
    let result = run(&mut fixture.source, &recorded, false);
    assert_eq!(result.err, format!("Digest file\ts3://{BUCKET}/{newest}\tINVALID: not found\n\n"));
    assert!(result.out.ends_with("\n2/3 digest files valid, 1/3 digest files INVALID\n2/2 log files valid\n"));
    assert!(result.invalid);

    // Every digest deleted: the record still names one.
    for (key, _) in &files[..2] {
        fixture.remove(BUCKET, key);
    }
    let result = run(&mut fixture.source, &recorded, false);
    assert_eq!(result.err, format!("Digest file\ts3://{BUCKET}/{newest}\tINVALID: not found\n\n"));
    assert_eq!(
        result.out,
        format!(
            "{OPENING}{REQUESTED}No valid digests found in range\n\n0/1 digest files valid, 1/1 digest files INVALID\n"
        )
    );

    // A record outside the range, or present in the bucket, changes nothing.
    let (mut fixture, files) = Fixture::chain();
    let present = ValidationRequest {
        newest_written: Some(DigestLocation { bucket: BUCKET.to_owned(), key: files[2].0.clone() }),
        ..request()
    };
    assert!(run(&mut fixture.source, &present, false).out.ends_with("\n3/3 digest files valid\n3/3 log files valid\n"));
    fixture.remove(BUCKET, &files[2].0);
    let early = ValidationRequest { end_ms: T0 + HOUR + 30 * 60_000, ..present };
    let result = run(&mut fixture.source, &early, false);
    assert_eq!(result.err, "", "the newest digest ends after the end time plus an hour");
}

#[test]
fn the_range_bounds_the_walk_as_the_aws_cli_bounds_it() {
    let mut fixture = Fixture::new();
    let files: Vec<_> =
        (0..6).map(|hour| fixture.digest(BUCKET, (T0 + hour * HOUR, T0 + (hour + 1) * HOUR), hour == 0)).collect();
    // From 02:00 to 03:00: listed are the digests dated 02:00 to 04:00; the walk starts at
    // the newest and stops after the first that starts before 02:00.
    let window = ValidationRequest { start_ms: T0 + 2 * HOUR, end_ms: T0 + 3 * HOUR, ..request() };
    let result = run(&mut fixture.source, &window, true);
    let valid: Vec<&str> = result.out.lines().filter(|line| line.starts_with("Digest file")).collect();
    let expected: Vec<String> =
        [3, 2, 1].iter().map(|&index| format!("Digest file\ts3://{BUCKET}/{}\tvalid", files[index].0)).collect();
    assert_eq!(valid, expected);
    assert!(
        result.out.contains("Results found for 2026-11-20T02:00:00Z to 2026-11-20T03:00:00Z:\n"),
        "clamped to the range"
    );

    let later = ValidationRequest { start_ms: T0 + 20 * HOUR, end_ms: T0 + 21 * HOUR, ..request() };
    let result = run(&mut fixture.source, &later, false);
    assert_eq!(
        result.out,
        "Validating log files for trail arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail between \
         2026-11-20T20:00:00Z and 2026-11-20T21:00:00Z\n\nResults requested for 2026-11-20T20:00:00Z to 2026-11-20T21:00:00Z\n\
         No digests found\n"
    );
}

#[test]
fn no_public_keys_stops_the_run_with_the_aws_cli_message() {
    let (mut fixture, _) = Fixture::chain();
    fixture.source.keys.clear();
    let mut report = Report::new(Vec::new(), Vec::new(), false, (T0, T0 + 4 * HOUR));
    let error = validate(&mut fixture.source, &request(), &mut report).unwrap_err();
    assert_eq!(error.to_string(), "No public keys found between 2026-11-20T00:00:00Z and 2026-11-20T06:00:00Z");
    assert_eq!(String::from_utf8(report.into_writers().0).unwrap(), OPENING);
}

#[test]
fn a_chain_that_moved_buckets_is_followed() {
    let mut fixture = Fixture::new();
    let old = fixture.digest("old-bucket", (T0, T0 + HOUR), true);
    let new = fixture.digest(BUCKET, (T0 + HOUR, T0 + 2 * HOUR), false);
    let result = run(&mut fixture.source, &request(), true);
    assert!(
        result.out.contains(&format!(
            "Digest file\ts3://{BUCKET}/{}\tvalid\nLog file\ts3://{BUCKET}/{}\tvalid\n",
            new.0, new.1
        ))
    );
    assert!(result.out.contains(&format!(
        "Digest file\ts3://old-bucket/{}\tvalid\nLog file\ts3://old-bucket/{}\tvalid\n",
        old.0, old.1
    )));
    assert!(result.out.ends_with("\n2/2 digest files valid\n2/2 log files valid\n"));
}

#[test]
fn backfill_digests_are_walked_after_the_others() {
    let (mut fixture, _) = Fixture::chain();
    let (key, _) = fixture.digest(BUCKET, (T0 + 3 * HOUR, T0 + 3 * HOUR + 1000), true);
    let object = fixture.source.objects.remove(&(BUCKET.to_owned(), key.clone())).unwrap();
    // A backfill digest names itself under its backfill key, so sign it again.
    let backfill_key = key.replace(".json.gz", "_backfill.json.gz");
    let mut digest: DigestFile = serde_json::from_slice(&checks::inflate_digest(&object.body).unwrap()).unwrap();
    digest.digest_s3_object = backfill_key.clone();
    let (body, signature) = fixture.sign(&digest);
    let mut metadata = signature_metadata(&signature);
    metadata.insert("backfill-generation-timestamp".to_owned(), "2026-11-20T05:00:00Z".to_owned());
    fixture.put(BUCKET, &backfill_key, gzip(&body), metadata);

    let result = run(&mut fixture.source, &request(), true);
    assert!(
        result.out.contains(&format!("(backfill) Digest file\ts3://{BUCKET}/{backfill_key}\tvalid\n")),
        "{}",
        result.out
    );
    assert!(
        result.out.ends_with("\n3/3 digest files valid\n1/1 backfill digest files valid\n4/4 log files valid\n"),
        "{}",
        result.out
    );

    fixture.object(BUCKET, &backfill_key).metadata.remove("backfill-generation-timestamp");
    let result = run(&mut fixture.source, &request(), false);
    assert_eq!(
        result.err,
        format!("(backfill) Digest file\ts3://{BUCKET}/{backfill_key}\tINVALID: invalid format\n\n")
    );
    assert!(result.out.ends_with("\n3/3 digest files valid\n0/1 backfill digest files valid, 1/1 backfill digest files INVALID\n3/3 log files valid\n"));
}

#[test]
fn reads_trail_arns_as_the_aws_cli() {
    let arn = TrailArn::parse(ARN).unwrap();
    assert_eq!((arn.home_region.as_str(), arn.name.as_str(), arn.account_id.as_str()), (REGION, "org-trail", ACCOUNT));
    for bad in [
        "arn:aws:cloudtrail:us-east-1:12345678901:trail/x",
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/",
        "org-trail",
        "arn::cloudtrail:us-east-1:123456789012:trail/x",
    ] {
        assert_eq!(TrailArn::parse(bad), Err(format!("Invalid trail ARN provided: {bad}")));
    }
    assert!(TrailArn::parse("arn:aws-cn:cloudtrail:cn-north-1:123456789012:trail/a/b").is_ok());
    assert_eq!(
        TrailArn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/a/b").unwrap().name,
        "b",
        "the last part"
    );
}
