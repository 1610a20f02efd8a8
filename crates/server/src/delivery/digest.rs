//! Digest files of a trail with log file validation: every digest period, per Region, one
//! signed file listing the log files delivered in the period, chained to the previous one.
//!
//! The chain state lives in the trail's cursor file, so a restart continues it. A digest
//! round is made durable as a [`PendingCut`] (its end time and each Region's signing key)
//! before any digest is written; the digests follow from that and the chain state alone,
//! and RSA PKCS#1 v1.5 signatures are deterministic, so a round redone after a crash writes
//! the same bytes under the same names.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trailkeeper_core::digest::{
    DigestFile, DigestFileName, DigestLogFile, HASH_ALGORITHM, PreviousDigest, SIGNATURE_ALGORITHM, string_to_sign,
};

use crate::signing::SigningKey;
use crate::trails::Trail;

/// The digest chains of one trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DigestState {
    /// Where the current digest period began; `None` while validation is off or the trail
    /// is not logging.
    pub period_start_ms: Option<i64>,
    /// Per Region: the log files delivered this period and the last digest written.
    pub regions: BTreeMap<String, RegionChain>,
    pub pending: Option<PendingCut>,
    /// Per Region, the newest digest written, kept when its chain closes and when a new one
    /// opens, until a newer digest replaces it: what offline validators hold the bucket to,
    /// as a deleted newest digest leaves no trace in the bucket itself.
    #[serde(default)]
    pub last_written: BTreeMap<String, DigestLocation>,
}

/// Where a digest file was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestLocation {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegionChain {
    pub log_files: Vec<DigestLogFile>,
    pub previous: Option<PreviousDigest>,
}

/// A digest round on its way out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PendingCut {
    /// The digests' end time, in whole seconds.
    pub end_ms: i64,
    /// The fingerprint of the key that signs each Region's digest.
    pub keys: BTreeMap<String, String>,
    /// The last round of the chain (logging stopped, validation turned off, trail deleted):
    /// the next digest after it starts a new chain.
    pub closing: bool,
}

/// One digest, ready to write.
pub(super) struct SignedDigest {
    pub key: String,
    pub body: Bytes,
    pub metadata: BTreeMap<String, String>,
    /// What the next digest of the Region points back to.
    pub previous: PreviousDigest,
}

impl DigestState {
    /// The newest digest written in each Region, for this chain or an earlier one. Cursor
    /// files from before `last_written` existed know only an open chain's previous digest.
    pub fn newest_digests(&self) -> BTreeMap<String, DigestLocation> {
        let mut newest = self.last_written.clone();
        for (region, chain) in &self.regions {
            if let (false, Some(previous)) = (newest.contains_key(region), &chain.previous) {
                newest.insert(
                    region.clone(),
                    DigestLocation { bucket: previous.bucket.clone(), key: previous.key.clone() },
                );
            }
        }
        newest
    }

    /// Starts a chain at `now_ms` (a starting digest: no previous digest in any Region).
    pub fn open(&mut self, trail: &Trail, now_ms: i64) {
        self.period_start_ms = Some(whole_seconds(now_ms));
        self.regions.clear();
        self.regions.insert(trail.home_region.clone(), RegionChain::default());
    }

    /// Records a delivered log file in the current period, if a chain is open.
    pub fn add_log_file(&mut self, region: &str, file: DigestLogFile) {
        if self.period_start_ms.is_some() {
            self.regions.entry(region.to_owned()).or_default().log_files.push(file);
        }
    }

    /// Whether a round may end at `now_ms`: digest names carry whole seconds, so a round
    /// never ends in the second its period began.
    pub fn can_cut(&self, now_ms: i64) -> bool {
        self.period_start_ms.is_some_and(|start| whole_seconds(now_ms) > start)
    }

    /// Moves the chain past a written round.
    pub fn commit(&mut self, cut: &PendingCut, written: Vec<(String, PreviousDigest)>) {
        for (region, previous) in written {
            let location = DigestLocation { bucket: previous.bucket.clone(), key: previous.key.clone() };
            self.last_written.insert(region.clone(), location);
            let chain = self.regions.entry(region).or_default();
            chain.log_files.clear();
            chain.previous = Some(previous);
        }
        if cut.closing {
            self.period_start_ms = None;
            self.regions.clear();
        } else {
            self.period_start_ms = Some(cut.end_ms);
        }
        self.pending = None;
    }
}

