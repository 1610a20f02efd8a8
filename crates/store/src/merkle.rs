//! [`MerkleTrees`]: one RFC 9162 Merkle tree per (account, Region) over the event log,
//! kept by a follower thread.
//!
//! The leaves of the tree of (account, Region) are that stream's events in log order, each
//! leaf the hash of the stored record's JSON text exactly as the log returns it. The
//! follower reads the log in batches after its durable position ([`EventLog::read_log`]),
//! appends the leaves, syncs the tree files, and only then records its new position and
//! every tree's size in `state.json` (replaced atomically). Readers see a tree at its last
//! recorded size, so every proof and root they get is of leaves that survive a crash; on
//! open, records a crash left past the recorded sizes are cut off and the follower reads
//! that part of the log again.
//!
//! The follower never slows ingest: it runs on its own thread at a lower priority, reads
//! through the same path as trails, and takes no lock the writer waits on.
//!
//! On disk, under `<data_dir>/merkle/`:
//!
//! ```text
//! state.json                          the follower's position and every tree's durable size
//! account=<id>/region=<region>/leaves (seq, leaf hash) per leaf, 40 bytes each
//! account=<id>/region=<region>/chunks (first seq, subtree hash) per 128 leaves
//! ```

#[cfg(test)]
mod tests;
mod tree;
pub mod verify;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use trailkeeper_core::merkle::{self, Hash, ProofError};

use crate::log::{SEALER_NICE, lower_this_threads_priority};
use crate::{ErrorKind, EventLog, ReadHold, StoreError, fsutil};
use tree::Tree;
pub use tree::{CHUNK_LEAVES, CHUNK_LEVEL, RECORD_BYTES};

const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Which tree: the events of one account in one Region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeId {
    pub account_id: String,
    pub region: String,
}

impl TreeId {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> TreeId {
        TreeId { account_id: account_id.into(), region: region.into() }
    }

    /// The tree's folder: `<merkle dir>/account=<id>/region=<region>`, as segments are laid out.
    fn dir(&self, merkle_dir: &Path) -> PathBuf {
        merkle_dir.join(format!("account={}", self.account_id)).join(format!("region={}", self.region))
    }

    /// Whether both parts can name a folder; the log accepts no other events.
    fn is_valid(&self) -> bool {
        let name = |value: &str| {
            !value.is_empty()
                && value.len() <= 64
                && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        };
        name(&self.account_id) && name(&self.region)
    }
}

impl std::fmt::Display for TreeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account_id, self.region)
    }
}

/// A tree's size and root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// An event's place in a tree and the proof of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// RFC 9162's inclusion path, from the leaf's sibling up.
    pub path: Vec<Hash>,
}

/// How the follower batches and syncs.
#[derive(Debug, Clone)]
pub struct MerkleOptions {
    /// Log positions read per batch.
    pub batch_events: usize,
    /// How long the follower waits before looking again once it has caught up.
    pub poll: Duration,
    /// `fdatasync` the tree files before recording a batch. Only tests turn this off.
    pub sync: bool,
}

impl Default for MerkleOptions {
    fn default() -> Self {
        MerkleOptions { batch_events: 16_384, poll: Duration::from_millis(200), sync: true }
    }
}

/// What a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerkleErrorKind {
    /// The store failed; see its [`ErrorKind`].
    Store(ErrorKind),
    /// No such tree, or no such leaf in it.
    NotFound,
    /// The follower has not reached this event yet; retrying later succeeds.
    NotYet,
    /// The asked tree sizes do not fit the tree.
    OutOfRange,
}

#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no Merkle tree of account {} in {}", .0.account_id, .0.region)]
    UnknownTree(TreeId),
    #[error("log position {seq} is not in the Merkle trees yet: they reach position {through_seq}")]
    NotYetInTree { seq: u64, through_seq: u64 },
    #[error("the Merkle tree of account {} in {} has no leaf for log position {seq}", .tree.account_id, .tree.region)]
    NotInTree { tree: TreeId, seq: u64 },
    #[error("tree size {size} is larger than the tree, which has {tree_size} leaves")]
    SizeOutOfRange { size: u64, tree_size: u64 },
    #[error("leaf {leaf_index} is not within the first {tree_size} leaves")]
    LeafOutsideSize { leaf_index: u64, tree_size: u64 },
    #[error("tree size {old_size} is larger than tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
}

