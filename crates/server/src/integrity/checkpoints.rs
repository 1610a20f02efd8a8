//! Signed checkpoints and where they are kept: `<data_dir>/integrity/checkpoints.jsonl`,
//! one [`SignedCheckpoint`] per line, appended and synced before anyone is shown it.
//!
//! The file only grows. A crash can leave the last line torn (never shown to anyone); it is
//! cut off at open. Any other line that does not read is damage, and opening fails.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use trailkeeper_core::checkpoint::{Checkpoint, format_checkpoint_time, hash_from_hex, hash_to_hex};
use trailkeeper_core::time::parse_event_time;
use trailkeeper_store::StoreError;
use trailkeeper_store::merkle::{TreeHead, TreeId};

use crate::signing;

const FILE: &str = "checkpoints.jsonl";

/// A checkpoint with its signature, as the API returns it and the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedCheckpoint {
    pub account_id: String,
    pub region: String,
    pub tree_size: u64,
    /// The RFC 9162 root hash, lower-case hex.
    pub root_hash: String,
    /// `2026-11-21T15:54:54.123Z`.
    pub time: String,
    pub key_fingerprint: String,
    /// RSASSA-PKCS1-v1_5 with SHA-256 over the signing string, base64.
    pub signature: String,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint's {field} is not valid: {value:?}")]
    Malformed { field: &'static str, value: String },
    #[error("the checkpoint's signature does not verify with key {fingerprint}")]
    BadSignature { fingerprint: String },
    #[error("the public key's fingerprint is {actual}, but the checkpoint names key {named}")]
    OtherKey { named: String, actual: String },
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with `sign` (a key whose fingerprint the checkpoint carries).
    pub fn sign(
        checkpoint: &Checkpoint,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, signing::SigningError>,
    ) -> Result<SignedCheckpoint, SignError> {
        let text = checkpoint.signing_string()?;
        let signature = sign(text.as_bytes())?;
        Ok(SignedCheckpoint {
            account_id: checkpoint.account_id.clone(),
            region: checkpoint.region.clone(),
            tree_size: checkpoint.tree_size,
            root_hash: hash_to_hex(&checkpoint.root_hash),
            time: format_checkpoint_time(checkpoint.time_ms),
            key_fingerprint: checkpoint.key_fingerprint.clone(),
            signature: STANDARD.encode(signature),
        })
    }

    pub fn tree(&self) -> TreeId {
        TreeId::new(&self.account_id, &self.region)
    }

    /// The signed statement, read back from the wire form.
    pub fn statement(&self) -> Result<Checkpoint, CheckpointError> {
        let malformed =
            |field: &'static str, value: &str| CheckpointError::Malformed { field, value: value.to_owned() };
        let root_hash = hash_from_hex(&self.root_hash).ok_or_else(|| malformed("rootHash", &self.root_hash))?;
        let time_ms = parse_event_time(&self.time).map_err(|_| malformed("time", &self.time))?;
        Ok(Checkpoint {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            tree_size: self.tree_size,
            root_hash,
            time_ms,
            key_fingerprint: self.key_fingerprint.clone(),
        })
    }

    /// Checks the signature with `public_key_der` (DER PKCS#1 `RSAPublicKey`), and that the
    /// key is the one the checkpoint names.
    pub fn verify(&self, public_key_der: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let actual = signing::fingerprint(public_key_der);
        if actual != self.key_fingerprint {
            return Err(CheckpointError::OtherKey { named: self.key_fingerprint.clone(), actual });
        }
        let statement = self.statement()?;
        let text = statement
            .signing_string()
            .map_err(|error| CheckpointError::Malformed { field: error.field, value: error.value })?;
        // The time must read back to the very text that was signed.
        if format_checkpoint_time(statement.time_ms) != self.time {
            return Err(CheckpointError::Malformed { field: "time", value: self.time.clone() });
        }
        let signature = STANDARD
            .decode(&self.signature)
            .map_err(|_| CheckpointError::Malformed { field: "signature", value: self.signature.clone() })?;
        if !signing::verify(public_key_der, text.as_bytes(), &signature) {
            return Err(CheckpointError::BadSignature { fingerprint: self.key_fingerprint.clone() });
        }
        Ok(statement)
    }
}