/// Builds and signs `region`'s digest of the round `cut`.
pub(super) fn sign_digest(
    trail: &Trail,
    start_ms: i64,
    cut: &PendingCut,
    region: &str,
    chain: &RegionChain,
    key: &SigningKey,
) -> Result<SignedDigest, String> {
    let bucket = &trail.s3_bucket_name;
    let object_key = DigestFileName {
        prefix: trail.s3_key_prefix.as_deref(),
        account_id: &trail.account_id,
        region,
        trail_name: &trail.name,
        home_region: &trail.home_region,
        end_ms: cut.end_ms,
    }
    .key();
    let digest = DigestFile::new(
        &trail.account_id,
        (start_ms, cut.end_ms),
        (bucket, &object_key),
        key.fingerprint(),
        chain.previous.as_ref(),
        chain.log_files.clone(),
    );
    let json = serde_json::to_vec(&digest).map_err(|error| error.to_string())?;
    let hash = hex::encode(Sha256::digest(&json));
    let to_sign = string_to_sign(
        &digest.digest_end_time,
        bucket,
        &object_key,
        &hash,
        chain.previous.as_ref().map(|previous| previous.signature.as_str()),
    );
    let signature = hex::encode(key.sign(to_sign.as_bytes()).map_err(|error| error.to_string())?);
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 2), Compression::new(6));
    encoder.write_all(&json).map_err(|error| error.to_string())?;
    let body = Bytes::from(encoder.finish().map_err(|error| error.to_string())?);
    let metadata = BTreeMap::from([
        ("signature".to_owned(), signature.clone()),
        ("signature-algorithm".to_owned(), SIGNATURE_ALGORITHM.to_owned()),
    ]);
    Ok(SignedDigest {
        previous: PreviousDigest { bucket: bucket.clone(), key: object_key.clone(), hash, signature },
        key: object_key,
        body,
        metadata,
    })
}

/// A delivered log file as its digest lists it.
pub(super) fn log_file_entry(
    bucket: &str,
    key: &str,
    uncompressed_sha256: &[u8],
    (oldest_ms, newest_ms): (i64, i64),
) -> DigestLogFile {
    DigestLogFile {
        s3_bucket: bucket.to_owned(),
        s3_object: key.to_owned(),
        hash_value: hex::encode(uncompressed_sha256),
        hash_algorithm: HASH_ALGORITHM.to_owned(),
        newest_event_time: trailkeeper_core::time::format_event_time(newest_ms),
        oldest_event_time: trailkeeper_core::time::format_event_time(oldest_ms),
    }
}

pub(super) fn whole_seconds(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn trail() -> Trail {
        Trail { log_file_validation_enabled: true, ..crate::trails::tests::trail("t") }
    }

    fn written(key: &str) -> Vec<(String, PreviousDigest)> {
        let previous =
            PreviousDigest { bucket: "b".into(), key: key.into(), hash: "00".repeat(32), signature: "11".repeat(256) };
        vec![("us-east-1".to_owned(), previous)]
    }

    fn location(key: &str) -> BTreeMap<String, DigestLocation> {
        BTreeMap::from([("us-east-1".to_owned(), DigestLocation { bucket: "b".into(), key: key.into() })])
    }

    #[test]
    fn remembers_the_newest_digest_after_its_chain_closes_and_a_new_one_opens() {
        let mut state = DigestState::default();
        assert!(state.newest_digests().is_empty());
        state.open(&trail(), 1_000);
        let cut = PendingCut { end_ms: 5_000, keys: BTreeMap::new(), closing: false };
        state.commit(&cut, written("first"));
        assert_eq!(state.newest_digests(), location("first"));

        let closing = PendingCut { end_ms: 9_000, keys: BTreeMap::new(), closing: true };
        state.commit(&closing, written("final"));
        assert!(state.regions.is_empty(), "the chain is closed");
        assert_eq!(state.newest_digests(), location("final"));

        state.open(&trail(), 20_000);
        assert!(state.regions.values().all(|chain| chain.previous.is_none()), "a new chain starts unchained");
        assert_eq!(state.newest_digests(), location("final"), "until the new chain writes a digest");
        let cut = PendingCut { end_ms: 25_000, keys: BTreeMap::new(), closing: false };
        state.commit(&cut, written("restarted"));
        assert_eq!(state.newest_digests(), location("restarted"));
    }

    #[test]
    fn reads_the_open_chain_of_state_written_before_the_record_existed() {
        let mut state = DigestState::default();
        state.open(&trail(), 1_000);
        let cut = PendingCut { end_ms: 5_000, keys: BTreeMap::new(), closing: false };
        state.commit(&cut, written("first"));
        state.last_written.clear();
        let json = serde_json::to_value(&state).unwrap();
        let mut old = json.as_object().unwrap().clone();
        old.remove("last_written");
        let state: DigestState = serde_json::from_value(serde_json::Value::Object(old)).unwrap();
        assert_eq!(state.newest_digests(), location("first"));
    }
}