impl MerkleError {
    pub fn kind(&self) -> MerkleErrorKind {
        match self {
            MerkleError::Store(error) => MerkleErrorKind::Store(error.kind()),
            MerkleError::UnknownTree(_) | MerkleError::NotInTree { .. } => MerkleErrorKind::NotFound,
            MerkleError::NotYetInTree { .. } => MerkleErrorKind::NotYet,
            MerkleError::SizeOutOfRange { .. }
            | MerkleError::LeafOutsideSize { .. }
            | MerkleError::SizesOutOfOrder { .. } => MerkleErrorKind::OutOfRange,
        }
    }
}

/// `state.json`: how far the follower has durably gone, and each tree's size there.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateFile {
    version: u32,
    /// Every event at or before this log position is a leaf of its tree.
    through_seq: u64,
    trees: Vec<TreeSize>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeSize {
    account_id: String,
    region: String,
    size: u64,
}

pub(crate) fn read_state(merkle_dir: &Path) -> Result<StateFile, StoreError> {
    let path = merkle_dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(StateFile { version: STATE_VERSION, ..StateFile::default() });
        }
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let corrupt = |detail: String| StoreError::Corrupt { path: path.clone(), offset: 0, what: "merkle state", detail };
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
    if state.version != STATE_VERSION {
        return Err(corrupt(format!("unsupported version {}", state.version)));
    }
    if let Some(tree) = state.trees.iter().find(|tree| !TreeId::new(&tree.account_id, &tree.region).is_valid()) {
        return Err(corrupt(format!("{:?}/{:?} cannot name a tree", tree.account_id, tree.region)));
    }
    Ok(state)
}

impl StateFile {
    pub(crate) fn through_seq(&self) -> u64 {
        self.through_seq
    }

    pub(crate) fn sizes(&self) -> impl Iterator<Item = (TreeId, u64)> + '_ {
        self.trees.iter().map(|tree| (TreeId::new(&tree.account_id, &tree.region), tree.size))
    }
}

/// One tree and the head readers see: the tree at its last durable size.
struct TreeEntry {
    tree: RwLock<Tree>,
    committed: RwLock<TreeHead>,
}

#[derive(Default)]
struct Control {
    stopping: bool,
}

struct Shared {
    dir: PathBuf,
    log: EventLog,
    options: MerkleOptions,
    /// Trees are added by the follower only; readers clone an entry's `Arc` and let go.
    trees: RwLock<BTreeMap<TreeId, Arc<TreeEntry>>>,
    /// The follower's durable position, published after `state.json` is written.
    through_seq: AtomicU64,
    /// Keeps compaction off the segments the follower has yet to read.
    hold: ReadHold,
    control: Mutex<Control>,
    wake: Condvar,
}

/// The Merkle trees of one event log. Cheap to clone; every clone is the same set.
#[derive(Clone)]
pub struct MerkleTrees {
    shared: Arc<Shared>,
    follower: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for MerkleTrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTrees").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl MerkleTrees {
    /// Opens the trees of the log under `root` (in `<root>/merkle`), cuts off what a crash
    /// left past their durable sizes, and starts the follower.
    pub fn open(root: &Path, log: EventLog, options: MerkleOptions) -> Result<MerkleTrees, StoreError> {
        let dir = root.join("merkle");
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let state = read_state(&dir)?;
        if state.through_seq > log.last_seq() {
            return Err(StoreError::Corrupt {
                path: dir.join(STATE_FILE),
                offset: 0,
                what: "merkle state",
                detail: format!(
                    "the trees reach log position {}, past the log's last event {}",
                    state.through_seq,
                    log.last_seq()
                ),
            });
        }
        let mut trees = BTreeMap::new();
        for (id, size) in state.sizes() {
            let tree = Tree::open(&id.dir(&dir), size)?;
            let head = TreeHead { size, root: tree.root() };
            trees.insert(id, Arc::new(TreeEntry { tree: RwLock::new(tree), committed: RwLock::new(head) }));
        }
        remove_unlisted_trees(&dir, &trees)?;
        tracing::info!(trees = trees.len(), through_seq = state.through_seq, "merkle trees opened");

        let hold = log.hold(state.through_seq);
        let shared = Arc::new(Shared {
            dir,
            log,
            options,
            trees: RwLock::new(trees),
            through_seq: AtomicU64::new(state.through_seq),
            hold,
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
        });
        let follower_shared = Arc::clone(&shared);
        let follower = std::thread::Builder::new()
            .name("tk-merkle".to_owned())
            .spawn(move || run_follower(&follower_shared))
            .map_err(StoreError::io(root))?;
        Ok(MerkleTrees { shared, follower: Arc::new(Mutex::new(Some(follower))) })
    }