/// Every checkpoint signed so far, by tree, oldest (smallest) first.
pub struct Checkpoints {
    path: PathBuf,
    /// One lock for the file and the index: signing is rare (per tree per interval, or on
    /// demand), and holding it while signing keeps two signers from checkpointing one size.
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints").field("path", &self.path).finish_non_exhaustive()
    }
}

struct Inner {
    file: File,
    by_tree: HashMap<TreeId, Vec<SignedCheckpoint>>,
}

fn corrupt(path: &Path, offset: usize, detail: String) -> StoreError {
    StoreError::Corrupt { path: path.to_owned(), offset: offset as u64, what: "checkpoint", detail }
}

/// Reads every checkpoint in the file under `data_dir` and where the whole lines end. A
/// last line without its line feed, or that does not read, is a torn append.
fn read_lines(path: &Path) -> Result<(Vec<SignedCheckpoint>, usize), StoreError> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut text).map_err(StoreError::io(path))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => return Err(StoreError::Io { path: path.to_owned(), source }),
    }
    let mut checkpoints = Vec::new();
    let mut offset = 0;
    while offset < text.len() {
        let Some(length) = text[offset..].iter().position(|&byte| byte == b'\n') else {
            break;
        };
        let line = &text[offset..offset + length];
        match serde_json::from_slice::<SignedCheckpoint>(line) {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(_) if offset + length + 1 == text.len() => break,
            Err(error) => return Err(corrupt(path, offset, error.to_string())),
        }
        offset += length + 1;
    }
    Ok((checkpoints, offset))
}

/// Every checkpoint kept under `data_dir`, for offline verifiers. Changes nothing.
pub fn read_all(data_dir: &Path) -> Result<Vec<SignedCheckpoint>, StoreError> {
    read_lines(&data_dir.join("integrity").join(FILE)).map(|(checkpoints, _)| checkpoints)
}

