//! `trailkeeper verify-store`'s work: a stopped data directory checked against itself and
//! against its signed checkpoints. The store's verifier rebuilds every tree from the stored
//! events and names what was altered, dropped or inserted; here every checkpoint's
//! signature is checked with its Region's key, and its root against the rebuilt tree's root
//! at its size, which catches tree files changed in step with the events.
//!
//! Reads only, the stored signing keys included.

use std::collections::BTreeMap;
use std::path::Path;

use trailkeeper_core::merkle::Hash;
use trailkeeper_store::StoreError;
use trailkeeper_store::merkle::TreeId;
use trailkeeper_store::merkle::verify::{Verification, verify_store};

use super::checkpoints::{CheckpointError, SignedCheckpoint, read_all};
use crate::signing::{PublicKeyInfo, stored_public_keys};

/// What became of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// Signed by the named key, and the rebuilt tree has its root at its size.
    Valid,
    /// No key of the checkpoint's Region has its fingerprint.
    UnknownKey,
    /// The signature or the checkpoint's form fails.
    Invalid(CheckpointError),
    /// The rebuilt tree has another root at the checkpoint's size.
    RootMismatch { rebuilt: Hash },
    /// The rebuilt tree has fewer leaves than the checkpoint covers.
    BeyondStore { rebuilt_size: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointCheck {
    pub checkpoint: SignedCheckpoint,
    pub outcome: CheckpointOutcome,
}

/// Everything verification found in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirReport {
    pub store: Verification,
    /// Every checkpoint, by tree, oldest first.
    pub checkpoints: BTreeMap<TreeId, Vec<CheckpointCheck>>,
}