    /// Every event at or before this log position is a leaf of its tree.
    pub fn through_seq(&self) -> u64 {
        self.shared.through_seq.load(Ordering::Acquire)
    }

    /// Every tree with at least one leaf, and its head.
    pub fn heads(&self) -> Vec<(TreeId, TreeHead)> {
        read(&self.shared.trees)
            .iter()
            .map(|(id, entry)| (id.clone(), *read(&entry.committed)))
            .filter(|(_, head)| head.size > 0)
            .collect()
    }

    /// The head of one tree (size 0 and the empty root for a tree that has no leaf yet).
    pub fn head(&self, id: &TreeId) -> TreeHead {
        match self.entry(id) {
            Some(entry) => *read(&entry.committed),
            None => TreeHead { size: 0, root: merkle::empty_tree_hash() },
        }
    }

    fn entry(&self, id: &TreeId) -> Option<Arc<TreeEntry>> {
        read(&self.shared.trees).get(id).cloned()
    }

    /// The entry and its durable size, or an error when `size` is past it.
    fn entry_for_size(&self, id: &TreeId, size: u64) -> Result<Option<Arc<TreeEntry>>, MerkleError> {
        let entry = self.entry(id);
        let tree_size = entry.as_ref().map_or(0, |entry| read(&entry.committed).size);
        if size > tree_size {
            return Err(MerkleError::SizeOutOfRange { size, tree_size });
        }
        Ok(entry)
    }

    /// The root hash of the first `size` leaves of a tree.
    pub fn root_at(&self, id: &TreeId, size: u64) -> Result<Hash, MerkleError> {
        match self.entry_for_size(id, size)? {
            Some(entry) => Ok(merkle::root(&mut read(&entry.tree).source(), size)?),
            None => Ok(merkle::empty_tree_hash()),
        }
    }

    /// The proof that the event at log position `seq` is a leaf of the first `tree_size`
    /// leaves of its tree.
    pub fn inclusion_proof(&self, id: &TreeId, seq: u64, tree_size: u64) -> Result<InclusionProof, MerkleError> {
        let through_seq = self.through_seq();
        if seq > through_seq {
            return Err(MerkleError::NotYetInTree { seq, through_seq });
        }
        let entry = self.entry_for_size(id, tree_size)?.ok_or_else(|| MerkleError::UnknownTree(id.clone()))?;
        let tree = read(&entry.tree);
        let committed = read(&entry.committed).size;
        let leaf_index =
            tree.leaf_index(seq, committed)?.ok_or_else(|| MerkleError::NotInTree { tree: id.clone(), seq })?;
        if leaf_index >= tree_size {
            return Err(MerkleError::LeafOutsideSize { leaf_index, tree_size });
        }
        let path = merkle::inclusion_proof(&mut tree.source(), leaf_index, tree_size).map_err(proof_error)?;
        Ok(InclusionProof { leaf_index, tree_size, path })
    }