impl Checkpoints {
    pub fn open(data_dir: &Path) -> Result<Checkpoints, StoreError> {
        let dir = data_dir.join("integrity");
        std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let path = dir.join(FILE);
        let (checkpoints, whole) = read_lines(&path)?;
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(StoreError::io(&path))?;
        let length = file.metadata().map_err(StoreError::io(&path))?.len();
        if length > whole as u64 {
            tracing::warn!(path = %path.display(), bytes = length - whole as u64, "cutting off a torn checkpoint");
            file.set_len(whole as u64).map_err(StoreError::io(&path))?;
        }
        let mut by_tree: HashMap<TreeId, Vec<SignedCheckpoint>> = HashMap::new();
        for checkpoint in checkpoints {
            by_tree.entry(checkpoint.tree()).or_default().push(checkpoint);
        }
        Ok(Checkpoints { path, inner: Mutex::new(Inner { file, by_tree }) })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn latest(&self, tree: &TreeId) -> Option<SignedCheckpoint> {
        self.inner().by_tree.get(tree).and_then(|list| list.last()).cloned()
    }

    /// The checkpoint of `tree` at exactly `size` leaves, if one was signed.
    pub fn at_size(&self, tree: &TreeId, size: u64) -> Option<SignedCheckpoint> {
        let inner = self.inner();
        let list = inner.by_tree.get(tree)?;
        list.binary_search_by_key(&size, |checkpoint| checkpoint.tree_size).ok().map(|index| list[index].clone())
    }

    /// Signs a checkpoint of `tree` at `head` unless the latest one already has its size,
    /// and makes it durable. Returns the checkpoint and whether it is new.
    pub fn sign_if_grown(
        &self,
        tree: &TreeId,
        head: TreeHead,
        now_ms: i64,
        keys: &signing::SigningKeys,
    ) -> Result<(SignedCheckpoint, bool), SignError> {
        let mut inner = self.inner();
        if let Some(latest) = inner.by_tree.get(tree).and_then(|list| list.last()) {
            if latest.tree_size == head.size {
                return Ok((latest.clone(), false));
            }
            if latest.tree_size > head.size {
                return Err(SignError::Shrunk { signed: latest.tree_size, now: head.size });
            }
        }
        let key = keys.current(&tree.region, now_ms)?;
        let statement = Checkpoint {
            account_id: tree.account_id.clone(),
            region: tree.region.clone(),
            tree_size: head.size,
            root_hash: head.root,
            time_ms: now_ms,
            key_fingerprint: key.fingerprint().to_owned(),
        };
        let signed = SignedCheckpoint::sign(&statement, |message| key.sign(message))?;
        let mut line = serde_json::to_vec(&signed).map_err(|error| corrupt(&self.path, 0, error.to_string()))?;
        line.push(b'\n');
        (&inner.file).write_all(&line).and_then(|()| inner.file.sync_data()).map_err(StoreError::io(&self.path))?;
        inner.by_tree.entry(tree.clone()).or_default().push(signed.clone());
        Ok((signed, true))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    #[error(transparent)]
    Unsignable(#[from] trailkeeper_core::checkpoint::UnsignableField),
    #[error("the tree has {now} leaves, fewer than the {signed} a checkpoint already covers")]
    Shrunk { signed: u64, now: u64 },
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use trailkeeper_core::merkle::leaf_hash;

    use super::*;

    fn head(size: u64) -> TreeHead {
        TreeHead { size, root: leaf_hash(&size.to_le_bytes()) }
    }

    #[test]
    fn signs_when_the_tree_grew_and_survives_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let keys = signing::SigningKeys::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let tree = TreeId::new("123456789012", "us-east-1");
        let checkpoints = Checkpoints::open(dir.path()).unwrap();
        let (first, new) = checkpoints.sign_if_grown(&tree, head(10), 1_000, &keys).unwrap();
        assert!(new);
        let (again, new) = checkpoints.sign_if_grown(&tree, head(10), 2_000, &keys).unwrap();
        assert!(!new, "no new checkpoint for a tree that did not grow");
        assert_eq!(again, first);
        let (second, _) = checkpoints.sign_if_grown(&tree, head(12), 3_000, &keys).unwrap();
        assert!(matches!(checkpoints.sign_if_grown(&tree, head(11), 4_000, &keys), Err(SignError::Shrunk { .. })));

        let key = keys.current("us-east-1", 3_000).unwrap();
        let statement = second.verify(key.public_key_der()).unwrap();
        assert_eq!((statement.tree_size, statement.root_hash, statement.time_ms), (12, head(12).root, 3_000));
        drop(checkpoints);

        let path = dir.path().join("integrity/checkpoints.jsonl");
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"accountId\":\"1234");
        std::fs::write(&path, &text).unwrap();
        let reopened = Checkpoints::open(dir.path()).unwrap();
        assert_eq!(reopened.latest(&tree), Some(second.clone()));
        assert_eq!(reopened.at_size(&tree, 10), Some(first));
        assert_eq!(reopened.at_size(&tree, 11), None);
        assert_eq!(read_all(dir.path()).unwrap().len(), 2);
        drop(reopened);

        // Damage before the last line is not a torn append.
        let text = std::fs::read_to_string(&path).unwrap().replacen("accountId", "accountld", 1);
        std::fs::write(&path, text).unwrap();
        assert!(Checkpoints::open(dir.path()).is_err());
    }

    #[test]
    fn any_change_to_a_signed_checkpoint_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let keys = signing::SigningKeys::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let key = keys.current("eu-west-1", 5_000).unwrap();
        let other = keys.current("us-west-2", 5_000).unwrap();
        let checkpoints = Checkpoints::open(dir.path()).unwrap();
        let (signed, _) =
            checkpoints.sign_if_grown(&TreeId::new("123456789012", "eu-west-1"), head(7), 5_000, &keys).unwrap();
        assert!(signed.verify(key.public_key_der()).is_ok());
        assert!(matches!(signed.verify(other.public_key_der()), Err(CheckpointError::OtherKey { .. })));
        let changes: [fn(&mut SignedCheckpoint); 6] = [
            |c| c.tree_size += 1,
            |c| c.root_hash = hash_to_hex(&leaf_hash(b"other")),
            |c| c.account_id = "210987654321".into(),
            |c| c.region = "eu-west-2".into(),
            |c| c.time = "2026-01-01T00:00:00.000Z".into(),
            |c| c.time = c.time.replace(".000Z", "Z"),
        ];
        for change in changes {
            let mut changed = signed.clone();
            change(&mut changed);
            assert!(changed.verify(key.public_key_der()).is_err(), "{changed:?}");
        }
    }
}
