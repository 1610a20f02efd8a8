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