    /// The proof that the first `new_size` leaves of a tree extend its first `old_size`.
    pub fn consistency_proof(&self, id: &TreeId, old_size: u64, new_size: u64) -> Result<Vec<Hash>, MerkleError> {
        if old_size > new_size {
            return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
        }
        match self.entry_for_size(id, new_size)? {
            Some(entry) => {
                merkle::consistency_proof(&mut read(&entry.tree).source(), old_size, new_size).map_err(proof_error)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Lets the follower take in everything the log holds, then stops it. Call before the
    /// log itself is closed.
    pub fn close(&self) {
        lock(&self.shared.control).stopping = true;
        self.shared.wake.notify_all();
        if let Some(follower) = lock(&self.follower).take()
            && follower.join().is_err()
        {
            tracing::error!("the merkle follower panicked");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn proof_error(error: ProofError<StoreError>) -> MerkleError {
    match error {
        ProofError::Source(error) => MerkleError::Store(error),
        ProofError::IndexOutOfRange { index, size } => {
            MerkleError::LeafOutsideSize { leaf_index: index, tree_size: size }
        }
        ProofError::SizesOutOfOrder { old_size, new_size } => MerkleError::SizesOutOfOrder { old_size, new_size },
    }
}

/// Tree folders a crash left between creating them and recording them in `state.json`.
/// The log still holds their events, so they are built again.
fn remove_unlisted_trees(dir: &Path, listed: &BTreeMap<TreeId, Arc<TreeEntry>>) -> Result<(), StoreError> {
    for account in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let account = account.map_err(StoreError::io(dir))?.path();
        let Some(account_id) = account.file_name().and_then(|name| name.to_str()?.strip_prefix("account=")) else {
            continue;
        };
        let account_id = account_id.to_owned();
        for region in fs::read_dir(&account).map_err(StoreError::io(&account))? {
            let region = region.map_err(StoreError::io(&account))?.path();
            let Some(region_name) = region.file_name().and_then(|name| name.to_str()?.strip_prefix("region=")) else {
                continue;
            };
            if !listed.contains_key(&TreeId::new(account_id.as_str(), region_name)) {
                tracing::warn!(path = %region.display(), "removing a merkle tree the state file does not list");
                fs::remove_dir_all(&region).map_err(StoreError::io(&region))?;
            }
        }
    }
    Ok(())
}

fn run_follower(shared: &Shared) {
    lower_this_threads_priority(SEALER_NICE);
    let mut backoff = Duration::from_millis(100);
    loop {
        let stopping = lock(&shared.control).stopping;
        let wait = match follow_once(shared) {
            Ok(Followed::Behind) => {
                backoff = Duration::from_millis(100);
                continue;
            }
            Ok(Followed::Nothing) if stopping => return,
            Ok(Followed::CaughtUp) if stopping => continue,
            Ok(Followed::Nothing | Followed::CaughtUp) => {
                backoff = Duration::from_millis(100);
                shared.options.poll
            }
            Err(error) => {
                tracing::error!(%error, retry_in_ms = backoff.as_millis() as u64, "the merkle follower failed; retrying");
                if stopping {
                    return;
                }
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                wait
            }
        };
        let control = lock(&shared.control);
        if !control.stopping {
            let _ = shared.wake.wait_timeout(control, wait).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What one turn of the follower found.
enum Followed {
    /// Nothing new in the log.
    Nothing,
    /// It took in everything there was.
    CaughtUp,
    /// It took in a full batch; more may wait.
    Behind,
}

/// Takes in one batch of the log. Each batch syncs the tree files and replaces the state
/// file, so a follower that has caught up waits for the next poll rather than taking in at
/// once the few events that arrived while it synced: under 500 events/s it made about 80
/// syncs a second that way, 20 now (strace, 60 s of LookupEvents and their audit records).
fn follow_once(shared: &Shared) -> Result<Followed, StoreError> {
    let after = shared.through_seq.load(Ordering::Acquire);
    let batch = shared.log.read_log(after, shared.options.batch_events)?;
    if batch.through <= after {
        return Ok(Followed::Nothing);
    }
    let full = batch.through - after >= shared.options.batch_events.max(1) as u64;
    // Hashing is the batch's real work, the whole batch at once; no lock is held for it.
    let records: Vec<&[u8]> = batch.entries.iter().map(|entry| &entry.json[..]).collect();
    let hashes = merkle::leaf_hashes(&records);
    let mut by_tree: BTreeMap<(&str, &str), Vec<(u64, Hash)>> = BTreeMap::new();
    for (entry, hash) in batch.entries.iter().zip(hashes) {
        by_tree.entry((&*entry.account_id, &*entry.region)).or_default().push((entry.seq, hash));
    }
    let mut touched: Vec<Arc<TreeEntry>> = Vec::with_capacity(by_tree.len());
    let applied = apply(shared, by_tree, batch.through, &mut touched);
    // A state file that reached the disk though its write reported an error (the folder's
    // sync failed after the rename) records the batch: the trees must stay as they are.
    let recorded = applied.is_err() && read_state(&shared.dir).is_ok_and(|state| state.through_seq == batch.through);
    if recorded && let Err(error) = &applied {
        tracing::warn!(%error, "the merkle state was recorded though its write reported an error; keeping the batch");
    }
    if let Err(error) = applied
        && !recorded
    {
        // Put the touched trees back to their durable sizes, so the batch can be redone.
        for entry in &touched {
            let size = read(&entry.committed).size;
            let dir = read(&entry.tree).dir().to_owned();
            *write(&entry.tree) = Tree::open(&dir, size)?;
        }
        return Err(error);
    }
    for entry in &touched {
        let tree = read(&entry.tree);
        *write(&entry.committed) = TreeHead { size: tree.size(), root: tree.root() };
    }
    shared.through_seq.store(batch.through, Ordering::Release);
    shared.hold.advance(batch.through);
    Ok(if full { Followed::Behind } else { Followed::CaughtUp })
}

fn apply(
    shared: &Shared,
    by_tree: BTreeMap<(&str, &str), Vec<(u64, Hash)>>,
    through_seq: u64,
    touched: &mut Vec<Arc<TreeEntry>>,
) -> Result<(), StoreError> {
    let mut new_dirs = Vec::new();
    for ((account_id, region), leaves) in by_tree {
        let id = TreeId::new(account_id, region);
        let existing = read(&shared.trees).get(&id).cloned();
        let entry = match existing {
            Some(entry) => entry,
            None => {
                if !id.is_valid() {
                    return Err(StoreError::Corrupt {
                        path: shared.dir.clone(),
                        offset: 0,
                        what: "event",
                        detail: format!("{id} cannot name a merkle tree"),
                    });
                }
                let dir = id.dir(&shared.dir);
                let tree = Tree::open(&dir, 0)?;
                new_dirs.push(dir);
                let head = TreeHead { size: 0, root: merkle::empty_tree_hash() };
                let entry = Arc::new(TreeEntry { tree: RwLock::new(tree), committed: RwLock::new(head) });
                write(&shared.trees).insert(id, Arc::clone(&entry));
                entry
            }
        };
        touched.push(Arc::clone(&entry));
        let mut tree = write(&entry.tree);
        for (seq, leaf) in leaves {
            tree.append(seq, leaf)?;
        }
        tree.write_out()?;
    }

    if shared.options.sync {
        for entry in touched.iter() {
            let files = read(&entry.tree).files();
            for (file, path) in files {
                file.sync_data().map_err(StoreError::io(&path))?;
            }
        }
    }
    // A new tree's folders must survive a crash along with the state file that lists it.
    for dir in &new_dirs {
        for synced in [Some(dir.as_path()), dir.parent(), dir.parent().and_then(Path::parent)].into_iter().flatten() {
            fsutil::sync_dir(synced)?;
        }
    }

    let trees: Vec<TreeSize> = read(&shared.trees)
        .iter()
        .map(|(id, entry)| TreeSize {
            account_id: id.account_id.clone(),
            region: id.region.clone(),
            size: read(&entry.tree).size(),
        })
        .collect();
    let state = StateFile { version: STATE_VERSION, through_seq, trees };
    let path = shared.dir.join(STATE_FILE);
    let text = serde_json::to_vec(&state).map_err(|error| StoreError::Corrupt {
        path: path.clone(),
        offset: 0,
        what: "merkle state",
        detail: error.to_string(),
    })?;
    fsutil::write_atomic(&path, &text)
}