impl DataDirReport {
    /// Whether anything at all is wrong.
    pub fn has_findings(&self) -> bool {
        self.store.findings().next().is_some()
            || self.checkpoints.values().flatten().any(|check| check.outcome != CheckpointOutcome::Valid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the signing keys: {0}")]
    Keys(String),
}

/// Verifies the data directory `data_dir` of a stopped server.
pub fn verify_data_dir(data_dir: &Path) -> Result<DataDirReport, OfflineError> {
    let mut by_tree: BTreeMap<TreeId, Vec<SignedCheckpoint>> = BTreeMap::new();
    for checkpoint in read_all(data_dir)? {
        by_tree.entry(checkpoint.tree()).or_default().push(checkpoint);
    }
    let sizes: BTreeMap<TreeId, Vec<u64>> = by_tree
        .iter()
        .map(|(tree, list)| (tree.clone(), list.iter().map(|checkpoint| checkpoint.tree_size).collect()))
        .collect();
    let store = verify_store(data_dir, &sizes)?;
    let mut keys: BTreeMap<String, Vec<PublicKeyInfo>> = BTreeMap::new();
    for tree in by_tree.keys() {
        if !keys.contains_key(&tree.region) {
            let stored =
                stored_public_keys(data_dir, &tree.region).map_err(|error| OfflineError::Keys(error.to_string()))?;
            keys.insert(tree.region.clone(), stored);
        }
    }

    let mut checkpoints = BTreeMap::new();
    for (tree, list) in by_tree {
        let rebuilt = store.trees.iter().find(|verified| verified.id == tree);
        let checks = list
            .into_iter()
            .map(|checkpoint| {
                let key = keys
                    .get(&tree.region)
                    .and_then(|keys| keys.iter().find(|key| key.fingerprint == checkpoint.key_fingerprint));
                let outcome = match key {
                    None => CheckpointOutcome::UnknownKey,
                    Some(key) => match checkpoint.verify(&key.der) {
                        Err(error) => CheckpointOutcome::Invalid(error),
                        Ok(statement) => match rebuilt.and_then(|tree| tree.rebuilt_roots.get(&statement.tree_size)) {
                            None => CheckpointOutcome::BeyondStore {
                                rebuilt_size: rebuilt.map_or(0, |tree| tree.rebuilt_size),
                            },
                            Some(root) if *root == statement.root_hash => CheckpointOutcome::Valid,
                            Some(root) => CheckpointOutcome::RootMismatch { rebuilt: *root },
                        },
                    },
                };
                CheckpointCheck { checkpoint, outcome }
            })
            .collect();
        checkpoints.insert(tree, checks);
    }
    Ok(DataDirReport { store, checkpoints })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use trailkeeper_core::merkle::leaf_hash;
    use trailkeeper_core::record::{RecordDefaults, parse_record};
    use trailkeeper_store::merkle::{MerkleOptions, MerkleTrees, RECORD_BYTES};
    use trailkeeper_store::segment::{read_all_rows, write_segment};
    use trailkeeper_store::{EventLog, LogOptions, NewEvent, StoredEvent, sealed_segments};

    use super::*;
    use crate::integrity::checkpoints::Checkpoints;
    use crate::signing::SigningKeys;

    const ACCOUNT: &str = "123456789012";
    const REGION: &str = "us-east-1";

    fn parse(json: &str) -> trailkeeper_core::ParsedRecord {
        parse_record(json.as_bytes(), RecordDefaults { account_id: ACCOUNT, region: REGION }, &mut String::new).unwrap()
    }

    fn record(id: usize) -> NewEvent {
        let json = format!(
            r#"{{"eventTime":"2026-03-14T10:00:{:02}Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"{REGION}","eventID":"event-{id}","recipientAccountId":"{ACCOUNT}"}}"#,
            id % 60
        );
        NewEvent { record: parse(&json), ingest_time_ms: 1_000 }
    }

    /// A stopped store of 50 events with two signed checkpoints (at 20 and 50 events).
    fn store(dir: &Path) {
        let log = EventLog::open(dir, LogOptions { sync: false, ..LogOptions::default() }).unwrap();
        let options = MerkleOptions { poll: Duration::from_millis(5), sync: false, ..MerkleOptions::default() };
        let trees = MerkleTrees::open(dir, log.clone(), options).unwrap();
        let keys = SigningKeys::open(dir, Duration::from_secs(3600)).unwrap();
        let checkpoints = Checkpoints::open(dir).unwrap();
        let tree = TreeId::new(ACCOUNT, REGION);
        for ids in [0..20, 20..50] {
            let (tx, rx) = mpsc::channel();
            log.append(ids.map(record).collect(), move |result| tx.send(result).unwrap()).unwrap();
            rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while trees.through_seq() < log.last_seq() {
                assert!(Instant::now() < deadline, "the follower did not catch up");
                std::thread::sleep(Duration::from_millis(5));
            }
            checkpoints.sign_if_grown(&tree, trees.head(&tree), 5_000, &keys).unwrap();
        }
        trees.close();
        log.close();
    }

    fn outcomes(report: &DataDirReport) -> Vec<CheckpointOutcome> {
        report.checkpoints.values().flatten().map(|check| check.outcome.clone()).collect()
    }

    #[test]
    fn an_untouched_store_verifies_with_every_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let report = verify_data_dir(dir.path()).unwrap();
        assert!(!report.has_findings(), "{report:?}");
        assert_eq!(outcomes(&report), vec![CheckpointOutcome::Valid, CheckpointOutcome::Valid]);
        assert_eq!(report.store.trees[0].matched, 50);
    }

    #[test]
    fn a_forged_checkpoint_or_a_missing_key_is_found() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let path = dir.path().join("integrity/checkpoints.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<SignedCheckpoint> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        lines[0].tree_size = 19;
        let forged: String = lines.iter().map(|line| serde_json::to_string(line).unwrap() + "\n").collect();
        std::fs::write(&path, forged).unwrap();
        let report = verify_data_dir(dir.path()).unwrap();
        assert!(matches!(
            outcomes(&report).as_slice(),
            [CheckpointOutcome::Invalid(CheckpointError::BadSignature { .. }), CheckpointOutcome::Valid]
        ));

        std::fs::remove_dir_all(dir.path().join("signing-keys")).unwrap();
        let report = verify_data_dir(dir.path()).unwrap();
        assert_eq!(outcomes(&report), vec![CheckpointOutcome::UnknownKey, CheckpointOutcome::UnknownKey]);
    }

    #[test]
    fn tree_files_changed_in_step_with_an_event_still_fail_the_signed_root() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        // The intruder edits event 30 in its segment and writes its new leaf hash into the
        // tree's leaf file, so that the two agree again.
        let (_, paths) = sealed_segments(dir.path()).unwrap();
        let mut events = Vec::new();
        let mut leaf = None;
        read_all_rows(&paths[0], |row| {
            let mut json = row.event_json.to_owned();
            if row.event_id == "event-30" {
                json = json.replace("CreateUser", "DeleteUser");
                leaf = Some((row.seq as u64, leaf_hash(json.as_bytes())));
            }
            let record = parse(&json);
            events.push(StoredEvent::from_record(row.seq as u64, 1_000, record));
        })
        .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let rewritten = write_segment(scratch.path(), &events.iter().collect::<Vec<_>>()).unwrap();
        std::fs::copy(rewritten.parquet_path(), &paths[0]).unwrap();
        std::fs::copy(rewritten.parquet_path().with_extension("idx"), paths[0].with_extension("idx")).unwrap();
        let (seq, hash) = leaf.unwrap();
        let leaves = dir.path().join(format!("merkle/account={ACCOUNT}/region={REGION}/leaves"));
        let mut bytes = std::fs::read(&leaves).unwrap();
        let at = bytes.chunks_exact(RECORD_BYTES).position(|record| record[..8] == seq.to_le_bytes()).unwrap();
        bytes[at * RECORD_BYTES + 8..(at + 1) * RECORD_BYTES].copy_from_slice(&hash);
        std::fs::write(&leaves, bytes).unwrap();

        let report = verify_data_dir(dir.path()).unwrap();
        assert_eq!(report.store.findings().count(), 0, "event and leaf agree");
        assert!(report.has_findings());
        assert!(
            matches!(outcomes(&report).as_slice(), [CheckpointOutcome::Valid, CheckpointOutcome::RootMismatch { .. }]),
            "the first checkpoint (20 events) does not cover event 30; the second does"
        );
    }
}
